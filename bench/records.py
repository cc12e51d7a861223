"""Benchmark: the applied-file records' work in one apply batch, as the raw log grows.

Every batch that finds new raw files checks the whole listing against both tables' applied-file
records (``ddblake.lake.applied``): each folded day's digest, the files not yet applied, the two
folds and the two saves of the day names. Asked file by file, that took each file's hour a dozen
times: 0.55 s of CPU a batch at 100,000 raw files (a few hours of a busy local ``sync``, or a few
months of Firehose files), growing with the log. The listing is now worked out once per batch
(hours, days, bisection over the ordered names).

Side by side in one process, the same batch's questions (two ``checked``, ``pending``, two
``folded``, two ``day_names``) about the same listing of ``--files`` raw files over five days, with
three new files:

* ``ddblake``: the listing as apply has it (in order);
* ``file_by_file``: the same listing reversed, which sends every question the file-by-file way
  (the code path kept for listings that are not in order), i.e. what every batch did before.

Usage: ``python bench/records.py [--quick] [--files N] [--repeats R]``. The last line printed is one
JSON object: ``"bench": "records"``, ``ratio`` (file-by-file seconds over ddblake's, best of the
repeats; above 1 means ddblake is cheaper) and each side's milliseconds a batch.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from ddblake.lake.applied import AppliedLog, day_digests, day_names, hour_of, pending  # noqa: E402

TABLE = "example-ddb-table"
BEFORE = "2026/12/05/20"


def _listing(files: int) -> list[str]:
    hours = [f"2026/12/0{d}/{h:02d}" for d in range(1, 6) for h in range(24)]
    per = max(files // len(hours), 1)
    return sorted(
        f"raw/{TABLE}/{hour}/{TABLE}-1-{i:06d}-{uuid.uuid4().hex}.gz" for hour in hours for i in range(per)
    )


def _batch(listing: list[str], hist: AppliedLog, cur: AppliedLog) -> int:
    """One batch's questions to the records; returns how many files are pending."""
    h, c = hist.checked(listing), cur.checked(listing)
    todo = pending(listing, h, c)
    hf = h.with_files(set(todo)).folded(listing, "2026/12/05/22")
    cf = c.with_files(set(todo)).folded(listing, "2026/12/05/22")
    day_names(listing, hf.before_hour)
    day_names(listing, cf.before_hour)
    return len(todo)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 files")
    parser.add_argument("--files", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    files = args.files or (20_000 if args.quick else 100_000)
    base = _listing(files)
    digests = day_digests(base, BEFORE)
    recent = frozenset(p for p in base if hour_of(p) >= BEFORE)
    hist = AppliedLog(BEFORE, recent, digests)
    cur = AppliedLog(BEFORE, recent, digests)
    new = [f"raw/{TABLE}/2026/12/05/23/{TABLE}-9-{i}.gz" for i in range(3)]
    best = {"ddblake": float("inf"), "file_by_file": float("inf")}
    found = {}
    for _ in range(args.repeats):
        for side in best:
            listing = [*base, *new]  # a new list each batch, as the listing gives
            if side == "file_by_file":
                listing.reverse()
            started = time.perf_counter()
            found[side] = _batch(listing, hist, cur)
            best[side] = min(best[side], time.perf_counter() - started)
    assert found["ddblake"] == found["file_by_file"] == len(new), found
    summary = {
        "bench": "records",
        "files": len(base),
        "repeats": args.repeats,
        "ddblake_ms": round(best["ddblake"] * 1000, 1),
        "file_by_file_ms": round(best["file_by_file"] * 1000, 1),
        "ratio": round(best["file_by_file"] / best["ddblake"], 2),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
