"""``load.operator_arns`` and ``load.external_id``: who besides the Glue load job may assume the producer's
read role, and the ExternalId they must send.

Across accounts only the producer's read role may read the table and write its exports into the lake's
``exports/<table>/``. The consumer's Glue load role assumes it (Glue's export connector, which sends no
ExternalId); the roles listed in ``load.operator_arns`` (people or pipelines of the consumer account)
may assume it too, for ``ddblake load --assume-role`` (a Scan, or ``--export-to`` into
``exports/<table>/``) or an export the Glue job's ``export-files`` source then reads. ``load.external_id``
is required of those operators only (``ddblake_infra.read_role``). Their number is bounded by IAM's
quota on the read role's trust policy, which :func:`trust_policy_problem` checks at synth.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from ddblake_infra.config_reader import Section

_ROLE_ARN: Final = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{12}):role/(?P<path>(?:[\x21-\x7e]+/)?)"
    r"(?P<name>[\w+=,.@-]{1,64})",
    re.ASCII,
)
"""An IAM role ARN, path included; used with ``fullmatch`` (``$`` would let a trailing newline in)."""
EXTERNAL_ID: Final = re.compile(r"[\w+=,.@:/-]{2,1224}", re.ASCII)
"""STS's rule for an ExternalId, used with ``fullmatch``: the same as ``ddblake.aws.role_checks``'s
(the CDK app does not import ddblake; tests/infra/test_infra_read_role_limits.py holds them equal)."""
EXTERNAL_ID_RULE: Final = "2 to 1224 characters of A-Z a-z 0-9 and _ + = , . @ : / -"
_SHAPE: Final = "arn:{partition}:iam::{consumer}:role/<name> (or role/<path>/<name>)"
OPERATORS_SID: Final = "ConsumerOperators"
"""The trust statement of ``load.operator_arns`` (the only one that may carry ``sts:ExternalId``)."""
TRUST_POLICY_LIMIT: Final = 2048
"""IAM's default quota on the length of a role's trust policy, white space not counted: a longer one
fails ``CreateRole``/``UpdateAssumeRolePolicy`` (LimitExceeded), and CloudFormation rolls back."""


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
        m = _ROLE_ARN.fullmatch(arn)
        if m is None:
            spaced = " (it has white space before or after it)" if arn != arn.strip() else ""
            raise s.error("operator_arns", f"{arn!r} is not an IAM role ARN{spaced} ({shape})")
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
    # never quoted: it is shared with the operators much as a password is
    given = s.data.get("external_id")
    if given is not None and not isinstance(given, str):
        raise s.error("external_id", f"must be a string in quotes (got a JSON {_json_kind(given)})")
    value = s.optional_text("external_id")
    if value is not None and not EXTERNAL_ID.fullmatch(value):
        raise s.error(
            "external_id",
            f"is not an ExternalId STS accepts ({len(value)} character(s); the value is not shown): it "
            f"must be {EXTERNAL_ID_RULE}; correct it",
        )
    return value


def _json_kind(value: object) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "number"
    return "list" if isinstance(value, list) else "object"


def read_role_trust_policy(
    *,
    partition: str,
    consumer: str,
    load_role_arn: str,
    operators: tuple[str, ...],
    external_id: str | None,
) -> dict[str, Any]:
    """The read role's trust policy as ``ddblake_infra.read_role`` synthesizes it (a test holds the two
    equal): the Glue load role's statement, then ``ConsumerOperators`` when there are operators."""
    root = {"AWS": f"arn:{partition}:iam::{consumer}:root"}
    statements: list[dict[str, Any]] = [
        {
            "Action": "sts:AssumeRole",
            "Condition": {"ArnEquals": {"aws:PrincipalArn": load_role_arn}},
            "Effect": "Allow",
            "Principal": root,
        }
    ]
    if operators:
        conditions: dict[str, Any] = {"ArnEquals": {"aws:PrincipalArn": list(operators)}}
        if external_id:
            conditions["StringEquals"] = {"sts:ExternalId": external_id}
        statements.append(
            {
                "Action": "sts:AssumeRole",
                "Condition": conditions,
                "Effect": "Allow",
                "Principal": root,
                "Sid": OPERATORS_SID,
            }
        )
    return {"Statement": statements, "Version": "2012-10-17"}


def policy_length(document: dict[str, Any]) -> int:
    """A policy's length as IAM counts it against its quotas: the JSON without white space."""
    return len(json.dumps(document, separators=(",", ":"), ensure_ascii=False))


def trust_policy_problem(
    *,
    partition: str,
    consumer: str,
    load_role_arn: str,
    operators: tuple[str, ...],
    external_id: str | None,
) -> str | None:
    """Why the read role's trust policy would be over IAM's quota, and how many operators would fit;
    ``None`` when it is within it. Checked at synth, so ``cdk deploy`` never rolls back over it."""

    def size(listed: tuple[str, ...]) -> int:
        policy = read_role_trust_policy(
            partition=partition,
            consumer=consumer,
            load_role_arn=load_role_arn,
            operators=listed,
            external_id=external_id,
        )
        return policy_length(policy)

    total = size(operators)
    if total <= TRUST_POLICY_LIMIT:
        return None
    fit = max(k for k in range(len(operators) + 1) if size(operators[:k]) <= TRUST_POLICY_LIMIT)
    with_id = " and load.external_id" if external_id else ""
    if fit:
        advice = f"the first {fit} fit: list at most {fit} (e.g. one operator role that people assume)"
    else:
        advice = (
            f"not even the first fits beside load.external_id's {len(external_id or '')} characters: "
            "shorten load.external_id"
        )
    return (
        f"the producer's read role's trust policy would be {total:,} characters with these "
        f"{len(operators)} role(s){with_id}, over IAM's limit of {TRUST_POLICY_LIMIT:,} for a role's trust "
        f"policy (CloudFormation would fail with LimitExceeded and roll back the deploy); {advice}"
    )
