"""An s3:// lake with the AWS Glue Data Catalog, on moto's server (Glue and S3 have no local engine)."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from pathlib import Path

import boto3
import pyarrow.dataset as ds
import pytest
from lake_helpers import TABLE, event

from ddblake.errors import ConfigError
from ddblake.lake.apply import Applier, ApplyConfig
from ddblake.lake.catalog import LakeConfig, open_catalog
from ddblake.lake.query import run_sql
from ddblake.lake.rawlog import RawLogWriter
from ddblake.lake.reading import lazy_rows
from ddblake.lake.report import dump_items, lake_status

EVENTS = Path(__file__).resolve().parents[1] / "events"


class LambdaContext:
    """What the apply handler reads of a Lambda context: its identity and the time left."""

    function_name = "ddblake-apply"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ddblake-apply"
    aws_request_id = "req-1"

    def __init__(self, remaining_ms: int = 900_000) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def test_apply_query_dump_on_s3_with_glue(moto_s3, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AWS_ENDPOINT_URL_GLUE", moto_s3.endpoint)
    lake = f"s3://{moto_s3.bucket}/lake"
    config = LakeConfig.build(lake=lake, catalog="glue")
    storage = config.storage()
    writer = RawLogWriter(storage, TABLE, buffer_bytes=1 << 30, buffer_seconds=3600)
    for ev in (
        event("INSERT", "a", 1, image={"n": {"N": "1.5"}}),
        event("INSERT", "b", 2, image={"n": {"N": "2"}}),
        event("REMOVE", "b", 3),
    ):
        writer.add(ev.to_line())
    writer.flush()
    result = Applier(ApplyConfig.build(table=TABLE, lake=config, once=True), storage=storage).run_once()
    assert result.history_rows == 3

    catalog = open_catalog(config, storage)
    assert [json.loads(x)["Item"] for x in dump_items(catalog, "ddb", TABLE)] == [
        {"pk": {"S": "a"}, "n": {"N": "1.5"}}
    ]
    current = catalog.load_table("ddb.orders_table")
    snapshot = current.current_snapshot()
    assert snapshot is not None
    lazy = lazy_rows(current, snapshot.snapshot_id)
    assert lazy is not None and isinstance(lazy.source, ds.Dataset)  # read from S3 lazily
    assert run_sql(catalog, "ddb", "select pk, n from orders_table") == (["pk", "n"], [("a", Decimal("1.5"))])
    glue = boto3.client("glue", endpoint_url=moto_s3.endpoint)
    names = {t["Name"] for t in glue.get_tables(DatabaseName="ddb")["TableList"]}
    assert names == {"orders_table", "orders_table_changes"}
    s3 = boto3.client("s3", endpoint_url=moto_s3.endpoint)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=moto_s3.bucket, Prefix="lake/warehouse/")["Contents"]]
    assert any(k.endswith(".parquet") for k in keys)
    (status,) = lake_status(catalog, "ddb", storage)
    assert status.rows == 1


def test_an_s3_lake_takes_glue_by_default_and_sqlite_only_with_a_catalog_uri(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DDBLAKE_CATALOG", raising=False)
    monkeypatch.delenv("DDBLAKE_CATALOG_URI", raising=False)
    assert LakeConfig.build(lake="s3://bucket/lake").catalog == "glue"  # the contract's bare command line
    with pytest.raises(ConfigError, match="--catalog glue"):
        LakeConfig.build(lake="s3://bucket/lake", catalog="sql")  # asked for, and impossible: said why
    monkeypatch.setenv("DDBLAKE_CATALOG_URI", "sqlite:////tmp/x/catalog.db")
    assert LakeConfig.build(lake="s3://bucket/lake").catalog == "sql"
    monkeypatch.delenv("DDBLAKE_CATALOG_URI")
    monkeypatch.setenv("DDBLAKE_CATALOG", "sql")
    with pytest.raises(ConfigError, match="DDBLAKE_CATALOG=glue"):
        LakeConfig.build(lake="s3://bucket/lake")


def test_the_contract_command_lines_work_on_an_s3_lake_without_a_catalog_option(
    moto_s3,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """ARCHITECTURE.md: L is a local directory or s3://bucket/prefix, with no catalog flag."""
    from ddblake.cli.main import main

    monkeypatch.delenv("DDBLAKE_CATALOG", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL_GLUE", moto_s3.endpoint)
    monkeypatch.setenv("DDBLAKE_NAMESPACE", "bare_ns")  # moto's Glue is shared by this module's tests
    lake = f"s3://{moto_s3.bucket}/bare"
    writer = RawLogWriter(
        LakeConfig.build(lake=lake).storage(), TABLE, buffer_bytes=1 << 30, buffer_seconds=3600
    )
    writer.add(event("INSERT", "a", 1, image={"n": {"N": "7"}}).to_line())
    writer.flush()
    assert main(["apply", "--table", TABLE, "--lake", lake, "--once"]) == 0
    assert main(["dump", "--table", TABLE, "--lake", lake]) == 0
    assert main(["query", "--lake", lake, "--format", "json", "select n from orders_table"]) == 0
    assert main(["status", "--lake", lake, "--format", "json"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == '{"Item":{"pk":{"S":"a"},"n":{"N":"7"}}}'
    assert out[1] == '{"n":7}'
    assert json.loads("\n".join(out[2:]))["tables"][0]["rows"] == 1
    glue = boto3.client("glue", endpoint_url=moto_s3.endpoint)
    assert {t["Name"] for t in glue.get_tables(DatabaseName="bare_ns")["TableList"]} == {
        "orders_table",
        "orders_table_changes",
    }


def test_scheduled_apply_lambda_applies_and_emits_metrics(
    moto_s3,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from ddblake.aws.apply_handler import alarm_lag, handler

    monkeypatch.setenv("AWS_ENDPOINT_URL_GLUE", moto_s3.endpoint)
    lake = f"s3://{moto_s3.bucket}/lake"
    monkeypatch.setenv("DDBLAKE_LAKE", lake)
    monkeypatch.setenv("DDBLAKE_CATALOG", "glue")
    monkeypatch.setenv("DDBLAKE_NAMESPACE", "lambda_ns")
    storage = LakeConfig.build(lake=lake).storage()
    writer = RawLogWriter(storage, TABLE, buffer_bytes=1 << 30, buffer_seconds=3600)
    writer.add(event("INSERT", "a", 1, image={"secret": {"S": "do-not-log"}}).to_line())
    writer.add(b"garbage\n")
    writer.flush()

    # As deployed: the table in DDBLAKE_TABLE, the event EventBridge's schedule sends (no table).
    monkeypatch.setenv("DDBLAKE_TABLE", TABLE)
    scheduled = json.loads((EVENTS / "eventbridge-scheduled-event.json").read_text())
    out = handler(scheduled, LambdaContext())
    assert (out["files"], out["events"], out["quarantined"], out["pending_files"]) == (1, 1, 1, 0)
    printed = capsys.readouterr().out
    assert "do-not-log" not in printed
    emf = [json.loads(line) for line in printed.splitlines() if '"_aws"' in line]
    assert emf, printed
    metrics = {m["Name"] for d in emf[-1]["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert {
        "AppliedFiles",
        "AppliedEvents",
        "QuarantinedRecords",
        "ApplyLagSeconds",
        "LagSeconds",
        "PendingFiles",
        "FilesRewritten",
        "MaintenanceFailures",
        "MaintenanceSkipped",
    } <= metrics
    assert emf[-1]["MaintenanceFailures"] in (0, [0], [0.0]) and emf[-1]["MaintenanceSkipped"] in (
        0,
        [0],
        [0.0],
    )
    assert emf[-1]["Table"] == TABLE
    assert emf[-1]["QuarantinedRecords"] in (1, [1], [1.0])
    assert emf[-1]["ApplyLagSeconds"] in (0, [0], [0.0])  # nothing left to apply: not late, however old
    # LagSeconds is status's lag_seconds, the tables' staleness: the applied event is from 2025-11-28.
    (stale,) = emf[-1]["LagSeconds"] if isinstance(emf[-1]["LagSeconds"], list) else [emf[-1]["LagSeconds"]]
    assert out["lag_seconds"] is not None and stale > 86_400 and abs(stale - out["lag_seconds"]) < 60
    assert out["apply_lag_seconds"] == 0.0
    assert out["files_rewritten"] == 0 and emf[-1]["FilesRewritten"] in (0, [0], [0.0])  # a new table

    # An update rewrites the file that holds its key, and the run says so.
    writer.add(event("MODIFY", "a", 2, image={"secret": {"S": "do-not-log-either"}}).to_line())
    writer.flush()
    again = handler(scheduled, LambdaContext())
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert again["files_rewritten"] == 1 and emf[-1]["FilesRewritten"] in (1, [1], [1.0])

    # A backlog left for the next run: the oldest pending file's age; none when it is gone.
    assert (alarm_lag(7200.5, 3), alarm_lag(None, 3), alarm_lag(7200.5, 0)) == (7200.5, None, 0.0)

    # A table deployed and not delivered to yet (a quiet table): the scheduled run is no failure.
    quiet = handler({"table": "quiet-table"}, LambdaContext())
    assert (quiet["files"], quiet["events"], quiet["pending_files"]) == (0, 0, 0)
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert emf and emf[-1]["Table"] == "quiet-table" and emf[-1]["ApplyLagSeconds"] in (0, [0], [0.0])
    assert "LagSeconds" not in emf[-1] and quiet["lag_seconds"] is None  # no event applied: no staleness


def test_a_catalog_table_of_another_lake_is_refused(moto_s3, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from ddblake.errors import TerminalError

    monkeypatch.setenv("AWS_ENDPOINT_URL_GLUE", moto_s3.endpoint)
    for prefix in ("one", "two"):
        config = LakeConfig.build(
            lake=f"s3://{moto_s3.bucket}/{prefix}", catalog="glue", namespace="shared_ns"
        )
        storage = config.storage()
        writer = RawLogWriter(storage, TABLE, buffer_bytes=1 << 30, buffer_seconds=3600)
        writer.add(event("INSERT", "a", 1, image={"v": {"S": "1"}}).to_line())
        writer.flush()
        applier = Applier(ApplyConfig.build(table=TABLE, lake=config, once=True), storage=storage)
        if prefix == "one":
            applier.run_once()
        else:
            with pytest.raises(TerminalError, match="another --namespace"):
                applier.run_once()


def test_expiry_and_the_orphan_sweep_on_s3_delete_only_unreferenced_objects(  # type: ignore[no-untyped-def]
    moto_s3, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from ddblake.lake import maintain

    monkeypatch.setenv("AWS_ENDPOINT_URL_GLUE", moto_s3.endpoint)
    config = LakeConfig.build(lake=f"s3://{moto_s3.bucket}/sweep", catalog="glue", namespace="sweep")
    storage = config.storage()
    applier = Applier(
        ApplyConfig.build(table=TABLE, lake=config, once=True, keep_min_snapshots=2),
        storage=storage,
    )
    for i in range(4):
        writer = RawLogWriter(storage, TABLE, buffer_bytes=1 << 30, buffer_seconds=3600)
        writer.add(event("MODIFY", "a", i, image={"n": {"N": str(i)}}).to_line())
        writer.flush()
        applier.run_once()
    s3 = boto3.client("s3", endpoint_url=moto_s3.endpoint)
    orphan = "sweep/warehouse/ddb.db/orders_table/data/_ddb_bucket=1/orphan-from-a-crash.parquet"
    table = applier.catalog.load_table("sweep.orders_table")
    assert table.location().startswith(f"s3://{moto_s3.bucket}/sweep/warehouse/")
    s3.put_object(
        Bucket=moto_s3.bucket,
        Key=orphan.replace("ddb.db/orders_table", table.location().split("/warehouse/")[1]),
        Body=b"x",
    )

    report = maintain.maintain(applier, batch=1, now_ms=int(time.time() * 1000) + 4 * 86_400_000)
    assert report.failures == [] and all(n >= 2 for n in report.expired.values()) and len(report.expired) == 2
    assert report.cleanup.files > 0 and report.swept.files >= 1
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=moto_s3.bucket, Prefix="sweep/")["Contents"]}
    assert not any(k.endswith("orphan-from-a-crash.parquet") for k in keys)
    catalog = open_catalog(config, storage)
    assert [json.loads(x)["Item"] for x in dump_items(catalog, "sweep", TABLE)] == [
        {"pk": {"S": "a"}, "n": {"N": "3"}}
    ]
    for ident in ("sweep.orders_table", "sweep.orders_table_changes"):
        kept = catalog.load_table(ident)
        assert len(kept.snapshots()) == 2
        for snap in kept.snapshots():  # every kept snapshot reads: none of its objects was deleted
            assert kept.scan(snapshot_id=snap.snapshot_id).to_arrow().num_rows >= 1


def test_the_apply_lambda_leaves_what_its_time_cannot_cover_to_the_next_run(
    moto_s3,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ddblake.aws.apply_handler import handler

    monkeypatch.setenv("AWS_ENDPOINT_URL_GLUE", moto_s3.endpoint)
    lake = f"s3://{moto_s3.bucket}/short"
    monkeypatch.setenv("DDBLAKE_LAKE", lake)
    monkeypatch.setenv("DDBLAKE_CATALOG", "glue")
    monkeypatch.setenv("DDBLAKE_NAMESPACE", "short_ns")
    monkeypatch.setenv("DDBLAKE_APPLY_MAX_FILES", "1")  # one raw file a batch
    storage = LakeConfig.build(lake=lake).storage()
    for i in range(3):
        writer = RawLogWriter(storage, TABLE, buffer_bytes=1 << 30, buffer_seconds=3600)
        writer.add(event("INSERT", f"k{i}", i, image={"v": {"N": str(i)}}).to_line())
        writer.flush()

    from ddblake.lake import report

    status_listings: list[str] = []  # the status after apply reuses apply's listing: one S3 LIST a run
    real_list = report.list_raw_files
    monkeypatch.setattr(
        report, "list_raw_files", lambda *a, **k: status_listings.append("x") or real_list(*a, **k)
    )
    from ddblake.aws import apply_handler

    built: list[str] = []  # appliers built: a warm invocation keeps the cold start's catalog and storage
    real_applier = apply_handler.Applier
    monkeypatch.setattr(apply_handler, "Applier", lambda c: built.append(c.table) or real_applier(c))
    short = handler({"table": TABLE}, LambdaContext(31_000))  # 1 s after the 30 s reserve: one batch only
    assert (short["files"], short["pending_files"]) == (1, 2)
    rest = handler({"table": TABLE}, LambdaContext(900_000))
    assert (rest["files"], rest["pending_files"]) == (2, 0)
    assert status_listings == []
    assert built == [TABLE]
    # A third file landing between warm runs is found by the kept applier's listing.
    writer = RawLogWriter(storage, TABLE, buffer_bytes=1 << 30, buffer_seconds=3600)
    writer.add(event("INSERT", "k9", 9, image={"v": {"N": "9"}}).to_line())
    writer.flush()
    again = handler({"table": TABLE}, LambdaContext(900_000))
    assert (again["files"], again["events"], again["pending_files"]) == (1, 1, 0)
    assert built == [TABLE]
    # A kept applier whose listing had gone incremental (a big log: only recent hour folders between
    # full listings) still finds a file that landed late in an old hour folder: each run relists.
    from ddblake.lake.listing import RawListing

    kept = apply_handler._applier(ApplyConfig.build(table=TABLE, lake=LakeConfig.build(lake=None), once=True))
    assert built == [TABLE], "the kept applier, not a new one"
    kept.listing = RawListing(storage, TABLE, incremental_from=1)
    kept.listing.files()  # its full listing now; the next ones only the last hours' folders
    ten_hours_ago = float((int(time.time()) // 3600 - 10) * 3600)
    late = RawLogWriter(
        storage, TABLE, buffer_bytes=1 << 30, buffer_seconds=3600, clock=lambda: ten_hours_ago
    )
    late.add(event("INSERT", "late", 10, image={"v": {"N": "10"}}).to_line())
    late.flush()
    last = handler({"table": TABLE}, LambdaContext(900_000))
    assert (last["files"], last["events"]) == (1, 1)


def test_a_second_lake_in_a_shared_glue_database_keeps_its_files_in_its_own_bucket(
    moto_s3,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first stack creates the database with its own bucket as location (infra consumer.py);
    a second table's stack reuses the database (lake.create_database false) with its own bucket."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_GLUE", moto_s3.endpoint)
    s3 = boto3.client("s3", endpoint_url=moto_s3.endpoint)
    second, ns = f"{moto_s3.bucket}-second", f"shared_{moto_s3.bucket[-12:]}"  # one moto for all tests
    s3.create_bucket(Bucket=second)
    glue = boto3.client("glue", endpoint_url=moto_s3.endpoint)
    glue.create_database(
        DatabaseInput={"Name": ns, "LocationUri": f"s3://{moto_s3.bucket}/warehouse/{ns}.db"}
    )
    config = LakeConfig.build(lake=f"s3://{second}", catalog="glue", namespace=ns)
    storage = config.storage()
    writer = RawLogWriter(storage, "second-table", buffer_bytes=1 << 30, buffer_seconds=3600)
    writer.add(
        event("INSERT", "a", 1, image={"v": {"S": "1"}}).to_line().replace(TABLE.encode(), b"second-table")
    )
    writer.flush()
    Applier(ApplyConfig.build(table="second-table", lake=config, once=True), storage=storage).run_once()
    catalog = open_catalog(config, storage)
    for name in ("second_table", "second_table_changes"):
        assert catalog.load_table(f"{ns}.{name}").location() == f"s3://{second}/warehouse/{ns}.db/{name}"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=second, Prefix="warehouse/")["Contents"]]
    assert any(k.endswith(".parquet") for k in keys)
    first = s3.list_objects_v2(Bucket=moto_s3.bucket, Prefix="warehouse/")
    assert first.get("KeyCount", 0) == 0  # nothing in the other lake's bucket
