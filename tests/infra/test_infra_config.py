"""The deployment configuration: defaults, derived names, and clear errors naming file and key."""

from __future__ import annotations

import copy
import json
import re
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


@pytest.mark.parametrize(
    ("region", "partition"),
    [
        ("eu-west-1", "aws"),
        ("cn-north-1", "aws-cn"),
        ("cn-northwest-1", "aws-cn"),
        ("us-gov-west-1", "aws-us-gov"),
        ("us-iso-east-1", "aws-iso"),
        ("us-isob-east-1", "aws-iso-b"),
        ("eu-isoe-west-1", "aws-iso-e"),
        ("us-isof-south-1", "aws-iso-f"),
        ("eusc-de-east-1", "aws-eusc"),
    ],
)
def test_partition_follows_region(region: str, partition: str) -> None:
    cfg = parse_config(config(region=region), file="x.json")
    assert cfg.partition == partition
    assert cfg.lake_bucket_arn.startswith(f"arn:{partition}:s3:::")


@pytest.mark.parametrize(
    "worker_type", ["G.1X", "G.2X", "G.4X", "G.8X", "G.12X", "G.16X", "R.1X", "R.2X", "R.4X", "R.8X"]
)
@pytest.mark.parametrize("glue_version", ["4.0", "5.0", "5.1"])
def test_every_spark_etl_worker_type_of_glue_4_and_later_is_taken(
    worker_type: str, glue_version: str
) -> None:
    """Glue's CreateJob takes G.1X-G.16X and R.1X-R.8X for Spark jobs from Glue 4.0 on (G.12X, G.16X
    and the R types need 4.0): every version ddblake takes. Some are offered in some regions only,
    which the deploy reports, so none is refused here."""
    cfg = parse_config(config(load__worker_type=worker_type, load__glue_version=glue_version), file="x.json")
    assert (cfg.load.worker_type, cfg.load.glue_version) == (worker_type, glue_version)


@pytest.mark.parametrize("region", ["us-isox-east-1", "us-iso-b-east-1", "Europe", "eu-west", "eusc-east-1"])
def test_region_forms_of_unknown_partitions_are_refused(region: str) -> None:
    assert error_of(config(region=region)).startswith(f"x.json: region: {region!r} is not an AWS region")


def test_an_unknown_region_name_warns() -> None:
    """A typo (us-esat-1) or an invented region is accepted, as a region newer than the list would
    be, but the synth warns."""
    from ddblake_infra.settings import KNOWN_REGIONS, region_warning

    for region in ("ap-northeast-9", "us-esat-1"):
        warning = region_warning(region)
        assert warning is not None and f"region {region} is not one of the regions ddblake knows" in warning
    assert all(region_warning(r) is None for r in KNOWN_REGIONS)
    assert {"eu-west-1", "ap-northeast-1", "cn-north-1", "us-gov-west-1", "eusc-de-east-1"} <= KNOWN_REGIONS


def test_the_unknown_region_warning_reaches_every_stack(tmp_path: Path) -> None:
    from ddblake_infra.build import add_stacks, make_app

    def warnings(region: str) -> list[str]:
        raw = config(region=region)
        app = make_app(outdir=str(tmp_path / region))
        (stack,) = add_stacks(app, parse_config(raw, file="x.json"), nag=False)
        return [str(m.data) for m in stack.node.metadata if m.type == "aws:cdk:warning"]

    (found,) = [w for w in warnings("us-esat-1") if "ddblake:unknown-region" in w]
    assert "x.json: region us-esat-1 is not one of the regions ddblake knows" in found
    assert not [w for w in warnings("us-east-1") if "unknown-region" in w]


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
        (
            config(deployment="cross-account", consumer_account="222222222222", lake__key_arn="alias/lake"),
            "lake.key_arn: 'alias/lake' is not a KMS key ARN",
        ),
        (config(lake__raw_expiration_days=0), "lake.raw_expiration_days: must be an integer from 1"),
        (config(lake__raw_expiration_days=30), "lake.raw_expiration_days: (30) must be later than"),
        (config(load__worker_type="Standard"), "load.worker_type: must be one of"),
        (
            config(load__worker_type="G.025X"),
            "x.json: load.worker_type: 'G.025X' is for Glue streaming jobs only (gluestreaming); the load "
            "job is a Spark ETL job (glueetl): use one of 'G.1X', 'G.2X', 'G.4X', 'G.8X', 'G.12X', 'G.16X', "
            "'R.1X', 'R.2X', 'R.4X', 'R.8X'",
        ),
        (
            config(load__worker_type="Z.2X"),
            "x.json: load.worker_type: 'Z.2X' is for Glue Ray jobs only (glueray); the load job is a Spark "
            "ETL job (glueetl): use one of 'G.1X'",
        ),
        (config(load__workers=1), "load.workers: must be an integer from 2 to 1000"),
        (
            config(deployment="cross-account", consumer_account="222222222222", load__external_id="abc123"),
            "load.external_id: applies to the roles of load.operator_arns only",
        ),
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


