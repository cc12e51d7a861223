"""Benchmark: full loads — Scan from DynamoDB Local, and export files to lake tables.

Two comparisons, each on this machine, each measured end to end:

1. **Scan load** (``ratio``): ``ddblake load`` (parallel segmented Scan, rows to the raw log, state
   checkpoints) against the plain way — one thread, boto3 ``scan`` pages, ``TypeDeserializer`` per
   attribute, nothing written. Both read the same DynamoDB Local table. DynamoDB Local itself (one
   JVM on the same 2 cores, slow on large pages) is a large part of both figures; the number is what
   a user of this laptop gets. The load's raw log is then checked against a Scan: every item, exact.
   ``cpu_ratio`` compares the CPU seconds both sides cost (this process plus the JVM): on a machine
   busy with other work the wall-clock ratio understates what an idle one gives, and this does not.
2. **Export files to tables** (``ratio_vs_duckdb``): a DynamoDB export folder (DYNAMODB_JSON, gzip)
   loaded by ddblake — manifests and MD5s checked, rows to the raw log, then ``apply`` to the Iceberg
   current-state and change-history tables — against DuckDB's ``read_json`` writing one Parquet
   file from the same data files (no checks, no typing beyond what DuckDB infers, no history).

Usage: ``python bench/load.py [--quick] [--items N] [--export-items M]``. The last line printed is one
JSON object with ``"bench": "load"``, ``"ratio"`` (ddblake Scan-load items/s over the baseline's),
``"ratio_vs_duckdb"`` (DuckDB seconds over ddblake seconds; higher is better) and the raw figures.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from ddblake.aws.clients import build_dynamodb_clients  # noqa: E402
from ddblake.changes.model import ChangeEvent  # noqa: E402
from ddblake.lake.rawlog import iter_raw_files  # noqa: E402
from ddblake.lake.storage import Storage  # noqa: E402
from ddblake.load import LoadConfig, run_load  # noqa: E402
from ddblake.load.export_load import ExportLoad  # noqa: E402
from ddblake.local.dynamodb_local import DynamoDBLocal  # noqa: E402
from ddblake.progress import NoProgress  # noqa: E402

TABLE_ARN = "arn:aws:dynamodb:us-east-1:111111111111:table/bench"
_WORDS = ["alice", "bob", "", "Zoë", "日本語", "emoji 🎉", "O'Brien"]


def make_item(i: int, rnd: random.Random) -> dict[str, Any]:
    """A mixed item (~300 bytes) in DynamoDB JSON (binary as base64 text)."""
    return {
        "pk": {"S": f"user#{i:09d}"},
        "sk": {"N": str(i % 17)},
        "name": {"S": f"{rnd.choice(_WORDS)}{rnd.randrange(1000)}"},
        "price": {"N": f"{rnd.randrange(10**6)}.{rnd.randrange(100):02d}"},
        "qty": {"N": str(rnd.randrange(-1000, 10**6))},
        "big": {"N": str(rnd.randrange(10**37, 10**38))},
        "active": {"BOOL": rnd.random() < 0.5},
        "blob": {"B": base64.b64encode(rnd.randbytes(12)).decode()},
        "tags": {"SS": sorted({rnd.choice(_WORDS) + "x", "t"})},
        "meta": {
            "M": {
                "city": {"S": rnd.choice(_WORDS)},
                "n": {"N": str(rnd.randrange(100))},
                "nil": {"NULL": True},
            }
        },
        "hist": {"L": [{"N": str(rnd.randrange(100))}, {"S": "a"}]},
    }


def _to_client(item: dict[str, Any]) -> dict[str, Any]:
    return {**item, "blob": {"B": base64.b64decode(item["blob"]["B"])}}


def fill_table(client: Any, table: str, count: int) -> None:
    client.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    rnd = random.Random(7)
    for start in range(0, count, 25):
        batch = [
            {"PutRequest": {"Item": _to_client(make_item(i, rnd))}}
            for i in range(start, min(count, start + 25))
        ]
        client.batch_write_item(RequestItems={table: batch})


def baseline_scan(client: Any, table: str) -> tuple[int, float]:
    """Single-threaded boto3 Scan, every attribute through TypeDeserializer."""
    deserializer = TypeDeserializer()
    started = time.perf_counter()
    count = 0
    kwargs: dict[str, Any] = {"TableName": table}
    while True:
        page = client.scan(**kwargs)
        for item in page["Items"]:
            {k: deserializer.deserialize(v) for k, v in item.items()}
            count += 1
        if "LastEvaluatedKey" not in page:
            return count, time.perf_counter() - started
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def raw_scan_items(client: Any, table: str) -> dict[str, Any]:
    bodies: list[bytes] = []
    client.meta.events.register(
        "before-parse.dynamodb.Scan",
        lambda response_dict, **_: bodies.append(response_dict["body"]),
        unique_id="b",
    )
    items: dict[str, Any] = {}
    kwargs: dict[str, Any] = {"TableName": table}
    while True:
        page = client.scan(**kwargs)
        for item in json.loads(bodies[-1])["Items"]:
            items[item["pk"]["S"] + "|" + item["sk"]["N"]] = item
        if "LastEvaluatedKey" not in page:
            client.meta.events.unregister("before-parse.dynamodb.Scan", unique_id="b")
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _cpu(pid: int | None) -> float:
    """CPU seconds of this process (all threads) plus DynamoDB Local's JVM: the work, whatever the wait."""
    java = 0.0
    if pid is not None:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        java = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return time.process_time() + java


