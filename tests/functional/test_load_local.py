"""``ddblake load`` against DynamoDB Local: every item exactly as Scan returns it; crash and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from capture_helpers import REPO, read_events

from ddblake.aws.clients import DynamoClients
from ddblake.lake.catalog import LakeConfig as LakeSettings
from ddblake.lake.catalog import open_catalog
from ddblake.lake.report import lake_status
from ddblake.lake.storage import Storage
from ddblake.load import LoadConfig, run_load
from ddblake.load.rows import version_time_from_us
from ddblake.load.state import SCAN_STATE, read_state
from ddblake.progress import NoProgress

pytestmark = pytest.mark.functional


def create_table(clients: DynamoClients, name: str) -> str:
    """``pk`` (S) hash and ``sk`` (N) range, on-demand, no stream (a load needs none)."""
    clients.dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


def varied_item(i: int) -> dict[str, Any]:
    """An item with every attribute type, edge numbers, text and binary (boto3 client shapes)."""
    item: dict[str, Any] = {
        "pk": {"S": f"user#{i:06d}"},
        "sk": {"N": str(i % 13)},
        "text": {"S": 'Zoë 日本 🎉 "q" \\ ' * (i % 3)},
        "empty": {"S": ""},
        "n": {"N": "12345678901234567890123456789012345678" if i % 5 == 0 else f"-{i}.250"},
        "tiny": {"N": "1E-130"},
        "b": {"B": bytes([i % 256, 0, 255])},
        "flag": {"BOOL": i % 2 == 0},
        "nil": {"NULL": True},
        "ss": {"SS": ["a", f"s{i}"]},
        "ns": {"NS": ["1", "2.5", str(i + 3)]},
        "bs": {"BS": [b"\x00", bytes([i % 200 + 1])]},
        "m": {
            "M": {
                "l": {"L": [{"N": "1"}, {"M": {}}, {"L": []}, {"S": "x"}]},
                "deep": {"M": {"k": {"BOOL": False}}},
            }
        },
    }
    if i % 7 == 0:
        item["pad"] = {"S": "p" * 2000}
    return item


def put_items(
    clients: DynamoClients, table: str, count: int, make: Callable[[int], dict[str, Any]] = varied_item
) -> None:
    """Write ``count`` items in 25-item batches, several batches in flight for a big table.

    DynamoDB Local takes about a millisecond an item; four writers keep its JVM and this process
    busy at once (200,000 items: about three minutes one batch at a time).
    """

    def write(start: int) -> None:
        batch = [{"PutRequest": {"Item": make(i)}} for i in range(start, min(count, start + 25))]
        response = clients.dynamodb.batch_write_item(RequestItems={table: batch})  # type: ignore[dict-item]
        assert not response.get("UnprocessedItems"), "DynamoDB Local left items unwritten"

    with ThreadPoolExecutor(max_workers=4 if count > 1000 else 1) as pool:
        list(pool.map(write, range(0, count, 25)))


def raw_scan(clients: DynamoClients, table: str, segments: int = 8) -> list[dict[str, Any]]:
    """Every item as DynamoDB's own JSON (base64 binaries), straight from the wire.

    A parallel Scan of pages of at most 1,000 items: DynamoDB Local's cost per item grows with the
    page and with the position a page starts at, so one full-page Scan of 200,000 items takes
    minutes where this takes seconds. Each response's body is taken from the same thread's call.
    """
    bodies = threading.local()

    def keep(response_dict: dict[str, Any], **_: Any) -> None:
        bodies.last = response_dict["body"]

    def segment(number: int) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": table, "Limit": 1000}
        if segments > 1:
            kwargs |= {"Segment": number, "TotalSegments": segments}
        while True:
            page = clients.dynamodb.scan(**kwargs)
            items.extend(json.loads(bodies.last)["Items"])
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    events = clients.dynamodb.meta.events
    events.register("before-parse.dynamodb.Scan", keep, unique_id="test-raw-scan")
    try:
        with ThreadPoolExecutor(max_workers=min(segments, 4)) as pool:
            return [item for part in pool.map(segment, range(segments)) for item in part]
    finally:
        events.unregister("before-parse.dynamodb.Scan", unique_id="test-raw-scan")


def _key(item: dict[str, Any]) -> tuple[str, str]:
    return item["pk"]["S"], item["sk"]["N"]


def test_scan_load_writes_every_item_exactly_as_scan_returns_it(
    clients: DynamoClients, table_name: str, tmp_path: Path, dynamodb_local_endpoint: str
) -> None:
    table = create_table(clients, table_name)
    put_items(clients, table, 5000)
    lake = str(tmp_path / "lake")
    started = time.time_ns() // 1000
    config = LoadConfig.build(
        table=table, lake=lake, endpoint_url=dynamodb_local_endpoint, segments=6, workers=3
    )
    result = run_load(config, clients=clients, progress=NoProgress("t"), started_at_us=started)

    expected = {_key(it): it for it in raw_scan(clients, table)}
    events = read_events(lake, table)
    assert len(events) == 5000 == len(expected) == result.items
    assert {_key(e.new_image): e.new_image for e in events if e.new_image} == expected, "lossless"
    assert all(e.op == "LOAD" and e.source == "scan" and e.old_image is None for e in events)
    assert all(e.keys == {"pk": e.new_image["pk"], "sk": e.new_image["sk"]} for e in events if e.new_image)
    assert len({e.event_id for e in events}) == 5000
    assert {e.event_time_us for e in events} == {version_time_from_us(started)}
    state = read_state(Storage.from_uri(lake), table, SCAN_STATE)
    assert state is not None and state.finished_us is not None and state.total_parts == 6
    assert result.parts_total == 6 and sorted(result.parts_read, key=int) == [str(s) for s in range(6)]


def _load_process(table: str, lake: str, endpoint: str, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "DDBLAKE_ON_DEMAND_RCU": "20", "DDBLAKE_LOG_LEVEL": "WARNING"}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ddblake.cli.load_cmd",
            "--table",
            table,
            "--lake",
            lake,
            "--endpoint-url",
            endpoint,
            "--read-percent",
            "100",
            *extra,
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _wait_for_done_segments(storage: Storage, table: str, proc: subprocess.Popen[str], count: int) -> None:
    """Until the load's state records ``count`` finished segments (or the load ended by itself)."""
    deadline = time.monotonic() + 60
    while True:
        state = read_state(storage, table, SCAN_STATE)
        if state is not None and len(state.done_parts) >= count or proc.poll() is not None:
            return
        assert time.monotonic() < deadline, "timed out waiting for finished segments"
        time.sleep(0.02)  # polling a condition, bounded by the deadline


