"""Benchmark: the history's duplicate check on a load batch, as the load grows.

Every row of a load carries the load's one event time. Before ``ddblake.lake.seen``'s screen, each
apply batch looked for its events' IDs among all history rows at that time: every earlier row of
the load, so a batch's check grew with the load (and a whole load with its square). The screen
reads IDs only for events whose key the current state holds or that a REMOVE in the history could
cover; a batch of a load's new keys reads none.

Side by side in one run, on this machine: a history table holding ``N`` rows of one load (written
straight to Iceberg, N growing by ``--step`` each round), and a batch of ``--batch`` new load rows
at the same event time. Each round times ddblake's check (``seen.known_ids`` with the screen a
batch of new keys gets: no key present, nothing pending, after the REMOVE scan apply makes with its
lookup, ``seen.absent_removes``) and the baseline, the plain scan
(``seen.event_ids``, what every batch did before), median of ``--repeats`` each. Both must find
no duplicate; a second check with a tenth of the batch repeated from the history must find exactly
those with both.

Usage: ``python bench/dedup.py [--quick] [--rounds R] [--step N] [--batch N]``. The last line
printed is one JSON object: ``"bench": "dedup"``, ``ratio`` (plain over screened seconds at the
largest history), ``growth_plain`` and ``growth_screened`` (last round's seconds over the first's),
and per-round figures.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pyarrow as pa  # noqa: E402
from _common import keys_of  # noqa: E402

from ddblake.changes.resolve import Keyed, key_string, version_of  # noqa: E402
from ddblake.lake import seen  # noqa: E402
from ddblake.lake.apply import Applier, ApplyConfig  # noqa: E402
from ddblake.lake.catalog import LakeConfig  # noqa: E402
from ddblake.load.rows import load_event  # noqa: E402

TABLE = "bench-table"
LOAD_US = 1_764_316_800_000_000  # 2025-11-28T08:00:00Z


def _event_id(i: int) -> str:
    return f"load-bench-{i:010d}"


def history_rows(start: int, count: int, schema: pa.Schema) -> pa.Table:
    """``count`` history rows of load rows ``start``... (columns apply writes; short images)."""
    ids = range(start, start + count)
    keys = [key_string(keys_of(i)) for i in ids]
    version_prefix = f"{LOAD_US:020d}:{'':0>40}:"
    cols: dict[str, Any] = {
        "op": pa.array(["LOAD"] * count),
        "ttl": pa.array([False] * count),
        "event_time": pa.array([LOAD_US] * count, pa.timestamp("us", tz="UTC")),
        "event_id": pa.array([_event_id(i) for i in ids]),
        "seq": pa.nulls(count, pa.string()),
        "source": pa.array(["scan"] * count),
        "ingested_at": pa.array([LOAD_US] * count, pa.timestamp("us", tz="UTC")),
        "keys": pa.array(keys),
        "new_image": pa.array(keys),
        "old_image": pa.nulls(count, pa.string()),
        "_ddb_key": pa.array(keys),
        "_ddb_version": pa.array([version_prefix + _event_id(i) for i in ids]),
        "_ddb_raw_file": pa.array([f"raw/{TABLE}/2025/11/28/08/load-{i // 50_000:05d}.gz" for i in ids]),
    }
    return pa.table([cols[f.name] for f in schema], schema=schema)


def batch_changes(start: int, count: int) -> list[Keyed]:
    """A batch of load rows ``start``... at the load's event time, as apply holds them."""
    out = []
    for i in range(start, start + count):
        ev = load_event(
            table=TABLE,
            item=keys_of(i),  # the image does not matter to the check
            key_names=("pk", "sk"),
            make_id=lambda _keys, i=i: _event_id(i),
            event_time_us=LOAD_US,
            ingested_us=LOAD_US,
            source="scan",
        )
        out.append(Keyed(key_string(ev.keys), version_of(ev), ev))
    return out


def _median(fn: Callable[[], set[str]], repeats: int) -> tuple[float, set[str]]:
    times, out = [], set()
    for _ in range(repeats):
        started = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="3 rounds of 500,000 rows, batch 50,000")
    parser.add_argument("--rounds", type=int, default=None, help="history sizes (4)")
    parser.add_argument("--step", type=int, default=None, help="rows added per round (2,000,000)")
    parser.add_argument("--batch", type=int, default=None, help="events in the batch (200,000)")
    parser.add_argument("--repeats", type=int, default=3, help="timings per side per round")
    args = parser.parse_args()
    rounds = args.rounds or (3 if args.quick else 4)
    step = args.step or (500_000 if args.quick else 2_000_000)
    batch = args.batch or (50_000 if args.quick else 200_000)
    work = Path(tempfile.mkdtemp(prefix="ddblake-bench-dedup-"))
    out: dict[str, Any] = {"bench": "dedup", "batch": batch, "rounds": []}
    try:
        applier = Applier(ApplyConfig.build(table=TABLE, lake=LakeConfig.build(lake=str(work / "lake"))))
        hist = applier._history()
        schema = hist.schema().as_arrow()
        far = 10 * rounds * step  # the batch's rows: never in the history
        fresh = batch_changes(far, batch)
        looked_up = {c.key for c in fresh}

        def screened(hist: Any) -> set[str]:
            # The REMOVE scan apply does with its lookup (none of these keys is in the table),
            # then the check the screen allows.
            removes = seen.absent_removes(hist, fresh, {})
            return seen.known_ids(hist, fresh, seen.Screen(looked_up, {}, frozenset(), removes))

        written = 0
        for _ in range(rounds):
            for start in range(written, written + step, 500_000):
                hist.append(history_rows(start, min(500_000, written + step - start), schema))
            written += step
            hist = applier.catalog.load_table(applier.history_id)
            plain_s, plain = _median(partial(seen.event_ids, hist, fresh), args.repeats)
            ours_s, ours = _median(partial(screened, hist), args.repeats)
            if plain or ours:
                raise SystemExit("a batch of new rows was found in the history")
            # Repeated rows: both must find exactly them (the screen looks for present keys).
            repeated = batch_changes(0, batch // 10) + fresh[: batch - batch // 10]
            present = {c.key: c.version for c in repeated[: batch // 10]}
            screen = seen.Screen({c.key for c in repeated}, present, frozenset())
            expect = {c.event.event_id for c in repeated[: batch // 10]}
            if seen.event_ids(hist, repeated) != expect or seen.known_ids(hist, repeated, screen) != expect:
                raise SystemExit("repeated rows were not all found")
            row = {"history_rows": written, "plain_s": round(plain_s, 3), "screened_s": round(ours_s, 3)}
            out["rounds"].append(row)
            print(
                f"history {written:,} rows: plain scan {plain_s:.3f} s, screened {ours_s:.3f} s "
                f"({plain_s / ours_s:.1f}x)",
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    first, last = out["rounds"][0], out["rounds"][-1]
    out["ratio"] = round(last["plain_s"] / last["screened_s"], 2)
    out["growth_plain"] = round(last["plain_s"] / first["plain_s"], 2)
    out["growth_screened"] = round(last["screened_s"] / first["screened_s"], 2)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
