"""The scheduled apply: ``ddblake apply --once`` as a Lambda container image on an EventBridge schedule.

One run at a time (reserved concurrency 1, no retries): apply reads the raw log and writes the two
Iceberg tables of the Glue catalog; its lag, quarantined records and failures raise alarms. The image
is built by ``cdk deploy`` from the context ``ddblake_infra.assets`` stages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from aws_cdk import Duration, RemovalPolicy, Size
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from ddblake_infra.assets import stage_apply_image
from ddblake_infra.lake import LAKE_READ_WRITE, LakeStorage, lake_key_statement
from ddblake_infra.monitoring import (
    APPLY_SERVICE,
    LAG_METRIC,
    QUARANTINE_METRIC,
    TABLE_DIMENSION,
    Operations,
    ddblake_metric,
)
from ddblake_infra.nag import suppress_object_prefixes
from ddblake_infra.security import log_retention
from ddblake_infra.settings import DeployConfig

GLUE_CATALOG_READ: Final = ("glue:GetDatabase", "glue:GetTable")
GLUE_CATALOG_WRITE: Final = ("glue:CreateDatabase", "glue:CreateTable", "glue:UpdateTable")


def apply_function(
    scope: Construct,
    *,
    cfg: DeployConfig,
    lake: LakeStorage,
    ops: Operations,
    catalog_resources: Sequence[str],
) -> lambda_.DockerImageFunction:
    """The apply function, its role, log group, schedule and alarms, in ``scope``.

    Args:
        catalog_resources: the Glue catalog, database and table ARNs apply reads and writes.
    """
    a = cfg.apply
    t = cfg.table.name
    ns = cfg.lake.namespace
    region = cfg.region
    name = cfg.name("apply_function")
    log_group = logs.LogGroup(
        scope,
        "ApplyLogs",
        log_group_name=f"/aws/lambda/{name}",
        retention=log_retention(a.log_retention_days),
        encryption_key=ops.key,
        removal_policy=RemovalPolicy.RETAIN if cfg.retain_data else RemovalPolicy.DESTROY,
    )
    warehouse = [f"warehouse/{ns}.db/{ident}/*" for ident in (cfg.table_identifier, cfg.changes_identifier)]
    role = iam.Role(
        scope,
        "ApplyRole",
        role_name=cfg.name("apply_role"),
        description=f"ddblake {t}: scheduled apply (raw log -> Iceberg tables in Glue database {ns})",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        inline_policies={
            "apply": iam.PolicyDocument(
                statements=[
                    iam.PolicyStatement(
                        sid="WriteOwnLog",
                        actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                        resources=[log_group.log_group_arn],
                    ),
                    iam.PolicyStatement(
                        sid="LakeBucket",
                        actions=["s3:GetBucketLocation", "s3:ListBucket"],
                        resources=[lake.bucket.bucket_arn],
                    ),
                    iam.PolicyStatement(
                        sid="ReadRawLog",
                        actions=["s3:GetObject"],
                        resources=[
                            lake.bucket.arn_for_objects(f"raw/{t}/*"),
                            lake.bucket.arn_for_objects(f"state/load/{t}/*"),
                            # capture's checkpoint: whether the table is known before a raw file lands
                            lake.bucket.arn_for_objects(f"state/capture/{t}/checkpoint.json"),
                        ],
                    ),
                    iam.PolicyStatement(
                        sid="QuarantineAndTables",
                        actions=list(LAKE_READ_WRITE),
                        resources=[
                            lake.bucket.arn_for_objects(f"errors/{t}/apply/*"),
                            lake.bucket.arn_for_objects(f"state/apply/{t}/*"),
                            *(lake.bucket.arn_for_objects(p) for p in warehouse),
                        ],
                    ),
                    lake_key_statement(lake.key, region),
                    iam.PolicyStatement(
                        sid="CatalogRead",
                        actions=list(GLUE_CATALOG_READ),
                        resources=list(catalog_resources),
                    ),
                    iam.PolicyStatement(
                        sid="CatalogWrite",
                        actions=list(GLUE_CATALOG_WRITE),
                        resources=list(catalog_resources),
                    ),
                ]
            )
        },
    )
    suppress_object_prefixes(
        role,
        [
            f"raw/{t}/",
            f"state/load/{t}/",
            f"errors/{t}/apply/",
            f"state/apply/{t}/",
            *(w.removesuffix("*") for w in warehouse),
        ],
        "apply reads the raw log and the load's hand-off state, quarantines bad records, keeps its "
        "applied-file logs, and writes the data and metadata files of this table's two Iceberg tables",
    )
    fn = lambda_.DockerImageFunction(
        scope,
        "Apply",
        function_name=name,
        description=f"ddblake apply --once for {t}: raw change log -> Iceberg tables (one run at a time)",
        code=lambda_.DockerImageCode.from_image_asset(
            str(stage_apply_image()),
            platform=(
                ecr_assets.Platform.LINUX_ARM64
                if a.architecture == "arm64"
                else ecr_assets.Platform.LINUX_AMD64
            ),
            build_args={"PYTHON_VERSION": a.python_version},
        ),
        architecture=lambda_.Architecture.ARM_64
        if a.architecture == "arm64"
        else lambda_.Architecture.X86_64,
        memory_size=a.memory_mb,
        ephemeral_storage_size=Size.mebibytes(a.ephemeral_storage_mb),
        timeout=Duration.seconds(a.timeout_seconds),
        role=role,
        log_group=log_group,
        reserved_concurrent_executions=1,
        retry_attempts=0,
        max_event_age=Duration.seconds(60),
        environment={
            "DDBLAKE_TABLE": t,
            "DDBLAKE_LAKE": f"s3://{lake.bucket_name}",
            "DDBLAKE_CATALOG": "glue",
            "DDBLAKE_NAMESPACE": ns,
            "POWERTOOLS_LOG_LEVEL": "INFO",
        },
    )
    events.Rule(
        scope,
        "ApplySchedule",
        description=f"ddblake {t}: run apply --once on a schedule",
        schedule=events.Schedule.expression(a.schedule),
        targets=[targets.LambdaFunction(fn, retry_attempts=0, max_event_age=Duration.seconds(60))],
    )
    dims = {"service": APPLY_SERVICE, TABLE_DIMENSION: t}
    ops.alarm(
        "ApplyLag",
        metric=ddblake_metric(LAG_METRIC, dims, "Maximum"),
        threshold=cfg.alarms.lag_seconds,
        description=f"ddblake {t}: the lake tables lag the table by more than {cfg.alarms.lag_seconds} s",
    )
    ops.alarm(
        "ApplyQuarantined",
        metric=ddblake_metric(QUARANTINE_METRIC, dims, "Sum"),
        threshold=0,
        periods=1,
        description=f"ddblake {t}: apply quarantined records under s3://{lake.bucket_name}/errors/{t}/apply/",
    )
    ops.alarm(
        "ApplyFailures",
        metric=fn.metric_errors(period=Duration.minutes(5), statistic="Sum"),
        threshold=0,
        periods=1,
        description=f"ddblake {t}: apply --once failed; its log group /aws/lambda/{name} has the reason",
    )
    return fn
