"""``load.operator_arns`` and ``load.external_id``: the consumer roles the producer's read role trusts
besides the Glue load role, and the ExternalId required of them only.

Without operators nobody but the Glue service's load role could assume the read role, so a
cross-account ``ddblake load --assume-role`` (Scan or ``--export-to``) and the export the Glue job's
``export-files`` source reads had no principal able to run them (docs/deploy.md, "Cross-account full
load by an operator").
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import test_infra_iam as iam_rules
import test_infra_nag as nag_rules
from cfnlint.api import ManualArgs, lint_file
from infra_templates import Statement, statements

from ddblake_infra.config import REPO_ROOT, load_config, parse_config
from ddblake_infra.config_reader import InfraConfigError
from ddblake_infra.read_role import OPERATORS_SID

T = "example-ddb-table"
PRODUCER, CONSUMER = "111111111111", "222222222222"
LOAD_ROLE = f"arn:aws:iam::{CONSUMER}:role/ddblake-{T}-load"
READ_ROLE = f"arn:aws:iam::{PRODUCER}:role/ddblake-{T}-load-read"
OPERATORS = [
    f"arn:aws:iam::{CONSUMER}:role/ddblake-operator",
    # an IAM Identity Center role: aws:PrincipalArn carries the role's path
    f"arn:aws:iam::{CONSUMER}:role/aws-reserved/sso.amazonaws.com/ap-northeast-1/AWSReservedSSO_Admin_0a1b2c",
]
EXTERNAL_ID = "ddblake-ext-1"
EXAMPLE: dict[str, Any] = json.loads((REPO_ROOT / "infra/config/cross-account.json").read_text())


def cross(**load: Any) -> dict[str, Any]:
    """The cross-account example with ``load`` keys set (``None`` removes one)."""
    raw = copy.deepcopy(EXAMPLE)
    for key, value in load.items():
        if value is None:
            raw["load"].pop(key, None)
        else:
            raw["load"][key] = value
    return raw


def error_of(raw: dict[str, Any]) -> str:
    with pytest.raises(InfraConfigError) as e:
        parse_config(raw, file="x.json")
    message = str(e.value)
    assert "\n" not in message
    return message


# ---- configuration -------------------------------------------------------------------------------


def test_no_operators_by_default() -> None:
    cfg = load_config(REPO_ROOT / "infra/config/cross-account.json")
    assert cfg.load.operator_arns == () and cfg.load.external_id is None


def test_operators_are_kept_as_listed() -> None:
    cfg = parse_config(cross(operator_arns=OPERATORS, external_id=EXTERNAL_ID), file="x.json")
    assert cfg.load.operator_arns == tuple(OPERATORS)
    assert cfg.load.external_id == EXTERNAL_ID


@pytest.mark.parametrize("source", ["connector", "export-files"])
def test_an_external_id_is_taken_with_operators_whatever_the_job_source(source: str) -> None:
    """The ExternalId is asked of the operators only, so the connector (which cannot send one) works."""
    cfg = parse_config(cross(source=source, operator_arns=OPERATORS[:1], external_id="abc123"), file="x.json")
    assert (cfg.load.source, cfg.load.external_id) == (source, "abc123")


@pytest.mark.parametrize("source", ["connector", "export-files"])
def test_an_external_id_without_operators_is_refused_naming_both_keys(source: str) -> None:
    message = error_of(cross(source=source, external_id="abc123"))
    assert message.startswith("x.json: load.external_id: applies to the roles of load.operator_arns only")
    assert "load.operator_arns is empty" in message
    assert "List the consumer roles in load.operator_arns, or remove load.external_id" in message


@pytest.mark.parametrize(
    ("arns", "expected"),
    [
        (
            [f"arn:aws:iam::{CONSUMER}:role/ops-*"],
            "has a wildcard: the read role trusts each role by its exact ARN",
        ),
        (
            [f"arn:aws:sts::{CONSUMER}:assumed-role/ops/alice"],
            "is a role session (sts assumed-role), not a role: list the role's own ARN",
        ),
        (
            [f"arn:aws:iam::{CONSUMER}:user/alice"],
            f"is not an IAM role ARN (arn:aws:iam::{CONSUMER}:role/<name> (or role/<path>/<name>))",
        ),
        (["ops"], "'ops' is not an IAM role ARN"),
        (
            [f"arn:aws:iam::{PRODUCER}:role/ops"],
            f"is in account {PRODUCER} but consumer_account is {CONSUMER}: list roles of the consumer",
        ),
        (
            [f"arn:aws-cn:iam::{CONSUMER}:role/ops"],
            "is in partition aws-cn but the region's partition is aws",
        ),
        (
            [f"arn:aws:iam::{CONSUMER}:role/ops", f"arn:aws:iam::{CONSUMER}:role/ops"],
            f"lists 'arn:aws:iam::{CONSUMER}:role/ops' more than once",
        ),
        (f"arn:aws:iam::{CONSUMER}:role/ops", "must be a list of non-empty strings"),
        ([""], "must be a list of non-empty strings"),
    ],
)
def test_operator_arns_must_be_consumer_roles(arns: Any, expected: str) -> None:
    message = error_of(cross(operator_arns=arns))
    assert message.startswith("x.json: load.operator_arns: "), message
    assert expected in message, message


def test_operators_are_refused_in_one_account() -> None:
    single: dict[str, Any] = json.loads((REPO_ROOT / "infra/config/single-account.json").read_text())
    single.setdefault("load", {})["operator_arns"] = [f"arn:aws:iam::{PRODUCER}:role/ops"]
    message = error_of(single)
    assert message.startswith("x.json: load.operator_arns: applies to cross-account deployments only")


# ---- the synthesized stacks ----------------------------------------------------------------------


def _synth(raw: dict[str, Any], out: Path, *, nag: bool) -> dict[str, dict[str, Any]]:
    """``{"cross-account/<stack>": template}``, synthesized in-process into ``out``."""
    from ddblake_infra.build import add_stacks, make_app

    app = make_app(outdir=str(out))
    stacks = add_stacks(app, parse_config(raw, file="x.json"), nag=nag, allow_placeholder_key=True)
    assembly = app.synth()
    return {
        f"cross-account/{s.stack_name}": assembly.get_stack_by_name(s.stack_name).template for s in stacks
    }


@pytest.fixture(scope="module")
def with_operators(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, Any]]]:
    """The cross-account example with two operators and an ExternalId, checked by cdk-nag."""
    out = tmp_path_factory.mktemp("operators")
    raw = cross(source="export-files", operator_arns=OPERATORS, external_id=EXTERNAL_ID)
    return out, _synth(raw, out, nag=True)


def _read_role_trust(templates: dict[str, dict[str, Any]]) -> list[Statement]:
    return [
        s
        for name, template in templates.items()
        for s in statements(name, template)
        if s.kind == "trust" and s.owner == f"ddblake-{T}-load-read"
    ]


def test_the_external_id_is_asked_of_the_operators_only(
    with_operators: tuple[Path, dict[str, dict[str, Any]]],
) -> None:
    _, templates = with_operators
    glue, operators = _read_role_trust(templates)
    root = {"AWS": (f"arn:aws:iam::{CONSUMER}:root",)}
    assert glue.principals == root and operators.principals == root
    assert glue.actions == operators.actions == ("sts:AssumeRole",)
    # the Glue job's connector assumes the role without an ExternalId: its statement asks none
    assert glue.conditions == {"ArnEquals": {"aws:PrincipalArn": LOAD_ROLE}}
    assert operators.raw["Sid"] == OPERATORS_SID
    assert operators.conditions == {
        "ArnEquals": {"aws:PrincipalArn": OPERATORS},
        "StringEquals": {"sts:ExternalId": EXTERNAL_ID},
    }
    # ... and nowhere else: no other trust, bucket or key statement carries it
    everywhere = [s for name, t in templates.items() for s in statements(name, t)]
    assert [s.where for s in everywhere if EXTERNAL_ID in json.dumps(s.raw)] == [operators.where]


def test_operators_without_an_external_id_are_trusted_by_arn_alone(tmp_path: Path) -> None:
    templates = _synth(cross(operator_arns=OPERATORS[:1]), tmp_path, nag=False)
    glue, operators = _read_role_trust(templates)
    assert glue.conditions == {"ArnEquals": {"aws:PrincipalArn": LOAD_ROLE}}
    assert operators.conditions == {"ArnEquals": {"aws:PrincipalArn": OPERATORS[:1]}}


def test_the_example_trusts_the_load_role_only(templates: dict[str, Any]) -> None:
    (glue,) = _read_role_trust({k: v for k, v in templates.items() if k.startswith("cross-account/")})
    assert glue.conditions == {"ArnEquals": {"aws:PrincipalArn": LOAD_ROLE}}


def _read_role_grants(templates: dict[str, Any]) -> dict[str, Statement]:
    return {
        s.raw["Sid"]: s
        for name, template in templates.items()
        for s in statements(name, template)
        if s.kind == "identity" and s.owner == f"ddblake-{T}-load-read"
    }


def test_operators_get_what_ddblake_load_calls_and_the_glue_job_no_scan(
    with_operators: tuple[Path, dict[str, dict[str, Any]]], templates: dict[str, Any]
) -> None:
    """``ddblake load --assume-role``: DescribeTable then Scan; ``--export-to``: DescribeTable,
    ExportTableToPointInTime, DescribeExport (ddblake.load.export_start), all on this table; the
    export's files land under exports/<table>/ with the lake key through S3."""
    grants = _read_role_grants(with_operators[1])
    assert set(grants["ReadTable"].actions) == {
        "dynamodb:DescribeContinuousBackups",
        "dynamodb:DescribeTable",
        "dynamodb:ExportTableToPointInTime",
        "dynamodb:Scan",
    }
    assert grants["ReadTable"].resources == ("<AWS::DynamoDB::Table.Arn>",)
    assert grants["DescribeExports"].actions == ("dynamodb:DescribeExport",)
    assert grants["DescribeExports"].resources == ("<AWS::DynamoDB::Table.Arn>/export/*",)
    assert grants["DecryptTable"].conditions == {
        "StringEquals": {"kms:ViaService": "dynamodb.ap-northeast-1.amazonaws.com"}
    }
    lake = f"arn:aws:s3:::ddblake-{T}-{CONSUMER}-ap-northeast-1"
    assert grants["LakeExportObjects"].resources == (f"{lake}/exports/{T}/*",)
    # without operators only the Glue job assumes the role, and its sources never scan
    example = _read_role_grants({k: v for k, v in templates.items() if k.startswith("cross-account/")})
    assert "dynamodb:Scan" not in example["ReadTable"].actions
    assert set(example) == set(grants)


