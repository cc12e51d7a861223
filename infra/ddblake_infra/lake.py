"""The lake's storage: a KMS key and a hardened bucket, admitting the producer's Firehose role(s).

Used by the consumer stack (the lake) and, with ``firehose.producer_copy``, by the producer stack (a
producer-side copy of the raw log, as the reference's same-account delivery stream wrote).
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from ddblake_infra.security import access_log_bucket, make_key, retain_bucket_policy
from ddblake_infra.settings import DeployConfig, service_host

# s3:ListBucket has no s3:prefix condition: S3 authorises HeadBucket as ListBucket without a
# prefix, and neither Firehose nor DynamoDB's export documents which bucket calls it makes. A
# listing shows key names, never an object.
FIREHOSE_BUCKET_ACTIONS = ("s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads")
FIREHOSE_OBJECT_ACTIONS = ("s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject")
FIREHOSE_KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")


EXPORT_BUCKET_ACTIONS = ("s3:GetBucketLocation", "s3:ListBucket")
EXPORT_OBJECT_ACTIONS = ("s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject", "s3:PutObjectAcl")
# What the load job and apply do to their own prefixes of the lake.
LAKE_READ_WRITE = ("s3:DeleteObject", "s3:GetObject", "s3:PutObject")


def s3_encryption_contexts(
    bucket_arn: str, table: str, roots: tuple[str, ...] = ("raw", "errors")
) -> list[str]:
    """The ``aws:s3:arn`` encryption contexts of writes under ``<root>/<table>/``: the bucket (with S3
    Bucket Keys) or the object (without)."""
    return [bucket_arn, *(f"{bucket_arn}/{root}/{table}/*" for root in roots)]


def lake_key_statement(key: kms.IKey, region: str) -> iam.PolicyStatement:
    """Use of the lake's key for S3 reads and writes only (``kms:ViaService``): the load job and apply."""
    return iam.PolicyStatement(
        sid="LakeKey",
        actions=["kms:Decrypt", "kms:GenerateDataKey"],
        resources=[key.key_arn],
        conditions={"StringEquals": {"kms:ViaService": service_host("s3", region)}},
    )


