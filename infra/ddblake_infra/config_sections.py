"""Reading each section of the configuration file into its settings: defaults, ranges, and the checks
that span keys (prefixes against partitioning, the lake key against region and account, names
against what each AWS service allows).

``ddblake_infra.config.parse_config`` calls one reader per section, each through
:func:`~ddblake_infra.config_reader.read_section` so unknown keys fail.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from ddblake.names import DEFAULT_NAMESPACE, glue_name_problem
from ddblake_infra.config_reader import Section
from ddblake_infra.cron import cron_problem
from ddblake_infra.operators import external_id, operator_arns
from ddblake_infra.settings import (
    AlarmSettings,
    ApplySettings,
    FirehoseSettings,
    KeyAttribute,
    LakeSettings,
    LoadSettings,
    ProcessorSettings,
    StreamSettings,
    TableSettings,
    TransformSettings,
)

DEFAULT_GLUE_SCRIPT: Final = "src/ddblake/load/glue_job.py"
GLUE_VERSIONS: Final = ("4.0", "5.0", "5.1")
"""Glue versions the job script runs on: Python 3.10 (4.0) or 3.11 (5.0, 5.1) and Spark 3.3-3.5; 5.1
(Spark 3.5.6, Python 3.11, S3A instead of EMRFS for Spark's own S3 reads) is the default, as it is
Glue's own for a job that names none. 6.0 (Spark 4, Python 3.13) is not taken: untried (docs/deploy.md)."""
DEFAULT_GLUE_VERSION: Final = "5.1"
LOAD_WORKER_TYPES: Final = (
    *("G.1X", "G.2X", "G.4X", "G.8X", "G.12X", "G.16X"),
    *("R.1X", "R.2X", "R.4X", "R.8X"),
)
"""Worker types of a Glue Spark ETL (glueetl) job on every version of :data:`GLUE_VERSIONS`.

Glue's API (CreateJob ``WorkerType``) takes G.1X-G.16X and R.1X-R.8X for Spark jobs: G.4X and G.8X
on Glue 3.0 or later, G.12X, G.16X (12 and 16 DPU) and the memory-optimized R types (1-8 M-DPU, twice
a DPU's memory) on Glue 4.0 or later, all of which :data:`GLUE_VERSIONS` are. G.4X and up are offered
in some regions only (AWS Glue developer guide, "Configuring job properties for Spark jobs"): a region
without one fails at deploy, which is not refused here since the list changes. The other two values
the API takes are refused by :data:`_OTHER_JOB_WORKER_TYPES`."""
_OTHER_JOB_WORKER_TYPES: Final = {
    "G.025X": "is for Glue streaming jobs only (gluestreaming)",
    "Z.2X": "is for Glue Ray jobs only (glueray)",
}

_TABLE = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
_ATTRIBUTE = re.compile(r"^.{1,255}$", re.DOTALL)
_KEY_ID = re.compile(r"^(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")
_NAMESPACE = re.compile(r"^[a-z0-9_]{1,255}$")
# EventBridge schedules: rate(1 minute) but rate(N minutes) for N >= 2 (same for hour and day), and
# cron with exactly six fields (minutes hours day-of-month month day-of-week year).
_RATE = re.compile(r"^rate\((1 (minute|hour|day)|([2-9]|[1-9]\d+) (minutes|hours|days))\)$")
_CRON = re.compile(r"^cron\((\S+( \S+){5})\)$")

TRANSFORM_MAX_SECONDS: Final = 300
"""Firehose invokes a data-transformation Lambda for at most 5 minutes."""

# The raw-log layouts the IAM, bucket and key grants (``raw/<table>/*``) and apply's hour folders
# (``raw/<table>/YYYY/MM/DD/HH/``, ``ddblake.lake.applied.hour_of``) both accept, and nothing else.
_TIMESTAMP_HOUR: Final = "!{timestamp:yyyy/MM/dd/HH}/"
_LAMBDA_TABLE: Final = "!{partitionKeyFromLambda:table}"
_LAMBDA_HOUR: Final = "".join(
    f"!{{partitionKeyFromLambda:{key}}}/" for key in ("year", "month", "day", "hour")
)  # the keys ddblake.aws.firehose_transform emits (ddblake.changes.transform.partition_keys)


def _key_attribute(s: Section, name: str) -> KeyAttribute | None:
    if s.data.get(name) is None:
        s.seen.add(name)
        return None
    sub = s.section(name)
    attr = sub.text("name", required=True, pattern=_ATTRIBUTE, what="an attribute name (1-255 chars)")
    kind = sub.choice("type", "S", ("S", "N", "B"))
    sub.finish()
    return KeyAttribute(attr, "N" if kind == "N" else "B" if kind == "B" else "S")


def table_settings(s: Section, *, retain: bool = True) -> TableSettings:
    """``table``: the table the producer stack creates; a partition key is required.

    Args:
        retain: ``removal_policy`` is ``retain``. Deletion protection defaults to it: a table the
            stack would delete on ``cdk destroy`` (``destroy``) must not refuse that deletion.
    """
    name = s.text(
        "name", required=True, pattern=_TABLE, what="a DynamoDB table name (3-255 of A-Z a-z 0-9 _ . -)"
    )
    if (problem := glue_name_problem(name)) is not None:
        # The change history's table (<identifier>_changes) is a Glue table, and Glue refuses names
        # over 255 characters: apply's first commit would fail, every time.
        raise s.error("name", problem)
    pk = _key_attribute(s, "partition_key")
    if pk is None:
        raise s.error("partition_key", 'is required, e.g. {"name": "id", "type": "S"}')
    sk = _key_attribute(s, "sort_key")
    billing = s.choice("billing_mode", "PAY_PER_REQUEST", ("PAY_PER_REQUEST", "PROVISIONED"))
    if billing == "PAY_PER_REQUEST":  # a capacity DynamoDB would never get must not look configured
        for key in ("read_capacity", "write_capacity"):
            if s.data.get(key) is not None:
                raise s.error(
                    key,
                    "applies to billing_mode PROVISIONED only: a PAY_PER_REQUEST table has no "
                    "provisioned capacity; remove it or set billing_mode to PROVISIONED",
                )
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
        deletion_protection=s.flag("deletion_protection", retain),
    )