def test_the_lake_takes_the_export_an_operator_starts(
    with_operators: tuple[Path, dict[str, dict[str, Any]]],
) -> None:
    """``ddblake load --export-to s3://<lake bucket>/exports/<table>/ --assume-role <read role>``: the
    bucket and key admit the read role there, and the consumer stack names the role to pass."""
    _, templates = with_operators
    consumer = templates[f"cross-account/ddblake-{T}-consumer"]
    admitted = {
        s.raw["Sid"]: s
        for s in statements("consumer", consumer)
        if s.raw.get("Sid", "").startswith("ProducerExport")
    }
    assert set(admitted) == {"ProducerExportBucket", "ProducerExportObjects", "ProducerExportEncryption"}
    for s in admitted.values():
        assert s.conditions["ArnEquals"] == {"aws:PrincipalArn": READ_ROLE}, s.where
    assert admitted["ProducerExportObjects"].resources == (f"<AWS::S3::Bucket.Arn>/exports/{T}/*",)
    assert consumer["Outputs"]["ProducerReadRoleArn"]["Value"] == READ_ROLE
    producer = templates[f"cross-account/ddblake-{T}-producer"]
    assert "load.operator_arns" in producer["Outputs"]["ReadRoleArn"]["Description"]


def test_the_iam_rules_hold_with_operators(with_operators: tuple[Path, dict[str, dict[str, Any]]]) -> None:
    _, templates = with_operators
    iam_rules.test_no_wildcard_actions_and_only_real_ones(templates)
    iam_rules.test_identity_policies_match_the_allow_list(templates)
    iam_rules.test_trust_policies(templates)
    iam_rules.test_bucket_policies(templates)
    iam_rules.test_key_policies(templates)


