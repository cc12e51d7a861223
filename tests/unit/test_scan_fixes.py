"""Scan load and Glue job fixes: the on-demand maximum, fractional budgets, finished segments saved at
once, state that grows with the segments started, the completed progress line, the resume advice
after throttling, the Glue job's export checks, and environment values named in range errors."""

from __future__ import annotations

import functools
import io
import json
import logging
import sys
import threading
import types
from pathlib import Path
from typing import Any

import pytest

from ddblake.errors import ConfigError, TransientError
from ddblake.gluejob import job
from ddblake.lake.storage import Storage
from ddblake.load import scan as scan_module
from ddblake.load.config import LoadConfig
from ddblake.load.plan import read_capacity, scan_budget
from ddblake.load.scan import LoadResult, ScanLoad
from ddblake.load.state import SCAN_STATE, LoadState, read_state, state_path
from ddblake.load.table import Page, TableInfo, TableReader
from ddblake.progress import NoProgress, Progress

ARN = "arn:aws:dynamodb:us-east-1:111111111111:table/tbl"


class Crash(BaseException):
    """Not an Exception: nothing catches it to tidy up, like SIGKILL."""


class Reader:
    """``count`` items split over the segments by position, ``page`` items a call."""

    where = "endpoint memory"

    def __init__(self, count: int, page: int = 5, **info: Any) -> None:
        self.items = [{"pk": {"S": f"k{i:05d}"}} for i in range(count)]
        self.page = page
        self.info = {"provisioned_rcu": 0.0, "on_demand": True, **info}
        self.calls: list[int] = []
        self.lock = threading.Lock()

    def describe(self) -> TableInfo:
        return TableInfo(
            name="tbl", arn=ARN, key_names=("pk",), item_count=len(self.items), size_bytes=0, **self.info
        )

    def scan_page(
        self, *, segment: int, total_segments: int, start_key: Any, consistent: bool, limit: int | None = None
    ) -> Page:
        with self.lock:
            self.calls.append(segment)
        mine = self.items[segment::total_segments]
        start = 0 if start_key is None else next(i for i, it in enumerate(mine) if it == start_key) + 1
        chunk = mine[start : start + self.page]
        last = dict(chunk[-1]) if chunk and start + self.page < len(mine) else None
        return Page(items=chunk, last_key=last, consumed=0.5)


def _run(reader: Any, lake: Path, progress: Progress | None = None, **kw: Any) -> tuple[ScanLoad, LoadResult]:
    state_seconds = kw.pop("state_seconds", 3600)  # an hour: only forced writes happen
    load = ScanLoad(
        LoadConfig(table="tbl", lake=str(lake), **kw),
        reader,
        Storage.from_uri(str(lake)),
        progress=progress or NoProgress("tbl"),
        state_seconds=state_seconds,
    )
    return load, load.run()


# --- 1. on-demand maximum -------------------------------------------------------------------------


def test_describe_reads_the_on_demand_maximum() -> None:
    import boto3
    from botocore.stub import Stubber

    creds = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    client = boto3.client("dynamodb", region_name="us-east-1", **creds)
    table = {
        "TableName": "tbl",
        "TableArn": ARN,
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "ItemCount": 10,
        "TableSizeBytes": 1000,
        "BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"},
        "ProvisionedThroughput": {"ReadCapacityUnits": 0, "WriteCapacityUnits": 0},
        "OnDemandThroughput": {"MaxReadRequestUnits": 200, "MaxWriteRequestUnits": -1},
        "WarmThroughput": {"ReadUnitsPerSecond": 12000, "WriteUnitsPerSecond": 4000, "Status": "ACTIVE"},
    }
    with Stubber(client) as stub:
        stub.add_response("describe_table", {"Table": table}, {"TableName": "tbl"})
        stub.add_response(
            "describe_table",
            {"Table": {**table, "OnDemandThroughput": {"MaxReadRequestUnits": -1}}},
            {"TableName": "tbl"},
        )
        reader = TableReader("tbl", client)  # type: ignore[arg-type]
        info = reader.describe()
        unlimited = reader.describe()
    assert info.on_demand and info.max_read_units == 200
    assert unlimited.max_read_units == 0, "-1 means no maximum"
    assert read_capacity(info.provisioned_rcu, 12_000, info.max_read_units)[0] == 200
    assert read_capacity(0, 12_000, 50_000)[0] == 12_000, "the smaller of the maximum and the assumption"
    assert read_capacity(400, 12_000, 200)[0] == 400, "provisioned capacity wins"


