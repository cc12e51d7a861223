"""The consumer side: lake bucket and key, Glue database, Glue full-load job, scheduled apply, alarms.

``LakeSide`` is the construct (used by the consumer stack and by the single-account stack);
``ConsumerStack`` is the cross-account consumer, whose bucket and key admit the producer's Firehose
role by ARN from the configuration and whose load job reads the table through the producer's read
role.
"""

from __future__ import annotations

from typing import Any, Final

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Size, Stack
from aws_cdk import aws_athena as athena
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from ddblake_infra.assets import glue_script, stage_apply_image
from ddblake_infra.config import DeployConfig
from ddblake_infra.lake import EXPORT_OBJECT_ACTIONS, LakeStorage
from ddblake_infra.monitoring import (
    APPLY_SERVICE,
    LAG_METRIC,
    QUARANTINE_METRIC,
    TABLE_DIMENSION,
    Operations,
    ddblake_metric,
)
from ddblake_infra.nag import literal, literal_suffix, suppress, suppress_object_prefixes
from ddblake_infra.producer import READ_ROLE_TABLE_ACTIONS
from ddblake_infra.security import log_retention

GLUE_CATALOG_READ: Final = ("glue:GetDatabase", "glue:GetTable")
GLUE_CATALOG_WRITE: Final = ("glue:CreateDatabase", "glue:CreateTable", "glue:UpdateTable")
LAKE_READ_WRITE: Final = ("s3:DeleteObject", "s3:GetObject", "s3:PutObject")