def test_cdk_nag_and_cfn_lint_pass_with_operators(
    with_operators: tuple[Path, dict[str, dict[str, Any]]],
) -> None:
    out, _ = with_operators
    assert [a for a in nag_rules.annotations(out) if "AwsSolutions-" in a[2]] == []
    reports = list(out.glob("AwsSolutions-*-NagReport.csv"))
    assert len(reports) == 2
    assert not [r for p in reports for r in p.read_text().splitlines() if ',"Non-Compliant",' in r]
    templates = sorted(out.glob("*.template.json"))
    assert len(templates) == 2
    for template in templates:
        matches = lint_file(template, config=ManualArgs(regions=["ap-northeast-1"]))
        problems = [str(m) for m in matches if m.rule.id not in {"W3005"} and m.rule.id[0] in "EW"]
        assert problems == [], template.name


# ---- docs ----------------------------------------------------------------------------------------


def _flat(path: str) -> str:
    return re.sub(r"\s+", " ", (REPO_ROOT / path).read_text(encoding="utf-8"))


def test_deploy_md_describes_the_operators() -> None:
    text = _flat("docs/deploy.md")
    (row,) = re.findall(r"\| `load\.operator_arns` \|[^|]*\|[^|]*\|", text)
    assert "`ConsumerOperators`" in row and "`aws:PrincipalArn`" in row
    (external,) = re.findall(r"\| `load\.external_id` \|[^|]*\|[^|]*\|", text)
    assert "in their statement only" in external and "cannot be used with source" not in external
    section = text.split("## Cross-account full load by an operator", 1)[1].split("## ", 1)[0]
    for claim in ("`ProducerReadRoleArn`", "--assume-role $READ_ROLE", "DDBLAKE_EXPORT_BUCKET_OWNER=222"):
        assert claim in section, claim


