"""The producer's read role across accounts: its trust policy within IAM's size quota (checked at
synth), ExternalIds and operator ARNs as STS and IAM take them, and who may Scan through it.

A trust policy over IAM's 2,048 characters fails ``CreateRole`` with LimitExceeded and CloudFormation
rolls the whole producer stack back; an ExternalId STS refuses, or an ARN with a trailing newline,
synthesized and deployed only to fail every ``ddblake load --assume-role``.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest
from test_infra_operators import cross, error_of

from ddblake.aws import role_checks
from ddblake.errors import ConfigError
from ddblake.gluejob import library_files
from ddblake_infra import operators as ops_module
from ddblake_infra.config import REPO_ROOT, parse_config
from ddblake_infra.operators import (
    TRUST_POLICY_LIMIT,
    policy_length,
    read_role_trust_policy,
)

T = "example-ddb-table"
CONSUMER = "222222222222"
LOAD_ROLE = f"arn:aws:iam::{CONSUMER}:role/ddblake-{T}-load"


def sso(i: int) -> str:
    """An IAM Identity Center role's ARN (its path carries the region), about 120 characters."""
    return (
        f"arn:aws:iam::{CONSUMER}:role/aws-reserved/sso.amazonaws.com/ap-northeast-1/"
        f"AWSReservedSSO_Operator{i}_0123456789abcdef"
    )


def size(arns: list[str], external_id: str | None = None) -> int:
    return policy_length(
        read_role_trust_policy(
            partition="aws",
            consumer=CONSUMER,
            load_role_arn=LOAD_ROLE,
            operators=tuple(arns),
            external_id=external_id,
        )
    )


def padded_to(total: int, arns: list[str], external_id: str | None) -> list[str]:
    """``arns`` and one more role whose path makes the trust policy exactly ``total`` characters."""
    short = f"arn:aws:iam::{CONSUMER}:role/ops-last"
    missing = total - size([*arns, short], external_id)
    assert 1 < missing < 500
    return [*arns, f"arn:aws:iam::{CONSUMER}:role/{'p' * (missing - 1)}/ops-last"]


# ---- 1. the trust policy's size --------------------------------------------------------------------


@pytest.mark.parametrize("external_id", [None, "ddblake-ext-1"])
def test_a_trust_policy_of_exactly_the_limit_is_taken_and_one_character_more_is_refused(
    external_id: str | None,
) -> None:
    at_limit = padded_to(TRUST_POLICY_LIMIT, [sso(i) for i in range(10)], external_id)
    assert size(at_limit, external_id) == TRUST_POLICY_LIMIT
    extra = {"external_id": external_id} if external_id else {}
    cfg = parse_config(cross(operator_arns=at_limit, **extra), file="x.json")
    assert cfg.load.operator_arns == tuple(at_limit)

    over = [*at_limit[:-1], at_limit[-1].replace("/ops-last", "/ops-lastx")]
    assert size(over, external_id) == TRUST_POLICY_LIMIT + 1
    message = error_of(cross(operator_arns=over, **extra))
    assert message.startswith(
        "x.json: load.operator_arns: the producer's read role's trust policy would be "
        "2,049 characters with these 11 role(s)"
    )
    assert "over IAM's limit of 2,048" in message and "LimitExceeded" in message
    assert "the first 10 fit: list at most 10" in message
    assert ("and load.external_id" in message) == bool(external_id)


def test_twenty_identity_center_roles_are_refused_saying_how_many_fit() -> None:
    arns = [sso(i) for i in range(20)]
    message = error_of(cross(operator_arns=arns, external_id="ddblake-ext-1"))
    m = re.search(r"would be ([\d,]+) characters with these 20 role\(s\).* the first (\d+) fit", message)
    assert m is not None, message
    assert int(m[1].replace(",", "")) == size(arns, "ddblake-ext-1") > TRUST_POLICY_LIMIT
    fit = int(m[2])
    # what the message says fits does, and one more does not
    parse_config(cross(operator_arns=arns[:fit], external_id="ddblake-ext-1"), file="x.json")
    error_of(cross(operator_arns=arns[: fit + 1], external_id="ddblake-ext-1"))