KEY_ARN_999 = "arn:aws:kms:eu-west-1:999999999999:key/0a3c2f1e-1111-2222-3333-444455556666"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (  # the misspelt key, not the required one it leaves missing
            {"Region": "eu-west-1", "producer_account": "111111111111", "table": MINIMAL["table"]},
            "x.json: Region: unknown key; keys are case-sensitive: write 'region'",
        ),
        (
            {**MINIMAL, "Removal_Policy": "destroy"},
            "x.json: Removal_Policy: unknown key; keys are case-sensitive: write 'removal_policy'",
        ),
        (  # unknown top-level keys come before any value check
            {**MINIMAL, "stream": {"shards": 0}, "colour": "blue"},
            "x.json: colour: unknown key (see docs/deploy.md",
        ),
        (
            {**MINIMAL, "table": {"Name": "orders", "partition_key": {"name": "pk"}}},
            "x.json: table.Name: unknown key; keys are case-sensitive: write 'name'",
        ),
        (
            config(stream__Shards=4),
            "x.json: stream.Shards: unknown key; keys are case-sensitive: write 'shards'",
        ),
        (
            config(producer_account=111111111111),
            'x.json: producer_account: must be a string: write it in quotes, "111111111111"',
        ),
        (
            config(consumer_account=111111111111),
            'x.json: consumer_account: must be a string: write it in quotes, "111111111111"',
        ),
        (  # single-account: the key is wrong whatever account it is in
            config(lake__key_arn=KEY_ARN_999),
            "x.json: lake.key_arn: applies to cross-account deployments only (the single-account stack "
            "creates the lake key itself); remove it",
        ),
        (
            config(lake__key_arn=KEY_ARN_999.replace("eu-west-1", "us-east-1")),
            "x.json: lake.key_arn: applies to cross-account deployments only",
        ),
    ],
)
def test_errors_point_at_what_to_change(raw: Any, expected: str) -> None:
    message = error_of(raw)
    assert message.startswith(expected), message
    assert "\n" not in message and "LakeKeyArn" not in message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            config(table__read_capacity=10),
            "x.json: table.read_capacity: applies to billing_mode PROVISIONED only: a PAY_PER_REQUEST "
            "table has no provisioned capacity",
        ),
        (
            config(table__billing_mode="PAY_PER_REQUEST", table__write_capacity=10),
            "x.json: table.write_capacity: applies to billing_mode PROVISIONED only",
        ),
        (
            config(load__external_id="abc123", load__source="export-files"),
            "x.json: load.external_id: applies to cross-account deployments only: it is the ExternalId "
            "the producer's read role requires",
        ),
        (config(load__external_id="abc123"), "x.json: load.external_id: applies to cross-account"),
    ],
)
def test_keys_that_would_be_ignored_are_refused(raw: Any, expected: str) -> None:
    assert error_of(raw).startswith(expected)


