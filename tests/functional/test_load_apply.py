"""Load, then ``apply --once``: ``dump`` gives back exactly what a Scan gives (with the lead's apply)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from capture_helpers import REPO, ddblake
from test_load_local import create_table, put_items, raw_scan

from ddblake.aws.clients import DynamoClients
from ddblake.cli.load_cmd import main as load_main
from ddblake.lake.storage import Storage
from ddblake.load import LoadConfig, run_load
from ddblake.load.state import SCAN_STATE, read_state
from ddblake.progress import NoProgress

pytestmark = pytest.mark.functional


def test_load_then_apply_gives_a_dump_equal_to_a_scan(
    clients: DynamoClients, table_name: str, tmp_path: Path, dynamodb_local_endpoint: str
) -> None:
    table = create_table(clients, table_name)
    put_items(clients, table, 1000)
    lake = str(tmp_path / "lake")
    assert load_main(["--table", table, "--lake", lake, "--endpoint-url", dynamodb_local_endpoint]) == 0
    applied = ddblake("apply", "--table", table, "--lake", lake, "--once", timeout=120)
    assert applied.returncode == 0, applied.stderr
    dumped = ddblake("dump", "--table", table, "--lake", lake, timeout=120)
    assert dumped.returncode == 0, dumped.stderr

    def key(item: dict[str, dict[str, str]]) -> tuple[str, str]:
        return item["pk"]["S"], item["sk"]["N"]

    dump = sorted((json.loads(line)["Item"] for line in dumped.stdout.splitlines()), key=key)
    scan = sorted(raw_scan(clients, table), key=key)
    assert len(dump) == 1000
    assert dump == scan, "every item exactly as DynamoDB returns it: numbers, binary, sets, empty maps"


@pytest.mark.long(240)
@pytest.mark.skipif(
    os.environ.get("LOAD_200K") == "0", reason="200,000 items take about three minutes; LOAD_200K=0 skips"
)
def test_200k_items_killed_rerun_apply_dump_equals_scan(
    clients: DynamoClients, table_name: str, tmp_path: Path, dynamodb_local_endpoint: str
) -> None:
    """The issue's acceptance run: 200,000 items, a load killed midway and rerun, apply, dump == Scan."""
    table = create_table(clients, table_name)
    put_items(clients, table, 200_000, make=small_item)
    lake = str(tmp_path / "lake")
    storage = Storage.from_uri(lake)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ddblake.cli.load_cmd",
            "--table",
            table,
            "--lake",
            lake,
            "--endpoint-url",
            dynamodb_local_endpoint,
            "--segments",
            "32",
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 600
    try:
        while True:
            state = read_state(storage, table, SCAN_STATE)
            if (state is not None and len(state.done_parts) >= 8) or proc.poll() is not None:
                break
            assert time.monotonic() < deadline
            time.sleep(0.05)  # polling a condition, bounded by the deadline
    finally:
        proc.send_signal(signal.SIGKILL)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, f"killed mid-run, not finished on its own: {stderr[-2000:]}"
    before = read_state(storage, table, SCAN_STATE)
    assert before is not None and before.finished_us is None
    done = before.done_parts
    assert 8 <= len(done) < 32
    config = LoadConfig.build(table=table, lake=lake, endpoint_url=dynamodb_local_endpoint)
    rerun = run_load(config, clients=clients, progress=NoProgress("t"))
    assert rerun.resumed and rerun.load_id == before.load_id
    assert rerun.parts_skipped == len(done) and not done & set(rerun.parts_read), (
        "finished segments not re-read"
    )
    after = read_state(storage, table, SCAN_STATE)
    assert after is not None and after.finished_us is not None
    for seg in done:
        assert after.parts[seg] == before.parts[seg], "finished segments untouched"
    assert ddblake("apply", "--table", table, "--lake", lake, "--once", timeout=1200).returncode == 0
    dumped = ddblake("dump", "--table", table, "--lake", lake, timeout=600)
    dump = sorted((json.loads(line)["Item"] for line in dumped.stdout.splitlines()), key=_key)
    assert len(dump) == 200_000
    assert dump == sorted(raw_scan(clients, table), key=_key)


def small_item(i: int) -> dict[str, Any]:
    return {
        "pk": {"S": f"u{i:07d}"},
        "sk": {"N": str(i % 5)},
        "v": {"N": f"{i}.5"},
        "b": {"B": bytes([i % 256])},
        "s": {"S": "x" * (i % 50)},
        "m": {"M": {"k": {"SS": ["a", str(i)]}}},
    }


def _key(item: dict[str, Any]) -> tuple[str, str]:
    return item["pk"]["S"], item["sk"]["N"]
