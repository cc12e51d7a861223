"""Benchmark: apply on items whose top-level attribute names are data (a column per name).

Attribute names such as ``stat_<day>`` give the current-state table a column each (docs/types.md,
"Attribute names that are data are not capped"), so every batch that brings new names makes the
table wider, and every file a batch rewrites carries every column. That cost follows the width.
Four steps of a batch cost the width *squared*: filling rows out to the table's columns
(``current.conform``, a search of the row's column list per column), adding the new columns
(pyiceberg's ``union_by_name``, which builds a struct of every column once per new column),
mapping each written file's columns to field IDs (pyiceberg's name mapping, per file) and
pyiceberg's lookup in that mapping, a search of every mapped field per column, in each schema
it converts. ddblake now does each once per column (``current.conform``,
``current._add_columns``, ``ddblake.lake.namelookup``, session 26) or once per batch
(``datafiles._task_schema``).

Side by side in one run, each side in a fresh child process, the same raw log of ``--batches``
files of ``--items`` items, each item with two attribute names of its own, applied batch by batch:

* ``ddblake``: apply as it ships;
* ``quadratic``: the same apply with those four steps done the earlier way (restored in the child).

Usage: ``python bench/widetable.py [--quick] [--batches B] [--items N]``. The last line printed is
one JSON object: ``"bench": "widetable"``, ``ratio`` (the quadratic side's seconds over ddblake's;
above 1 means ddblake is faster), ``last_batch_ratio`` (the same for the last batch alone), each
side's seconds, last batch, peak RSS and columns.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import T0_US, peak_rss_mb, run_side, side_ratio, write_changes

TABLE = "stats-table"


def _restore_quadratic_steps() -> None:
    """The four steps as ddblake did them before (same results, width-squared cost)."""
    import pyarrow as pa

    from ddblake.lake import current, datafiles, namelookup

    def conform(rows: pa.Table, schema: pa.Schema) -> pa.Table:
        arrays = []
        for field in schema:
            if field.name in rows.column_names:
                col = rows.column(field.name)
                arrays.append(col if col.type == field.type else col.cast(field.type))
            else:
                arrays.append(pa.nulls(rows.num_rows, field.type))
        return pa.table(arrays, schema=pa.schema([pa.field(f.name, f.type) for f in schema]))

    def add_columns(upd: Any, new: pa.Schema) -> None:
        upd.union_by_name(new)

    def task_schema(metadata: Any, rows: pa.Schema, downcast: bool, convert: Any) -> Any:
        return convert(
            rows,
            name_mapping=metadata.schema().name_mapping,
            downcast_ns_timestamp_to_us=downcast,
            format_version=metadata.format_version,
        )

    current.conform = conform  # type: ignore[assignment]
    current._add_columns = add_columns  # type: ignore[assignment]
    datafiles._task_schema = task_schema  # type: ignore[assignment]
    namelookup.install = lambda: None  # pyiceberg's own search of the mapping, per column


def child(lake: Path, batches: int, items: int, quadratic: bool) -> None:
    """One side: write the raw log, apply it batch by batch, print a JSON line."""
    import logging

    from ddblake.lake.apply import Applier, ApplyConfig
    from ddblake.lake.catalog import LakeConfig, open_catalog
    from ddblake.lake.storage import Storage

    logging.disable(logging.WARNING)  # the many-columns warning, once a batch
    if quadratic:
        _restore_quadratic_steps()
    storage = Storage.from_uri(str(lake))
    lake_config = LakeConfig.build(lake=str(lake))
    config = ApplyConfig.build(table=TABLE, lake=lake_config, once=True)
    seconds = []
    for b in range(batches):
        images = [
            {
                "pk": {"S": f"page#{n:07d}"},
                "title": {"S": f"page {n}"},
                f"views_{n}": {"N": str(n % 1000)},
                f"source_{n}": {"S": "web"},
            }
            for n in range(b * items, (b + 1) * items)
        ]
        write_changes(lake, TABLE, images, batch=b, first_us=T0_US + b * items * 1000)
        started = time.perf_counter()
        Applier(config, storage=storage).run_once()
        seconds.append(time.perf_counter() - started)
    table = open_catalog(lake_config, storage).load_table("ddb.stats_table")
    print(
        json.dumps(
            {
                "seconds": round(sum(seconds), 3),
                "batches_s": [round(s, 2) for s in seconds],
                "last_batch_s": round(seconds[-1], 3),
                "peak_rss_mb": round(peak_rss_mb()),
                "columns": len(table.schema().fields),
                "rows": table.scan().to_arrow().num_rows,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (4 batches of 300 items)")
    parser.add_argument("--batches", type=int, default=None)
    parser.add_argument("--items", type=int, default=None)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        lake, batches, items, side = args.child
        child(Path(lake), int(batches), int(items), side == "quadratic")
        return
    batches = args.batches or (4 if args.quick else 5)
    items = args.items or (300 if args.quick else 500)
    work = Path(tempfile.mkdtemp(prefix="ddblake-widetable-"))
    try:
        sides = {}
        for name in ("ddblake", "quadratic"):
            argv = [__file__, "--child", str(work / name), str(batches), str(items), name]
            sides[name] = run_side(name, argv)
        ours, theirs = sides["ddblake"], sides["quadratic"]
        ok = ours.get("ok") and theirs.get("ok")
        same = bool(ok and (ours["columns"], ours["rows"]) == (theirs["columns"], theirs["rows"]))
        summary = {
            "bench": "widetable",
            "batches": batches,
            "items_per_batch": items,
            "new_attribute_names_per_item": 2,
            "ratio": side_ratio(ours, theirs, "seconds"),
            "last_batch_ratio": side_ratio(ours, theirs, "last_batch_s"),
            "same_tables": same,
            "ddblake": ours,
            "quadratic": theirs,
        }
        print(json.dumps(summary))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
