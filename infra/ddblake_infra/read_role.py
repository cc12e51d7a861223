"""The producer's cross-account read role for the consumer's full load, and the table actions a load needs.

The consumer's Glue job assumes this role to export the table into the lake's ``exports/<table>/``
(Glue's DynamoDB export connector); so may the consumer roles of ``load.operator_arns``, for
``ddblake load --assume-role`` (a Scan, or ``--export-to`` into ``exports/<table>/``). A
single-account load role gets the export actions directly.
"""

from __future__ import annotations

from typing import Any, Final

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from ddblake_infra.lake import (
    EXPORT_BUCKET_ACTIONS,
    EXPORT_OBJECT_ACTIONS,
    FIREHOSE_KEY_ACTIONS,
    s3_encryption_contexts,
)
from ddblake_infra.nag import literal_suffix, suppress, suppress_object_prefixes
from ddblake_infra.operators import OPERATORS_SID
from ddblake_infra.settings import DeployConfig, clipped, service_host

EXPORT_TABLE_ACTIONS: Final = (
    "dynamodb:DescribeContinuousBackups",
    "dynamodb:DescribeTable",
    "dynamodb:ExportTableToPointInTime",
)
"""What an export of the table needs: ``ddblake load --export-to`` calls DescribeTable,
ExportTableToPointInTime and DescribeExport (``ddblake.load.export_start``); Glue's export connector
also DescribeContinuousBackups."""
READ_ROLE_TABLE_ACTIONS: Final = (*EXPORT_TABLE_ACTIONS, "dynamodb:Scan")
"""The read role's with ``load.operator_arns``: an export, or the Scan of an operator's
``ddblake load --assume-role`` (DescribeTable, then Scan)."""


def table_read_statements(
    table: dynamodb.ITable, table_key: kms.IKey, region: str, *, scan: bool
) -> list[iam.PolicyStatement]:
    """Exporting the table, its exports' status, and decrypting it through DynamoDB only.

    What a load needs of the table: the read role grants it across accounts (with ``scan`` when
    ``load.operator_arns`` lists operators: their ``ddblake load --assume-role`` may scan), the load
    job's own role in one account (without: the Glue job's sources, the export connector and export
    files, never scan).
    """
    actions = READ_ROLE_TABLE_ACTIONS if scan else EXPORT_TABLE_ACTIONS
    return [
        iam.PolicyStatement(sid="ReadTable", actions=list(actions), resources=[table.table_arn]),
        iam.PolicyStatement(
            sid="DescribeExports",
            actions=["dynamodb:DescribeExport"],
            resources=[f"{table.table_arn}/export/*"],
        ),
        iam.PolicyStatement(
            sid="DecryptTable",
            actions=["kms:Decrypt", "kms:DescribeKey"],
            resources=[table_key.key_arn],
            conditions={"StringEquals": {"kms:ViaService": service_host("dynamodb", region)}},
        ),
    ]


def read_role(
    scope: Construct, cfg: DeployConfig, *, table: dynamodb.ITable, table_key: kms.IKey
) -> iam.Role:
    """The role the consumer's load assumes: read the table (an export into the lake's
    ``exports/<table>/``, or with operators a Scan), decrypt it, nothing else.

    Trusted by the consumer's load role and, in a statement of their own (``ConsumerOperators``), by
    the roles of ``load.operator_arns``: only theirs requires ``load.external_id``, which Glue's
    connector could not send. Each statement names its principals by ``aws:PrincipalArn`` in the
    consumer account, so the roles need not exist when the producer deploys.
    """
    t = cfg.table.name
    key_arn = cfg.lake.key_arn or ""
    operators = cfg.load.operator_arns
    glue = {"ArnEquals": {"aws:PrincipalArn": cfg.load_role_arn}}
    who = f"the consumer's load ({cfg.load_role_arn})"
    if operators:
        who += f" and {len(operators)} operator role(s) of load.operator_arns"
    role = iam.Role(
        scope,
        "ReadRole",
        role_name=cfg.name("read_role"),
        description=clipped(f"ddblake {cfg.table.name}: read-only access to the table for {who}", 1000),
        assumed_by=iam.AccountPrincipal(cfg.consumer_account).with_conditions(glue),
        max_session_duration=Duration.hours(cfg.load.max_session_hours),
        inline_policies={
            "read-table": iam.PolicyDocument(
                statements=[
                    *table_read_statements(table, table_key, cfg.region, scan=bool(operators)),
                    iam.PolicyStatement(
                        sid="LakeExportBucket",
                        actions=list(EXPORT_BUCKET_ACTIONS),
                        resources=[cfg.lake_bucket_arn],
                    ),
                    iam.PolicyStatement(
                        sid="LakeExportObjects",
                        actions=list(EXPORT_OBJECT_ACTIONS),
                        resources=[f"{cfg.lake_bucket_arn}/exports/{t}/*"],
                    ),
                    iam.PolicyStatement(
                        sid="LakeExportEncryption",
                        actions=list(FIREHOSE_KEY_ACTIONS),
                        resources=[key_arn],
                        conditions={
                            "StringEquals": {"kms:ViaService": service_host("s3", cfg.region)},
                            "StringLike": {
                                "kms:EncryptionContext:aws:s3:arn": s3_encryption_contexts(
                                    cfg.lake_bucket_arn, t, ("exports",)
                                )
                            },
                        },
                    ),
                ]
            )
        },
    )
    if operators:
        conditions: dict[str, Any] = {"ArnEquals": {"aws:PrincipalArn": list(operators)}}
        if cfg.load.external_id:
            conditions["StringEquals"] = {"sts:ExternalId": cfg.load.external_id}
        assert role.assume_role_policy is not None  # noqa: S101 - assumed_by always makes one
        role.assume_role_policy.add_statements(
            iam.PolicyStatement(
                sid=OPERATORS_SID,
                actions=["sts:AssumeRole"],
                principals=[iam.AccountPrincipal(cfg.consumer_account)],
                conditions=conditions,
            )
        )
    suppress_object_prefixes(
        role,
        [f"exports/{t}/"],
        "DynamoDB exports the table there for the load (Glue's export connector, or an operator's "
        "ddblake load --export-to)",
    )
    suppress(
        role,
        "AwsSolutions-IAM5",
        "DescribeExport takes the export's ARN, which DynamoDB names <table ARN>/export/<id> when the "
        "export starts; the wildcard covers this table's exports only.",
        literal_suffix("/export/*"),
    )
    return role
