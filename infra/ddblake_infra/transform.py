"""The Firehose transform Lambda: Kinesis records of the table to raw-log lines.

The handler is ``ddblake.aws.firehose_transform.handler``, staged by ``ddblake_infra.assets``; it
writes only its own log group. ``DDBLAKE_TABLE`` names the table, so records that another table's
Kinesis destination sends to this stream go to the error prefix instead of ``raw/<other table>/``.
Powertools comes from the AWS-managed layer (a plain ARN, no lookup) or is bundled, as
``transform.powertools`` says.
"""

from __future__ import annotations

from typing import Final

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from ddblake_infra.assets import TRANSFORM_HANDLER, stage_transform
from ddblake_infra.monitoring import TRANSFORM_SERVICE
from ddblake_infra.nag import suppress
from ddblake_infra.security import log_retention
from ddblake_infra.settings import LAMBDA_DESCRIPTION_MAX, DeployConfig, clipped

POWERTOOLS_LAYER_ACCOUNT: Final = "017000801446"
_RUNTIMES: Final = {
    "python3.11": lambda_.Runtime.PYTHON_3_11,
    "python3.12": lambda_.Runtime.PYTHON_3_12,
    "python3.13": lambda_.Runtime.PYTHON_3_13,
    "python3.14": lambda_.Runtime.PYTHON_3_14,
}


def powertools_layer_arn(cfg: DeployConfig) -> str:
    """The AWS-managed Powertools for AWS Lambda (Python) v3 layer for the configured region,
    Python version and architecture (a plain ARN string: no lookup)."""
    t = cfg.transform
    python = t.runtime.replace(".", "")  # python3.13 -> python313
    return (
        f"arn:{cfg.partition}:lambda:{cfg.region}:{POWERTOOLS_LAYER_ACCOUNT}:layer:"
        f"AWSLambdaPowertoolsPythonV3-{python}-{t.architecture}:{t.powertools_layer_version}"
    )


def transform_function(scope: Construct, cfg: DeployConfig, *, log_key: kms.IKey) -> lambda_.Function:
    """The transform function, its role (write its own log only) and its log group, in ``scope``.

    Args:
        log_key: the stack's ops key, which encrypts the log group (its key policy admits
            CloudWatch Logs for this account's log groups).
    """
    t = cfg.transform
    name = cfg.name("transform_function")
    log_group = logs.LogGroup(
        scope,
        "TransformLogs",
        log_group_name=f"/aws/lambda/{name}",
        retention=log_retention(t.log_retention_days),
        encryption_key=log_key,
        removal_policy=RemovalPolicy.RETAIN if cfg.retain_data else RemovalPolicy.DESTROY,
    )
    role = iam.Role(
        scope,
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
        [lambda_.LayerVersion.from_layer_version_arn(scope, "Powertools", powertools_layer_arn(cfg))]
        if t.powertools == "layer"
        else []
    )
    fn = lambda_.Function(
        scope,
        "Transform",
        function_name=name,
        description=clipped(
            f"ddblake: Kinesis records of {cfg.table.name} to raw-log lines (Firehose transform)",
            LAMBDA_DESCRIPTION_MAX,
        ),
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
            # The transform refuses records of any other table: another table's Kinesis destination
            # may point at this stream, and its records must not be partitioned under their own name.
            "DDBLAKE_TABLE": cfg.table.name,
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