def test_security_notes_say_which_kms_statements_carry_which_condition(
    with_operators: tuple[Path, dict[str, dict[str, Any]]],
) -> None:
    """The apply and load roles' ``LakeKey`` statements carry ``kms:ViaService`` only, as the notes say;
    the encryption context is claimed of the statements that carry it."""
    _, templates = with_operators
    by_sid: dict[str, list[Statement]] = {}
    for name, template in templates.items():
        for s in statements(name, template):
            if s.kind in ("identity", "key") and any(a.startswith("kms:") for a in s.actions):
                by_sid.setdefault(s.raw.get("Sid", ""), []).append(s)
    via_s3 = {"StringEquals": {"kms:ViaService": "s3.ap-northeast-1.amazonaws.com"}}
    assert {s.owner for s in by_sid["LakeKey"]} == {f"ddblake-{T}-apply", f"ddblake-{T}-load"}
    assert all(s.conditions == via_s3 for s in by_sid["LakeKey"])
    for sid in ("LakeExportEncryption", "ProducerExportEncryption"):
        (s,) = by_sid[sid]
        assert "kms:EncryptionContext:aws:s3:arn" in s.conditions["StringLike"], sid
    notes = _flat("docs/deploy.md").split("## Security notes", 1)[1].split("## Tests", 1)[0]
    assert "where a service does the call, `kms:ViaService` and the encryption context" not in notes
    assert "the apply and load roles' `LakeKey` statements" in notes
    claim = notes.split("the apply and load roles' `LakeKey` statements", 1)[1].split(";", 1)[0]
    assert "carry `kms:ViaService` only" in claim and "encryption context" not in claim
    assert "the read role's `LakeExportEncryption`" in notes
