"""The validated deployment configuration: frozen dataclasses, and the names and ARNs derived from it.

``ddblake_infra.config`` builds a :class:`DeployConfig` from the JSON file; the stacks read only this
object. Derived values are plain strings (no tokens, no lookups), so they can name resources in
another account's stack.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from ddblake.names import changes_identifier, table_identifier

Deployment = Literal["single-account", "cross-account"]

_PLACEHOLDER_KEY: Final = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class KeyAttribute:
    """One attribute of the table's primary key."""

    name: str
    type: Literal["S", "N", "B"]


@dataclass(frozen=True)
class TableSettings:
    """The DynamoDB table the producer stack creates."""

    name: str
    partition_key: KeyAttribute
    sort_key: KeyAttribute | None
    billing_mode: Literal["PAY_PER_REQUEST", "PROVISIONED"]
    read_capacity: int
    write_capacity: int
    ttl_attribute: str | None
    deletion_protection: bool


@dataclass(frozen=True)
class StreamSettings:
    """The Kinesis data stream the table streams its changes into."""

    mode: Literal["PROVISIONED", "ON_DEMAND"]
    shards: int
    retention_hours: int


@dataclass(frozen=True)
class ProcessorSettings:
    """How Firehose batches records for the transform Lambda."""

    buffer_seconds: int
    buffer_mb: float
    retries: int


@dataclass(frozen=True)
class FirehoseSettings:
    """The delivery stream(s): buffering, prefixes, partitioning, logging."""

    buffer_seconds: int
    buffer_mb: int
    prefix: str
    error_prefix: str
    dynamic_partitioning: bool
    processor: ProcessorSettings
    log_retention_days: int
    producer_copy: bool


@dataclass(frozen=True)
class TransformSettings:
    """The Firehose transform Lambda (``ddblake.aws.firehose_transform.handler``)."""

    architecture: Literal["arm64", "x86_64"]
    runtime: str
    memory_mb: int
    timeout_seconds: int
    powertools: Literal["layer", "bundle"]
    powertools_layer_version: int
    log_retention_days: int


@dataclass(frozen=True)
class LakeSettings:
    """The consumer's lake bucket and its key."""

    key_arn: str | None
    namespace: str
    raw_infrequent_access_days: int
    raw_expiration_days: int | None
    errors_expiration_days: int
    noncurrent_expiration_days: int
    warehouse_noncurrent_expiration_days: int
    exports_expiration_days: int
    access_logs: bool
    athena_workgroup: bool
    create_database: bool


@dataclass(frozen=True)
class LoadSettings:
    """The Glue full-load job."""

    script: Path
    source: Literal["connector", "export-files"]
    glue_version: str
    worker_type: str
    workers: int
    timeout_minutes: int
    external_id: str | None
    """The ``sts:ExternalId`` the read role requires of ``operator_arns`` (not of the load role)."""
    max_session_hours: int
    additional_python_modules: tuple[str, ...]
    operator_arns: tuple[str, ...] = ()
    """Consumer roles the read role trusts besides the load role (``ddblake load --assume-role``)."""


@dataclass(frozen=True)
class ApplySettings:
    """The scheduled ``ddblake apply --once`` (Lambda container image, one run at a time)."""

    schedule: str
    memory_mb: int
    timeout_seconds: int
    ephemeral_storage_mb: int
    architecture: Literal["arm64", "x86_64"]
    python_version: str
    log_retention_days: int


@dataclass(frozen=True)
class AlarmSettings:
    """CloudWatch alarms and where they notify."""

    apply_lag_seconds: int
    stale_seconds: int | None
    evaluation_periods: int
    email: str | None
    delivery_freshness_seconds: int
    apply_not_running: bool = True


@dataclass(frozen=True)
class DeployConfig:
    """The whole, validated deployment configuration."""

    path: Path
    deployment: Deployment
    region: str
    partition: str
    producer_account: str
    consumer_account: str
    table: TableSettings
    stream: StreamSettings
    firehose: FirehoseSettings
    transform: TransformSettings
    lake: LakeSettings
    load: LoadSettings
    apply: ApplySettings
    alarms: AlarmSettings
    names: Mapping[str, str]
    retain_data: bool

    # ---- derived values (pure strings: no tokens, no lookups) -------------------------------------
    @property
    def cross_account(self) -> bool:
        """Producer and consumer are separate stacks in separate accounts."""
        return self.deployment == "cross-account"

    @property
    def slug(self) -> str:
        """The table name as it appears in resource names."""
        return slugify(self.table.name)

    @property
    def table_identifier(self) -> str:
        """Iceberg identifier of the current-state table (ARCHITECTURE.md)."""
        return table_identifier(self.table.name)

    @property
    def changes_identifier(self) -> str:
        """Iceberg identifier of the change-history table."""
        return changes_identifier(self.table.name)

    def name(self, key: str) -> str:
        """A resource name from ``names`` (already substituted and validated)."""
        return self.names[key]

    def role_arn(self, account: str, name_key: str) -> str:
        """ARN of a role this configuration names, built from strings (no lookup)."""
        return f"arn:{self.partition}:iam::{account}:role/{self.name(name_key)}"

    @property
    def lake_bucket_name(self) -> str:
        return self.name("lake_bucket")

    @property
    def lake_bucket_arn(self) -> str:
        return f"arn:{self.partition}:s3:::{self.lake_bucket_name}"

    @property
    def firehose_role_arn(self) -> str:
        return self.role_arn(self.producer_account, "firehose_role")

    @property
    def load_role_arn(self) -> str:
        return self.role_arn(self.consumer_account, "load_role")

    @property
    def read_role_arn(self) -> str:
        return self.role_arn(self.producer_account, "read_role")

    @property
    def table_arn(self) -> str:
        return f"arn:{self.partition}:dynamodb:{self.region}:{self.producer_account}:table/{self.table.name}"

    def prefix_of(self, template: str) -> str:
        """The fixed part of a Firehose prefix, before its first ``!{...}`` expression."""
        return template.split("!{", 1)[0]

    @property
    def raw_prefix(self) -> str:
        """``raw/<table>/``: where the raw change log of this table lives."""
        return f"raw/{self.table.name}/"

    @property
    def errors_prefix(self) -> str:
        """``errors/<table>/``: records Firehose or apply could not process."""
        return f"errors/{self.table.name}/"

    @property
    def lake_key_is_placeholder(self) -> bool:
        """The cross-account example's key ARN: fine for synth, must be replaced before deploy."""
        return bool(self.lake.key_arn and self.lake.key_arn.endswith(_PLACEHOLDER_KEY))