class LakeStorage(Construct):
    """Key + bucket (+ access-log bucket) of a lake.

    The bucket: SSE-KMS with its own key and S3 Bucket Keys, TLS 1.2+ only, public access blocked,
    objects owned by the bucket owner (cross-account writes included), versioning, server access
    logs, and lifecycle rules for ``raw/`` and ``errors/`` (and the scratch prefixes).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cfg: DeployConfig,
        account: str,
        bucket_name: str,
        access_log_bucket_name: str,
        key_alias: str,
        description: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.cfg = cfg
        self.account = account
        self.bucket_name = bucket_name
        self.key: kms.Key = make_key(
            self,
            "Key",
            account=account,
            alias=key_alias,
            description=f"ddblake: {description} (bucket {bucket_name})",
            retain=cfg.retain_data,
        )
        self.access_logs: s3.Bucket | None = (
            access_log_bucket(self, "AccessLogs", bucket_name=access_log_bucket_name, retain=cfg.retain_data)
            if cfg.lake.access_logs
            else None
        )
        lake = cfg.lake
        rules = [
            s3.LifecycleRule(
                id="raw-log",
                prefix="raw/",
                transitions=[
                    s3.Transition(
                        storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                        transition_after=Duration.days(lake.raw_infrequent_access_days),
                    )
                ],
                expiration=Duration.days(lake.raw_expiration_days) if lake.raw_expiration_days else None,
            ),
            s3.LifecycleRule(
                id="errors", prefix="errors/", expiration=Duration.days(lake.errors_expiration_days)
            ),
            s3.LifecycleRule(
                id="exports", prefix="exports/", expiration=Duration.days(lake.exports_expiration_days)
            ),
            s3.LifecycleRule(id="glue-temp", prefix="glue-temp/", expiration=Duration.days(7)),
            s3.LifecycleRule(id="athena-results", prefix="athena-results/", expiration=Duration.days(30)),
            # Apply rewrites the current-state files holding changed keys (copy on write) and
            # maintenance deletes them once no kept snapshot needs them: on a table whose batches
            # touch most files, every run leaves about a table's worth of noncurrent versions here
            # (docs/deploy.md, "What apply rewrites"). S3 honours the shorter of two overlapping
            # expirations, so this rule wins over the bucket-wide one below where it is shorter.
            s3.LifecycleRule(
                id="warehouse-versions",
                prefix="warehouse/",
                noncurrent_version_expiration=Duration.days(lake.warehouse_noncurrent_expiration_days),
            ),
            s3.LifecycleRule(
                id="versions-and-uploads",
                noncurrent_version_expiration=Duration.days(lake.noncurrent_expiration_days),
                abort_incomplete_multipart_upload_after=Duration.days(7),
                expired_object_delete_marker=True,
            ),
        ]
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            bucket_name=bucket_name,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix=f"{bucket_name}/" if self.access_logs else None,
            lifecycle_rules=rules,
            removal_policy=RemovalPolicy.RETAIN if cfg.retain_data else RemovalPolicy.DESTROY,
        )
        retain_bucket_policy(self.bucket, retain=cfg.retain_data)

    @property
    def bucket_arn(self) -> str:
        return self.bucket.bucket_arn

    @property
    def key_arn(self) -> str:
        return self.key.key_arn

    def admit_firehose(self, *, producer_account: str, role_arns: Sequence[str], table: str) -> None:
        """Let the producer's Firehose role(s) write this table's raw log and errors - and nothing else.

        The principal is the producer account, narrowed by ``aws:PrincipalArn`` to the named roles:
        unlike a role-ARN principal this needs no deploy order (S3 and KMS do not check that the role
        exists yet) and survives the role being recreated.
        """
        principal = iam.AccountPrincipal(producer_account)
        only_roles = {"ArnEquals": {"aws:PrincipalArn": list(role_arns)}}
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="ProducerFirehoseBucket",
                principals=[principal],
                actions=list(FIREHOSE_BUCKET_ACTIONS),
                resources=[self.bucket.bucket_arn],
                conditions=only_roles,
            )
        )
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="ProducerFirehoseObjects",
                principals=[principal],
                actions=list(FIREHOSE_OBJECT_ACTIONS),
                resources=[
                    self.bucket.arn_for_objects(f"raw/{table}/*"),
                    self.bucket.arn_for_objects(f"errors/{table}/*"),
                ],
                conditions=only_roles,
            )
        )
        if producer_account != self.account:
            # In its own account a role's identity policy suffices (the key delegates use to IAM).
            self.key.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="ProducerFirehoseEncryptsLakeObjects",
                    principals=[principal],
                    actions=list(FIREHOSE_KEY_ACTIONS),
                    resources=["*"],
                    conditions={
                        **only_roles,
                        "StringEquals": {"kms:ViaService": service_host("s3", self.cfg.region)},
                        "StringLike": {
                            "kms:EncryptionContext:aws:s3:arn": s3_encryption_contexts(
                                f"arn:{self.cfg.partition}:s3:::{self.bucket_name}", table
                            )
                        },
                    },
                )
            )

    def admit_export_writer(self, *, producer_account: str, role_arn: str, table: str) -> None:
        """Let the producer's read role write (and read back) DynamoDB exports of the table under
        ``exports/<table>/`` - the Glue load's export connector, and the operators of
        ``load.operator_arns`` (``ddblake load --export-to ... --assume-role``), run
        ExportTableToPointInTime with that role into this bucket. Only cross-account: in one account
        identity policies suffice."""
        principal = iam.AccountPrincipal(producer_account)
        only_role = {"ArnEquals": {"aws:PrincipalArn": role_arn}}
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="ProducerExportBucket",
                principals=[principal],
                actions=list(EXPORT_BUCKET_ACTIONS),
                resources=[self.bucket.bucket_arn],
                conditions=only_role,
            )
        )
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="ProducerExportObjects",
                principals=[principal],
                actions=list(EXPORT_OBJECT_ACTIONS),
                resources=[self.bucket.arn_for_objects(f"exports/{table}/*")],
                conditions=only_role,
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="ProducerExportEncryption",
                principals=[principal],
                actions=list(FIREHOSE_KEY_ACTIONS),
                resources=["*"],
                conditions={
                    **only_role,
                    "StringEquals": {"kms:ViaService": service_host("s3", self.cfg.region)},
                    "StringLike": {
                        "kms:EncryptionContext:aws:s3:arn": s3_encryption_contexts(
                            f"arn:{self.cfg.partition}:s3:::{self.bucket_name}", table, ("exports",)
                        )
                    },
                },
            )
        )