def test_the_budget_is_the_read_percent_of_the_on_demand_maximum(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="ddblake.load.scan"):
        load, result = _run(Reader(20, max_read_units=100.0), tmp_path, segments=2, read_percent=10)
    assert result.items == 20
    assert load.limiter.rate == pytest.approx(10.0), "10 % of MaxReadRequestUnits 100, not of 12,000"
    assert (
        "budget 10 RCU/s (10 % of 100 RCU, the table's on-demand maximum, MaxReadRequestUnits)" in caplog.text
    )
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="ddblake.load.scan"):
        load, _ = _run(Reader(20), tmp_path / "b", segments=2, read_percent=10)
    assert load.limiter.rate == pytest.approx(1200.0)
    assert "(10 % of 12,000 RCU, assumed for on-demand)" in caplog.text


# --- 2. fractional budgets ------------------------------------------------------------------------


def test_small_tables_get_their_fraction_of_capacity(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert scan_budget(5, 10) == pytest.approx(0.5) and scan_budget(1, 10) == pytest.approx(0.1)
    with caplog.at_level(logging.INFO, logger="ddblake.load.scan"):
        load, result = _run(
            Reader(3, provisioned_rcu=5.0, on_demand=False), tmp_path, segments=1, read_percent=10
        )
    assert result.items == 3
    assert load.limiter.rate == pytest.approx(0.5), "10 % of 5 RCU, not 1 RCU/s (20 %)"
    assert "budget 0.5 RCU/s (10 % of 5 RCU, provisioned)" in caplog.text
    # a page of about one second of budget: 0.5 unit x 8 KB / 1 KB items (then learned from the pages)
    assert "page limit 4" in caplog.text


# --- 3. a finished segment is saved at once -------------------------------------------------------


def test_a_finished_segment_is_recorded_before_the_next_one_is_read(tmp_path: Path) -> None:
    class CrashOnSegment1(Reader):
        def scan_page(self, **kw: Any) -> Page:
            if kw["segment"] == 1:
                raise Crash
            return super().scan_page(**kw)

    # one worker, state interval of an hour: only a forced write can record segment 0
    with pytest.raises(Crash):
        _run(CrashOnSegment1(40), tmp_path, segments=2, workers=1)
    state = read_state(Storage.from_uri(str(tmp_path)), "tbl", SCAN_STATE)
    assert state is not None and state.is_done("0") and state.items == 20
    rerun = Reader(40)
    _, result = _run(rerun, tmp_path, segments=2)
    assert result.resumed and result.parts_skipped == 1 and set(rerun.calls) == {1}


# --- 4. state cost follows the segments started ---------------------------------------------------


def test_state_holds_only_started_segments_and_compacts_finished_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: list[tuple[int, int]] = []
    real = scan_module.write_state

    def measuring(storage: Storage, state: LoadState) -> None:
        sizes.append((len(state.parts), len(state.to_json())))
        real(storage, state)

    monkeypatch.setattr(scan_module, "write_state", measuring)
    _, result = _run(Reader(30, page=2), tmp_path, segments=3000, workers=4)
    assert result.items == 30 and result.parts_total == 3000
    assert sizes[0] == (0, sizes[0][1]) and sizes[0][1] < 1000, "no entry per segment up front"
    assert max(n for n, _ in sizes) <= 4, "at most one entry per worker"
    assert max(b for _, b in sizes) < 2000, "finished segments are ranges, not entries"
    state = read_state(Storage.from_uri(str(tmp_path)), "tbl", SCAN_STATE)
    assert state is not None and state.done_count == 3000 and state.items == 30
    doc = json.loads((tmp_path / state_path("tbl", SCAN_STATE)).read_bytes())
    assert doc["parts"] == {} and doc["done_segments"]["ranges"] == "0-2999"
    assert state.parts["17"].done, "a compacted segment still answers as done"


def test_an_older_state_listing_every_segment_still_resumes(tmp_path: Path) -> None:
    reader = Reader(40, page=2)
    parts: dict[str, Any] = {
        str(s): {"done": False, "items": 0, "pages": 0, "last_key": None} for s in range(4)
    }
    parts["0"] = {"done": True, "items": 10, "pages": 5, "last_key": None}
    parts["2"] = {"done": True, "items": 10, "pages": 5, "last_key": None}
    parts["1"] = {"done": False, "items": 4, "pages": 2, "last_key": {"pk": {"S": "k00013"}}}
    doc = {
        "v": 1,
        "table": "tbl",
        "name": "scan",
        "kind": "scan",
        "load_id": "20260101T000000Z-abcdef01",
        "started_us": 1_767_225_600_000_000,
        "version_time_us": 1_767_225_539_999_999,
        "total_parts": 4,
        "finished_us": None,
        "updated_us": 1,
        "source": "x",
        "options": {"consistent": False},
        "items": 24,
        "parts": parts,
    }
    path = tmp_path / state_path("tbl", SCAN_STATE)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(doc, indent=1))
    state = read_state(Storage.from_uri(str(tmp_path)), "tbl", SCAN_STATE)
    assert state is not None and state.items == 24 and state.done_parts == {"0", "2"}
    assert set(state.parts) == {"1"} and state.pending_segments() == [1, 3]
    _, result = _run(reader, tmp_path, segments=4)
    assert result.resumed and result.parts_skipped == 2 and sorted(set(reader.calls)) == [1, 3]
    assert result.items == 6 + 10, "segment 1 after its last key (items 4.. of 10), segment 3 whole"
    after = read_state(Storage.from_uri(str(tmp_path)), "tbl", SCAN_STATE)
    assert after is not None and after.finished_us is not None and after.items == 40