def slugify(table_name: str) -> str:
    """Lower-case, every run of characters outside ``[a-z0-9]`` becomes one ``-``."""
    return re.sub(r"[^a-z0-9]+", "-", table_name.lower()).strip("-") or "table"


KNOWN_REGIONS: Final = frozenset(
    {
        # aws
        *("us-east-1", "us-east-2", "us-west-1", "us-west-2", "af-south-1", "ap-east-1", "ap-east-2"),
        *("ap-south-1", "ap-south-2", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3"),
        *("ap-southeast-4", "ap-southeast-5", "ap-southeast-6", "ap-southeast-7", "ap-northeast-1"),
        *("ap-northeast-2", "ap-northeast-3", "ca-central-1", "ca-west-1", "eu-central-1"),
        *("eu-central-2", "eu-west-1", "eu-west-2", "eu-west-3", "eu-south-1", "eu-south-2"),
        *("eu-north-1", "il-central-1", "me-south-1", "me-central-1", "mx-central-1", "sa-east-1"),
        # aws-cn, aws-us-gov, aws-iso, aws-iso-b, aws-iso-e, aws-iso-f, aws-eusc
        *("cn-north-1", "cn-northwest-1", "us-gov-west-1", "us-gov-east-1", "us-iso-east-1"),
        *("us-iso-west-1", "us-isob-east-1", "eu-isoe-west-1", "us-isof-south-1", "us-isof-east-1"),
        "eusc-de-east-1",
    }
)
"""Regions known when this was written. Another name of the right form is accepted (regions keep
opening) with a synth warning, since a typo (us-esat-1) would otherwise only fail at deploy."""

_PARTITIONS: Final = (
    ("cn-", "aws-cn"),
    ("us-gov-", "aws-us-gov"),
    ("us-iso-", "aws-iso"),
    ("us-isob-", "aws-iso-b"),
    ("eu-isoe-", "aws-iso-e"),
    ("us-isof-", "aws-iso-f"),
    ("eusc-", "aws-eusc"),
)
"""Region-name prefixes of the partitions other than ``aws``, as botocore's data/partitions.json
matches them (``regionRegex``). ``aws-eusc`` is the AWS European Sovereign Cloud (first region
``eusc-de-east-1``, Brandenburg), a partition of its own: its own IAM, so its ARNs start
``arn:aws-eusc:`` and no role or key of another partition can be named in its policies."""


def partition_of(region: str) -> str:
    """The AWS partition of a region: every ARN the stacks build starts ``arn:<partition>:``.

    Covers each form the configuration's region pattern accepts (``ddblake_infra.config``), so no
    region gets ``aws`` ARNs in another partition.
    """
    for prefix, partition in _PARTITIONS:
        if region.startswith(prefix):
            return partition
    return "aws"


_DNS_SUFFIXES: Final = {
    "aws": "amazonaws.com",
    "aws-cn": "amazonaws.com.cn",
    "aws-us-gov": "amazonaws.com",
    "aws-iso": "c2s.ic.gov",
    "aws-iso-b": "sc2s.sgov.gov",
    "aws-iso-e": "cloud.adc-e.uk",
    "aws-iso-f": "csp.hci.ic.gov",
    "aws-eusc": "amazonaws.eu",
}
"""Each partition's DNS suffix (botocore's data/partitions.json ``dnsSuffix``, the same as aws-cdk-lib's
region facts ``DOMAIN_SUFFIX``): the ``kms:ViaService`` values and regional service principals of the
key policies are ``<service>.<region>.<suffix>``: ``s3.eusc-de-east-1.amazonaws.eu``."""


def service_host(service: str, region: str) -> str:
    """``<service>.<region>.<the partition's DNS suffix>``: ``s3.cn-north-1.amazonaws.com.cn``."""
    return f"{service}.{region}.{_DNS_SUFFIXES[partition_of(region)]}"


SNS_DISPLAY_NAME_MAX: Final = 100
LAMBDA_DESCRIPTION_MAX: Final = 256


def clipped(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters (ending in ``...``) for a description or display name
    that holds the table's name, which may be 255 characters where the field takes fewer."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def region_warning(region: str) -> str | None:
    """A warning for a region name not in :data:`KNOWN_REGIONS`, else None."""
    if region in KNOWN_REGIONS:
        return None
    return (
        f"region {region} is not one of the regions ddblake knows (partition {partition_of(region)}): "
        "check it for a typo; a region newer than this list is fine"
    )
