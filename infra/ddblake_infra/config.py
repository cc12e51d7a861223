"""The deployment configuration: one JSON file, validated before any construct is built.

Everything the stacks need comes from this file: accounts, region, the table and its keys, the
stream, Firehose buffering and prefixes, resource names, the consumer's lake key ARN and the choice
between a single-account and a cross-account deployment. Nothing is looked up at synth time, so
``cdk synth`` needs no credentials and no network.

Every problem is reported as :class:`InfraConfigError` naming the file and the dotted key, e.g.
``infra/config/x.json: stream.shards: must be an integer from 1 to 10000 (got 0)``. Unknown keys are
errors too, so a typo never silently falls back to a default. docs/deploy.md lists every key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

from ddblake.names import DEFAULT_NAMESPACE, changes_identifier, table_identifier

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG: Final = REPO_ROOT / "infra" / "config" / "single-account.json"
CONFIG_ENV: Final = "DDBLAKE_INFRA_CONFIG"
DEFAULT_GLUE_SCRIPT: Final = "src/ddblake/load/glue_job.py"

Deployment = Literal["single-account", "cross-account"]
T = TypeVar("T")

_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
_TABLE = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
_ATTRIBUTE = re.compile(r"^.{1,255}$", re.DOTALL)
_KEY_ID = re.compile(r"^(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")
_NAMESPACE = re.compile(r"^[a-z0-9_]{1,255}$")
_SCHEDULE = re.compile(r"^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\(.+\))$")
_PLACEHOLDER_KEY: Final = "00000000-0000-0000-0000-000000000000"

# Per resource kind: (pattern, max length, what the service allows) for names after substitution.
_NAME_RULES: Final[dict[str, tuple[re.Pattern[str], int, str]]] = {
    "stack": (re.compile(r"^[A-Za-z][A-Za-z0-9-]*$"), 128, "letters, digits and '-', starting with a letter"),
    "stream": (re.compile(r"^[A-Za-z0-9_.-]+$"), 128, "letters, digits, '_', '.' and '-'"),
    "firehose": (re.compile(r"^[A-Za-z0-9_.-]+$"), 64, "letters, digits, '_', '.' and '-'"),
    "lambda": (re.compile(r"^[A-Za-z0-9_-]+$"), 64, "letters, digits, '_' and '-'"),
    "role": (re.compile(r"^[\w+=,.@-]+$"), 64, "letters, digits and +=,.@_-"),
    "glue": (re.compile(r"^[\w.-]+$"), 255, "letters, digits, '_', '.' and '-'"),
    "bucket": (
        re.compile(r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$"),
        63,
        "lower-case letters, digits, '.' and '-', starting and ending with a letter or digit",
    ),
    "alias": (re.compile(r"^alias/[A-Za-z0-9/_-]+$"), 256, "'alias/' then letters, digits, '/', '_' and '-'"),
    "topic": (re.compile(r"^[A-Za-z0-9_-]+$"), 256, "letters, digits, '_' and '-'"),
    "workgroup": (re.compile(r"^[A-Za-z0-9._-]+$"), 128, "letters, digits, '.', '_' and '-'"),
}

_DEFAULT_NAMES: Final[dict[str, tuple[str, str]]] = {
    # key: (default template, kind)
    "stack_prefix": ("ddblake-{slug}", "stack"),
    "stream": ("ddblake-{slug}", "stream"),
    "delivery_stream": ("ddblake-{slug}", "firehose"),
    "producer_copy_delivery_stream": ("ddblake-{slug}-local", "firehose"),
    "transform_function": ("ddblake-{slug}-transform", "lambda"),
    "firehose_role": ("ddblake-{slug}-firehose", "role"),
    "producer_copy_firehose_role": ("ddblake-{slug}-firehose-local", "role"),
    "transform_role": ("ddblake-{slug}-transform", "role"),
    "read_role": ("ddblake-{slug}-load-read", "role"),
    "load_role": ("ddblake-{slug}-load", "role"),
    "load_job": ("ddblake-{slug}-load", "glue"),
    "load_security_configuration": ("ddblake-{slug}-load", "glue"),
    "apply_function": ("ddblake-{slug}-apply", "lambda"),
    "apply_role": ("ddblake-{slug}-apply", "role"),
    "alarm_topic": ("ddblake-{slug}-alarms", "topic"),
    "athena_workgroup": ("ddblake-{slug}", "workgroup"),
    "lake_bucket": ("ddblake-{slug}-{consumer_account}-{region}", "bucket"),
    "access_log_bucket": ("ddblake-{slug}-logs-{consumer_account}-{region}", "bucket"),
    "producer_copy_bucket": ("ddblake-{slug}-raw-{producer_account}-{region}", "bucket"),
    "producer_copy_access_log_bucket": ("ddblake-{slug}-logs-{producer_account}-{region}", "bucket"),
    "table_key_alias": ("alias/ddblake/{slug}/table", "alias"),
    "stream_key_alias": ("alias/ddblake/{slug}/stream", "alias"),
    "lake_key_alias": ("alias/ddblake/{slug}/lake", "alias"),
    "ops_key_alias": ("alias/ddblake/{slug}/ops", "alias"),
    "producer_copy_key_alias": ("alias/ddblake/{slug}/raw", "alias"),
}


class InfraConfigError(ValueError):
    """The deployment configuration is missing, unreadable or invalid; the message says where."""


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
    read_percent: float
    external_id: str | None
    max_session_hours: int
    additional_python_modules: tuple[str, ...]


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

    lag_seconds: int
    evaluation_periods: int
    email: str | None
    delivery_freshness_seconds: int


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


def partition_of(region: str) -> str:
    """The AWS partition of a region (``aws``, ``aws-cn``, ``aws-us-gov``)."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


