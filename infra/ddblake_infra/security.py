"""KMS keys and S3 buckets with explicit, least-privilege policies.

CDK's default key policy grants ``kms:*`` to the account root. Here every key gets a policy written
out action by action:

* key administration for the account (what CloudFormation needs to create, update, rotate and
  delete the key), never its use for data;
* use for data, delegated to IAM in the key's own account: a role can encrypt or decrypt only if
  its own identity policy names this key (so every role below lists the key ARN explicitly);
* per key, the service principals and cross-account roles it must admit, each with conditions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from ddblake_infra.settings import service_host

KEY_ADMIN_ACTIONS: Final = (
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListAliases",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:RetireGrant",
    "kms:RevokeGrant",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
)
"""Administration of a key (no data operation among them)."""

KEY_USE_ACTIONS: Final = (
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
)
"""Data operations a key's account may delegate to its IAM roles."""


def make_key(
    scope: Construct,
    construct_id: str,
    *,
    account: str,
    alias: str,
    description: str,
    statements: Sequence[iam.PolicyStatement] = (),
    grants_for_aws_resources: bool = False,
    retain: bool = True,
) -> kms.Key:
    """A symmetric key with rotation and an explicit key policy (no ``kms:*``).

    Args:
        account: the key's own account; its IAM roles may use the key when their policies say so.
        alias: the key's alias (``alias/...``).
        statements: extra key-policy statements (service principals, cross-account roles).
        grants_for_aws_resources: let the account's principals create grants for AWS services
            (DynamoDB keeps a table key usable through grants), only for AWS resources.
        retain: keep the key when the stack is deleted (data encrypted with it stays readable).
    """
    root = iam.AccountPrincipal(account)
    doc = iam.PolicyDocument(
        statements=[
            iam.PolicyStatement(
                sid="KeyAdministration", principals=[root], actions=list(KEY_ADMIN_ACTIONS), resources=["*"]
            ),
            iam.PolicyStatement(
                sid="KeyUseThroughIamPolicies",
                principals=[root],
                actions=list(KEY_USE_ACTIONS),
                resources=["*"],
            ),
        ]
    )
    if grants_for_aws_resources:
        doc.add_statements(
            iam.PolicyStatement(
                sid="GrantsForAwsServicesOnly",
                principals=[root],
                actions=["kms:CreateGrant"],
                resources=["*"],
                conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
            )
        )
    for statement in statements:
        doc.add_statements(statement)
    return kms.Key(
        scope,
        construct_id,
        alias=alias,
        description=description,
        enable_key_rotation=True,
        policy=doc,
        pending_window=Duration.days(30),
        removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
    )


def logs_service_statement(partition: str, region: str, account: str) -> iam.PolicyStatement:
    """Let CloudWatch Logs encrypt this account's log groups in ``region`` with the key."""
    return iam.PolicyStatement(
        sid="CloudWatchLogsEncryption",
        principals=[iam.ServicePrincipal(service_host("logs", region))],
        actions=[
            "kms:Decrypt",
            "kms:DescribeKey",
            "kms:Encrypt",
            "kms:GenerateDataKey",
            "kms:ReEncryptFrom",
            "kms:ReEncryptTo",
        ],
        resources=["*"],
        conditions={
            "ArnLike": {
                "kms:EncryptionContext:aws:logs:arn": f"arn:{partition}:logs:{region}:{account}:log-group:*"
            }
        },
    )


def notification_services_statements(partition: str, region: str, account: str) -> list[iam.PolicyStatement]:
    """Let this account's CloudWatch alarms and EventBridge rules publish to a topic under this key.

    CloudWatch passes the alarm as ``aws:SourceArn``, so its statement is limited to this account's
    alarms. EventBridge's request to KMS carries no source keys (AWS documents that
    aws:SourceAccount/SourceArn are not supported there: a condition would drop every event), so
    its statement has none; the topic policy admits only this stack's rule, by ``aws:SourceArn``.
    """
    actions = ["kms:Decrypt", "kms:GenerateDataKey"]
    return [
        iam.PolicyStatement(
            sid="AlarmNotifications",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=actions,
            resources=["*"],
            conditions={
                "StringEquals": {"aws:SourceAccount": account},
                "ArnLike": {"aws:SourceArn": f"arn:{partition}:cloudwatch:{region}:{account}:alarm:*"},
            },
        ),
        iam.PolicyStatement(
            sid="EventNotifications",
            principals=[iam.ServicePrincipal("events.amazonaws.com")],
            actions=actions,
            resources=["*"],
        ),
    ]


def retain_bucket_policy(bucket: s3.Bucket, *, retain: bool) -> None:
    """Give a bucket's policy the bucket's own removal policy.

    CDK leaves an ``AWS::S3::BucketPolicy`` at CloudFormation's default (Delete) even when its bucket
    is retained, so ``cdk destroy`` would keep the data but strip its TLS-only deny (and the log
    delivery grant). Call after the bucket exists: ``enforce_ssl`` creates the policy with it, and
    statements added later go into the same resource.
    """
    if retain and bucket.policy is not None:
        bucket.policy.apply_removal_policy(RemovalPolicy.RETAIN)


def access_log_bucket(scope: Construct, construct_id: str, *, bucket_name: str, retain: bool) -> s3.Bucket:
    """The target of S3 server access logs: SSE-S3 (the only encryption log delivery supports), TLS only,
    no public access, objects owned by the bucket owner, logs kept one year."""
    bucket = s3.Bucket(
        scope,
        construct_id,
        bucket_name=bucket_name,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        minimum_tls_version=1.2,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        versioned=True,
        lifecycle_rules=[
            s3.LifecycleRule(
                id="expire-access-logs",
                expiration=Duration.days(365),
                noncurrent_version_expiration=Duration.days(7),
                abort_incomplete_multipart_upload_after=Duration.days(7),
            )
        ],
        removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
    )
    retain_bucket_policy(bucket, retain=retain)
    return bucket


_RETENTION: Final = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def log_retention(days: int) -> logs.RetentionDays:
    """CloudWatch Logs retention for a number of days the configuration validated."""
    return _RETENTION[days]
