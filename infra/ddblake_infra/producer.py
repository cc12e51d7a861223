"""The producer side: table, Kinesis stream, transform Lambda, Firehose delivery, cross-account read role.

``Capture`` is the construct (used by the producer stack and by the single-account stack);
``ProducerStack`` is the cross-account producer: its Firehose writes into the consumer's lake, whose
bucket name and key ARN come from the configuration (no lookups).

The pieces of ``Capture`` live in ``transform`` (the Lambda), ``delivery`` (Firehose) and
``read_role`` (the consumer's load into the producer's table).
"""

from __future__ import annotations

from typing import Any, Final

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_kms as kms
from constructs import Construct

from ddblake_infra.delivery import LakeTarget, delivery_stream
from ddblake_infra.lake import LakeStorage
from ddblake_infra.monitoring import (
    TABLE_DIMENSION,
    TRANSFORM_FAILED_METRIC,
    TRANSFORM_SERVICE,
    Operations,
    ddblake_metric,
)
from ddblake_infra.nag import suppress
from ddblake_infra.read_role import read_role
from ddblake_infra.security import make_key
from ddblake_infra.settings import DeployConfig
from ddblake_infra.transform import transform_function

ITERATOR_AGE_ALARM_FRACTION: Final = 0.5
"""The stream-age alarm fires when the oldest unread record is this share of the stream's retention
old: Firehose falling behind is seen while the rest of the retention is left to fix it."""


def iterator_age_threshold_ms(retention_hours: int) -> int:
    """Threshold of the ``GetRecords.IteratorAgeMilliseconds`` alarm for a stream's retention."""
    return int(retention_hours * 3600 * 1000 * ITERATOR_AGE_ALARM_FRACTION)


_KEY_TYPES: Final = {
    "S": dynamodb.AttributeType.STRING,
    "N": dynamodb.AttributeType.NUMBER,
    "B": dynamodb.AttributeType.BINARY,
}


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

        self.transform = transform_function(self, cfg, log_key=ops.key)
        self.read_role = (
            read_role(self, cfg, table=self.table, table_key=self.table_key) if cfg.cross_account else None
        )

        # Alarms: transform failures (records sent to the error prefix), throttled stream writes,
        # changes DynamoDB could not stream, a stream read too far behind.
        def stream_writes(metric_name: str) -> cw.Metric:
            """A 5-minute sum of DynamoDB's writes of this table's changes into the Kinesis stream."""
            return cw.Metric(
                namespace="AWS/DynamoDB",
                metric_name=metric_name,
                dimensions_map={"TableName": t.name, "DelegatedOperation": "PutRecords"},
                statistic="Sum",
                period=Duration.minutes(5),
            )

        redrive = (
            f"Those are valid changes: once the Lambda runs again, run 'ddblake redrive --table {t.name} "
            f"--lake s3://{cfg.lake_bucket_name}' to bring them back into the raw log (docs/raw-log.md)"
        )
        ops.alarm(
            "TransformRecordsFailed",
            # Table: the transform's own DDBLAKE_TABLE, so another ddblake stack's rejects (one
            # account may hold several) do not fire this alarm
            metric=ddblake_metric(
                TRANSFORM_FAILED_METRIC, {"service": TRANSFORM_SERVICE, TABLE_DIMENSION: t.name}, "Sum"
            ),
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
            f"writes the whole batch under the error prefix. {redrive}",
        )
        ops.alarm(
            "TransformThrottled",
            metric=self.transform.metric_throttles(period=Duration.minutes(5), statistic="Sum"),
            threshold=0,
            periods=1,
            description=f"ddblake {t.name}: the Firehose transform Lambda was throttled (account or "
            f"reserved concurrency); Firehose retries, then writes the whole batch under the error "
            f"prefix. {redrive}",
        )
        ops.alarm(
            "StreamWritesThrottled",
            metric=stream_writes("ThrottledPutRecordCount"),
            threshold=0,
            description=f"ddblake {t.name}: DynamoDB's writes to Kinesis stream {cfg.name('stream')} are "
            "throttled; add shards (stream.shards) or use mode ON_DEMAND",
        )
        # Silent loss: changes DynamoDB skipped, and records about to expire before Firehose reads them.
        ops.alarm(
            "StreamRecordsNotReplicated",
            metric=stream_writes("FailedToReplicateRecordCount"),
            threshold=0,
            periods=1,
            description=f"ddblake {t.name}: DynamoDB could not put change records into Kinesis stream "
            f"{cfg.name('stream')} and skipped them (e.g. a change record over Kinesis' 1 MB limit): those "
            "changes are not in the raw log. Run the load job, let apply take its rows in, then 'ddblake "
            f"reconcile' of this table (--lake s3://{cfg.lake_bucket_name} --namespace {cfg.lake.namespace}) "
            "to remove the items deleted meanwhile (docs/deploy.md, After a gap in the stream)",
        )
        ops.alarm(
            "StreamReadBehind",
            metric=cw.Metric(
                namespace="AWS/Kinesis",
                metric_name="GetRecords.IteratorAgeMilliseconds",
                dimensions_map={"StreamName": cfg.name("stream")},
                statistic="Maximum",
                period=Duration.minutes(5),
            ),
            threshold=iterator_age_threshold_ms(s.retention_hours),
            description=f"ddblake {t.name}: Firehose reads Kinesis stream {cfg.name('stream')} more than "
            f"{ITERATOR_AGE_ALARM_FRACTION:.0%} of its {s.retention_hours} h retention behind; records "
            "older than the retention expire unread (check the delivery streams' logs and the transform; "
            "raise stream.retention_hours to gain time)",
        )

    # ---- Firehose ----------------------------------------------------------------------------------
    def add_delivery(
        self, construct_id: str, *, target: LakeTarget, delivery_name: str, role_name: str
    ) -> firehose.CfnDeliveryStream:
        """A delivery stream from the table's Kinesis stream into ``target``, with its own role
        (``ddblake_infra.delivery``); kept here so the outputs can list every stream and role."""
        delivery, role = delivery_stream(
            self,
            construct_id,
            cfg=self.cfg,
            ops=self.ops,
            stream=self.stream,
            stream_key=self.stream_key,
            transform=self.transform,
            target=target,
            delivery_name=delivery_name,
            role_name=role_name,
        )
        self.deliveries[construct_id] = delivery
        self.firehose_roles[construct_id] = role
        return delivery

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
            out(
                "ReadRoleArn",
                self.read_role.role_arn,
                "Cross-account read role for the consumer's load (the Glue job, and ddblake load "
                "--assume-role of load.operator_arns)",
            )


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
        assert key_arn is not None  # noqa: S101 - add_stacks builds the producer only once it is set
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