def test_keys_are_taken_where_they_apply() -> None:
    provisioned = parse_config(
        config(table__billing_mode="PROVISIONED", table__read_capacity=10, table__write_capacity=20),
        file="x.json",
    )
    assert (provisioned.table.read_capacity, provisioned.table.write_capacity) == (10, 20)
    cross = parse_config(
        config(
            deployment="cross-account",
            consumer_account="222222222222",
            load__source="export-files",
            load__external_id="abc123",
            load__operator_arns=["arn:aws:iam::222222222222:role/ops"],
        ),
        file="x.json",
    )
    assert cross.load.external_id == "abc123"
    assert cross.load.operator_arns == ("arn:aws:iam::222222222222:role/ops",)


def test_a_missing_load_script_names_file_and_key(tmp_path: Path) -> None:
    """Refused while reading the file (exit 2 from the app), worded for the user: what to set."""
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(config(load__script="src/nope.py")))
    with pytest.raises(InfraConfigError) as e:
        load_config(path)
    message = str(e.value)
    assert message.startswith(f"{path}: load.script: src/nope.py does not exist; "), message
    assert "set load.script to an existing Python file" in message and "load work" not in message


def test_staging_a_missing_load_script_names_file_and_key(tmp_path: Path) -> None:
    """The same, should the script vanish between reading the file and staging the asset."""
    from ddblake_infra.assets import glue_script

    with pytest.raises(InfraConfigError) as e:
        glue_script(tmp_path / "gone.py", "infra/config/mine.json")
    message = str(e.value)
    assert message.startswith("infra/config/mine.json: load.script: "), message
    assert "gone.py does not exist" in message and "load work" not in message


def test_long_table_names_get_default_names_that_fit() -> None:
    """A default name too long for its service (S3's 63 characters first, at a table name of about
    22) keeps the slug's start and adds 8 hex digits of the full name's SHA-256: stable from one synth
    to the next, and different for two long names that share a start."""
    from ddblake_infra.resource_names import _DEFAULT_NAMES, _NAME_RULES

    long = parse_config(
        config(table__name="customer-orders-history-v2", region="ap-southeast-2"), file="x.json"
    )
    assert (
        long.name("lake_bucket") == "ddblake-customer-orders-history-v2-111111111111-ap-southeast-2"
    )  # fits
    logs = long.name("access_log_bucket")
    assert len(logs) == 63 and re.fullmatch(
        r"ddblake-customer-orde-[0-9a-f]{8}-logs-111111111111-ap-southeast-2", logs
    )
    assert long.name("transform_function") == "ddblake-customer-orders-history-v2-transform"  # fits
    for name in ("a" * 200, "a" * 199 + "b", "Orders.By.Customer.And.Region.2024"):
        cfg = parse_config(config(table__name=name, region="ap-southeast-2"), file="x.json")
        for key, (_, kind) in _DEFAULT_NAMES.items():
            pattern, max_len, _ = _NAME_RULES[kind]
            assert pattern.match(cfg.name(key)) and len(cfg.name(key)) <= max_len, (name, key)
    first = parse_config(config(table__name="a" * 200), file="x.json").name("lake_bucket")
    second = parse_config(config(table__name="a" * 199 + "b"), file="x.json").name("lake_bucket")
    assert first != second and first == parse_config(config(table__name="a" * 200), file="x.json").name(
        "lake_bucket"
    )


def test_a_default_name_that_fits_exactly_is_unchanged() -> None:
    """Existing deployments keep their buckets: only names over the limit are shortened."""
    slug = "t" * (63 - len("ddblake--111111111111-eu-west-1"))
    cfg = parse_config(config(table__name=slug, lake__access_logs=False), file="x.json")
    assert cfg.name("lake_bucket") == f"ddblake-{slug}-111111111111-eu-west-1"
    assert len(cfg.name("lake_bucket")) == 63


@pytest.mark.parametrize(
    "changes",
    [
        {"names__producer_copy_bucket": "Not_A_Bucket"},  # single-account: no producer-side copy
        {"names__producer_copy_firehose_role": "x" * 65, "names__read_role": "x" * 65},
        {"lake__access_logs": False, "names__access_log_bucket": "Not_A_Bucket"},
        {"lake__athena_workgroup": False, "names__athena_workgroup": "no spaces allowed"},
        {  # cross-account without a producer-side copy
            "deployment": "cross-account",
            "consumer_account": "222222222222",
            "names__producer_copy_bucket": "Not_A_Bucket",
        },
    ],
)
def test_names_of_resources_not_created_are_not_checked(changes: dict[str, Any]) -> None:
    parse_config(config(**changes), file="x.json")


