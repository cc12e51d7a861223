"""The producer side: table, Kinesis stream, transform Lambda, Firehose delivery, cross-account read role.

``Capture`` is the construct (used by the producer stack and by the single-account stack);
``ProducerStack`` is the cross-account producer: its Firehose writes into the consumer's lake, whose
bucket name and key ARN come from the configuration (no lookups).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from ddblake_infra.assets import TRANSFORM_HANDLER, stage_transform
from ddblake_infra.config import DeployConfig
from ddblake_infra.lake import (
    EXPORT_BUCKET_ACTIONS,
    EXPORT_OBJECT_ACTIONS,
    FIREHOSE_BUCKET_ACTIONS,
    FIREHOSE_KEY_ACTIONS,
    FIREHOSE_OBJECT_ACTIONS,
    LakeStorage,
    s3_encryption_contexts,
)
from ddblake_infra.monitoring import (
    TRANSFORM_FAILED_METRIC,
    TRANSFORM_SERVICE,
    Operations,
    ddblake_metric,
)
from ddblake_infra.nag import literal_suffix, suppress, suppress_object_prefixes
from ddblake_infra.security import log_retention, make_key

POWERTOOLS_LAYER_ACCOUNT: Final = "017000801446"
DELIVERY_LOG_STREAM: Final = "S3Delivery"
_RUNTIMES: Final = {
    "python3.11": lambda_.Runtime.PYTHON_3_11,
    "python3.12": lambda_.Runtime.PYTHON_3_12,
    "python3.13": lambda_.Runtime.PYTHON_3_13,
    "python3.14": lambda_.Runtime.PYTHON_3_14,
}
_KEY_TYPES: Final = {
    "S": dynamodb.AttributeType.STRING,
    "N": dynamodb.AttributeType.NUMBER,
    "B": dynamodb.AttributeType.BINARY,
}
READ_ROLE_TABLE_ACTIONS: Final = (
    "dynamodb:DescribeContinuousBackups",
    "dynamodb:DescribeTable",
    "dynamodb:ExportTableToPointInTime",
    "dynamodb:Scan",
)


@dataclass(frozen=True)
class LakeTarget:
    """Where a delivery stream writes: plain strings (cross-account) or tokens (same stack)."""

    bucket_name: str
    bucket_arn: str
    key_arn: str

    @classmethod
    def of(cls, storage: LakeStorage) -> LakeTarget:
        return cls(storage.bucket_name, storage.bucket.bucket_arn, storage.key.key_arn)


def powertools_layer_arn(cfg: DeployConfig) -> str:
    """The AWS-managed Powertools for AWS Lambda (Python) v3 layer for the configured region,
    Python version and architecture (a plain ARN string: no lookup)."""
    t = cfg.transform
    python = t.runtime.replace(".", "")  # python3.13 -> python313
    return (
        f"arn:{cfg.partition}:lambda:{cfg.region}:{POWERTOOLS_LAYER_ACCOUNT}:layer:"
        f"AWSLambdaPowertoolsPythonV3-{python}-{t.architecture}:{t.powertools_layer_version}"
    )


class Capture(Construct):
    """Table -> Kinesis stream -> Firehose (+ transform Lambda) -> lake, each with its own key."""

    def __init__(self, scope: Construct, construct_id: str, *, cfg: DeployConfig, ops: Operations) -> None:
        super().__init__(scope, construct_id)
        self.cfg = cfg
        self.ops = ops
        account = cfg.producer_account
        removal = RemovalPolicy.RETAIN if cfg.retain_data else RemovalPolicy.DESTROY
        self.deliveries: dict[str, firehose.CfnDeliveryStream] = {}
        self.firehose_roles: dict[str, iam.Role] = {}

        self.table_key: kms.Key = make_key(
            self,
            "TableKey",
            account=account,
            alias=cfg.name("table_key_alias"),
            description=f"ddblake: DynamoDB table {cfg.table.name}",
            grants_for_aws_resources=True,
            statements=[
                iam.PolicyStatement(
                    sid="DynamoDBDescribesItsKey",
                    principals=[iam.ServicePrincipal("dynamodb.amazonaws.com")],
                    actions=["kms:DescribeKey", "kms:GetKeyPolicy", "kms:ListGrants"],
                    resources=["*"],
                    conditions={"StringEquals": {"aws:SourceAccount": account}},
                )
            ],
            retain=cfg.retain_data,
        )
        self.stream_key: kms.Key = make_key(
            self,
            "StreamKey",
            account=account,
            alias=cfg.name("stream_key_alias"),
            description=f"ddblake: Kinesis stream {cfg.name('stream')} of table {cfg.table.name}",
            retain=cfg.retain_data,
        )

        s = cfg.stream
        self.stream = kinesis.Stream(
            self,
            "Stream",
            stream_name=cfg.name("stream"),
            encryption=kinesis.StreamEncryption.KMS,
            encryption_key=self.stream_key,
            stream_mode=kinesis.StreamMode.ON_DEMAND
            if s.mode == "ON_DEMAND"
            else kinesis.StreamMode.PROVISIONED,
            shard_count=s.shards if s.mode == "PROVISIONED" else None,
            retention_period=Duration.hours(s.retention_hours),
            removal_policy=removal,
        )
        suppress(
            self.stream,
            "AwsSolutions-KDS3",
            "A customer-managed key of its own: its key policy decides who may read the stream (the "
            "Firehose roles, DynamoDB's streaming destination), which the shared aws/kinesis key cannot.",
        )

        t = cfg.table
        provisioned = t.billing_mode == "PROVISIONED"
        self.table = dynamodb.Table(
            self,
            "Table",
            table_name=t.name,
            partition_key=dynamodb.Attribute(
                name=t.partition_key.name, type=_KEY_TYPES[t.partition_key.type]
            ),
            sort_key=(
                dynamodb.Attribute(name=t.sort_key.name, type=_KEY_TYPES[t.sort_key.type])
                if t.sort_key
                else None
            ),
            billing_mode=dynamodb.BillingMode.PROVISIONED
            if provisioned
            else dynamodb.BillingMode.PAY_PER_REQUEST,
            read_capacity=t.read_capacity if provisioned else None,
            write_capacity=t.write_capacity if provisioned else None,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.table_key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            kinesis_stream=self.stream,
            kinesis_precision_timestamp=dynamodb.ApproximateCreationDateTimePrecision.MICROSECOND,
            time_to_live_attribute=t.ttl_attribute,
            deletion_protection=t.deletion_protection,
            removal_policy=removal,
        )

        self.transform = self._transform_function()
        self.read_role = self._read_role() if cfg.cross_account else None

        # Alarms: transform failures (records sent to the error prefix), throttled stream writes.
        ops.alarm(
            "TransformRecordsFailed",
            metric=ddblake_metric(TRANSFORM_FAILED_METRIC, {"service": TRANSFORM_SERVICE}, "Sum"),
            threshold=0,
            periods=1,
            description=f"ddblake {t.name}: the Firehose transform sent records to "
            f"{cfg.firehose.error_prefix} (not DynamoDB changes); see the transform's log for record IDs",
        )
        ops.alarm(
            "TransformErrors",
            metric=self.transform.metric_errors(period=Duration.minutes(5), statistic="Sum"),
            threshold=0,
            periods=1,
            description=f"ddblake {t.name}: the Firehose transform Lambda failed; Firehose retries, then "
            "writes the batch under the error prefix",
        )
        ops.alarm(
            "StreamWritesThrottled",
            metric=cw.Metric(
                namespace="AWS/DynamoDB",
                metric_name="ThrottledPutRecordCount",
                dimensions_map={"TableName": t.name, "DelegatedOperation": "PutRecords"},
                statistic="Sum",
                period=Duration.minutes(5),
            ),
            threshold=0,
            description=f"ddblake {t.name}: DynamoDB's writes to Kinesis stream {cfg.name('stream')} are "
            "throttled; add shards (stream.shards) or use mode ON_DEMAND",
        )

    # ---- transform Lambda --------------------------------------------------------------------------
    def _transform_function(self) -> lambda_.Function:
        cfg = self.cfg
        t = cfg.transform
        name = cfg.name("transform_function")
        log_group = logs.LogGroup(
            self,
            "TransformLogs",
            log_group_name=f"/aws/lambda/{name}",
            retention=log_retention(t.log_retention_days),
            removal_policy=RemovalPolicy.RETAIN if cfg.retain_data else RemovalPolicy.DESTROY,
        )
        role = iam.Role(
            self,
            "TransformRole",
            role_name=cfg.name("transform_role"),
            description=f"ddblake {cfg.table.name}: the Firehose transform Lambda (writes its own log only)",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            inline_policies={
                "logs": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(
                            sid="WriteOwnLog",
                            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                            resources=[log_group.log_group_arn],
                        )
                    ]
                )
            },
        )
        layers = (
            [lambda_.LayerVersion.from_layer_version_arn(self, "Powertools", powertools_layer_arn(cfg))]
            if t.powertools == "layer"
            else []
        )
        fn = lambda_.Function(
            self,
            "Transform",
            function_name=name,
            description=f"ddblake: Kinesis records of {cfg.table.name} to raw-log lines (Firehose transform)",
            runtime=_RUNTIMES[t.runtime],
            architecture=lambda_.Architecture.ARM_64
            if t.architecture == "arm64"
            else lambda_.Architecture.X86_64,
            handler=TRANSFORM_HANDLER,
            code=lambda_.Code.from_asset(str(stage_transform(bundle_powertools=t.powertools == "bundle"))),
            layers=layers,
            memory_size=t.memory_mb,
            timeout=Duration.seconds(t.timeout_seconds),
            role=role,
            log_group=log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            environment={
                "POWERTOOLS_SERVICE_NAME": TRANSFORM_SERVICE,
                "POWERTOOLS_METRICS_NAMESPACE": "ddblake",
                "POWERTOOLS_LOG_LEVEL": "INFO",
            },
        )
        suppress(
            fn,
            "AwsSolutions-L1",
            f"{t.runtime} is configured (transform.runtime) to match the AWS-managed Powertools v3 layer "
            f"version {t.powertools_layer_version}, which is published per Python version; the handler "
            "uses the standard library only and runs on any newer runtime once the layer is available.",
        )
        return fn

    # ---- Firehose ----------------------------------------------------------------------------------
    def add_delivery(
        self, construct_id: str, *, target: LakeTarget, delivery_name: str, role_name: str
    ) -> firehose.CfnDeliveryStream:
        """A delivery stream from the table's Kinesis stream into ``target`` (GZIP, SSE-KMS with the
        target's key, raw-log and error prefixes, CloudWatch logging), with its own least-privilege role."""
        cfg = self.cfg
        f = cfg.firehose
        table = cfg.table.name
        account, region, partition = cfg.producer_account, cfg.region, cfg.partition
        log_group = logs.LogGroup(
            self,
            f"{construct_id}Logs",
            log_group_name=f"/aws/kinesisfirehose/{delivery_name}",
            retention=log_retention(f.log_retention_days),
            removal_policy=RemovalPolicy.RETAIN if cfg.retain_data else RemovalPolicy.DESTROY,
        )
        logs.LogStream(
            self,
            f"{construct_id}LogStream",
            log_group=log_group,
            log_stream_name=DELIVERY_LOG_STREAM,
            removal_policy=RemovalPolicy.RETAIN if cfg.retain_data else RemovalPolicy.DESTROY,
        )
        bucket_arn_literal = f"arn:{partition}:s3:::{target.bucket_name}"
        statements = [
            iam.PolicyStatement(
                sid="ReadSourceStream",
                actions=[
                    "kinesis:DescribeStream",
                    "kinesis:DescribeStreamSummary",
                    "kinesis:GetRecords",
                    "kinesis:GetShardIterator",
                    "kinesis:ListShards",
                ],
                resources=[self.stream.stream_arn],
            ),
            iam.PolicyStatement(
                sid="DecryptSourceStream",
                actions=["kms:Decrypt"],
                resources=[self.stream_key.key_arn],
                conditions={
                    "StringEquals": {
                        "kms:ViaService": f"kinesis.{region}.amazonaws.com",
                        "kms:EncryptionContext:aws:kinesis:arn": self.stream.stream_arn,
                    }
                },
            ),
            iam.PolicyStatement(
                sid="InvokeTransform",
                actions=["lambda:GetFunctionConfiguration", "lambda:InvokeFunction"],
                resources=[self.transform.function_arn],
            ),
            iam.PolicyStatement(
                sid="LakeBucket", actions=list(FIREHOSE_BUCKET_ACTIONS), resources=[target.bucket_arn]
            ),
            iam.PolicyStatement(
                sid="LakeObjects",
                actions=list(FIREHOSE_OBJECT_ACTIONS),
                resources=[f"{target.bucket_arn}/raw/{table}/*", f"{target.bucket_arn}/errors/{table}/*"],
            ),
            iam.PolicyStatement(
                sid="EncryptLakeObjects",
                actions=list(FIREHOSE_KEY_ACTIONS),
                resources=[target.key_arn],
                conditions={
                    "StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"},
                    "StringLike": {
                        "kms:EncryptionContext:aws:s3:arn": s3_encryption_contexts(bucket_arn_literal, table)
                    },
                },
            ),
            iam.PolicyStatement(
                sid="DeliveryLog",
                actions=["logs:PutLogEvents"],
                resources=[
                    f"arn:{partition}:logs:{region}:{account}:log-group:/aws/kinesisfirehose/{delivery_name}"
                    f":log-stream:{DELIVERY_LOG_STREAM}"
                ],
            ),
        ]
        role = iam.Role(
            self,
            f"{construct_id}Role",
            role_name=role_name,
            description=f"ddblake {table}: Firehose {delivery_name} reads {cfg.name('stream')} and writes "
            f"s3://{target.bucket_name}/raw/{table}/",
            # Firehose's documented confused-deputy guard: the account as sts:ExternalId.
            assumed_by=iam.ServicePrincipal("firehose.amazonaws.com").with_conditions(
                {"StringEquals": {"sts:ExternalId": account}}
            ),
            inline_policies={"delivery": iam.PolicyDocument(statements=statements)},
        )
        processor_parameters = [
            ("LambdaArn", self.transform.function_arn),
            ("NumberOfRetries", str(f.processor.retries)),
            ("BufferSizeInMBs", f"{f.processor.buffer_mb:g}"),
            ("BufferIntervalInSeconds", str(f.processor.buffer_seconds)),
        ]
        destination: dict[str, Any] = {
            "bucket_arn": target.bucket_arn,
            "role_arn": role.role_arn,
            "prefix": f.prefix,
            "error_output_prefix": f.error_prefix,
            "buffering_hints": firehose.CfnDeliveryStream.BufferingHintsProperty(
                interval_in_seconds=f.buffer_seconds, size_in_m_bs=f.buffer_mb
            ),
            "compression_format": "GZIP",
            "encryption_configuration": firehose.CfnDeliveryStream.EncryptionConfigurationProperty(
                kms_encryption_config=firehose.CfnDeliveryStream.KMSEncryptionConfigProperty(
                    awskms_key_arn=target.key_arn
                )
            ),
            "cloud_watch_logging_options": firehose.CfnDeliveryStream.CloudWatchLoggingOptionsProperty(
                enabled=True, log_group_name=log_group.log_group_name, log_stream_name=DELIVERY_LOG_STREAM
            ),
            "processing_configuration": firehose.CfnDeliveryStream.ProcessingConfigurationProperty(
                enabled=True,
                processors=[
                    firehose.CfnDeliveryStream.ProcessorProperty(
                        type="Lambda",
                        parameters=[
                            firehose.CfnDeliveryStream.ProcessorParameterProperty(
                                parameter_name=k, parameter_value=v
                            )
                            for k, v in processor_parameters
                        ],
                    )
                ],
            ),
            "s3_backup_mode": "Disabled",
        }
        if f.dynamic_partitioning:
            destination["dynamic_partitioning_configuration"] = (
                firehose.CfnDeliveryStream.DynamicPartitioningConfigurationProperty(
                    enabled=True,
                    retry_options=firehose.CfnDeliveryStream.RetryOptionsProperty(duration_in_seconds=300),
                )
            )
        delivery = firehose.CfnDeliveryStream(
            self,
            construct_id,
            delivery_stream_name=delivery_name,
            delivery_stream_type="KinesisStreamAsSource",
            kinesis_stream_source_configuration=firehose.CfnDeliveryStream.KinesisStreamSourceConfigurationProperty(
                kinesis_stream_arn=self.stream.stream_arn, role_arn=role.role_arn
            ),
            extended_s3_destination_configuration=firehose.CfnDeliveryStream.ExtendedS3DestinationConfigurationProperty(
                **destination
            ),
        )
        suppress(
            delivery,
            "AwsSolutions-KDF1",
            "The source is a Kinesis data stream encrypted with its own customer-managed key; Firehose "
            "does not accept DeliveryStreamEncryptionConfigurationInput for KinesisStreamAsSource, and "
            "what it writes is encrypted with the lake's key (SSE-KMS).",
        )
        suppress_object_prefixes(
            role,
            [f"raw/{table}/", f"errors/{table}/"],
            "Firehose writes the raw log and its failed records there, nowhere else",
        )
        self.deliveries[construct_id] = delivery
        self.firehose_roles[construct_id] = role
        self.ops.alarm(
            f"{construct_id}Freshness",
            metric=cw.Metric(
                namespace="AWS/Firehose",
                metric_name="DeliveryToS3.DataFreshness",
                dimensions_map={"DeliveryStreamName": delivery_name},
                statistic="Maximum",
                period=Duration.minutes(5),
            ),
            threshold=cfg.alarms.delivery_freshness_seconds,
            description=f"ddblake {table}: Firehose {delivery_name} holds records older than "
            f"{cfg.alarms.delivery_freshness_seconds} s (S3 or KMS access, or the transform, is failing; see "
            f"log group /aws/kinesisfirehose/{delivery_name})",
        )
        self.ops.alarm(
            f"{construct_id}Failures",
            metric=cw.Metric(
                namespace="AWS/Firehose",
                metric_name="DeliveryToS3.Success",
                dimensions_map={"DeliveryStreamName": delivery_name},
                statistic="Minimum",
                period=Duration.minutes(5),
            ),
            threshold=1,
            comparison=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
            description=f"ddblake {table}: Firehose {delivery_name} failed to put objects into "
            f"s3://{target.bucket_name} (see log group /aws/kinesisfirehose/{delivery_name})",
        )
        return delivery

    # ---- cross-account read role for the full load -------------------------------------------------
    def _read_role(self) -> iam.Role:
        """The role the consumer's load assumes: read the table (Scan, or an export into the lake's
        ``exports/<table>/``), decrypt it, nothing else. Trusted only by the consumer's load role."""
        cfg = self.cfg
        t = cfg.table.name
        key_arn = cfg.lake.key_arn or ""
        conditions: dict[str, Any] = {"ArnEquals": {"aws:PrincipalArn": cfg.load_role_arn}}
        if cfg.load.external_id:
            conditions["StringEquals"] = {"sts:ExternalId": cfg.load.external_id}
        role = iam.Role(
            self,
            "ReadRole",
            role_name=cfg.name("read_role"),
            description=f"ddblake {cfg.table.name}: read-only access to the table for the consumer's load "
            f"({cfg.load_role_arn})",
            assumed_by=iam.AccountPrincipal(cfg.consumer_account).with_conditions(conditions),
            max_session_duration=Duration.hours(cfg.load.max_session_hours),
            inline_policies={
                "read-table": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(
                            sid="ReadTable",
                            actions=list(READ_ROLE_TABLE_ACTIONS),
                            resources=[self.table.table_arn],
                        ),
                        iam.PolicyStatement(
                            sid="DescribeExports",
                            actions=["dynamodb:DescribeExport"],
                            resources=[f"{self.table.table_arn}/export/*"],
                        ),
                        iam.PolicyStatement(
                            sid="DecryptTable",
                            actions=["kms:Decrypt", "kms:DescribeKey"],
                            resources=[self.table_key.key_arn],
                            conditions={
                                "StringEquals": {"kms:ViaService": f"dynamodb.{cfg.region}.amazonaws.com"}
                            },
                        ),
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
                                "StringEquals": {"kms:ViaService": f"s3.{cfg.region}.amazonaws.com"},
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
        suppress_object_prefixes(
            role, [f"exports/{t}/"], "DynamoDB exports the table there for the Glue load"
        )
        suppress(
            role,
            "AwsSolutions-IAM5",
            "DescribeExport takes the export's ARN, which DynamoDB names <table ARN>/export/<id> when the "
            "export starts; the wildcard covers this table's exports only.",
            literal_suffix("/export/*"),
        )
        return role

    def outputs(self, stack: Stack) -> None:
        """The reference's producer outputs (and a few more)."""
        out = _outputs(stack)
        out("TableArn", self.table.table_arn, "DynamoDB table")
        out("TableKeyArn", self.table_key.key_arn, "KMS key of the table")
        out("StreamArn", self.stream.stream_arn, "Kinesis data stream the table streams its changes into")
        out("StreamKeyArn", self.stream_key.key_arn, "KMS key of the Kinesis stream")
        out("TransformFunctionArn", self.transform.function_arn, "Firehose transform Lambda")
        for cid, delivery in self.deliveries.items():
            prefix = cid.removesuffix("Delivery")
            name = delivery.delivery_stream_name
            out(f"{prefix}DeliveryStreamArn", delivery.attr_arn, f"Firehose delivery stream {name}")
            role = self.firehose_roles[cid]
            out(f"{prefix}FirehoseRoleArn", role.role_arn, f"IAM role of Firehose {name}")
            out(f"{prefix}FirehoseRoleId", role.role_id, f"Role ID of Firehose {name}'s role")
        if self.read_role is not None:
            out("ReadRoleArn", self.read_role.role_arn, "Cross-account read role for the consumer's load")


def _outputs(stack: Stack) -> Any:
    def out(name: str, value: str, description: str) -> None:
        CfnOutput(stack, name, value=value, description=description)

    return out


class ProducerStack(Stack):
    """Cross-account producer: capture into the consumer's lake (plus, optionally, a local copy)."""

    def __init__(self, scope: Construct, construct_id: str, *, cfg: DeployConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.cfg = cfg
        self.ops = Operations(
            self, "Ops", cfg=cfg, account=cfg.producer_account, topic_name=cfg.name("alarm_topic")
        )
        self.capture = Capture(self, "Capture", cfg=cfg, ops=self.ops)
        key_arn = cfg.lake.key_arn
        assert key_arn is not None  # noqa: S101 - config validation requires it for cross-account
        lake = LakeTarget(cfg.lake_bucket_name, cfg.lake_bucket_arn, key_arn)
        self.capture.add_delivery(
            "Delivery",
            target=lake,
            delivery_name=cfg.name("delivery_stream"),
            role_name=cfg.name("firehose_role"),
        )
        self.local: LakeStorage | None = None
        if cfg.firehose.producer_copy:
            self.local = LakeStorage(
                self,
                "LocalCopy",
                cfg=cfg,
                account=cfg.producer_account,
                bucket_name=cfg.name("producer_copy_bucket"),
                access_log_bucket_name=cfg.name("producer_copy_access_log_bucket"),
                key_alias=cfg.name("producer_copy_key_alias"),
                description=f"producer-side raw log of {cfg.table.name}",
            )
            self.capture.add_delivery(
                "LocalCopyDelivery",
                target=LakeTarget.of(self.local),
                delivery_name=cfg.name("producer_copy_delivery_stream"),
                role_name=cfg.name("producer_copy_firehose_role"),
            )
            self.local.admit_firehose(
                producer_account=cfg.producer_account,
                role_arns=[cfg.role_arn(cfg.producer_account, "producer_copy_firehose_role")],
                table=cfg.table.name,
            )
        out = _outputs(self)
        out("LakeBucketArn", cfg.lake_bucket_arn, "The consumer's lake bucket the delivery stream writes to")
        out("LakeKeyArn", key_arn, "The consumer's lake key the delivery stream encrypts with")
        if self.local is not None:
            out("LocalCopyBucketArn", self.local.bucket.bucket_arn, "Producer-side copy of the raw log")
            out("LocalCopyKeyArn", self.local.key.key_arn, "KMS key of the producer-side copy")
        out("AlarmTopicArn", self.ops.topic.topic_arn, "SNS topic of the producer's alarms")
        self.capture.outputs(self)