def stream_settings(s: Section) -> StreamSettings:
    """``stream``: shards only for a PROVISIONED stream, so an ON_DEMAND one never carries a stale count."""
    mode = s.choice("mode", "PROVISIONED", ("PROVISIONED", "ON_DEMAND"))
    shards = s.integer("shards", 1, 1, 10000)
    if mode == "ON_DEMAND" and "shards" in s.data:
        raise s.error("shards", "applies to mode PROVISIONED only; remove it for an ON_DEMAND stream")
    return StreamSettings(
        mode="ON_DEMAND" if mode == "ON_DEMAND" else "PROVISIONED",
        shards=shards,
        retention_hours=s.integer("retention_hours", 24, 24, 8760),
    )


def _check_prefix(s: Section, key: str, value: str, must_start: str, must_contain: tuple[str, ...]) -> None:
    if not value.startswith(must_start):
        raise s.error(key, f"{value!r} must start with {must_start!r} (the lake layout of ARCHITECTURE.md)")
    for part in must_contain:
        if part not in value:
            raise s.error(key, f"{value!r} must contain {part}")
    if not value.endswith("/"):
        raise s.error(key, f"{value!r} must end with '/'")


def raw_prefixes(table: str, *, dynamic: bool) -> tuple[str, ...]:
    """The Firehose prefixes that write ``raw/<table>/YYYY/MM/DD/HH/``, the first being the default.

    Without dynamic partitioning: Firehose's own arrival hour. With it: the transform's partition keys
    (the change's event hour), under the table's name written out or taken from the transform's
    ``table`` key (the same name: only this table streams into the stream).
    """
    if dynamic:
        return (f"raw/{_LAMBDA_TABLE}/{_LAMBDA_HOUR}", f"raw/{table}/{_LAMBDA_HOUR}")
    return (f"raw/{table}/{_TIMESTAMP_HOUR}",)


