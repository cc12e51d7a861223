"""Firehose delivery from the table's Kinesis stream into a lake, one least-privilege role per stream.

Each delivery stream compresses with GZIP, encrypts with its target's key (SSE-KMS), invokes the
transform Lambda, writes under the raw-log and error prefixes of the configuration, logs to its own
log group, and has freshness and failure alarms. The target is plain strings across accounts or
tokens in the same stack (:class:`LakeTarget`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from ddblake_infra.lake import (
    FIREHOSE_BUCKET_ACTIONS,
    FIREHOSE_KEY_ACTIONS,
    FIREHOSE_OBJECT_ACTIONS,
    LakeStorage,
    s3_encryption_contexts,
)
from ddblake_infra.monitoring import Operations
from ddblake_infra.nag import suppress, suppress_object_prefixes
from ddblake_infra.security import log_retention
from ddblake_infra.settings import DeployConfig, clipped, service_host

DELIVERY_LOG_STREAM: Final = "S3Delivery"
PARTITION_COUNT_EXCEEDED_METRIC: Final = "PartitionCountExceeded"
"""``AWS/Firehose``, with dynamic partitioning: 1 while the stream is past its active-partition quota
(records then go to ``errors/<table>/activePartitionExceeded/``), else 0."""
ALARM_DESCRIPTION_MAX: Final = 1024


@dataclass(frozen=True)
class LakeTarget:
    """Where a delivery stream writes: plain strings (cross-account) or tokens (same stack)."""

    bucket_name: str
    bucket_arn: str
    key_arn: str

    @classmethod
    def of(cls, storage: LakeStorage) -> LakeTarget:
        return cls(storage.bucket_name, storage.bucket.bucket_arn, storage.key.key_arn)


def delivery_stream(
    scope: Construct,
    construct_id: str,
    *,
    cfg: DeployConfig,
    ops: Operations,
    stream: kinesis.IStream,
    stream_key: kms.IKey,
    transform: lambda_.IFunction,
    target: LakeTarget,
    delivery_name: str,
    role_name: str,
) -> tuple[firehose.CfnDeliveryStream, iam.Role]:
    """A delivery stream from the table's Kinesis stream into ``target`` (GZIP, SSE-KMS with the
    target's key, raw-log and error prefixes, CloudWatch logging), with its own least-privilege role."""
    f = cfg.firehose
    table = cfg.table.name
    account, region, partition = cfg.producer_account, cfg.region, cfg.partition
    log_group = logs.LogGroup(
        scope,
        f"{construct_id}Logs",
        log_group_name=f"/aws/kinesisfirehose/{delivery_name}",
        retention=log_retention(f.log_retention_days),
        encryption_key=ops.key,  # its key policy admits CloudWatch Logs for this account's log groups
        removal_policy=RemovalPolicy.RETAIN if cfg.retain_data else RemovalPolicy.DESTROY,
    )
    logs.LogStream(
        scope,
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
            resources=[stream.stream_arn],
        ),
        iam.PolicyStatement(
            sid="DecryptSourceStream",
            actions=["kms:Decrypt"],
            resources=[stream_key.key_arn],
            conditions={
                "StringEquals": {
                    "kms:ViaService": service_host("kinesis", region),
                    "kms:EncryptionContext:aws:kinesis:arn": stream.stream_arn,
                }
            },
        ),
        iam.PolicyStatement(
            sid="InvokeTransform",
            actions=["lambda:GetFunctionConfiguration", "lambda:InvokeFunction"],
            resources=[transform.function_arn],
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
                "StringEquals": {"kms:ViaService": service_host("s3", region)},
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
        scope,
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
        ("LambdaArn", transform.function_arn),
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
        scope,
        construct_id,
        delivery_stream_name=delivery_name,
        delivery_stream_type="KinesisStreamAsSource",
        kinesis_stream_source_configuration=firehose.CfnDeliveryStream.KinesisStreamSourceConfigurationProperty(
            kinesis_stream_arn=stream.stream_arn, role_arn=role.role_arn
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
    ops.alarm(
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
    ops.alarm(
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
    if f.dynamic_partitioning:
        # Past the active-partition quota Firehose writes records under the error prefix instead of
        # raw/, which redrive does not read and the errors/ lifecycle deletes: nothing else would say so.
        ops.alarm(
            f"{construct_id}PartitionsExceeded",
            metric=cw.Metric(
                namespace="AWS/Firehose",
                metric_name=PARTITION_COUNT_EXCEEDED_METRIC,
                dimensions_map={"DeliveryStreamName": delivery_name},
                statistic="Maximum",
                period=Duration.minutes(5),
            ),
            threshold=1,
            periods=1,
            comparison=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            description=clipped(
                f"ddblake {table}: Firehose {delivery_name} went past its active-partition quota (dynamic "
                f"partitioning: event hours in one buffer) and wrote records to "
                f"errors/{table}/activePartitionExceeded/ of s3://{target.bucket_name}, not to raw/: ddblake "
                f"redrive does not read them and the errors/ lifecycle deletes them after "
                f"{cfg.lake.errors_expiration_days} days; see docs/raw-log.md (active partitions)",
                ALARM_DESCRIPTION_MAX,
            ),
        )
    return delivery, role
