"""Every IAM statement of every synthesized template against an allow-list.

Identity policies: each (action, resource) pair must match an entry of its role's allow-list, and no
resource is ``*``. Trust policies: only the expected services (with ``aws:SourceAccount``) and, for
the read role, only the consumer's load role and (``load.operator_arns``) named consumer roles.
Bucket, key and topic policies: only the expected principals, each with its own action set; the only
denies are the TLS ones. Nowhere ``*``, ``kms:*`` or ``<service>:*`` in an Allow, and every action is
a real IAM action (cfn-lint's IAM data: ``s3:ListObjects``, say, is not one).
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import pytest
from cfnlint.data import AdditionalSpecs
from cfnlint.helpers import load_resource
from infra_templates import Statement, as_list, statements

from ddblake_infra.read_role import OPERATORS_SID
from ddblake_infra.security import KEY_ADMIN_ACTIONS, KEY_USE_ACTIONS

T = "example-ddb-table"
REGION = "ap-northeast-1"
ACCT = r"\d{12}"
BUCKET = rf"(<AWS::S3::Bucket\.Arn>|arn:aws:s3:::ddblake-{T}(-raw)?-{ACCT}-{REGION})"
KEY = rf"(<AWS::KMS::Key\.Arn>|arn:aws:kms:{REGION}:{ACCT}:key/[0-9a-f-]+)"
TABLE = r"<AWS::DynamoDB::Table\.Arn>"
LOGS = rf"arn:aws:logs:{REGION}:{ACCT}:log-group:"

Allow = list[tuple[frozenset[str], str]]
EXPORT_TABLE = " ".join(
    f"dynamodb:{a}" for a in ("DescribeContinuousBackups", "DescribeTable", "ExportTableToPointInTime")
)
READ_TABLE = f"{EXPORT_TABLE} dynamodb:Scan"  # the read role: operators' `ddblake load --assume-role` scan


def allow(actions: str, resource: str) -> tuple[frozenset[str], str]:
    return frozenset(actions.split()), resource


FIREHOSE: Allow = [
    allow(
        "kinesis:DescribeStream kinesis:DescribeStreamSummary kinesis:GetRecords kinesis:GetShardIterator "
        "kinesis:ListShards",
        r"<AWS::Kinesis::Stream\.Arn>",
    ),
    allow("kms:Decrypt", KEY),
    allow("lambda:GetFunctionConfiguration lambda:InvokeFunction", r"<AWS::Lambda::Function\.Arn>"),
    allow("s3:GetBucketLocation s3:ListBucket s3:ListBucketMultipartUploads", BUCKET),
    allow("s3:AbortMultipartUpload s3:GetObject s3:PutObject", rf"{BUCKET}/(raw|errors)/{T}/\*"),
    allow("kms:Decrypt kms:GenerateDataKey", KEY),
    allow("logs:PutLogEvents", rf"{LOGS}/aws/kinesisfirehose/ddblake-{T}(-local)?:log-stream:S3Delivery"),
]
ROLES: dict[str, Allow] = {
    "firehose": FIREHOSE,
    "firehose-local": FIREHOSE,
    "transform": [allow("logs:CreateLogStream logs:PutLogEvents", r"<AWS::Logs::LogGroup\.Arn>")],
    "load": [
        allow(
            "logs:AssociateKmsKey logs:CreateLogGroup logs:CreateLogStream logs:PutLogEvents",
            rf"{LOGS}/aws-glue/\*",
        ),
        allow("s3:GetObject", rf"arn:aws:s3:::cdk-hnb659fds-assets-{ACCT}-{REGION}/[0-9a-f]{{64}}\.(py|zip)"),
        allow("s3:GetBucketLocation s3:ListBucket", BUCKET),
        # the job puts raw files, reads and rewrites its run record; Glue/Spark clean their TempDir
        allow("s3:PutObject", rf"{BUCKET}/raw/{T}/\*"),
        allow("s3:GetObject s3:PutObject", rf"{BUCKET}/state/load/{T}/\*"),
        allow("s3:DeleteObject s3:GetObject s3:PutObject", rf"{BUCKET}/glue-temp/{T}/\*"),
        allow(
            "s3:AbortMultipartUpload s3:GetObject s3:PutObject s3:PutObjectAcl", rf"{BUCKET}/exports/{T}/\*"
        ),
        allow("kms:Decrypt kms:Encrypt kms:GenerateDataKey kms:DescribeKey", KEY),
        allow(EXPORT_TABLE, TABLE),  # both Glue sources read an export: no Scan
        allow("dynamodb:DescribeExport", rf"{TABLE}/export/\*"),
        allow("sts:AssumeRole", rf"arn:aws:iam::{ACCT}:role/ddblake-{T}-load-read"),
    ],
    "load-read": [
        allow(READ_TABLE, TABLE),
        allow("dynamodb:DescribeExport", rf"{TABLE}/export/\*"),
        allow("kms:Decrypt kms:DescribeKey kms:GenerateDataKey", KEY),
        allow("s3:GetBucketLocation s3:ListBucket", BUCKET),
        allow(
            "s3:AbortMultipartUpload s3:GetObject s3:PutObject s3:PutObjectAcl", rf"{BUCKET}/exports/{T}/\*"
        ),
    ],
    "apply": [
        allow("logs:CreateLogStream logs:PutLogEvents", r"<AWS::Logs::LogGroup\.Arn>"),
        allow("s3:GetBucketLocation s3:ListBucket", BUCKET),
        # state/capture: apply asks whether capture has started before any raw file has landed
        allow("s3:GetObject", rf"{BUCKET}/((raw/{T}|state/load/{T})/\*|state/capture/{T}/checkpoint\.json)"),
        allow("s3:PutObject", rf"{BUCKET}/errors/{T}/apply/\*"),  # the quarantine: written only
        allow(
            "s3:DeleteObject s3:GetObject s3:PutObject",
            rf"{BUCKET}/(state/apply/{T}|warehouse/ddb\.db/example_ddb_table(_changes)?)/\*",
        ),
        allow("kms:Decrypt kms:GenerateDataKey", KEY),
        allow(
            "glue:GetDatabase glue:GetTable glue:CreateDatabase glue:CreateTable glue:UpdateTable",
            rf"arn:aws:glue:{REGION}:{ACCT}:(catalog|database/ddb|table/ddb/example_ddb_table(_changes)?)",
        ),
    ],
}
TRUSTED_SERVICES = {
    "transform": "lambda.amazonaws.com",
    "apply": "lambda.amazonaws.com",
    "firehose": "firehose.amazonaws.com",
    "firehose-local": "firehose.amazonaws.com",
    "load": "glue.amazonaws.com",
}
KEY_SERVICES: dict[str, frozenset[str]] = {
    "dynamodb.amazonaws.com": frozenset({"kms:DescribeKey", "kms:GetKeyPolicy", "kms:ListGrants"}),
    f"logs.{REGION}.amazonaws.com": frozenset(
        {
            "kms:Decrypt",
            "kms:DescribeKey",
            "kms:Encrypt",
            "kms:GenerateDataKey",
            "kms:ReEncryptFrom",
            "kms:ReEncryptTo",
        }
    ),
    "cloudwatch.amazonaws.com": frozenset({"kms:Decrypt", "kms:GenerateDataKey"}),
    "events.amazonaws.com": frozenset({"kms:Decrypt", "kms:GenerateDataKey"}),
}
TLS_DENIES = (
    {"Bool": {"aws:SecureTransport": "false"}},
    {"NumericLessThan": {"s3:TlsVersion": 1.2}},
)


@cache
def iam_actions() -> dict[str, set[str]]:
    data = load_resource(AdditionalSpecs, "Policies.json")
    return {service: set(spec.get("Actions", {})) for service, spec in data.items()}


def all_statements(templates: dict[str, Any]) -> list[Statement]:
    return [s for name, tpl in templates.items() for s in statements(name, tpl)]


def role_key(role_name: str) -> str:
    prefix = f"ddblake-{T}-"
    assert role_name.startswith(prefix), role_name
    return role_name.removeprefix(prefix)


def account_of(principal: str) -> str:
    m = re.fullmatch(r"arn:aws:iam::(\d{12}):root", principal)
    assert m, principal
    return m.group(1)


def test_every_statement_is_found(templates: dict[str, Any]) -> None:
    kinds = {s.kind for s in all_statements(templates)}
    assert kinds == {"identity", "trust", "bucket", "key", "topic"}
    roles = {role_key(s.owner) for s in all_statements(templates) if s.kind == "identity"}
    assert roles == set(ROLES)


def test_no_wildcard_actions_and_only_real_ones(templates: dict[str, Any]) -> None:
    known = iam_actions()
    for s in all_statements(templates):
        for action in s.actions:
            if s.effect == "Deny" and action == "s3:*":
                continue  # the TLS-only denies (checked below)
            assert action != "*" and not action.endswith(":*"), f"{s.where}: {action} in {s.raw}"
            assert action not in ("kms:*", "*:*")
            service, name = action.split(":", 1)
            if s.kind == "trust":
                assert action == "sts:AssumeRole", s.where
                continue
            assert "*" not in name, f"{s.where}: wildcard action {action}"
            assert name.lower() in known.get(service, set()), f"{s.where}: {action} is not an IAM action"


def test_identity_policies_match_the_allow_list(templates: dict[str, Any]) -> None:
    for s in all_statements(templates):
        if s.kind != "identity":
            continue
        assert s.effect == "Allow", s.where
        allowed = ROLES[role_key(s.owner)]
        for resource in s.resources:
            assert resource != "*" and resource.strip() != "", f"{s.where}: Resource * in {s.raw}"
            for action in s.actions:
                ok = any(action in acts and re.fullmatch(pattern, resource) for acts, pattern in allowed)
                assert ok, f"{s.where}: ({action}, {resource}) is not on the allow-list of {s.owner}"


def test_trust_policies(templates: dict[str, Any]) -> None:
    for s in all_statements(templates):
        if s.kind != "trust":
            continue
        key = role_key(s.owner)
        assert s.effect == "Allow" and s.actions == ("sts:AssumeRole",)
        if key == "load-read" and s.raw.get("Sid") == OPERATORS_SID:
            # load.operator_arns: consumer roles by exact ARN; the only statement with an ExternalId
            (root,) = s.principals["AWS"]
            consumer = account_of(root)
            operators = as_list(s.conditions["ArnEquals"]["aws:PrincipalArn"])
            assert operators, s.where
            assert all(re.fullmatch(rf"arn:aws:iam::{consumer}:role/[^*?]+", a) for a in operators), s.where
            assert set(s.conditions) <= {"ArnEquals", "StringEquals"}, s.where
            assert set(s.conditions.get("StringEquals", {})) <= {"sts:ExternalId"}, s.where
        elif key == "load-read":
            (root,) = s.principals["AWS"]
            consumer = account_of(root)
            assert s.conditions == {
                "ArnEquals": {"aws:PrincipalArn": f"arn:aws:iam::{consumer}:role/ddblake-{T}-load"}
            }, s.where
        else:
            assert s.principals == {"Service": (TRUSTED_SERVICES[key],)}, s.where
            if key.startswith("firehose"):  # Firehose documents sts:ExternalId = the account
                assert set(s.conditions["StringEquals"]) == {"sts:ExternalId"}, s.where
            elif key == "load":
                assert set(s.conditions["StringEquals"]) == {"aws:SourceAccount"}, s.where


def test_bucket_policies(templates: dict[str, Any]) -> None:
    for s in all_statements(templates):
        if s.kind != "bucket":
            continue
        if s.effect == "Deny":
            assert s.actions == ("s3:*",) and s.principals == {"AWS": ("*",)}, s.where
            assert s.conditions in TLS_DENIES, s.where
            continue
        if s.principals == {"Service": ("logging.s3.amazonaws.com",)}:
            assert s.actions == ("s3:PutObject",)
            assert "aws:SourceAccount" in s.conditions["StringEquals"]
            assert all(
                re.fullmatch(rf"<AWS::S3::Bucket\.Arn>/ddblake-{T}(-raw)?-{ACCT}-{REGION}/\*", r)
                for r in s.resources
            )
            continue
        (root,) = s.principals["AWS"]
        account_of(root)
        admitted = s.conditions["ArnEquals"]["aws:PrincipalArn"]
        admitted = admitted if isinstance(admitted, list) else [admitted]
        for arn in admitted:
            key = role_key(arn.rsplit("/", 1)[1])
            assert key in ("firehose", "firehose-local", "load-read"), s.where
            for resource in s.resources:
                for action in s.actions:
                    assert any(action in a and re.fullmatch(p, resource) for a, p in ROLES[key]), (
                        f"{s.where}: {arn} gets ({action}, {resource})"
                    )


def test_key_policies(templates: dict[str, Any]) -> None:
    own_root = frozenset(KEY_ADMIN_ACTIONS) | frozenset(KEY_USE_ACTIONS) | {"kms:CreateGrant"}
    for s in all_statements(templates):
        if s.kind != "key":
            continue
        assert s.effect == "Allow" and s.resources == ("*",), s.where  # "*" in a key policy = this key
        actions = set(s.actions)
        if "Service" in s.principals:
            for service in s.principals["Service"]:
                assert actions <= KEY_SERVICES[service], f"{s.where}: {service} gets {actions}"
            # EventBridge sends KMS no source keys (AWS: a condition drops every event); the topic
            # policy admits only the stack's rule. Every other service is conditioned.
            assert s.conditions or s.principals["Service"] == ("events.amazonaws.com",), s.where
            continue
        (root,) = s.principals["AWS"]
        account = account_of(root)
        if "aws:PrincipalArn" in json.dumps(s.conditions):  # another account's role, by ARN
            assert actions <= {"kms:Decrypt", "kms:GenerateDataKey"}, s.where
            assert s.conditions["StringEquals"]["kms:ViaService"] == f"s3.{REGION}.amazonaws.com"
            assert f":{account}:" not in json.dumps(s.conditions["StringLike"]), s.where
        else:
            assert actions <= own_root, f"{s.where}: {actions - own_root}"
            if "kms:CreateGrant" in actions:
                assert s.conditions == {"Bool": {"kms:GrantIsForAWSResource": "true"}}, s.where


def test_topic_policies(templates: dict[str, Any]) -> None:
    for s in all_statements(templates):
        if s.kind != "topic":
            continue
        if s.effect == "Deny":
            assert s.conditions == {"Bool": {"aws:SecureTransport": "false"}}, s.where
            continue
        assert s.actions == ("sns:Publish",) and s.resources == ("<AWS::SNS::Topic>",), s.where
        if s.principals == {"Service": ("cloudwatch.amazonaws.com",)}:  # the alarms, this account's only
            account = s.conditions["StringEquals"]["aws:SourceAccount"]
            assert s.conditions["ArnLike"]["aws:SourceArn"].endswith(f":{account}:alarm:*"), s.where
            continue
        assert s.principals == {"Service": ("events.amazonaws.com",)}, s.where
        assert "aws:SourceArn" in s.conditions["ArnEquals"], s.where


def test_every_alarm_topic_lets_cloudwatch_publish(templates: dict[str, Any]) -> None:
    # An alarm whose topic policy has no CloudWatch statement fails every notification in AWS.
    checked = 0
    for name, tpl in templates.items():
        resources = tpl["Resources"].values()
        alarm_topics = {
            ref["Ref"]
            for r in resources
            if r["Type"] == "AWS::CloudWatch::Alarm"
            for ref in r["Properties"].get("AlarmActions", [])
            if isinstance(ref, dict) and "Ref" in ref
        }
        for r in resources:
            if r["Type"] != "AWS::SNS::TopicPolicy" or not any(
                t.get("Ref") in alarm_topics for t in r["Properties"]["Topics"]
            ):
                continue
            allowed: set[str] = set()
            for st in r["Properties"]["PolicyDocument"]["Statement"]:
                principal = st.get("Principal")
                if st["Effect"] == "Allow" and isinstance(principal, dict):
                    service = principal.get("Service", [])
                    allowed.update([service] if isinstance(service, str) else service)
            assert "cloudwatch.amazonaws.com" in allowed, name
            checked += 1
    assert checked, "no topic policy of an alarm topic was found: the check above never ran"


def test_lambda_permissions_only_for_the_schedule(templates: dict[str, Any]) -> None:
    for tpl in templates.values():
        for r in tpl["Resources"].values():
            if r["Type"] == "AWS::Lambda::Permission":
                props = r["Properties"]
                assert (
                    props["Principal"] == "events.amazonaws.com"
                    and props["Action"] == "lambda:InvokeFunction"
                )
                assert "SourceArn" in props


@pytest.mark.parametrize(
    ("statement", "problem"),
    [
        ({"Effect": "Allow", "Action": "s3:ListObjects", "Resource": "arn:aws:s3:::b"}, "not an IAM action"),
        ({"Effect": "Allow", "Action": "kms:*", "Resource": "arn:aws:kms:x"}, "kms:*"),
        ({"Effect": "Allow", "Action": "s3:PutObject", "Resource": "*"}, "Resource *"),
        ({"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::other/raw/x"}, "allow-list"),
    ],
)
def test_the_checks_catch_bad_statements(statement: dict[str, Any], problem: str) -> None:
    """The allow-list checks fail on a made-up action, kms:*, Resource * and a foreign bucket."""
    template = {
        "Resources": {
            "R": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "RoleName": f"ddblake-{T}-apply",
                    "AssumeRolePolicyDocument": {"Statement": []},
                    "Policies": [{"PolicyName": "p", "PolicyDocument": {"Statement": [statement]}}],
                },
            }
        }
    }
    bad = {"bad": template}
    with pytest.raises(AssertionError) as e:
        test_no_wildcard_actions_and_only_real_ones(bad)
        test_identity_policies_match_the_allow_list(bad)
    assert problem in str(e.value) or problem.replace("*", "") in str(e.value)