def _check_raw_prefix(s: Section, prefix: str, table: str, *, dynamic: bool) -> None:
    allowed = raw_prefixes(table, dynamic=dynamic)
    if prefix in allowed:
        return
    if not dynamic and "partitionKeyFromLambda" in prefix:
        raise s.error("prefix", f"{prefix!r} uses partitionKeyFromLambda but dynamic_partitioning is false")
    if dynamic and "partitionKeyFromLambda" not in prefix:
        raise s.error(
            "prefix",
            f"{prefix!r} uses no partitionKeyFromLambda key but dynamic_partitioning is true; "
            "remove prefix for the default or set dynamic_partitioning to false",
        )
    choices = " or ".join(repr(a) for a in allowed)
    raise s.error(
        "prefix",
        f"{prefix!r} is not a raw-log layout the Firehose role, the bucket and key policies "
        f"(raw/{table}/*) and apply's hour folders (raw/{table}/YYYY/MM/DD/HH/) accept; "
        f"use {choices} (or remove prefix for the default)",
    )


def firehose_settings(s: Section, table: str, deployment: str) -> FirehoseSettings:
    """``firehose``: prefixes must keep the lake layout (``raw/<table>/``, ``errors/<table>/``) that the
    IAM policies and apply rely on, and agree with ``dynamic_partitioning``."""
    dynamic = s.flag("dynamic_partitioning", False)
    prefix = s.text("prefix", raw_prefixes(table, dynamic=dynamic)[0]).replace("{table}", table)
    error_prefix = s.text(
        "error_prefix", "errors/{table}/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd/HH}/"
    ).replace("{table}", table)
    _check_raw_prefix(s, prefix, table, dynamic=dynamic)
    # ``ddblake redrive`` reads errors/<table>/processing-failed/: the type comes right after the table.
    _check_prefix(
        s, "error_prefix", error_prefix, f"errors/{table}/!{{firehose:error-output-type}}/", ("!{timestamp",)
    )
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
    buffer_seconds = s.integer("buffer_seconds", 60, 0, 900)
    if dynamic and buffer_seconds == 0:
        raise s.error(
            "buffer_seconds",
            "cannot be 0 with dynamic_partitioning (Firehose's zero buffering is not available with "
            "dynamic partitioning); set it above 0 (the default is 60)",
        )
    return FirehoseSettings(
        buffer_seconds=buffer_seconds,
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


def _retention(s: Section, key: str, default: int) -> int:
    value = s.integer(key, default, 1, 3653)
    if value not in _RETENTION_DAYS:
        raise s.error(key, f"{value} is not a CloudWatch Logs retention; use one of {_RETENTION_DAYS}")
    return value


def _transform_timeout(s: Section) -> int:
    value = s.data.get("timeout_seconds")
    if isinstance(value, int) and not isinstance(value, bool) and value > TRANSFORM_MAX_SECONDS:
        raise s.error(
            "timeout_seconds",
            f"must be at most {TRANSFORM_MAX_SECONDS} (got {value}): Firehose invokes a transform "
            "Lambda for at most 5 minutes",
        )
    return s.integer("timeout_seconds", 120, 1, TRANSFORM_MAX_SECONDS)


def transform_settings(s: Section) -> TransformSettings:
    """``transform``: the Firehose transform Lambda."""
    arch = s.choice("architecture", "arm64", ("arm64", "x86_64"))
    powertools = s.choice("powertools", "layer", ("layer", "bundle"))
    return TransformSettings(
        architecture="x86_64" if arch == "x86_64" else "arm64",
        runtime=s.choice("runtime", "python3.13", ("python3.11", "python3.12", "python3.13", "python3.14")),
        memory_mb=s.integer("memory_mb", 512, 128, 10240),
        timeout_seconds=_transform_timeout(s),
        powertools="bundle" if powertools == "bundle" else "layer",
        powertools_layer_version=s.integer("powertools_layer_version", 27, 1, 100000),
        log_retention_days=_retention(s, "log_retention_days", 90),
    )


def lake_settings(s: Section, *, deployment: str, region: str, consumer: str, partition: str) -> LakeSettings:
    """``lake``: the key ARN must be the consumer's key in the bucket's partition and region
    (cross-account only; until it is set, only the consumer stack is synthesized:
    ``ddblake_infra.build.add_stacks``)."""
    key_arn = s.optional_text("key_arn")
    if key_arn is not None and deployment == "single-account":  # before any advice on its value
        raise s.error(
            "key_arn",
            "applies to cross-account deployments only (the single-account stack "
            "creates the lake key itself); remove it",
        )
    if key_arn is not None:
        m = re.fullmatch(r"arn:(aws[a-z-]*):kms:([a-z0-9-]+):(\d{12}):key/(.+)", key_arn)
        if not m or not _KEY_ID.fullmatch(m.group(4)):
            raise s.error(
                "key_arn", f"{key_arn!r} is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)"
            )
        key_partition, key_region, key_account = m.group(1), m.group(2), m.group(3)
        if key_partition != partition:
            raise s.error(
                "key_arn",
                f"is in partition {key_partition} but region {region} is in partition {partition}: "
                f"the lake key ARN must start with arn:{partition}:kms:{region}:",
            )
        if key_region != region:
            raise s.error(
                "key_arn",
                f"is in region {key_region} but region is {region}: the lake key must be "
                "in the bucket's region",
            )
        if key_account != consumer:
            raise s.error(
                "key_arn",
                f"is in account {key_account} but consumer_account is {consumer}: use the "
                "LakeKeyArn output of the consumer stack",
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
        warehouse_noncurrent_expiration_days=s.integer("warehouse_noncurrent_expiration_days", 7, 1, 36500),
        exports_expiration_days=s.integer("exports_expiration_days", 30, 1, 36500),
        access_logs=s.flag("access_logs", True),
        athena_workgroup=s.flag("athena_workgroup", True),
        create_database=s.flag("create_database", True),
    )


def missing_script_problem(shown: Path | str) -> str:
    """What is wrong with a ``load.script`` that does not exist, and what to write instead."""
    return (
        f"{shown} does not exist; the Glue full-load job runs this script: set load.script to an "
        "existing Python file (relative to the repository root, or absolute), or remove the key "
        f"to use ddblake's own, {DEFAULT_GLUE_SCRIPT}"
    )


def load_settings(
    s: Section,
    root: Path,
    deployment: str = "single-account",
    *,
    consumer: str = "",
    partition: str = "aws",
) -> LoadSettings:
    """``load``: the Glue job; a relative ``script`` is resolved against ``root`` (the repository).

    Args:
        s: the ``load`` section.
        root: the repository root, passed in so this module needs no path of its own.
        deployment, consumer, partition: ``operator_arns`` and ``external_id`` are the cross-account
            read role's (``ddblake_infra.operators``): refused without one, and the operators must be
            roles of the consumer account in the region's partition.
    """
    if "read_percent" in s.data:  # taken before session 12, never used
        raise s.error(
            "read_percent",
            "is no longer a key: both job sources read an export, which uses none of the table's "
            "read capacity; remove it",
        )
    script = s.text("script", DEFAULT_GLUE_SCRIPT)
    path = Path(script) if Path(script).is_absolute() else root / script
    if not path.is_file():  # before any CDK work: the synth would fail staging it anyway
        raise s.error("script", missing_script_problem(script))
    other_job = s.data.get("worker_type")
    if isinstance(other_job, str) and other_job in _OTHER_JOB_WORKER_TYPES:
        raise s.error(
            "worker_type",
            f"{other_job!r} {_OTHER_JOB_WORKER_TYPES[other_job]}; the load job is a Spark ETL job "
            f"(glueetl): use one of {', '.join(repr(w) for w in LOAD_WORKER_TYPES)}",
        )
    worker = s.choice("worker_type", "G.1X", LOAD_WORKER_TYPES)
    source = s.choice("source", "connector", ("connector", "export-files"))
    operators = operator_arns(s, deployment=deployment, consumer=consumer, partition=partition)
    return LoadSettings(
        script=path,
        source="export-files" if source == "export-files" else "connector",
        glue_version=s.choice("glue_version", DEFAULT_GLUE_VERSION, GLUE_VERSIONS),
        worker_type=worker,
        workers=s.integer("workers", 2, 2, 1000),
        timeout_minutes=s.integer("timeout_minutes", 480, 1, 10080),
        external_id=external_id(s, deployment=deployment, operators=operators),
        operator_arns=operators,
        max_session_hours=s.integer("max_session_hours", 1, 1, 12),
        additional_python_modules=s.strings("additional_python_modules"),
    )


def _schedule(s: Section) -> str:
    """``apply.schedule``: an expression EventBridge accepts (its rules, checked here rather than
    at deploy time)."""
    value = s.text("schedule", "rate(5 minutes)")
    if _RATE.fullmatch(value):
        return value
    cron = _CRON.fullmatch(value)
    if cron:
        problem = cron_problem(cron.group(1).split(" "))
        if problem is None:
            return value
        raise s.error("schedule", f"{value!r}: {problem}")
    raise s.error(
        "schedule",
        f"{value!r} is not an EventBridge schedule expression: rate(1 minute), rate(N minutes) with "
        "N >= 2 (likewise hour/hours, day/days), or cron(...) with six fields "
        "(minutes hours day-of-month month day-of-week year), e.g. cron(0/5 * * * ? *)",
    )


def apply_settings(s: Section) -> ApplySettings:
    """``apply``: the scheduled ``ddblake apply --once``."""
    arch = s.choice("architecture", "arm64", ("arm64", "x86_64"))
    return ApplySettings(
        schedule=_schedule(s),
        memory_mb=s.integer("memory_mb", 3008, 512, 10240),
        timeout_seconds=s.integer("timeout_seconds", 900, 60, 900),
        ephemeral_storage_mb=s.integer("ephemeral_storage_mb", 2048, 512, 10240),
        architecture="x86_64" if arch == "x86_64" else "arm64",
        python_version=s.choice("python_version", "3.13", ("3.11", "3.12", "3.13")),
        log_retention_days=_retention(s, "log_retention_days", 90),
    )


def alarm_settings(s: Section) -> AlarmSettings:
    """``alarms``: thresholds and the optional e-mail subscription."""
    if "lag_seconds" in s.data:  # the apply lag threshold's former name, which read as staleness
        raise s.error(
            "lag_seconds",
            "is no longer a key: rename it to alarms.apply_lag_seconds, the apply lag alarm's threshold "
            "(the age of the oldest raw file waiting for apply); to alarm on the tables' staleness "
            "(status's lag_seconds) set alarms.stale_seconds",
        )
    return AlarmSettings(
        apply_lag_seconds=s.integer("apply_lag_seconds", 900, 60, 7 * 86400),
        stale_seconds=s.optional_integer("stale_seconds", 60, 366 * 86400),
        evaluation_periods=s.integer("evaluation_periods", 3, 1, 100),
        email=s.optional_text(
            "email", pattern=re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$"), what="an e-mail address"
        ),
        delivery_freshness_seconds=s.integer("delivery_freshness_seconds", 900, 60, 86400),
        apply_not_running=s.flag("apply_not_running", True),
    )