def test_a_killed_load_resumes_without_rereading_finished_segments(
    clients: DynamoClients, table_name: str, tmp_path: Path, dynamodb_local_endpoint: str
) -> None:
    table = create_table(clients, table_name)
    put_items(clients, table, 2000)
    lake = str(tmp_path / "lake")
    storage = Storage.from_uri(lake)
    # 20 RCU/s: the load takes seconds, so it can be killed with some segments done and some not
    proc = _load_process(table, lake, dynamodb_local_endpoint, "--segments", "12", "--workers", "2")
    try:
        _wait_for_done_segments(storage, table, proc, 3)
    finally:
        proc.send_signal(signal.SIGKILL)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, f"killed mid-run, not finished on its own: {stderr}"
    before = read_state(storage, table, SCAN_STATE)
    assert before is not None and before.finished_us is None
    done = before.done_parts
    assert 3 <= len(done) < 12

    config = LoadConfig.build(table=table, lake=lake, endpoint_url=dynamodb_local_endpoint)
    rerun = run_load(config, clients=clients, progress=NoProgress("t"))
    assert rerun.resumed and rerun.load_id == before.load_id and rerun.parts_total == 12
    assert rerun.parts_skipped == len(done) and not done & set(rerun.parts_read), (
        "finished segments not re-read"
    )
    after = read_state(storage, table, SCAN_STATE)
    assert after is not None and after.finished_us is not None
    for seg in done:
        assert after.parts[seg] == before.parts[seg], "finished segments untouched"

    events = read_events(lake, table)
    counts = Counter(e.event_id for e in events)
    assert len(counts) == 2000, "every item, one deterministic ID each"
    repeats = sum(counts.values()) - 2000
    assert repeats == sum(counts.values()) - after.items, "repeats only where a raw file outran its state"
    assert {e.event_time_us for e in events} == {before.version_time_us}
    expected = {_key(it): it for it in raw_scan(clients, table)}
    assert {_key(e.new_image): e.new_image for e in events if e.new_image} == expected


