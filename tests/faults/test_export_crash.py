"""SIGKILL at random instants of ``ddblake load --from-export`` in worker processes, then restart.

The export folder is made from a DynamoDB Local table after a random workload (every attribute
type, big items, type conflicts), as DynamoDB would write it: gzip data files and both manifests.
The load runs with two worker processes and small raw files, is killed one to four times, then
finishes; ``apply --once`` follows. The dump must equal the Scan, the history must hold one load
row per item, and no worker may outlive the process that started it.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from faultlib import (
    DDBLAKE,
    compare_items,
    dump_lake,
    history_rows,
    load_argv,
    merge,
    quiet_env,
    run,
    start,
    wait_for,
)
from test_crash import TRIALS, Kills, Trial, cycles, files, finish, load_rows_verdict, verdict_or_fail
from workload import scan_items

from ddblake.aws.clients import DynamoClients

pytestmark = [pytest.mark.faults, pytest.mark.functional]

EXPORT_ID = "01764316800000-crash000"


def write_export(root: Path, table: str, items: list[dict[str, Any]], parts: int) -> Path:
    """``items`` (DynamoDB JSON) as a full DYNAMODB_JSON export of ``table`` in ``parts`` data files."""
    folder = root / "AWSDynamoDB" / EXPORT_ID
    (folder / "data").mkdir(parents=True)
    manifest = []
    for n in range(parts):
        mine = items[n::parts]
        data = gzip.compress("".join(json.dumps({"Item": item}) + "\n" for item in mine).encode())
        key = f"AWSDynamoDB/{EXPORT_ID}/data/part{n:02d}.json.gz"
        (root / key).write_bytes(data)
        digest = hashlib.md5(data, usedforsecurity=False).digest()
        md5, etag = base64.b64encode(digest).decode(), digest.hex()
        manifest.append({"itemCount": len(mine), "md5Checksum": md5, "etag": etag, "dataFileS3Key": key})
    (folder / "manifest-files.json").write_text("".join(json.dumps(m) + "\n" for m in manifest))
    arn = f"arn:aws:dynamodb:us-east-1:111111111111:table/{table}"
    summary = {
        "exportArn": f"{arn}/export/{EXPORT_ID}",
        "tableArn": arn,
        "exportTime": "2026-11-28T08:00:00.000Z",
        "manifestFilesS3Key": f"AWSDynamoDB/{EXPORT_ID}/manifest-files.json",
        "itemCount": len(items),
        "outputFormat": "DYNAMODB_JSON",
    }
    (folder / "manifest-summary.json").write_text(json.dumps(summary))
    return folder


def alive_with(mark: str) -> list[int]:
    """Live processes (not zombies) whose environment holds ``mark``: a load and its workers."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            marked = mark.encode() in environ.read_bytes()
            state = (environ.parent / "status").read_text()
        except OSError:  # ended while being read, or not ours to read
            continue
        if marked and "\nState:\tZ" not in state:
            found.append(int(environ.parent.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads the process table from /proc")
@pytest.mark.parametrize("trial", range(TRIALS))
def test_export_load_in_worker_processes_killed_at_random_instants(
    trial: int,
    clients: DynamoClients,
    make_table: Any,
    table_name: str,
    tmp_path: Path,
) -> None:
    t = Trial.start("export-load", trial, clients, make_table(table_name, stream=False), tmp_path)
    rng, table, lake, storage = t.rng, t.table, t.lake, t.storage
    t.work.run(rng.randrange(150, 400))
    source = scan_items(clients, table)
    folder = write_export(tmp_path / "export", table, list(source.values()), parts=rng.randrange(2, 6))
    argv = [
        *load_argv(),
        "--table",
        table,
        "--lake",
        lake,
        "--from-export",
        str(folder),
        "--keys",
        "pk,sk",
        "--workers",
        "2",
    ]
    mark = f"crash-{uuid.uuid4().hex}"  # inherited by the workers: finds them after their parent died
    env = quiet_env(DDBLAKE_LOAD_BUFFER_BYTES=str(rng.choice([2000, 6000])), DDBLAKE_TEST_MARK=mark)
    kills = Kills()
    for _cycle in cycles(rng, kills):
        proc = start(argv, env)
        kills.kill(proc, rng, counter=files(storage, f"raw/{table}"), delay=(0.0, 1.5), steps=(1, 6))
        if not kills.count and proc.returncode == 0:  # the load finished first: a new load, killed sooner
            shutil.rmtree(lake)
    # The workers die with the load that started them (and at worst stop after their raw file).
    wait_for(lambda: not alive_with(mark), "the killed loads' worker processes to end", timeout=30)
    finished = run(argv, env)
    assert finished.returncode == 0, finished.stderr[-3000:]
    finish([str(DDBLAKE), "apply", "--table", table, "--lake", lake, "--once"], "apply --once")
    ids = [r["event_id"] for r in history_rows(lake, table)]
    history = load_rows_verdict(ids, len(source))
    verdict = merge(compare_items(source, dump_lake(lake, table)), history)
    verdict_or_fail("crash/export-load", kills.count, verdict, seed=t.seed)
