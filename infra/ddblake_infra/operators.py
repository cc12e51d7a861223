"""``load.operator_arns`` and ``load.external_id``: who besides the Glue load job may assume the producer's
read role, and the ExternalId they must send.

Across accounts only the producer's read role may read the table and write its exports into the lake's
``exports/<table>/``. The consumer's Glue load role assumes it (Glue's export connector, which sends no
ExternalId); the roles listed in ``load.operator_arns`` (people or pipelines of the consumer account)
may assume it too, for ``ddblake load --assume-role`` (a Scan, or ``--export-to`` into
``exports/<table>/``) or an export the Glue job's ``export-files`` source then reads. ``load.external_id``
is required of those operators only (``ddblake_infra.read_role``).
"""

from __future__ import annotations

import re
from typing import Final

from ddblake_infra.config_reader import Section

_ROLE_ARN: Final = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{12}):role/(?P<path>(?:[\x21-\x7e]+/)?)"
    r"(?P<name>[\w+=,.@-]{1,64})$",
    re.ASCII,
)
_EXTERNAL_ID: Final = re.compile(r"^[\w+=,.@:/-]{2,1224}$")
_SHAPE: Final = "arn:{partition}:iam::{consumer}:role/<name> (or role/<path>/<name>)"


def operator_arns(s: Section, *, deployment: str, consumer: str, partition: str) -> tuple[str, ...]:
    """``load.operator_arns``: IAM role ARNs of the consumer account that may assume the read role.

    Each must be a role (``aws:PrincipalArn`` of a session is its role's ARN, path included), in the
    configuration's partition and the consumer account, without wildcards, listed once.
    """
    given = s.data.get("operator_arns")
    if deployment != "cross-account" and given:
        raise s.error(
            "operator_arns",
            "applies to cross-account deployments only: it lists the consumer roles the producer's read "
            "role trusts, and a single-account deployment has no read role (give such a role the table's "
            "permissions directly); remove it",
        )
    arns = s.strings("operator_arns")
    shape = _SHAPE.format(partition=partition, consumer=consumer)
    for arn in arns:
        if "*" in arn or "?" in arn:
            raise s.error(
                "operator_arns",
                f"{arn!r} has a wildcard: the read role trusts each role by its exact ARN; "
                f"list the roles one by one ({shape})",
            )
        if ":assumed-role/" in arn:
            raise s.error(
                "operator_arns",
                f"{arn!r} is a role session (sts assumed-role), not a role: list the role's own ARN, "
                f"{shape} (aws iam get-role --role-name <name> shows it, path included)",
            )
        m = _ROLE_ARN.match(arn)
        if m is None:
            raise s.error("operator_arns", f"{arn!r} is not an IAM role ARN ({shape})")
        if m["partition"] != partition:
            raise s.error(
                "operator_arns",
                f"{arn!r} is in partition {m['partition']} but the region's partition is {partition}: "
                f"the read role can only trust roles of its own partition ({shape})",
            )
        if m["account"] != consumer:
            raise s.error(
                "operator_arns",
                f"{arn!r} is in account {m['account']} but consumer_account is {consumer}: list roles "
                "of the consumer account (the lake's), which load the producer's table through its "
                "read role; in the producer account give a role the table's permissions directly",
            )
    duplicates = sorted({arn for arn in arns if arns.count(arn) > 1})
    if duplicates:
        raise s.error("operator_arns", f"lists {duplicates[0]!r} more than once; list each role once")
    return arns


def external_id(s: Section, *, deployment: str, operators: tuple[str, ...]) -> str | None:
    """``load.external_id``: the ``sts:ExternalId`` the read role requires of ``load.operator_arns``.

    Refused in a single-account deployment (no read role) and without operators: the Glue load role's
    own trust statement never asks for one (Glue's DynamoDB connector cannot send it), so it would
    apply to nobody.
    """
    if s.data.get("external_id") is not None:
        if deployment != "cross-account":
            raise s.error(
                "external_id",
                "applies to cross-account deployments only: it is the ExternalId the producer's read "
                "role requires, and a single-account load job reads the table with its own role; remove it",
            )
        if not operators:
            raise s.error(
                "external_id",
                "applies to the roles of load.operator_arns only (the ExternalId their ddblake load "
                "--assume-role ... --external-id sends), and load.operator_arns is empty: the Glue load "
                "job assumes the read role without one (Glue's DynamoDB connector cannot send it). "
                "List the consumer roles in load.operator_arns, or remove load.external_id",
            )
    return s.optional_text("external_id", pattern=_EXTERNAL_ID, what="an sts:ExternalId (2-1224 chars)")