# --- 5. the final progress line -------------------------------------------------------------------


def test_the_final_progress_line_shows_the_completed_work(tmp_path: Path) -> None:
    out = io.StringIO()
    progress = Progress("load tbl", stream=out, tty=False, interval=3600)
    reader = Reader(400, page=50)
    reader.describe = lambda: TableInfo("tbl", ARN, ("pk",), 10_000, 0, 0.0, True)  # type: ignore[method-assign]
    _run(reader, tmp_path, progress=progress, segments=4)
    last = out.getvalue().splitlines()[-1]
    assert last.startswith("load tbl: done, 400 items in 0:0") and last.endswith(", parts 4/4"), last
    assert "ETA" not in last and "%" not in last and "~" not in last


# --- 6. throttling that outlasts the retries ------------------------------------------------------


def test_giving_up_on_throttling_says_how_to_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Throttled(Reader):
        def scan_page(self, **kw: Any) -> Page:
            raise TransientError("Scan throttled: ProvisionedThroughputExceededException")

    monkeypatch.setattr(scan_module, "backoff_delay", lambda attempt, rng=None: 0.0)
    with pytest.raises(TransientError) as caught:
        _run(Throttled(10), tmp_path, segments=1)
    text = str(caught.value)
    assert text.startswith("load tbl: segment 0 ") and "throttled" in text
    assert "state is saved: run the same command again to resume" in text
    assert "lower --read-percent or raise the table's read capacity" in text


# --- 7. the Glue job's export checks --------------------------------------------------------------


