"""The deployment configuration: defaults, derived names, and clear errors naming file and key."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from ddblake_infra.config import REPO_ROOT, load_config, parse_config, resolve_config_path
from ddblake_infra.config_reader import InfraConfigError
from ddblake_infra.settings import slugify

MINIMAL: dict[str, Any] = {
    "region": "eu-west-1",
    "producer_account": "111111111111",
    "table": {"name": "orders.v2", "partition_key": {"name": "pk"}},
}


def config(**changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(MINIMAL)
    for dotted, value in changes.items():
        node = raw
        *parents, last = dotted.split("__")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return raw


def error_of(raw: Any) -> str:
    with pytest.raises(InfraConfigError) as e:
        parse_config(raw, file="x.json")
    return str(e.value)


def test_examples_load() -> None:
    single = load_config(REPO_ROOT / "infra/config/single-account.json")
    cross = load_config(REPO_ROOT / "infra/config/cross-account.json")
    assert not single.cross_account and cross.cross_account
    assert single.table.name == cross.table.name == "example-ddb-table"
    assert single.table.sort_key is not None and single.table.sort_key.name == "name"
    assert single.stream.shards == 10
    assert cross.lake_key_is_placeholder and not single.lake_key_is_placeholder
    assert cross.firehose.producer_copy
    assert str(single.path) == "infra/config/single-account.json"


def test_minimal_config_has_working_defaults() -> None:
    cfg = parse_config(MINIMAL, file="x.json")
    assert cfg.deployment == "single-account" and cfg.consumer_account == "111111111111"
    assert cfg.partition == "aws"
    assert cfg.firehose.prefix == "raw/orders.v2/!{timestamp:yyyy/MM/dd/HH}/"
    assert (
        cfg.firehose.error_prefix
        == "errors/orders.v2/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd/HH}/"
    )
    assert (cfg.firehose.buffer_seconds, cfg.firehose.buffer_mb) == (60, 16)
    assert (
        cfg.load.glue_version == "5.1" and cfg.load.worker_type == "G.1X" and cfg.load.source == "connector"
    )
    assert cfg.load.script == REPO_ROOT / "src/ddblake/load/glue_job.py"
    assert (cfg.alarms.apply_lag_seconds, cfg.alarms.stale_seconds) == (900, None)  # no staleness alarm
    # names: the table's dots are not allowed everywhere, so names use the slug
    assert cfg.slug == "orders-v2"
    assert cfg.name("transform_function") == "ddblake-orders-v2-transform"
    assert cfg.name("lake_bucket") == "ddblake-orders-v2-111111111111-eu-west-1"
    assert cfg.table_identifier == "orders_v2" and cfg.changes_identifier == "orders_v2_changes"
    assert cfg.firehose_role_arn == "arn:aws:iam::111111111111:role/ddblake-orders-v2-firehose"


def test_partition_follows_region() -> None:
    assert parse_config(config(region="cn-north-1"), file="x.json").partition == "aws-cn"
    assert parse_config(config(region="us-gov-west-1"), file="x.json").partition == "aws-us-gov"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ([], "x.json: (top level): must be a JSON object"),
        ({"producer_account": "111111111111", "table": MINIMAL["table"]}, "x.json: region: is required"),
        (config(region="Europe"), "x.json: region: 'Europe' is not an AWS region"),
        (config(producer_account="1234"), "x.json: producer_account: '1234' is not a 12-digit account ID"),
        (config(table__name="x"), "x.json: table.name: 'x' is not a DynamoDB table name"),
        ({**MINIMAL, "table": {"name": "abc"}}, "x.json: table.partition_key: is required"),
        (
            config(table__partition_key={"name": "pk", "type": "M"}),
            "x.json: table.partition_key.type: must be one of",
        ),
        (config(stream__shards=0), "x.json: stream.shards: must be an integer from 1 to 10000 (got 0)"),
        (
            config(stream__shards="ten"),
            "x.json: stream.shards: must be an integer from 1 to 10000 (got 'ten')",
        ),
        (
            config(stream__mode="ON_DEMAND", stream__shards=4),
            "x.json: stream.shards: applies to mode PROVISIONED",
        ),
        (config(firehose__bufer_mb=5), "x.json: firehose.bufer_mb: unknown key"),
        (config(colour="blue"), "x.json: colour: unknown key"),
        (config(load__read_percent=50), "x.json: load.read_percent: is no longer a key"),
        (config(firehose__buffer_mb=129), "x.json: firehose.buffer_mb: must be an integer from 1 to 128"),
        (
            config(firehose__prefix="dynamodb/{table}/!{timestamp:yyyy}/"),
            "firehose.prefix: 'dynamodb/orders.v2/",
        ),
        (
            config(firehose__prefix="raw/{table}/"),
            "x.json: firehose.prefix: 'raw/orders.v2/' is not a raw-log layout",
        ),
        (
            config(firehose__error_prefix="errors/{table}/"),
            "firehose.error_prefix: 'errors/orders.v2/' must start with "
            "'errors/orders.v2/!{firehose:error-output-type}/'",
        ),
        (  # ddblake redrive reads errors/<table>/processing-failed/: nothing may come between
            config(
                firehose__error_prefix="errors/{table}/fh/!{firehose:error-output-type}/!{timestamp:yyyy}/"
            ),
            "firehose.error_prefix: 'errors/orders.v2/fh/!{firehose:error-output-type}/!{timestamp:yyyy}/' "
            "must start with 'errors/orders.v2/!{firehose:error-output-type}/'",
        ),
        (
            config(firehose__dynamic_partitioning=True, firehose__buffer_mb=16),
            "firehose.buffer_mb: must be at least 64",
        ),
        (
            config(firehose__producer_copy=True),
            "firehose.producer_copy: applies to cross-account deployments only",
        ),
        (
            config(firehose__log_retention_days=10),
            "firehose.log_retention_days: 10 is not a CloudWatch Logs retention",
        ),
        (
            config(firehose__processor__buffer_mb=5),
            "firehose.processor.buffer_mb: must be a number from 0.2 to 3",
        ),
        (config(transform__architecture="sparc"), "transform.architecture: must be one of 'arm64', 'x86_64'"),
        (
            config(consumer_account="222222222222"),
            "x.json: consumer_account: is 222222222222 but producer_account",
        ),
        (config(deployment="cross-account"), "consumer_account: equals producer_account (111111111111)"),
        (
            config(
                lake__key_arn="arn:aws:kms:eu-west-1:111111111111:key/0a3c2f1e-1111-2222-3333-444455556666"
            ),
            "lake.key_arn: applies to cross-account deployments only",
        ),
        (
            config(
                deployment="cross-account",
                consumer_account="222222222222",
                lake__key_arn="arn:aws:kms:eu-west-1:111111111111:key/0a3c2f1e-1111-2222-3333-444455556666",
            ),
            "lake.key_arn: is in account 111111111111 but consumer_account is 222222222222",
        ),
        (
            config(
                deployment="cross-account",
                consumer_account="222222222222",
                lake__key_arn="arn:aws:kms:us-east-1:222222222222:key/0a3c2f1e-1111-2222-3333-444455556666",
            ),
            "lake.key_arn: is in region us-east-1 but region is eu-west-1",
        ),
        (config(lake__key_arn="alias/lake"), "lake.key_arn: 'alias/lake' is not a KMS key ARN"),
        (config(lake__raw_expiration_days=0), "lake.raw_expiration_days: must be an integer from 1"),
        (config(lake__raw_expiration_days=30), "lake.raw_expiration_days: (30) must be later than"),
        (config(load__worker_type="Standard"), "load.worker_type: must be one of"),
        (config(load__workers=1), "load.workers: must be an integer from 2 to 1000"),
        (config(load__external_id="abc123"), "load.external_id: cannot be used with source 'connector'"),
        (
            config(apply__schedule="every 5 minutes"),
            "apply.schedule: 'every 5 minutes' is not an EventBridge",
        ),
        (
            config(names__transform_function="ddblake.{table}"),
            "names.transform_function: 'ddblake.orders.v2' is not a valid lambda",
        ),
        (config(names__stream="{tabel}"), "names.stream: '{tabel}': unknown or malformed placeholder"),
        (
            config(names__lake_bucket="Lake_Bucket"),
            "names.lake_bucket: 'Lake_Bucket' is not a valid bucket name",
        ),
        (config(alarms__email="ops"), "alarms.email: 'ops' is not an e-mail address"),
        (  # the apply lag threshold's former name: refused, naming the new one
            config(alarms__lag_seconds=900),
            "x.json: alarms.lag_seconds: is no longer a key: rename it to alarms.apply_lag_seconds",
        ),
        (config(alarms__stale_seconds=30), "alarms.stale_seconds: must be an integer from 60 to"),
        (
            config(load__glue_version="6.0"),
            "load.glue_version: must be one of '4.0', '5.0', '5.1' (got '6.0')",
        ),
        (config(removal_policy="keep"), "removal_policy: must be one of 'retain', 'destroy'"),
    ],
)
def test_invalid_configuration_names_file_and_key(raw: Any, expected: str) -> None:
    assert expected in error_of(raw)


def test_long_table_name_asks_for_a_shorter_resource_name() -> None:
    message = error_of(config(table__name="a" * 60))
    assert "names.stack_prefix" in message or "is not a valid" in message
    assert "set names." in message


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(InfraConfigError, match=r"configuration file not found; pass -c config=PATH"):
        load_config(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"region": "eu-west-1",}')
    with pytest.raises(InfraConfigError, match=r"bad.json: not valid JSON: .* line 1"):
        load_config(bad)
    good = tmp_path / "good.json"
    good.write_text(json.dumps(MINIMAL))
    assert load_config(good).table.name == "orders.v2"


def test_config_path_resolution(tmp_path: Path) -> None:
    assert resolve_config_path(None) == REPO_ROOT / "infra/config/single-account.json"
    assert resolve_config_path("infra/config/cross-account.json", base=tmp_path) == (
        REPO_ROOT / "infra/config/cross-account.json"
    )
    (tmp_path / "mine.json").write_text("{}")
    assert resolve_config_path("mine.json", base=tmp_path) == tmp_path / "mine.json"


def test_slugify() -> None:
    assert slugify("Example-DDB.Table_1") == "example-ddb-table-1"
    assert slugify("...") == "table"


def test_infra_config_needs_no_cdk() -> None:
    """Config validation is plain Python: a bad file fails before any Node.js process starts."""
    import subprocess
    import sys

    code = (
        "import sys; sys.path.insert(0, 'infra'); import ddblake_infra.config; "
        "assert not any(m.startswith(('aws_cdk', 'jsii')) for m in sys.modules), 'imported the CDK'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)


def test_app_reports_a_bad_config_in_one_line(tmp_path: Path) -> None:
    """``cdk synth`` runs infra/app.py; a bad file ends it with exit code 2 and one clear line."""
    import os
    import subprocess
    import sys

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(config(stream__shards=0)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {"CDK_OUTDIR": str(tmp_path / "out"), "CDK_CONTEXT_JSON": json.dumps({"config": str(bad)})}
    proc = subprocess.run(
        [sys.executable, "infra/app.py"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 2
    assert (
        f"ddblake infra: error: {bad}: stream.shards: must be an integer from 1 to 10000 (got 0)"
        in proc.stderr
    )


def test_the_environment_chooses_the_config_when_no_context_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """cdk.json's context reaches the app like ``-c`` values: it must not name a config, or
    $DDBLAKE_INFRA_CONFIG would be ignored under the CDK CLI."""
    from aws_cdk import App

    from ddblake_infra.build import chosen_config
    from ddblake_infra.config import CONFIG_ENV

    cdk_context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    monkeypatch.setenv(CONFIG_ENV, "infra/config/cross-account.json")
    assert chosen_config(App(context=cdk_context)) == "infra/config/cross-account.json"
    assert chosen_config(App(context={**cdk_context, "config": "mine.json"})) == "mine.json"
    monkeypatch.delenv(CONFIG_ENV)
    assert chosen_config(App(context=cdk_context)) is None  # then the single-account example


# ---- the raw-log prefix: only the layouts the grants and apply's hour folders accept ---------------

LAMBDA_HOUR = "".join(f"!{{partitionKeyFromLambda:{k}}}/" for k in ("year", "month", "day", "hour"))


@pytest.mark.parametrize(
    "prefix",
    [
        "raw/other/!{partitionKeyFromLambda:hour}/",  # another table's folder: outside every grant
        "raw/!{partitionKeyFromLambda:year}/",  # no table folder at all
        "raw/other/" + LAMBDA_HOUR,
        "raw/{table}/!{partitionKeyFromLambda:year}/!{partitionKeyFromLambda:month}/"
        "!{partitionKeyFromLambda:day}/",  # no hour folder
        "raw/{table}/" + LAMBDA_HOUR + "firehose/",  # a folder below the hour
        "raw/{table}/!{partitionKeyFromLambda:hour}/!{partitionKeyFromLambda:day}/"
        "!{partitionKeyFromLambda:month}/!{partitionKeyFromLambda:year}/",  # reversed
        "raw/!{partitionKeyFromLambda:table}/" + LAMBDA_HOUR.replace("month", "table"),
        "raw/{table}/!{timestamp:yyyy/MM/dd/HH}/",  # Firehose's hour, not the transform's keys
    ],
)
def test_dynamic_prefix_must_be_the_table_then_the_hour_keys(prefix: str) -> None:
    message = error_of(config(firehose__dynamic_partitioning=True, firehose__prefix=prefix))
    assert message.startswith("x.json: firehose.prefix: "), message


@pytest.mark.parametrize(
    "prefix",
    [
        "raw/{table}/!{timestamp:yyyy/MM/dd/HH}/firehose/",
        "raw/{table}/!{timestamp:yyyy/MM/dd}/",
        "raw/{table}/!{timestamp:yyyy-MM-dd-HH}/",
        "raw/{table}/!{timestamp:yyyy/MM/dd/HH}/!{timestamp:mm}/",
        "raw/{table}/x/!{timestamp:yyyy/MM/dd/HH}/",
        "raw/{table}/" + LAMBDA_HOUR,  # needs dynamic_partitioning
    ],
)
def test_static_prefix_must_be_the_table_then_the_timestamp_hour(prefix: str) -> None:
    message = error_of(config(firehose__prefix=prefix))
    assert message.startswith("x.json: firehose.prefix: "), message


@pytest.mark.parametrize(
    ("dynamic", "prefix"),
    [
        (False, None),
        (False, "raw/{table}/!{timestamp:yyyy/MM/dd/HH}/"),
        (True, None),
        (True, "raw/!{partitionKeyFromLambda:table}/" + LAMBDA_HOUR),
        (True, "raw/{table}/" + LAMBDA_HOUR),
    ],
)
def test_accepted_prefixes_write_the_hour_folders_apply_reads(dynamic: bool, prefix: str | None) -> None:
    """Every accepted prefix, filled in as Firehose fills it (the transform's partition keys, or
    Firehose's own timestamp), puts a file under ``raw/<table>/`` (the grants) in the hour folder
    apply reads (``ddblake.lake.applied.hour_of``)."""
    from ddblake.changes.transform import partition_keys
    from ddblake.lake.applied import hour_of

    changes: dict[str, Any] = {"firehose__dynamic_partitioning": dynamic}
    if prefix is not None:
        changes["firehose__prefix"] = prefix
    cfg = parse_config(config(**changes), file="x.json")
    event_us = 1_736_390_096_000_000  # 2025-01-09 02:34:56 UTC
    keys = partition_keys("orders.v2", event_us)
    filled = cfg.firehose.prefix.replace("!{timestamp:yyyy/MM/dd/HH}", "2025/01/09/02")
    for key, value in keys.items():
        filled = filled.replace(f"!{{partitionKeyFromLambda:{key}}}", value)
    path = filled + "ddblake-1-2025-01-09-02-34-56-abc.gz"
    assert "!{" not in path
    assert path.startswith("raw/orders.v2/")
    assert hour_of(path) == "2025/01/09/02"
    assert path == "raw/orders.v2/2025/01/09/02/ddblake-1-2025-01-09-02-34-56-abc.gz"


# ---- other limits of the services ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            config(transform__timeout_seconds=301),
            "x.json: transform.timeout_seconds: must be at most 300 (got 301): Firehose invokes",
        ),
        (config(transform__timeout_seconds=900), "x.json: transform.timeout_seconds: must be at most 300"),
        (
            config(firehose__dynamic_partitioning=True, firehose__buffer_seconds=0),
            "x.json: firehose.buffer_seconds: cannot be 0 with dynamic_partitioning",
        ),
        (
            config(
                deployment="cross-account",
                consumer_account="222222222222",
                region="ap-northeast-1",
                lake__key_arn="arn:aws-cn:kms:ap-northeast-1:222222222222:key/0a3c2f1e-1111-2222-3333-444455556666",
            ),
            "x.json: lake.key_arn: is in partition aws-cn but region ap-northeast-1 is in partition aws",
        ),
        (
            config(
                deployment="cross-account",
                consumer_account="222222222222",
                region="cn-north-1",
                lake__key_arn="arn:aws:kms:cn-north-1:222222222222:key/0a3c2f1e-1111-2222-3333-444455556666",
            ),
            "x.json: lake.key_arn: is in partition aws but region cn-north-1 is in partition aws-cn",
        ),
    ],
)
def test_service_limits_name_file_and_key(raw: Any, expected: str) -> None:
    assert expected in error_of(raw)


def test_service_limits_accept_what_the_services_take() -> None:
    assert (
        parse_config(config(transform__timeout_seconds=300), file="x.json").transform.timeout_seconds == 300
    )
    assert parse_config(config(firehose__buffer_seconds=0), file="x.json").firehose.buffer_seconds == 0
    cn = parse_config(
        config(
            deployment="cross-account",
            consumer_account="222222222222",
            region="cn-north-1",
            lake__key_arn="arn:aws-cn:kms:cn-north-1:222222222222:key/0a3c2f1e-1111-2222-3333-444455556666",
        ),
        file="x.json",
    )
    assert cn.partition == "aws-cn" and cn.lake.key_arn is not None


@pytest.mark.parametrize(
    "schedule",
    [
        "rate(1 minutes)",
        "rate(0 minutes)",
        "rate(0 minute)",
        "rate(2 minute)",
        "rate(05 minutes)",
        "rate(1 hours)",
        "rate(1 days)",
        "rate(5 weeks)",
        "rate(5  minutes)",
        "cron(0/5 * * * *)",  # five fields (Unix cron)
        "cron(0 12 * * ? * *)",  # seven fields
        "cron(0 12 * * * *)",  # no '?'
        "cron(0 12 ? * ? *)",  # '?' twice
        "cron()",
        "every 5 minutes",
    ],
)
def test_schedule_must_be_one_eventbridge_accepts(schedule: str) -> None:
    message = error_of(config(apply__schedule=schedule))
    assert message.startswith(f"x.json: apply.schedule: {schedule!r}"), message


@pytest.mark.parametrize(
    "schedule",
    [
        "rate(1 minute)",
        "rate(2 minutes)",
        "rate(15 minutes)",
        "rate(1 hour)",
        "rate(12 hours)",
        "rate(1 day)",
        "rate(7 days)",
        "cron(0/5 * * * ? *)",
        "cron(0 12 1 * ? *)",
        "cron(15 10 ? * MON-FRI *)",
    ],
)
def test_schedule_accepts_eventbridge_forms(schedule: str) -> None:
    assert parse_config(config(apply__schedule=schedule), file="x.json").apply.schedule == schedule