# ---- reading ---------------------------------------------------------------------------------------


class _Section:
    """One JSON object of the file; every read is checked and every key must be read."""

    def __init__(self, file: str, where: str, data: Any) -> None:
        self.file = file
        self.where = where
        if not isinstance(data, dict):
            raise self.error("", f"must be a JSON object (got {type(data).__name__})")
        self.data: dict[str, Any] = data
        self.seen: set[str] = {"$comment"}

    def key(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def error(self, name: str, problem: str) -> InfraConfigError:
        where = self.key(name) if name else (self.where or "(top level)")
        return InfraConfigError(f"{self.file}: {where}: {problem}")

    def _get(self, name: str, default: Any, required: bool) -> Any:
        self.seen.add(name)
        if name not in self.data or self.data[name] is None:
            if required:
                raise self.error(name, "is required")
            return default
        return self.data[name]

    def text(
        self,
        name: str,
        default: str | None = None,
        *,
        required: bool = False,
        pattern: re.Pattern[str] | None = None,
        what: str = "",
    ) -> str:
        value = self._get(name, default, required)
        if not isinstance(value, str):
            raise self.error(name, f"must be a string (got {value!r})")
        if pattern is not None and not pattern.match(value):
            raise self.error(name, f"{value!r} is not {what or 'valid'}")
        return value

    def optional_text(
        self, name: str, *, pattern: re.Pattern[str] | None = None, what: str = ""
    ) -> str | None:
        if self.data.get(name) is None:
            self.seen.add(name)
            return None
        return self.text(name, pattern=pattern, what=what)

    def integer(self, name: str, default: int | None, lo: int, hi: int, *, required: bool = False) -> int:
        value = self._get(name, default, required or default is None)
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise self.error(name, f"must be an integer from {lo} to {hi} (got {value!r})")
        return value

    def optional_integer(self, name: str, lo: int, hi: int) -> int | None:
        if self.data.get(name) is None:
            self.seen.add(name)
            return None
        return self.integer(name, None, lo, hi)

    def number(self, name: str, default: float, lo: float, hi: float) -> float:
        value = self._get(name, default, False)
        if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
            raise self.error(name, f"must be a number from {lo:g} to {hi:g} (got {value!r})")
        return float(value)

    def flag(self, name: str, default: bool) -> bool:
        value = self._get(name, default, False)
        if not isinstance(value, bool):
            raise self.error(name, f"must be true or false (got {value!r})")
        return value

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self._get(name, default, False)
        if value not in choices:
            raise self.error(name, f"must be one of {', '.join(repr(c) for c in choices)} (got {value!r})")
        return str(value)

    def strings(self, name: str) -> tuple[str, ...]:
        value = self._get(name, [], False)
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.error(name, f"must be a list of non-empty strings (got {value!r})")
        return tuple(value)

    def section(self, name: str) -> _Section:
        value = self._get(name, {}, False)
        return _Section(self.file, self.key(name), value)

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            raise self.error(unknown[0], "unknown key (see docs/deploy.md for the keys this section takes)")


def _with(section: _Section, read: Callable[[_Section], T]) -> T:
    value = read(section)
    section.finish()
    return value


def resolve_config_path(explicit: str | None, *, base: Path | None = None) -> Path:
    """The configuration file: ``explicit`` (cdk context ``config``), relative to the repository root
    when it is not absolute and not found from the current directory, else the single-account example.
    """
    if not explicit:
        return DEFAULT_CONFIG
    path = Path(explicit).expanduser()
    if path.is_absolute():
        return path
    here = (base or Path.cwd()) / path
    return here if here.exists() else REPO_ROOT / path


def load_config(path: str | Path) -> DeployConfig:
    """Read and validate the configuration file at ``path``.

    Raises:
        InfraConfigError: the file is missing, not JSON, or a key is missing or invalid; the message
            names the file and the key.
    """
    path = Path(path)
    try:
        shown = str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        shown = str(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InfraConfigError(
            f"{shown}: configuration file not found; pass -c config=PATH to cdk "
            "(examples: infra/config/single-account.json, infra/config/cross-account.json)"
        ) from None
    except json.JSONDecodeError as e:
        raise InfraConfigError(f"{shown}: not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from e
    return parse_config(raw, file=shown, path=Path(shown))


def parse_config(raw: Any, *, file: str = "<config>", path: Path | None = None) -> DeployConfig:
    """Validate an already-parsed configuration (``load_config`` without the file)."""
    top = _Section(file, "", raw)
    deployment = top.choice("deployment", "single-account", ("single-account", "cross-account"))
    region = top.text("region", required=True, pattern=_REGION, what="an AWS region such as eu-west-1")
    producer = top.text("producer_account", required=True, pattern=_ACCOUNT, what="a 12-digit account ID")
    consumer = top.text("consumer_account", producer, pattern=_ACCOUNT, what="a 12-digit account ID")
    if deployment == "single-account" and consumer != producer:
        raise top.error(
            "consumer_account",
            f"is {consumer} but producer_account is {producer}: a single-account deployment has one "
            "account; set deployment to 'cross-account' or make them equal",
        )
    if deployment == "cross-account" and consumer == producer:
        raise top.error(
            "consumer_account",
            f"equals producer_account ({producer}): a cross-account deployment needs two accounts; "
            "set deployment to 'single-account' for one",
        )
    partition = partition_of(region)
    retain = top.choice("removal_policy", "retain", ("retain", "destroy")) == "retain"

    table = _with(top.section("table"), _table)
    stream = _with(top.section("stream"), _stream)
    firehose = _with(top.section("firehose"), lambda s: _firehose(s, table.name, deployment))
    transform = _with(top.section("transform"), _transform)
    lake = _with(
        top.section("lake"), lambda s: _lake(s, deployment=deployment, region=region, consumer=consumer)
    )
    load = _with(top.section("load"), _load)
    apply = _with(top.section("apply"), _apply)
    alarms = _with(top.section("alarms"), _alarms)
    names = _with(
        top.section("names"),
        lambda s: _names(
            s,
            {
                "table": table.name,
                "slug": slugify(table.name),
                "region": region,
                "producer_account": producer,
                "consumer_account": consumer,
                "namespace": lake.namespace,
            },
        ),
    )
    top.finish()
    return DeployConfig(
        path=path or Path(file),
        deployment="cross-account" if deployment == "cross-account" else "single-account",
        region=region,
        partition=partition,
        producer_account=producer,
        consumer_account=consumer,
        table=table,
        stream=stream,
        firehose=firehose,
        transform=transform,
        lake=lake,
        load=load,
        apply=apply,
        alarms=alarms,
        names=names,
        retain_data=retain,
    )


def _key_attribute(s: _Section, name: str) -> KeyAttribute | None:
    if s.data.get(name) is None:
        s.seen.add(name)
        return None
    sub = s.section(name)
    attr = sub.text("name", required=True, pattern=_ATTRIBUTE, what="an attribute name (1-255 chars)")
    kind = sub.choice("type", "S", ("S", "N", "B"))
    sub.finish()
    return KeyAttribute(attr, "N" if kind == "N" else "B" if kind == "B" else "S")


def _table(s: _Section) -> TableSettings:
    name = s.text(
        "name", required=True, pattern=_TABLE, what="a DynamoDB table name (3-255 of A-Z a-z 0-9 _ . -)"
    )
    pk = _key_attribute(s, "partition_key")
    if pk is None:
        raise s.error("partition_key", 'is required, e.g. {"name": "id", "type": "S"}')
    sk = _key_attribute(s, "sort_key")
    billing = s.choice("billing_mode", "PAY_PER_REQUEST", ("PAY_PER_REQUEST", "PROVISIONED"))
    read = s.integer("read_capacity", 5, 1, 40000)
    write = s.integer("write_capacity", 5, 1, 40000)
    return TableSettings(
        name=name,
        partition_key=pk,
        sort_key=sk,
        billing_mode="PROVISIONED" if billing == "PROVISIONED" else "PAY_PER_REQUEST",
        read_capacity=read,
        write_capacity=write,
        ttl_attribute=s.optional_text("ttl_attribute", pattern=_ATTRIBUTE, what="an attribute name"),
        deletion_protection=s.flag("deletion_protection", True),
    )


def _stream(s: _Section) -> StreamSettings:
    mode = s.choice("mode", "PROVISIONED", ("PROVISIONED", "ON_DEMAND"))
    shards = s.integer("shards", 1, 1, 10000)
    if mode == "ON_DEMAND" and "shards" in s.data:
        raise s.error("shards", "applies to mode PROVISIONED only; remove it for an ON_DEMAND stream")
    return StreamSettings(
        mode="ON_DEMAND" if mode == "ON_DEMAND" else "PROVISIONED",
        shards=shards,
        retention_hours=s.integer("retention_hours", 24, 24, 8760),
    )


def _check_prefix(s: _Section, key: str, value: str, must_start: str, must_contain: tuple[str, ...]) -> None:
    if not value.startswith(must_start):
        raise s.error(key, f"{value!r} must start with {must_start!r} (the lake layout of ARCHITECTURE.md)")
    for part in must_contain:
        if part not in value:
            raise s.error(key, f"{value!r} must contain {part}")
    if not value.endswith("/"):
        raise s.error(key, f"{value!r} must end with '/'")


def _firehose(s: _Section, table: str, deployment: str) -> FirehoseSettings:
    dynamic = s.flag("dynamic_partitioning", False)
    default_prefix = (
        "raw/!{partitionKeyFromLambda:table}/!{partitionKeyFromLambda:year}/!{partitionKeyFromLambda:month}/"
        "!{partitionKeyFromLambda:day}/!{partitionKeyFromLambda:hour}/"
        if dynamic
        else "raw/{table}/!{timestamp:yyyy/MM/dd/HH}/"
    )
    prefix = s.text("prefix", default_prefix).replace("{table}", table)
    error_prefix = s.text(
        "error_prefix", "errors/{table}/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd/HH}/"
    ).replace("{table}", table)
    if dynamic:
        _check_prefix(s, "prefix", prefix, "raw/", ("!{partitionKeyFromLambda:",))
    else:
        _check_prefix(s, "prefix", prefix, f"raw/{table}/", ("!{timestamp:",))
        if "partitionKeyFromLambda" in prefix:
            raise s.error("prefix", "uses partitionKeyFromLambda but dynamic_partitioning is false")
    _check_prefix(s, "error_prefix", error_prefix, f"errors/{table}/", ("!{firehose:error-output-type}",))
    buffer_mb = s.integer("buffer_mb", 64 if dynamic else 16, 1, 128)
    if dynamic and buffer_mb < 64:
        raise s.error(
            "buffer_mb",
            f"must be at least 64 with dynamic_partitioning (Firehose's minimum); got {buffer_mb}",
        )
    proc = s.section("processor")
    processor = ProcessorSettings(
        buffer_seconds=proc.integer("buffer_seconds", 60, 60, 900),
        buffer_mb=proc.number("buffer_mb", 3, 0.2, 3),
        retries=proc.integer("retries", 2, 0, 300),
    )
    proc.finish()
    copy = s.flag("producer_copy", False)
    if copy and deployment != "cross-account":
        raise s.error(
            "producer_copy", "applies to cross-account deployments only (a second, producer-side lake)"
        )
    return FirehoseSettings(
        buffer_seconds=s.integer("buffer_seconds", 60, 0, 900),
        buffer_mb=buffer_mb,
        prefix=prefix,
        error_prefix=error_prefix,
        dynamic_partitioning=dynamic,
        processor=processor,
        log_retention_days=_retention(s, "log_retention_days", 90),
        producer_copy=copy,
    )


_RETENTION_DAYS: Final = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)


def _retention(s: _Section, key: str, default: int) -> int:
    value = s.integer(key, default, 1, 3653)
    if value not in _RETENTION_DAYS:
        raise s.error(key, f"{value} is not a CloudWatch Logs retention; use one of {_RETENTION_DAYS}")
    return value


def _transform(s: _Section) -> TransformSettings:
    arch = s.choice("architecture", "arm64", ("arm64", "x86_64"))
    powertools = s.choice("powertools", "layer", ("layer", "bundle"))
    return TransformSettings(
        architecture="x86_64" if arch == "x86_64" else "arm64",
        runtime=s.choice("runtime", "python3.13", ("python3.11", "python3.12", "python3.13", "python3.14")),
        memory_mb=s.integer("memory_mb", 512, 128, 10240),
        timeout_seconds=s.integer("timeout_seconds", 120, 1, 900),
        powertools="bundle" if powertools == "bundle" else "layer",
        powertools_layer_version=s.integer("powertools_layer_version", 27, 1, 100000),
        log_retention_days=_retention(s, "log_retention_days", 90),
    )


def _lake(s: _Section, *, deployment: str, region: str, consumer: str) -> LakeSettings:
    key_arn = s.optional_text("key_arn")
    if key_arn is not None:
        m = re.match(r"^arn:aws[a-z-]*:kms:([a-z0-9-]+):(\d{12}):key/(.+)$", key_arn)
        if not m or not _KEY_ID.match(m.group(3)):
            raise s.error(
                "key_arn", f"{key_arn!r} is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)"
            )
        if m.group(1) != region:
            raise s.error(
                "key_arn",
                f"is in region {m.group(1)} but region is {region}: the lake key must be "
                "in the bucket's region",
            )
        if m.group(2) != consumer:
            raise s.error(
                "key_arn",
                f"is in account {m.group(2)} but consumer_account is {consumer}: use the "
                "LakeKeyArn output of the consumer stack",
            )
        if deployment == "single-account":
            raise s.error(
                "key_arn",
                "applies to cross-account deployments only (the single-account stack "
                "creates the lake key itself); remove it",
            )
    elif deployment == "cross-account":
        raise s.error(
            "key_arn",
            "is required for a cross-account deployment: deploy the consumer stack first "
            "and copy its LakeKeyArn output here (the producer's Firehose encrypts with it)",
        )
    expiration = s.optional_integer("raw_expiration_days", 1, 36500)
    ia_days = s.integer("raw_infrequent_access_days", 30, 30, 36500)
    if expiration is not None and expiration <= ia_days:
        raise s.error(
            "raw_expiration_days",
            f"({expiration}) must be later than raw_infrequent_access_days ({ia_days}) or null (never)",
        )
    return LakeSettings(
        key_arn=key_arn,
        namespace=s.text(
            "namespace",
            DEFAULT_NAMESPACE,
            pattern=_NAMESPACE,
            what="a Glue database name (lower-case letters, digits, '_')",
        ),
        raw_infrequent_access_days=ia_days,
        raw_expiration_days=expiration,
        errors_expiration_days=s.integer("errors_expiration_days", 90, 1, 36500),
        noncurrent_expiration_days=s.integer("noncurrent_expiration_days", 30, 1, 36500),
        exports_expiration_days=s.integer("exports_expiration_days", 30, 1, 36500),
        access_logs=s.flag("access_logs", True),
        athena_workgroup=s.flag("athena_workgroup", True),
        create_database=s.flag("create_database", True),
    )


def _load(s: _Section) -> LoadSettings:
    script = s.text("script", DEFAULT_GLUE_SCRIPT)
    path = Path(script) if Path(script).is_absolute() else REPO_ROOT / script
    worker = s.choice("worker_type", "G.1X", ("G.025X", "G.1X", "G.2X", "G.4X", "G.8X"))
    source = s.choice("source", "connector", ("connector", "export-files"))
    if source == "connector" and s.data.get("external_id") is not None:
        raise s.error(
            "external_id",
            "cannot be used with source 'connector': Glue's DynamoDB connector assumes the read role "
            "without an ExternalId; use source 'export-files' (or ddblake load --assume-role) or remove it",
        )
    return LoadSettings(
        script=path,
        source="export-files" if source == "export-files" else "connector",
        glue_version=s.choice("glue_version", "5.0", ("4.0", "5.0")),
        worker_type=worker,
        workers=s.integer("workers", 2, 2, 1000),
        timeout_minutes=s.integer("timeout_minutes", 480, 1, 10080),
        read_percent=s.number("read_percent", 50, 1, 150),
        external_id=s.optional_text(
            "external_id",
            pattern=re.compile(r"^[\w+=,.@:/-]{2,1224}$"),
            what="an sts:ExternalId (2-1224 chars)",
        ),
        max_session_hours=s.integer("max_session_hours", 1, 1, 12),
        additional_python_modules=s.strings("additional_python_modules"),
    )


def _apply(s: _Section) -> ApplySettings:
    arch = s.choice("architecture", "arm64", ("arm64", "x86_64"))
    return ApplySettings(
        schedule=s.text(
            "schedule",
            "rate(5 minutes)",
            pattern=_SCHEDULE,
            what="an EventBridge schedule expression, rate(5 minutes) or cron(...)",
        ),
        memory_mb=s.integer("memory_mb", 3008, 512, 10240),
        timeout_seconds=s.integer("timeout_seconds", 900, 60, 900),
        ephemeral_storage_mb=s.integer("ephemeral_storage_mb", 2048, 512, 10240),
        architecture="x86_64" if arch == "x86_64" else "arm64",
        python_version=s.choice("python_version", "3.13", ("3.11", "3.12", "3.13")),
        log_retention_days=_retention(s, "log_retention_days", 90),
    )


def _alarms(s: _Section) -> AlarmSettings:
    return AlarmSettings(
        lag_seconds=s.integer("lag_seconds", 900, 60, 7 * 86400),
        evaluation_periods=s.integer("evaluation_periods", 3, 1, 100),
        email=s.optional_text(
            "email", pattern=re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$"), what="an e-mail address"
        ),
        delivery_freshness_seconds=s.integer("delivery_freshness_seconds", 900, 60, 86400),
    )


def _names(s: _Section, values: Mapping[str, str]) -> dict[str, str]:
    names: dict[str, str] = {}
    for key, (template, kind) in _DEFAULT_NAMES.items():
        raw = s.text(key, template)
        try:
            value = raw.format_map(values)
        except (KeyError, ValueError, IndexError) as e:
            raise s.error(
                key,
                f"{raw!r}: unknown or malformed placeholder {e}; use {{table}}, {{slug}}, "
                "{region}, {producer_account}, {consumer_account} or {namespace}",
            ) from None
        pattern, max_len, allowed = _NAME_RULES[kind]
        if not pattern.match(value) or len(value) > max_len:
            raise s.error(
                key,
                f"{value!r} is not a valid {kind} name: at most {max_len} characters, {allowed}; "
                f"set names.{key} to a shorter or simpler name",
            )
        names[key] = value
    return names