def test_a_long_external_id_that_leaves_room_for_no_role_says_to_shorten_it() -> None:
    long_path = f"arn:aws:iam::{CONSUMER}:role/{'p' * 500}/ops"
    message = error_of(cross(operator_arns=[long_path], external_id="e" * 1224))
    assert "not even the first fits beside load.external_id's 1224 characters" in message
    assert "shorten load.external_id" in message
    assert "e" * 20 not in message  # the ExternalId itself is never quoted


def test_a_single_account_deployment_has_no_read_role_to_measure() -> None:
    single: dict[str, Any] = json.loads((REPO_ROOT / "infra/config/single-account.json").read_text())
    parse_config(single, file="x.json")  # no operators, no read role: nothing to check, no error


def _synth_producer(raw: dict[str, Any], out: Path) -> dict[str, Any]:
    from ddblake_infra.build import add_stacks, make_app

    app = make_app(outdir=str(out))
    cfg = parse_config(raw, file="x.json")
    stacks = add_stacks(app, cfg, nag=False, allow_placeholder_key=True)
    assembly = app.synth()
    (producer,) = [s for s in stacks if s.stack_name.endswith("-producer")]
    template: dict[str, Any] = assembly.get_stack_by_name(producer.stack_name).template
    return template


def _trust_of_read_role(template: dict[str, Any]) -> dict[str, Any]:
    (doc,) = [
        r["Properties"]["AssumeRolePolicyDocument"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Role" and r["Properties"].get("RoleName") == f"ddblake-{T}-load-read"
    ]
    assert isinstance(doc, dict)
    return doc


def test_the_measured_policy_is_the_one_the_stack_deploys(tmp_path: Path) -> None:
    """The synth check measures what IAM will get: the synthesized trust policy, literal strings only
    (no token CloudFormation would expand), equals the measured one, and at the limit."""
    at_limit = padded_to(TRUST_POLICY_LIMIT, [sso(i) for i in range(10)], "ddblake-ext-1")
    raw = cross(operator_arns=at_limit, external_id="ddblake-ext-1", source="export-files")
    deployed = _trust_of_read_role(_synth_producer(raw, tmp_path / "with"))
    expected = read_role_trust_policy(
        partition="aws",
        consumer=CONSUMER,
        load_role_arn=LOAD_ROLE,
        operators=tuple(at_limit),
        external_id="ddblake-ext-1",
    )
    assert deployed == expected
    assert policy_length(deployed) == TRUST_POLICY_LIMIT
    # and without operators: the Glue load role's statement alone
    alone = _trust_of_read_role(_synth_producer(cross(), tmp_path / "alone"))
    assert alone == read_role_trust_policy(
        partition="aws", consumer=CONSUMER, load_role_arn=LOAD_ROLE, operators=(), external_id=None
    )


# ---- 2. ExternalIds and role ARNs as STS and IAM take them ----------------------------------------------

_SAMPLES = [
    "ab",
    "a",
    "x" * 1224,
    "x" * 1225,
    "ddblake-ext-1",
    "A-Za-z0_9+=,.@:/-",
    "ééééé",
    "٣٣٣٣",  # Arabic-Indic digits: \w without re.ASCII takes them
    "abc\n",
    "\nabc",
    "ab cd",
    "abc$",
]


@pytest.mark.parametrize("value", _SAMPLES)
def test_the_stack_takes_the_external_ids_ddblakes_cli_sends(value: str) -> None:
    """The stack and ``ddblake load --external-id`` agree on every ExternalId (STS's rule)."""
    try:
        role_checks.check_external_id(f"arn:aws:iam::{CONSUMER}:role/ops", value)
        cli_takes = True
    except ConfigError:
        cli_takes = False
    assert (ops_module.EXTERNAL_ID.fullmatch(value) is not None) == cli_takes
    assert ops_module.EXTERNAL_ID.pattern == role_checks._EXTERNAL_ID.pattern
    assert ops_module.EXTERNAL_ID.flags == role_checks._EXTERNAL_ID.flags


@pytest.mark.parametrize("value", ["ééééé", "abc\n", "ab cd", "a", "x" * 1225])
def test_an_external_id_sts_would_refuse_is_refused_without_quoting_it(value: str) -> None:
    message = error_of(cross(operator_arns=[sso(0)], external_id=value))
    assert message.startswith("x.json: load.external_id: is not an ExternalId STS accepts")
    assert f"({len(value)} character(s); the value is not shown)" in message
    assert "2 to 1224 characters of A-Z a-z 0-9 and _ + = , . @ : / -" in message
    assert repr(value) not in message
    assert len(value.strip()) < 4 or value.strip() not in message


def test_an_external_id_given_as_a_number_is_refused_without_quoting_it() -> None:
    message = error_of(cross(operator_arns=[sso(0)], external_id=73194027))
    assert message == "x.json: load.external_id: must be a string in quotes (got a JSON number)"


@pytest.mark.parametrize(
    "arn",
    [
        f"arn:aws:iam::{CONSUMER}:role/ops\n",
        f" arn:aws:iam::{CONSUMER}:role/ops",
        f"arn:aws:iam::{CONSUMER}:role/opé",
        f"arn:aws:iam::{CONSUMER}:role/pâth/ops",
    ],
)
def test_an_operator_arn_iam_would_not_match_is_refused(arn: str) -> None:
    message = error_of(cross(operator_arns=[arn]))
    assert message.startswith(f"x.json: load.operator_arns: {arn!r} is not an IAM role ARN"), message
    if arn != arn.strip():
        assert "(it has white space before or after it)" in message


# ---- 4. who scans through the read role ------------------------------------------------------------


def _string_constants(tree: ast.AST) -> list[str]:
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def test_the_glue_job_reads_the_table_through_an_export_only() -> None:
    """The Glue job never scans (so the read role need not grant Scan for it): its one DynamoDB
    read is Glue's export connector (``dynamodb.export`` = ``ddb``), it makes no DynamoDB client."""
    files = {**library_files(), "glue_job.py": REPO_ROOT / "src/ddblake/load/glue_job.py"}
    reads = []
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                args = [a.value for a in node.args if isinstance(a, ast.Constant)]
                assert "dynamodb" not in args, f"{name}: a DynamoDB client at line {node.lineno}"
                if isinstance(node.func, ast.Attribute):
                    assert node.func.attr.lower() not in {"scan", "query"}, f"{name}:{node.lineno}"
            if isinstance(node, ast.Dict):
                keys = [k.value for k in node.keys if isinstance(k, ast.Constant)]
                if "dynamodb.tableArn" in keys:
                    reads.append(
                        dict(
                            zip(
                                keys,
                                [
                                    ast.literal_eval(v) if isinstance(v, ast.Constant) else None
                                    for v in node.values
                                ],
                                strict=False,
                            )
                        )
                    )
        assert not [s for s in _string_constants(tree) if s in {"dynamodb:Scan", "dynamodb.splits"}], name
    assert reads and all(r.get("dynamodb.export") == "ddb" for r in reads), reads


def _flat(path: str) -> str:
    return re.sub(r"\s+", " ", (REPO_ROOT / path).read_text(encoding="utf-8"))


def test_load_md_says_to_scan_as_an_operator_not_as_the_glue_job() -> None:
    text = _flat("docs/load.md")
    section = text.split("## Cross-account: `--assume-role`", 1)[1].split("## ", 1)[0]
    assert "run `ddblake load --assume-role` as one of those" not in section
    assert "run `ddblake load --assume-role` as a role of `load.operator_arns`" in section
    assert "the Glue job's role does not Scan" in section


# ---- the same `$`-with-match flaw elsewhere in the file ------------------------------------------------


def _set(raw: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    *parents, key = dotted.split(".")
    node = raw
    for p in parents:
        node = node.setdefault(p, {})
    node[key] = value
    return raw


@pytest.mark.parametrize(
    ("dotted", "value"),
    [
        ("region", "ap-northeast-1\n"),
        ("producer_account", "111111111111\n"),
        ("table.name", "example-ddb-table\n"),
        (
            "lake.key_arn",
            "arn:aws:kms:ap-northeast-1:222222222222:key/00000000-0000-0000-0000-000000000000\n",
        ),
        ("apply.schedule", "rate(5 minutes)\n"),
        ("apply.schedule", "cron(0/5 * * * ? *)\n"),
        ("names.load_role", "ddblake-load\n"),
        ("names.load_role", "ddblake-lóad"),
        ("names.load_job", "ddblake-lóad"),
    ],
)
def test_a_value_with_a_trailing_newline_or_a_non_ascii_letter_is_refused(dotted: str, value: str) -> None:
    message = error_of(_set(cross(), dotted, value))
    assert message.startswith(f"x.json: {dotted}: "), message