def _glue_main(monkeypatch: pytest.MonkeyPatch, summary: dict[str, Any]) -> None:
    """Run the job's main() on fake Glue, Spark and S3; reaching the check phase fails the test."""
    entries = '{"dataFileS3Key": "AWSDynamoDB/E1/data/a.json.gz", "itemCount": 2, "md5Checksum": "x"}\n'
    bodies = {"exp/AWSDynamoDB/E1/manifest-summary.json": json.dumps(summary).encode()}
    bodies["exp/AWSDynamoDB/E1/manifest-files.json"] = entries.encode()

    class S3:
        def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803 - boto3's names
            return {"Body": io.BytesIO(bodies[Key])}

    class Spark:
        @staticmethod
        def getOrCreate() -> Spark:  # noqa: N802 - pyspark's name
            return Spark()

        def parallelize(self, *_: Any) -> Any:
            raise AssertionError("reached the check phase")

    fake = types.SimpleNamespace
    glue = fake(GlueContext=lambda sc: fake(), Job=lambda g: fake(init=lambda *a: None, commit=lambda: None))
    monkeypatch.setitem(sys.modules, "awsglue", types.ModuleType("awsglue"))
    monkeypatch.setitem(sys.modules, "awsglue.context", glue)  # type: ignore[arg-type]
    monkeypatch.setitem(sys.modules, "awsglue.job", glue)  # type: ignore[arg-type]
    monkeypatch.setitem(sys.modules, "pyspark", types.ModuleType("pyspark"))
    monkeypatch.setitem(sys.modules, "pyspark.context", fake(SparkContext=Spark))  # type: ignore[arg-type]
    monkeypatch.setitem(sys.modules, "boto3", fake(client=lambda name: S3()))  # type: ignore[arg-type]
    monkeypatch.setattr(job, "_s3", functools.cache(job._s3.__wrapped__))  # this test's boto3, one client
    job.main(
        [
            "--TABLE",
            "tbl",
            "--LAKE",
            "s3://lake/x",
            "--EXPORT_PATH",
            "s3://b/exp/AWSDynamoDB/E1/",
            "--KEYS",
            "pk",
        ]
    )


SUMMARY = {
    "exportArn": f"{ARN}/export/E1",
    "tableArn": ARN,
    "itemCount": 2,
    "exportTime": "2026-01-01T00:00:00Z",
    "outputFormat": "DYNAMODB_JSON",
    "exportType": "FULL_EXPORT",
}


def test_glue_job_refuses_an_export_of_another_table(monkeypatch: pytest.MonkeyPatch) -> None:
    other = {**SUMMARY, "tableArn": "arn:aws:dynamodb:us-east-1:111111111111:table/orders"}
    with pytest.raises(SystemExit) as caught:
        _glue_main(monkeypatch, other)
    text = str(caught.value)
    assert "s3://b/exp/AWSDynamoDB/E1/" in text and "'orders'" in text and "--TABLE 'tbl'" in text
    assert "nothing loaded" in text


def test_glue_job_refuses_an_ion_export(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SystemExit) as caught:
        _glue_main(monkeypatch, {**SUMMARY, "outputFormat": "ION"})
    text = str(caught.value)
    assert "s3://b/exp/AWSDynamoDB/E1/" in text and "'tbl'" in text and "--TABLE 'tbl'" in text
    assert "format ION" in text and "DYNAMODB_JSON" in text
    with pytest.raises(AssertionError, match="reached the check phase"):  # a good export goes on
        _glue_main(monkeypatch, SUMMARY)


# --- 8. environment values out of range -----------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "value"),
    [
        ("DDBLAKE_SEGMENTS", "1000001"),
        ("DDBLAKE_SEGMENTS", "0"),
        ("DDBLAKE_WORKERS", "257"),
        ("DDBLAKE_READ_PERCENT", "0"),
        ("DDBLAKE_READ_PERCENT", "151"),
        ("DDBLAKE_ON_DEMAND_RCU", "-1"),
        ("DDBLAKE_LOAD_BUFFER_BYTES", "0"),
        ("DDBLAKE_PAGE_ITEMS", "0"),
    ],
)
def test_an_out_of_range_environment_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError, match=f"{env}='{value}' is not valid"):
        LoadConfig.build(table="tbl", lake="/tmp/lake")
