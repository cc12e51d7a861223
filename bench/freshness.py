"""Benchmark: how fresh the lake is — from a PutItem's return to the new value being visible
through ``query`` while ``ddblake sync`` runs continuously against DynamoDB Local.

Setup: DynamoDB Local in memory (``ddblake.local.dynamodb_local.DynamoDBLocal``), a table with a
stream (NEW_AND_OLD_IMAGES, key ``pk`` + ``sk``), and ``.venv/bin/ddblake sync --table T --lake L
--endpoint-url U`` as a subprocess, with its defaults (raw files cut every 0.2 s; apply woken by
each raw file capture writes, and polling every 1 s for files other writers add:
``ddblake.sync.SYNC_APPLY_POLL_SECONDS``). A warm-up item is put and awaited first, so the
measurement starts with sync past its first load of the (empty) table.

Then a writer thread makes ``--puts`` PutItems (50 full, 20 with ``--quick``), one every
``--interval`` seconds (0.5; a steady stream of changes, each item of mixed types, a counter
attribute ``v`` unique per put). The main thread polls the lake every ``--poll`` seconds (0.05)
with ``ddblake.lake.query.run_sql`` — the function behind ``ddblake query`` — for every item still
waiting. A put's latency is the start of the first query that saw its value minus the moment
PutItem returned: an upper bound (the value was visible by then; the query before did not see it).

The last line printed is one JSON object: ``"bench": "freshness"``, ``p50_s``, ``p95_s``, ``max_s``,
``trend`` (p95 of the first and of the last third of the puts: does a long run slow down?),
``load_average`` (1 min, at the end), ``"ratio"`` = 60 / p95 — the reference architecture's
Firehose buffers up to 60 s before it even writes a file, so its freshness is at best 60 s; AWS's
zero-ETL integration refreshes every 15 minutes at best. Goal: p95 <= 2 s.

Usage: ``python bench/freshness.py [--quick] [--puts N] [--interval S] [--poll S]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO, percentile  # noqa: E402

from ddblake.aws.clients import build_dynamodb_clients  # noqa: E402
from ddblake.lake.catalog import LakeConfig, open_catalog  # noqa: E402
from ddblake.lake.query import run_sql  # noqa: E402
from ddblake.local.dynamodb_local import DynamoDBLocal  # noqa: E402
from ddblake.names import table_identifier  # noqa: E402

TABLE = "freshness-bench"
DDBLAKE = REPO / ".venv" / "bin" / "ddblake"
REFERENCE_BUFFER_S = 60.0


def item(i: int) -> dict[str, Any]:
    """Item ``i`` of mixed types; ``v`` is the value the poller waits for."""
    return {
        "pk": {"S": f"user#{i % 7}"},
        "sk": {"S": f"item#{i:05d}"},
        "v": {"N": str(i)},
        "name": {"S": f"name {i} Zoë"},
        "price": {"N": f"{i}.25"},
        "active": {"BOOL": i % 2 == 0},
        "blob": {"B": b"\x00\x01" + bytes([i % 256])},
        "tags": {"SS": ["a", f"t{i % 5}"]},
        "meta": {"M": {"n": {"N": str(i * 3)}, "s": {"S": "x"}}},
        "hist": {"L": [{"N": "1"}, {"S": "two"}]},
        "note": {"NULL": True},
    }


class Poller:
    """``run_sql`` on the lake: which of the awaited (sk, v) pairs are visible now."""

    def __init__(self, lake: str) -> None:
        config = LakeConfig.build(lake=lake)
        self.catalog = open_catalog(config, config.storage())
        self.namespace = config.namespace
        self.table = table_identifier(TABLE)

    def visible(self) -> dict[str, int]:
        try:
            _, rows = run_sql(self.catalog, self.namespace, f"SELECT sk, v FROM {self.table}")  # noqa: S608
        except Exception:  # the table does not exist yet, or has no column v yet
            return {}
        return {str(sk): int(v) for sk, v in rows if v is not None}


def _written_s(path: str) -> float:
    """Write time of a raw file, from its name ``<table>-<yyyy-MM-dd-HH-mm-ss>-<us>-<uuid>.gz``."""
    parts = path.rsplit("/", 1)[-1][len(TABLE) + 1 : -3].split("-")
    stamp = dt.datetime(*map(int, parts[:6]), tzinfo=dt.UTC)
    return stamp.timestamp() + int(parts[6]) / 1e6


def breakdown(
    lake: str, put_wall: dict[str, float], latencies: dict[str, float]
) -> tuple[dict[str, float], int]:
    """Median time per stage: capture (put -> raw file), apply (file -> commit), query (commit -> seen).

    Also returns how many puts the medians are over (those whose commit is still in the metadata).

    From the raw files' names (their write time) and the current-state snapshots (their time and the
    applied-file record each one points at); informational, clocks are this machine's wall clock.
    """
    from ddblake.changes.model import ChangeEvent
    from ddblake.lake.applied import PROPERTY, load_log
    from ddblake.lake.rawlog import list_raw_files, read_raw_file

    config = LakeConfig.build(lake=lake)
    storage = config.storage()
    file_of: dict[str, str] = {}
    for path in list_raw_files(storage, TABLE):
        for line in read_raw_file(storage, path).lines:
            ev = ChangeEvent.from_line(line)
            file_of.setdefault(str(ev.keys["sk"]["S"]), path)
    table = open_catalog(config, storage).load_table(f"{config.namespace}.{table_identifier(TABLE)}")
    commits = []
    for snap in sorted(table.snapshots(), key=lambda s: s.timestamp_ms):
        pointer = snap.summary.additional_properties.get(PROPERTY) if snap.summary else None
        if pointer:
            commits.append((snap.timestamp_ms / 1000, load_log(storage, pointer)))
    # Applied-file records are cumulative: once older snapshots are expired (docs/lake.md,
    # Maintenance), the oldest kept one also holds the files of the expired ones, so a file first
    # found there has no known commit time and is left out.
    expired = "ddblake.expired-through-ms" in table.properties
    capture, apply, query = [], [], []
    for sk, t_put in put_wall.items():
        path = file_of.get(sk)
        first = next((i for i, (_, log) in enumerate(commits) if path and log.contains(path)), None)
        if path is None or first is None or (first == 0 and expired) or sk not in latencies:
            continue
        done = commits[first][0]
        written = _written_s(path)
        capture.append(written - t_put)
        apply.append(done - written)
        query.append(latencies[sk] - (done - t_put))
    return {
        "capture_s": round(percentile(capture, 0.5), 3),
        "apply_s": round(percentile(apply, 0.5), 3),
        "query_s": round(percentile(query, 0.5), 3),
    }, len(apply)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 puts instead of 50")
    parser.add_argument("--puts", type=int, default=None, help="PutItems to time (50 full, 20 quick)")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between PutItems")
    parser.add_argument("--poll", type=float, default=0.05, help="seconds between lake queries")
    parser.add_argument("--timeout", type=float, default=60.0, help="give up on a put after this long")
    parser.add_argument("--workdir", default=None, help="keep the lake and logs here (default: a temp dir)")
    args = parser.parse_args()
    puts = args.puts or (20 if args.quick else 50)

    work = Path(args.workdir or tempfile.mkdtemp(prefix="ddblake-bench-freshness-"))
    work.mkdir(parents=True, exist_ok=True)
    lake = str(work / "lake")
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",  # noqa: S105 - DynamoDB Local accepts any
        "AWS_REGION": "us-east-1",
        "DDBLAKE_LOG_LEVEL": "WARNING",
    }
    os.environ.update({k: env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")})
    sync: subprocess.Popen[bytes] | None = None
    try:
        with DynamoDBLocal(in_memory=True, log_path=work / "dynamodb-local.log") as ddb:
            clients = build_dynamodb_clients(ddb.endpoint)
            clients.dynamodb.create_table(
                TableName=TABLE,
                KeySchema=[
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                AttributeDefinitions=[
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
                BillingMode="PAY_PER_REQUEST",
                StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
            )
            cmd = [str(DDBLAKE), "sync", "--table", TABLE, "--lake", lake, "--endpoint-url", ddb.endpoint]
            print(
                "running: "
                + " ".join(cmd[:1] + ["sync", "--table", TABLE, "--lake", "L", "--endpoint-url", "U"])
            )
            log = (work / "sync.log").open("wb")
            sync = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
            poller = Poller(lake)

            # Warm-up: the first item makes the tables; not timed.
            clients.dynamodb.put_item(TableName=TABLE, Item=item(0))  # type: ignore[arg-type]
            started = time.monotonic()
            while poller.visible().get("item#00000") != 0:
                if sync.poll() is not None or time.monotonic() - started > 120:
                    raise SystemExit(f"sync did not deliver the warm-up item (see {work / 'sync.log'})")
                time.sleep(0.1)
            print(f"warm-up item visible after {time.monotonic() - started:.2f} s")

            returned: dict[str, tuple[int, float]] = {}
            wall: dict[str, float] = {}
            lock = threading.Lock()

            def writer() -> None:
                for i in range(1, puts + 1):
                    due = start + (i - 1) * args.interval
                    time.sleep(max(0.0, due - time.monotonic()))
                    clients.dynamodb.put_item(TableName=TABLE, Item=item(i))  # type: ignore[arg-type]
                    with lock:
                        returned[f"item#{i:05d}"] = (i, time.monotonic())
                        wall[f"item#{i:05d}"] = time.time()

            latencies: dict[str, float] = {}
            query_s: list[float] = []
            start = time.monotonic()
            thread = threading.Thread(target=writer, daemon=True)
            thread.start()
            while len(latencies) < puts:
                t_query = time.monotonic()
                seen = poller.visible()
                query_s.append(time.monotonic() - t_query)
                with lock:
                    waiting = {sk: iv for sk, iv in returned.items() if sk not in latencies}
                for sk, (i, t_put) in waiting.items():
                    if seen.get(sk) == i:
                        latencies[sk] = max(0.0, t_query - t_put)
                    elif t_query - t_put > args.timeout:
                        raise SystemExit(
                            f"{sk} not visible after {args.timeout:.0f} s (see {work / 'sync.log'})"
                        )
                if sync.poll() is not None:
                    raise SystemExit(f"sync exited with {sync.returncode} (see {work / 'sync.log'})")
                time.sleep(args.poll)
            thread.join()
    finally:
        if sync is not None and sync.poll() is None:
            sync.terminate()
            try:
                sync.wait(timeout=30)
            except subprocess.TimeoutExpired:
                sync.kill()
                sync.wait()

    stages, staged = breakdown(lake, wall, latencies)
    values = sorted(latencies.values())
    p50, p95 = percentile(values, 0.5), percentile(values, 0.95)
    # Does a long run slow down? p95 of the first and the last third of the puts, in put order.
    in_order = [latencies[sk] for sk in sorted(latencies)]
    third = max(1, len(in_order) // 3)
    trend = {
        "first_third_p95_s": round(percentile(in_order[:third], 0.95), 3),
        "last_third_p95_s": round(percentile(in_order[-third:], 0.95), 3),
    }
    for n, sk in enumerate(sorted(latencies), start=1):
        if n <= 3 or n > puts - 2:
            print(f"  {sk}: visible {latencies[sk]:.2f} s after PutItem returned")
    print(
        "median per stage: PutItem -> raw file written {capture_s:.2f} s, raw file -> current-state "
        "commit {apply_s:.2f} s, commit -> seen by a query {query_s:.2f} s".format(**stages)
    )
    print(
        f"{puts} PutItems, one every {args.interval} s: visible through query after p50 {p50:.2f} s, "
        f"p95 {p95:.2f} s, max {values[-1]:.2f} s (lake polled every {args.poll} s; one query took "
        f"{percentile(query_s, 0.5) * 1000:.0f} ms median). Reference: Firehose alone buffers up to "
        f"{REFERENCE_BUFFER_S:.0f} s; ratio = {REFERENCE_BUFFER_S:.0f} / p95 = {REFERENCE_BUFFER_S / p95:.1f}"
    )
    print(
        "p95 of the first third of the puts {first_third_p95_s:.2f} s, of the last third "
        "{last_third_p95_s:.2f} s".format(**trend)
    )
    summary = {
        "bench": "freshness",
        "puts": puts,
        "interval_s": args.interval,
        "poll_s": args.poll,
        "p50_s": round(p50, 3),
        "p95_s": round(p95, 3),
        "max_s": round(values[-1], 3),
        "min_s": round(values[0], 3),
        "query_median_ms": round(percentile(query_s, 0.5) * 1000, 1),
        "ratio": round(REFERENCE_BUFFER_S / p95, 2),
        "reference": "Firehose buffers up to 60 s before writing; ratio = 60 / p95",
        "goal_met": p95 <= 2.0,
        "stages_median_s": stages,
        "stages_puts": staged,
        "trend": trend,
        "load_average": round(os.getloadavg()[0], 2),
    }
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