def bench_scan(items: int, work: Path, rounds: int) -> dict[str, Any]:
    with DynamoDBLocal(in_memory=True, log_path=work / "ddb-local.log") as ddb:
        clients = build_dynamodb_clients(ddb.endpoint)
        t0 = time.perf_counter()
        fill_table(clients.dynamodb, "bench", items)
        print(f"filled {items} items in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        creds = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}  # DynamoDB Local takes any
        plain = boto3.client("dynamodb", endpoint_url=ddb.endpoint, region_name="us-east-1", **creds)
        baseline_scan(plain, "bench")  # warm-up, untimed: DynamoDB Local's JIT and caches, for both sides
        base_s = ours_s = base_cpu = ours_cpu = float("inf")
        lake = work / "scan-lake"
        for _ in range(rounds):  # alternate, keep each side's best
            cpu0 = _cpu(ddb.pid)
            base_count, seconds = baseline_scan(plain, "bench")
            base_s, base_cpu = min(base_s, seconds), min(base_cpu, _cpu(ddb.pid) - cpu0)
            shutil.rmtree(lake, ignore_errors=True)
            config = LoadConfig.build(table="bench", lake=str(lake), endpoint_url=ddb.endpoint)
            cpu0, t0 = _cpu(ddb.pid), time.perf_counter()
            result = run_load(config, clients=clients, progress=NoProgress("bench"))
            ours_s, ours_cpu = min(ours_s, time.perf_counter() - t0), min(ours_cpu, _cpu(ddb.pid) - cpu0)
        expected = raw_scan_items(plain, "bench")
        got = {}
        for content in iter_raw_files(Storage.from_uri(str(lake)), "bench"):
            for line in content.lines:
                image = ChangeEvent.from_line(line).new_image or {}
                got[image["pk"]["S"] + "|" + image["sk"]["N"]] = image
    assert base_count == items == result.items, (base_count, items, result.items)
    return {
        "items": items,
        "segments": result.parts_total,
        "baseline_items_per_s": round(base_count / base_s),
        "ddblake_items_per_s": round(items / ours_s),
        "page_items": result.pages and round(items / result.pages),
        "ratio": round(base_s / ours_s, 2),
        "cpu_ratio": round(base_cpu / ours_cpu, 2),
        "load_average": round(os.getloadavg()[0], 1),
        "lossless": got == expected,
    }


def write_export(folder: Path, count: int, files: int) -> Path:
    root = folder / "AWSDynamoDB" / "01700000000000-bench"
    (root / "data").mkdir(parents=True)
    rnd = random.Random(11)
    entries = []
    per = -(-count // files)
    for f in range(files):
        lines = [
            json.dumps({"Item": make_item(i, rnd)}) + "\n" for i in range(f * per, min(count, (f + 1) * per))
        ]
        data = gzip.compress("".join(lines).encode(), compresslevel=6)
        key = f"AWSDynamoDB/01700000000000-bench/data/part{f:03d}.json.gz"
        (folder / key).write_bytes(data)
        digest = hashlib.md5(data, usedforsecurity=False).digest()
        entries.append(
            {
                "itemCount": len(lines),
                "md5Checksum": base64.b64encode(digest).decode(),
                "etag": digest.hex(),
                "dataFileS3Key": key,
            }
        )
    (root / "manifest-files.json").write_text("".join(json.dumps(e) + "\n" for e in entries))
    (root / "manifest-summary.json").write_text(
        json.dumps(
            {
                "exportArn": f"{TABLE_ARN}/export/01700000000000-bench",
                "tableArn": TABLE_ARN,
                "exportTime": "2026-11-28T08:00:00Z",
                "itemCount": count,
                "outputFormat": "DYNAMODB_JSON",
                "manifestFilesS3Key": "AWSDynamoDB/01700000000000-bench/manifest-files.json",
            }
        )
    )
    return root


MEASURED = "export files -> raw log -> Iceberg current + history tables (apply --once)"


def _apply(lake: Path) -> None:
    """Raw log → Iceberg tables, as ``ddblake apply --once`` does."""
    from ddblake.lake.apply import ApplyConfig
    from ddblake.lake.catalog import LakeConfig
    from ddblake.lake.service import run_apply

    run_apply(ApplyConfig.build(table="bench", lake=LakeConfig.build(lake=str(lake)), once=True))


def bench_export(items: int, work: Path) -> dict[str, Any]:
    import duckdb

    folder = write_export(work / "export", items, files=4)
    lake = work / "export-lake"
    t0 = time.perf_counter()
    load = ExportLoad(
        "bench",
        str(folder),
        Storage.from_uri(str(lake)),
        key_names=lambda: ("pk", "sk"),
        buffer_bytes=32 * 1024 * 1024,
        progress=NoProgress("bench"),
    ).run()
    t_load = time.perf_counter() - t0
    _apply(lake)
    ours_s = time.perf_counter() - t0
    out = work / "duck.parquet"
    t0 = time.perf_counter()
    con = duckdb.connect()
    glob = str(folder / "data" / "*.json.gz")
    # paths made by this script in its own temporary folder, not user input
    con.execute(
        f"COPY (SELECT * FROM read_json('{glob}', format='newline_delimited')) TO '{out}' (FORMAT parquet)"  # noqa: S608
    )
    duck_s = time.perf_counter() - t0
    duck_rows = con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()  # noqa: S608
    assert load.items == items and duck_rows is not None and duck_rows[0] == items
    return {
        "export_items": items,
        "measured": MEASURED,
        "ddblake_export_s": round(ours_s, 3),
        "ddblake_export_to_raw_s": round(t_load, 3),
        "duckdb_s": round(duck_s, 3),
        "ratio_vs_duckdb": round(duck_s / ours_s, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes, under two minutes")
    parser.add_argument("--items", type=int, default=None, help="items in the DynamoDB Local table")
    parser.add_argument("--export-items", type=int, default=None, help="items in the export folder")
    args = parser.parse_args()
    items = args.items or (20_000 if args.quick else 200_000)
    export_items = args.export_items or (50_000 if args.quick else 500_000)
    work = Path(tempfile.mkdtemp(prefix="ddblake-bench-load-"))
    try:
        scan = bench_scan(items, work, 1 if args.quick else 3)
        print(f"scan: {json.dumps(scan)}", file=sys.stderr)
        export = bench_export(export_items, work)
        print(f"export: {json.dumps(export)}", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({"bench": "load", **scan, **export}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