def test_ctrl_c_stops_a_load_with_a_stopped_line_not_an_error(
    clients: DynamoClients, table_name: str, tmp_path: Path, dynamodb_local_endpoint: str
) -> None:
    """The user asked it to stop: one ``stopped`` line saying how to resume, exit 1 (not complete)."""
    table = create_table(clients, table_name)
    put_items(clients, table, 2000)
    lake = str(tmp_path / "lake")
    storage = Storage.from_uri(lake)
    proc = _load_process(table, lake, dynamodb_local_endpoint, "--segments", "12", "--workers", "2")
    try:
        _wait_for_done_segments(storage, table, proc, 1)
        assert proc.poll() is None, "the load ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr and "ddblake: error" not in stderr, stderr
    assert lines[-1].startswith(f"ddblake: stopped: load {table}: stopped with "), stderr
    assert lines[-1].endswith("segment(s) unfinished; run the same command again to resume"), stderr
    state = read_state(storage, table, SCAN_STATE)
    assert state is not None and state.finished_us is None and 1 <= len(state.done_parts) < 12

    (shown,) = lake_status(open_catalog(LakeSettings.build(lake=lake), storage), "ddb", storage)
    assert shown.load_finished is False and shown.last_load is not None
    assert (
        f"scan {state.load_id} unfinished: {len(state.done_parts)} of 12 segment(s) done" in shown.last_load
    )

    config = LoadConfig.build(table=table, lake=lake, endpoint_url=dynamodb_local_endpoint)
    rerun = run_load(config, clients=clients, progress=NoProgress("t"))
    assert rerun.resumed and rerun.parts_skipped == len(state.done_parts)
    (shown,) = lake_status(open_catalog(LakeSettings.build(lake=lake), storage), "ddb", storage)
    assert shown.load_finished is True and shown.last_load is not None
    assert shown.last_load.startswith(f"scan {state.load_id} finished ") and shown.last_load.endswith(
        ": 2,000 item(s)"
    )


def test_load_cli_errors_are_one_line(table_name: str, tmp_path: Path, dynamodb_local_endpoint: str) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DDBLAKE_")}
        return subprocess.run(
            [sys.executable, "-m", "ddblake.cli.load_cmd", *args],
            capture_output=True,
            text=True,
            cwd=REPO,
            env=env,
            timeout=60,
            check=False,
        )

    usage = run("--lake", str(tmp_path))
    assert usage.returncode == 2 and usage.stderr.strip().splitlines()[-1].startswith(
        "ddblake: error: missing table"
    )
    missing = run(
        "--table", table_name, "--lake", str(tmp_path / "lake"), "--endpoint-url", dynamodb_local_endpoint
    )
    assert missing.returncode == 1
    (line,) = [ln for ln in missing.stderr.splitlines() if ln.startswith("ddblake: error")]
    assert f"table {table_name!r} not found" in line and dynamodb_local_endpoint in line
    bad = run("--table", "tbl", "--lake", str(tmp_path), "--from-export", "/x", "--export-to", "s3://b/p")
    assert bad.returncode == 2