def test_every_bad_name_is_reported_at_once() -> None:
    message = error_of(
        config(
            names__lake_bucket="Lake_Bucket",
            names__transform_function="ddblake.{table}",
            names__stream="s" * 129,
        )
    )
    assert message.startswith('x.json: names: 3 names are not valid, set each in "names" to a shorter'), (
        message
    )
    for key in (
        "names.lake_bucket: 'Lake_Bucket'",
        "names.transform_function: 'ddblake.orders.v2'",
        "names.stream",
    ):
        assert key in message
    assert "\n" not in message


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


def test_app_without_the_cdk_says_how_to_install_it(tmp_path: Path) -> None:
    """``npx cdk synth`` in an environment without the infra extra: one line saying what to install,
    exit code 2, no traceback (``-S``: no site-packages, so no aws_cdk; ddblake comes from src/)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {"PYTHONPATH": str(REPO_ROOT / "src"), "CDK_OUTDIR": str(tmp_path / "out")}
    proc = subprocess.run(
        [sys.executable, "-S", "infra/app.py"], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("ddblake infra: error: Python module 'aws_cdk' is not installed")
    assert "make synth" in line and "pip install -c constraints.txt -e '.[infra]'" in line


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
        "cron(61 * * * ? *)",  # minute out of range
        "cron(a b c d ? f)",
        "cron(0 24 * * ? *)",
        "cron(0 12 32 * ? *)",
        "cron(0 12 0 * ? *)",
        "cron(0 12 * 13 ? *)",
        "cron(0 12 * FOO ? *)",
        "cron(0 12 ? * 8 *)",
        "cron(0 12 ? * MON#6 *)",
        "cron(0 12 * * ? 1969)",
        "cron(0 12 * * ? 2200)",
        "cron(0/0 * * * ? *)",  # step 0
        "cron(? 12 * * ? *)",  # '?' outside the day fields
        "cron(0 12 L * L *)",
        "cron(0 12 * * ? *,)",
        "cron()",
        "every 5 minutes",
    ],
)
def test_schedule_must_be_one_eventbridge_accepts(schedule: str) -> None:
    message = error_of(config(apply__schedule=schedule))
    assert message.startswith(f"x.json: apply.schedule: {schedule!r}"), message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("cron(61 * * * ? *)", "minutes field '61' is not valid: it takes 0-59"),
        ("cron(a b c d ? f)", "minutes field 'a' is not valid"),
        ("cron(0 12 * 13 ? *)", "month field '13' is not valid: it takes 1-12 or JAN-DEC"),
        ("cron(0 12 ? * 8 *)", "day-of-week field '8' is not valid: it takes 1-7 or SUN-SAT"),
        ("cron(0 12 * * ? 2200)", "year field '2200' is not valid: it takes 1970-2199"),
        ("cron(0 12 * * * *)", "EventBridge needs '?' in exactly one of day-of-month"),
    ],
)
def test_schedule_errors_name_the_field(schedule: str, expected: str) -> None:
    message = error_of(config(apply__schedule=schedule))
    assert message.startswith(f"x.json: apply.schedule: {schedule!r}: {expected}"), message


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
        "cron(0,30 8-18/2 ? * 2-6 2025-2199)",
        "cron(0 0 L * ? *)",
        "cron(0 0 LW * ? *)",
        "cron(0 0 15W * ? *)",
        "cron(0 0 ? JAN,JUL 6L *)",
        "cron(0 0 ? * 2#1 *)",
        "cron(0 0 ? * SUN#5 *)",
        "cron(*/15 * * DEC ? 1970)",
        "cron(59 23 31 12 ? 2199)",
    ],
)
def test_schedule_accepts_eventbridge_forms(schedule: str) -> None:
    assert parse_config(config(apply__schedule=schedule), file="x.json").apply.schedule == schedule
