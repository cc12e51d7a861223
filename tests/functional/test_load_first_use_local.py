"""First uses of ``ddblake load`` against DynamoDB Local, through the command line a user types.

Running the same command again after a finished load, and ``--export-to`` at an endpoint without
exports: what the user reads on stderr, and what is left in the lake.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from capture_helpers import REPO

from ddblake.aws.clients import DynamoClients
from ddblake.lake.storage import Storage
from ddblake.load.state import EXPORT_REQUEST, SCAN_STATE, list_loads, read_state, state_path

pytestmark = pytest.mark.functional


def _table(clients: DynamoClients, name: str, count: int) -> str:
    clients.dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for i in range(count):
        clients.dynamodb.put_item(TableName=name, Item={"pk": {"S": f"k{i}"}})
    return name


def _load(table: str, lake: Path, endpoint: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "ddblake.cli.load_cmd",
            "--table",
            table,
            "--lake",
            str(lake),
            "--endpoint-url",
            endpoint,
            *extra,
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=dict(os.environ),
        timeout=120,
        check=False,
    )


def test_the_same_load_command_after_a_finished_load_says_it_starts_a_new_full_load(
    clients: DynamoClients, table_name: str, tmp_path: Path, dynamodb_local_endpoint: str
) -> None:
    table = _table(clients, table_name, 3)
    lake = tmp_path / "lake"
    first = _load(table, lake, dynamodb_local_endpoint)
    assert first.returncode == 0, first.stderr
    assert "already holds a finished load" not in first.stderr
    storage = Storage.from_uri(str(lake))
    done = read_state(storage, table, SCAN_STATE)
    assert done is not None and done.finished_us is not None

    again = _load(table, lake, dynamodb_local_endpoint)
    assert again.returncode == 0, again.stderr
    (line,) = [ln for ln in again.stderr.splitlines() if "already holds a finished load" in ln]
    assert "WARNING" in line and f"load {table}:" in line and f"scan load {done.load_id}" in line
    assert "finished 20" in line and "NEW full load" in line and "change history again" in line
    loads = list_loads(storage, table)
    assert len(loads) == 2 and all(s.finished_us is not None for s in loads), "the reload itself still runs"


def test_export_to_at_dynamodb_local_is_one_line_saying_to_scan_and_leaves_no_request(
    clients: DynamoClients, table_name: str, tmp_path: Path, dynamodb_local_endpoint: str
) -> None:
    table = _table(clients, table_name, 1)
    lake = tmp_path / "lake"
    run = _load(table, lake, dynamodb_local_endpoint, "--export-to", "s3://b/exports")
    assert run.returncode == 2, run.stderr
    (line,) = [ln for ln in run.stderr.splitlines() if ln.strip()]
    assert line.startswith(
        f"ddblake: error: cannot export table {table!r}: endpoint {dynamodb_local_endpoint}"
    )
    assert "(DynamoDB Local) has no export API" in line and "leave out --export-to" in line
    assert "no --endpoint-url, AWS_ENDPOINT_URL_DYNAMODB or AWS_ENDPOINT_URL" in line
    assert "failed: UnknownOperationException" not in line
    assert Storage.from_uri(str(lake)).read(state_path(table, EXPORT_REQUEST)) is None, "no export started"
