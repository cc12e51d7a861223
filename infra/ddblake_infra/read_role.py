"""The producer's cross-account read role for the consumer's full load, and the table actions a load needs.

The consumer's Glue job assumes this role to scan the table or export it into the lake's
``exports/<table>/``; a single-account load role gets the same table actions directly.
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
from ddblake_infra.settings import DeployConfig, service_host

EXPORT_TABLE_ACTIONS: Final = (
    "dynamodb:DescribeContinuousBackups",
    "dynamodb:DescribeTable",
    "dynamodb:ExportTableToPointInTime",
)
"""What an export of the table needs (both Glue job sources read an export)."""
READ_ROLE_TABLE_ACTIONS: Final = (*EXPORT_TABLE_ACTIONS, "dynamodb:Scan")
"""The read role's: an export, or a Scan by ``ddblake load --assume-role``."""


def table_read_statements(
    table: dynamodb.ITable, table_key: kms.IKey, region: str, *, scan: bool
) -> list[iam.PolicyStatement]:
    """Exporting the table, its exports' status, and decrypting it through DynamoDB only.

    What a load needs of the table: the read role grants it across accounts (with ``scan``:
    ``ddblake load --assume-role`` may scan), the load job's own role in one account (without:
    the Glue job's sources, the export connector and export files, never scan).
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
    """The role the consumer's load assumes: read the table (Scan, or an export into the lake's
    ``exports/<table>/``), decrypt it, nothing else. Trusted only by the consumer's load role."""
    t = cfg.table.name
    key_arn = cfg.lake.key_arn or ""
    conditions: dict[str, Any] = {"ArnEquals": {"aws:PrincipalArn": cfg.load_role_arn}}
    if cfg.load.external_id:
        conditions["StringEquals"] = {"sts:ExternalId": cfg.load.external_id}
    role = iam.Role(
        scope,
        "ReadRole",
        role_name=cfg.name("read_role"),
        description=f"ddblake {cfg.table.name}: read-only access to the table for the consumer's load "
        f"({cfg.load_role_arn})",
        assumed_by=iam.AccountPrincipal(cfg.consumer_account).with_conditions(conditions),
        max_session_duration=Duration.hours(cfg.load.max_session_hours),
        inline_policies={
            "read-table": iam.PolicyDocument(
                statements=[
                    *table_read_statements(table, table_key, cfg.region, scan=True),
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
    suppress_object_prefixes(role, [f"exports/{t}/"], "DynamoDB exports the table there for the Glue load")
    suppress(
        role,
        "AwsSolutions-IAM5",
        "DescribeExport takes the export's ARN, which DynamoDB names <table ARN>/export/<id> when the "
        "export starts; the wildcard covers this table's exports only.",
        literal_suffix("/export/*"),
    )
    return role