class LakeSide(Construct):
    """Glue database, full-load job, scheduled apply and the lake's alarms, around a ``LakeStorage``.

    Args:
        table, table_key: the table and its key when they are in this account (single-account): the
            load job reads the table directly. ``None`` in a cross-account consumer: the job assumes
            the producer's read role instead.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cfg: DeployConfig,
        lake: LakeStorage,
        ops: Operations,
        table: dynamodb.ITable | None = None,
        table_key: kms.IKey | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.cfg = cfg
        self.lake = lake
        self.ops = ops
        account, region, partition = cfg.consumer_account, cfg.region, cfg.partition
        ns = cfg.lake.namespace
        self.catalog_arn = f"arn:{partition}:glue:{region}:{account}:catalog"
        self.database_arn = f"arn:{partition}:glue:{region}:{account}:database/{ns}"
        self.table_arns = [
            f"arn:{partition}:glue:{region}:{account}:table/{ns}/{ident}"
            for ident in (cfg.table_identifier, cfg.changes_identifier)
        ]
        if cfg.lake.create_database:
            glue.CfnDatabase(
                self,
                "Database",
                catalog_id=account,
                database_input=glue.CfnDatabase.DatabaseInputProperty(
                    name=ns,
                    description="ddblake Iceberg tables: <table> (current state), <table>_changes (history)",
                    location_uri=f"s3://{lake.bucket_name}/warehouse/{ns}.db",
                ),
            )
        self.load_role, self.load_job_name = self._load_job(table, table_key)
        self.apply = self._apply()
        self.workgroup = self._athena() if cfg.lake.athena_workgroup else None

    # ---- Glue full load ----------------------------------------------------------------------------
    def _load_job(self, table: dynamodb.ITable | None, table_key: kms.IKey | None) -> tuple[iam.Role, str]:
        cfg, lake = self.cfg, self.lake
        account, region, partition = cfg.consumer_account, cfg.region, cfg.partition
        t = cfg.table.name
        job_name = cfg.name("load_job")
        script = s3_assets.Asset(self, "LoadScript", path=str(glue_script(cfg.load.script)))
        same_account = table is not None and table_key is not None
        statements = [
            iam.PolicyStatement(
                sid="GlueJobLogs",
                actions=[
                    "logs:AssociateKmsKey",
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                ],
                resources=[f"arn:{partition}:logs:{region}:{account}:log-group:/aws-glue/*"],
            ),
            iam.PolicyStatement(
                sid="ReadJobAssets",
                actions=["s3:GetObject"],
                resources=[script.bucket.arn_for_objects(script.s3_object_key)],
            ),
            iam.PolicyStatement(
                sid="LakeBucket",
                actions=["s3:GetBucketLocation", "s3:ListBucket"],
                resources=[lake.bucket.bucket_arn],
            ),
            iam.PolicyStatement(
                sid="LakeLoadObjects",
                actions=list(LAKE_READ_WRITE),
                resources=[
                    lake.bucket.arn_for_objects(f"raw/{t}/*"),
                    lake.bucket.arn_for_objects(f"state/load/{t}/*"),
                    lake.bucket.arn_for_objects(f"glue-temp/{t}/*"),
                ],
            ),
            iam.PolicyStatement(
                sid="LakeExports",
                # One account: DynamoDB exports the table with this role's credentials. Across
                # accounts the producer's read role writes the export; this role only reads it.
                actions=list(EXPORT_OBJECT_ACTIONS) if same_account else ["s3:GetObject"],
                resources=[lake.bucket.arn_for_objects(f"exports/{t}/*")],
            ),
            iam.PolicyStatement(
                sid="LakeKey",
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[lake.key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
            ),
            iam.PolicyStatement(
                sid="BookmarkAndLogEncryption",
                actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
                resources=[self.ops.key.key_arn],
            ),
        ]
        if table is not None and table_key is not None:
            statements += [
                iam.PolicyStatement(
                    sid="ReadTable", actions=list(READ_ROLE_TABLE_ACTIONS), resources=[table.table_arn]
                ),
                iam.PolicyStatement(
                    sid="DescribeExports",
                    actions=["dynamodb:DescribeExport"],
                    resources=[f"{table.table_arn}/export/*"],
                ),
                iam.PolicyStatement(
                    sid="DecryptTable",
                    actions=["kms:Decrypt", "kms:DescribeKey"],
                    resources=[table_key.key_arn],
                    conditions={"StringEquals": {"kms:ViaService": f"dynamodb.{region}.amazonaws.com"}},
                ),
            ]
        else:
            statements.append(
                iam.PolicyStatement(
                    sid="AssumeProducerReadRole", actions=["sts:AssumeRole"], resources=[cfg.read_role_arn]
                )
            )
        role = iam.Role(
            self,
            "LoadRole",
            role_name=cfg.name("load_role"),
            description=f"ddblake {t}: Glue full-load job {job_name}",
            assumed_by=iam.ServicePrincipal("glue.amazonaws.com").with_conditions(
                {"StringEquals": {"aws:SourceAccount": account}}
            ),
            inline_policies={"load": iam.PolicyDocument(statements=statements)},
        )
        security = glue.CfnSecurityConfiguration(
            self,
            "LoadSecurity",
            name=cfg.name("load_security_configuration"),
            encryption_configuration=glue.CfnSecurityConfiguration.EncryptionConfigurationProperty(
                s3_encryptions=[
                    glue.CfnSecurityConfiguration.S3EncryptionProperty(
                        s3_encryption_mode="SSE-KMS", kms_key_arn=lake.key.key_arn
                    )
                ],
                cloud_watch_encryption=glue.CfnSecurityConfiguration.CloudWatchEncryptionProperty(
                    cloud_watch_encryption_mode="SSE-KMS", kms_key_arn=self.ops.key.key_arn
                ),
                job_bookmarks_encryption=glue.CfnSecurityConfiguration.JobBookmarksEncryptionProperty(
                    job_bookmarks_encryption_mode="CSE-KMS", kms_key_arn=self.ops.key.key_arn
                ),
            ),
        )
        load = cfg.load
        keys = [cfg.table.partition_key.name] + ([cfg.table.sort_key.name] if cfg.table.sort_key else [])
        # The job's parameters as src/ddblake/load/glue_job.py reads them (docs/deploy.md); a run
        # can override any of them, e.g. --SOURCE export-files --EXPORT_PATH s3://.../AWSDynamoDB/<id>/.
        arguments = {
            "--job-language": "python",
            "--TempDir": f"s3://{lake.bucket_name}/glue-temp/{t}/",
            "--enable-continuous-cloudwatch-log": "true",
            "--TABLE": t,
            "--LAKE": f"s3://{lake.bucket_name}",
            "--SOURCE": load.source,
            "--KEYS": ",".join(keys),
            "--TABLE_ARN": cfg.table_arn,
            "--EXPORT_BUCKET": lake.bucket_name,
            "--EXPORT_PREFIX": f"exports/{t}/",
            "--READ_PERCENT": f"{load.read_percent:g}",
        }
        if cfg.cross_account:
            arguments["--ROLE_ARN"] = cfg.read_role_arn
            arguments["--EXPORT_BUCKET_OWNER"] = cfg.consumer_account
        if load.additional_python_modules:
            arguments["--additional-python-modules"] = ",".join(load.additional_python_modules)
        glue.CfnJob(
            self,
            "LoadJob",
            name=job_name,
            description=f"ddblake full load of DynamoDB table {t} into s3://{lake.bucket_name}/raw/{t}/",
            role=role.role_arn,
            command=glue.CfnJob.JobCommandProperty(
                name="glueetl", python_version="3", script_location=script.s3_object_url
            ),
            glue_version=load.glue_version,
            worker_type=load.worker_type,
            number_of_workers=load.workers,
            timeout=load.timeout_minutes,
            max_retries=0,
            execution_property=glue.CfnJob.ExecutionPropertyProperty(max_concurrent_runs=1),
            security_configuration=security.ref,
            default_arguments=arguments,
        )
        glue_logs = f"arn:{partition}:logs:{region}:{account}:log-group:/aws-glue/*"
        suppress_object_prefixes(
            role,
            [f"raw/{t}/", f"state/load/{t}/", f"glue-temp/{t}/", f"exports/{t}/"],
            "the load writes load rows to the raw log, keeps its resumable state and Spark's temp files, "
            "and reads the table's exports",
        )
        if same_account:
            suppress(
                role,
                "AwsSolutions-IAM5",
                "DescribeExport takes the export's ARN, which DynamoDB names <table ARN>/export/<id> when "
                "the export starts; the wildcard covers this table's exports only.",
                literal_suffix("/export/*"),
            )
        suppress(
            role,
            "AwsSolutions-IAM5",
            "Glue names its log groups itself under /aws-glue/ (prefixed by the security configuration) and "
            "creates their streams per run; the role can only write and encrypt logs there.",
            literal([glue_logs]),
        )
        self.ops.notify_on_event(
            "LoadFailed",
            description=f"ddblake {t}: Glue job {job_name} failed, timed out or errored",
            pattern={
                "source": ["aws.glue"],
                "detail-type": ["Glue Job State Change"],
                "detail": {"jobName": [job_name], "state": ["FAILED", "TIMEOUT", "ERROR"]},
            },
        )
        return role, job_name

    # ---- scheduled apply ---------------------------------------------------------------------------
    def _apply(self) -> lambda_.DockerImageFunction:
        cfg, lake = self.cfg, self.lake
        a = cfg.apply
        t = cfg.table.name
        ns = cfg.lake.namespace
        region = cfg.region
        name = cfg.name("apply_function")
        log_group = logs.LogGroup(
            self,
            "ApplyLogs",
            log_group_name=f"/aws/lambda/{name}",
            retention=log_retention(a.log_retention_days),
            encryption_key=self.ops.key,
            removal_policy=RemovalPolicy.RETAIN if cfg.retain_data else RemovalPolicy.DESTROY,
        )
        warehouse = [
            f"warehouse/{ns}.db/{ident}/*" for ident in (cfg.table_identifier, cfg.changes_identifier)
        ]
        role = iam.Role(
            self,
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
                        iam.PolicyStatement(
                            sid="LakeKey",
                            actions=["kms:Decrypt", "kms:GenerateDataKey"],
                            resources=[lake.key.key_arn],
                            conditions={"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
                        ),
                        iam.PolicyStatement(
                            sid="CatalogRead",
                            actions=list(GLUE_CATALOG_READ),
                            resources=[self.catalog_arn, self.database_arn, *self.table_arns],
                        ),
                        iam.PolicyStatement(
                            sid="CatalogWrite",
                            actions=list(GLUE_CATALOG_WRITE),
                            resources=[self.catalog_arn, self.database_arn, *self.table_arns],
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
            self,
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
            self,
            "ApplySchedule",
            description=f"ddblake {t}: run apply --once on a schedule",
            schedule=events.Schedule.expression(a.schedule),
            targets=[targets.LambdaFunction(fn, retry_attempts=0, max_event_age=Duration.seconds(60))],
        )
        dims = {"service": APPLY_SERVICE, TABLE_DIMENSION: t}
        self.ops.alarm(
            "ApplyLag",
            metric=ddblake_metric(LAG_METRIC, dims, "Maximum"),
            threshold=cfg.alarms.lag_seconds,
            description=f"ddblake {t}: the lake tables lag the table by more than {cfg.alarms.lag_seconds} s",
        )
        self.ops.alarm(
            "ApplyQuarantined",
            metric=ddblake_metric(QUARANTINE_METRIC, dims, "Sum"),
            threshold=0,
            periods=1,
            description=f"ddblake {t}: apply quarantined records under s3://{lake.bucket_name}/errors/{t}/apply/",
        )
        self.ops.alarm(
            "ApplyFailures",
            metric=fn.metric_errors(period=Duration.minutes(5), statistic="Sum"),
            threshold=0,
            periods=1,
            description=f"ddblake {t}: apply --once failed; its log group /aws/lambda/{name} has the reason",
        )
        return fn

    # ---- Athena -----------------------------------------------------------------------------------
    def _athena(self) -> athena.CfnWorkGroup:
        cfg, lake = self.cfg, self.lake
        return athena.CfnWorkGroup(
            self,
            "WorkGroup",
            name=cfg.name("athena_workgroup"),
            description=f"ddblake: query the Iceberg tables of Glue database {cfg.lake.namespace}",
            state="ENABLED",
            recursive_delete_option=False,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                engine_version=athena.CfnWorkGroup.EngineVersionProperty(
                    selected_engine_version="Athena engine version 3"
                ),
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{lake.bucket_name}/athena-results/",
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_KMS", kms_key=lake.key.key_arn
                    ),
                ),
            ),
        )

    def outputs(self, stack: Stack) -> None:
        """The reference's consumer outputs (and a few more)."""
        cfg, lake = self.cfg, self.lake

        def out(name: str, value: str, description: str) -> None:
            CfnOutput(stack, name, value=value, description=description)

        out("LakeBucketArn", lake.bucket.bucket_arn, "The lake bucket")
        out("LakeBucketName", lake.bucket.bucket_name, "The lake bucket's name")
        out("LakeKeyArn", lake.key.key_arn, "KMS key of the lake bucket (the producer's lake.key_arn)")
        out("LoadRoleArn", self.load_role.role_arn, "IAM role of the Glue load job")
        out("LoadRoleId", self.load_role.role_id, "Role ID of the Glue load job's role")
        out(
            "LoadJobArn",
            f"arn:{cfg.partition}:glue:{cfg.region}:{cfg.consumer_account}:job/{self.load_job_name}",
            "Glue full-load job",
        )
        out(
            "LoadJobName",
            self.load_job_name,
            "Glue full-load job name (aws glue start-job-run --job-name ...)",
        )
        out("GlueDatabase", cfg.lake.namespace, "Glue database (Iceberg namespace) of the lake tables")
        out("ApplyFunctionArn", self.apply.function_arn, "Scheduled apply (Lambda container image)")
        out("AlarmTopicArn", self.ops.topic.topic_arn, "SNS topic of the alarms")
        if self.workgroup is not None:
            out("AthenaWorkGroup", self.workgroup.ref, "Athena workgroup for querying the lake tables")


class ConsumerStack(Stack):
    """Cross-account consumer: the lake, admitting only the producer's Firehose role."""

    def __init__(self, scope: Construct, construct_id: str, *, cfg: DeployConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.cfg = cfg
        self.ops = Operations(
            self, "Ops", cfg=cfg, account=cfg.consumer_account, topic_name=cfg.name("alarm_topic")
        )
        self.lake = LakeStorage(
            self,
            "Lake",
            cfg=cfg,
            account=cfg.consumer_account,
            bucket_name=cfg.lake_bucket_name,
            access_log_bucket_name=cfg.name("access_log_bucket"),
            key_alias=cfg.name("lake_key_alias"),
            description=f"lake of {cfg.table.name}",
        )
        self.lake.admit_firehose(
            producer_account=cfg.producer_account, role_arns=[cfg.firehose_role_arn], table=cfg.table.name
        )
        self.lake.admit_export_writer(
            producer_account=cfg.producer_account, role_arn=cfg.read_role_arn, table=cfg.table.name
        )
        self.side = LakeSide(self, "LakeSide", cfg=cfg, lake=self.lake, ops=self.ops)
        self.side.outputs(self)
