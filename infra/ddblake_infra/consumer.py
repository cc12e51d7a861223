"""The consumer side: lake bucket and key, Glue database, Glue full-load job, scheduled apply, alarms.

``LakeSide`` is the construct (used by the consumer stack and by the single-account stack);
``ConsumerStack`` is the cross-account consumer, whose bucket and key admit the producer's Firehose
role by ARN from the configuration and whose load job reads the table through the producer's read
role.

The Glue full-load job is in ``load_job`` and the scheduled apply in ``scheduled_apply``.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_athena as athena
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_glue as glue
from aws_cdk import aws_kms as kms
from constructs import Construct

from ddblake_infra.lake import LakeStorage
from ddblake_infra.load_job import load_job
from ddblake_infra.monitoring import Operations
from ddblake_infra.scheduled_apply import apply_function
from ddblake_infra.settings import DeployConfig


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
            database = glue.CfnDatabase(
                self,
                "Database",
                catalog_id=account,
                database_input=glue.CfnDatabase.DatabaseInputProperty(
                    name=ns,
                    description="ddblake Iceberg tables: <table> (current state), <table>_changes (history)",
                    location_uri=f"s3://{lake.bucket_name}/warehouse/{ns}.db",
                ),
            )
            # Deleting a Glue database deletes every table in it: the lake's Iceberg tables and, with
            # several stacks sharing the namespace, theirs too. Retained like the bucket by default.
            database.apply_removal_policy(RemovalPolicy.RETAIN if cfg.retain_data else RemovalPolicy.DESTROY)
        self.load_role, self.load_job_name = load_job(
            self, cfg=cfg, lake=lake, ops=ops, table=table, table_key=table_key
        )
        self.apply = apply_function(
            self,
            cfg=cfg,
            lake=lake,
            ops=ops,
            catalog_resources=[self.catalog_arn, self.database_arn, *self.table_arns],
        )
        self.workgroup = self._athena() if cfg.lake.athena_workgroup else None

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
        CfnOutput(
            self,
            "ProducerReadRoleArn",
            value=cfg.read_role_arn,
            description="The producer's read role: the Glue job's --ROLE_ARN, and the --assume-role of "
            "ddblake load for the roles of load.operator_arns",
        )
