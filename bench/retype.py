"""Benchmark: a whole-table retype (a map's number gaining a fraction), file by file or at once.

When a batch changes a column in a way the rows already written cannot follow (int64 to decimal, a
type conflict: docs/types.md, Retyping), every row is typed again from its ``_ddb_item``.
ddblake does it one data file at a time (``ddblake.lake.retyping``: two passes, memory for one
file). Before session 25 it read the whole table into memory and parsed every item at once, which
this bench restores in its child as the baseline (the code as it was, below).

Side by side in one run, each side in a fresh child process (its own peak RSS), each on its own
lake built alike: a current-state table of ``--rows`` items (a map ``m`` of two keys, a number, a string),
then one batch of one item whose map's number has a fraction (``m.b`` int64 to decimal), which
retypes every row. (Until session 26 the batch gave the map a third key, which now adds a field in
place: bench/mapkeys.py.)

Usage: ``python bench/retype.py [--quick] [--rows N]``. The last line printed is one JSON object:
``"bench": "retype"``, ``rss_ratio`` (the whole-table side's peak RSS over ddblake's; above 1 means
ddblake holds less), ``time_ratio`` (the whole-table side's seconds over ddblake's), each side's
seconds and peak RSS, and ``same_rows`` (both tables hold the same rows after the retype).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import T0_US, built_sides, peak_rss_mb, same_digest, side_ratio, write_changes

TABLE = "retype-table"


def _write(lake: Path, batch: int, images: list[dict[str, Any]]) -> None:
    write_changes(lake, TABLE, images, batch=batch, first_us=T0_US + batch * 10**9, step_us=1, op="MODIFY")


def _apply(lake: Path) -> None:
    from ddblake.lake.apply import Applier, ApplyConfig
    from ddblake.lake.catalog import LakeConfig

    config = ApplyConfig.build(table=TABLE, lake=LakeConfig.build(lake=str(lake)), once=True)
    Applier(config).run_once()


def _restore_whole_table_retype() -> None:
    """The retype as ddblake did it before: the whole table read, parsed and typed at once."""
    import json as _json

    import pyarrow as pa
    import pyarrow.compute as pc

    from ddblake.lake import apply as apply_module
    from ddblake.lake import current, untypedcols
    from ddblake.lake.commits import replace_table
    from ddblake.lake.current import META_COLUMNS
    from ddblake.lake.files import with_hashes

    def retype(keep: Any, upserts: Any, buckets: int, schema: Any, item_texts: Any, untyped: Any) -> Any:
        keep = with_hashes(keep)
        items = [_json.loads(s) for s in keep.column("_ddb_item").to_pylist()]
        have = {f.name: f for f in keep.schema}
        changed = {f.name for f in current.changed_columns(have, schema)} - set(META_COLUMNS)
        news = [_json.loads(t) for t in item_texts]
        base = current.attribute_schema(pa.schema([f for f in schema if f.name not in changed]), untyped)
        joint, old_untyped = current.typed_dicts([*items, *news], base, evolve=True, have=schema)
        old = joint.slice(0, len(items))
        for name in META_COLUMNS:
            old = old.append_column(name, keep.column(name).cast(META_COLUMNS[name]))
        new = current.typed_rows(upserts, buckets, old.schema, item_texts)
        final = new.schema
        if not final.remove_metadata().equals(old.schema.remove_metadata()):
            old = current.typed_items(items, current.attribute_schema(final), evolve=False, have=final)
            for name in META_COLUMNS:
                old = old.append_column(name, keep.column(name).cast(META_COLUMNS[name]))
        joined = untypedcols.join_untyped(old_untyped, untypedcols.untyped_columns(new.schema))
        rows = pa.concat_tables([current.conform(old, final), current.conform(new, final)])
        rows = pa.Table.from_arrays(rows.columns, schema=final.remove_metadata())
        left = untypedcols.without_columns(joined, current.attribute_columns(final))
        return untypedcols.with_untyped(rows, left)

    def retype_table(
        tx: Any,
        cur: Any,
        changed: Any,
        upserts: Any,
        buckets: int,
        wanted: Any,
        item_texts: Any,
        snapshot_properties: Any,
    ) -> int:
        everything = cur.scan().to_arrow()
        drop = pc.is_in(everything.column("_ddb_key"), value_set=pa.array(list(changed), pa.string()))
        keep = everything.filter(pc.invert(drop))
        rows = retype(keep, upserts, buckets, wanted, item_texts, current.untyped_shapes(cur))
        target = current.evolve(tx, cur, rows.schema, retyped=True)
        return replace_table(tx, cur, current.conform(rows, target.schema), snapshot_properties)

    apply_module.retype_table = retype_table  # type: ignore[assignment]


def child_build(lake: Path, rows: int) -> None:
    images = [
        {"pk": {"S": f"k{i:08d}"}, "m": {"M": {"a": {"S": "x"}, "b": {"N": str(i)}}}, "v": {"S": "y" * 50}}
        for i in range(rows)
    ]
    _write(lake, 0, images)
    _apply(lake)
    print(json.dumps({"rows": rows}))


def child_retype(lake: Path, whole_table: bool) -> None:
    from ddblake.lake.catalog import LakeConfig, open_catalog
    from ddblake.lake.storage import Storage

    if whole_table:
        _restore_whole_table_retype()
    _write(lake, 1, [{"pk": {"S": "k00000002"}, "m": {"M": {"a": {"S": "x"}, "b": {"N": "2.5"}}}}])
    started = time.perf_counter()
    _apply(lake)
    seconds = time.perf_counter() - started
    peak = peak_rss_mb()  # before the check below reads the whole table
    storage = Storage.from_uri(str(lake))
    table = open_catalog(LakeConfig.build(lake=str(lake)), storage).load_table("ddb.retype_table")
    rows = table.scan(selected_fields=("_ddb_key", "_ddb_item")).to_arrow().sort_by("_ddb_key")
    files = len(list(table.scan().plan_files()))
    digest = hashlib.sha256()
    for key, item in zip(rows.column(0).to_pylist(), rows.column(1).to_pylist(), strict=True):
        digest.update(f"{key}\t{item}\n".encode())
    m_type = str(table.schema().find_field("m").field_type)
    out = {"seconds": round(seconds, 2), "peak_rss_mb": round(peak), "rows": rows.num_rows}
    print(json.dumps({**out, "files": files, "digest": digest.hexdigest(), "m_type": m_type}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200,000 rows (under two minutes)")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, lake, value = args.child
        if kind == "build":
            child_build(Path(lake), int(value))
        else:
            child_retype(Path(lake), value == "whole_table")
        return
    rows = args.rows or (200_000 if args.quick else 1_000_000)
    work = Path(tempfile.mkdtemp(prefix="ddblake-retype-"))
    try:
        sides = built_sides(
            ("ddblake", "whole_table"),
            lambda name: [__file__, "--child", "build", str(work / name), str(rows)],
            lambda name: [__file__, "--child", "retype", str(work / name), name],
        )
        ours, theirs = sides["ddblake"], sides["whole_table"]
        summary = {
            "bench": "retype",
            "rows": rows,
            "rss_ratio": side_ratio(ours, theirs, "peak_rss_mb"),
            "time_ratio": side_ratio(ours, theirs, "seconds"),
            "same_rows": same_digest(ours, theirs),
            "ddblake": ours,
            "whole_table": theirs,
        }
        print(json.dumps(summary))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
