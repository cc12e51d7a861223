"""Files of one current-state table with 64-bit and 32-bit string offsets, merged together.

pyiceberg gives a table's schema in Arrow as ``large_string``; rows typed against it were written
so, while a table's first batch (typed without a schema) wrote ``string``. Once a bucket's
overlapping files of both kinds passed the overlap limit, the merge put them together as they were
read and failed (``ArrowInvalid: Schema at index 1 was different``) in every later apply: the
history committed, the current state never again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from lake_helpers import Lake, event

from ddblake.lake import commits, current, files

CUR = "ddb.orders_table"


def _s(v: str) -> dict[str, Any]:
    return {"S": v}


def _string_types(lake: Lake) -> set[str]:
    """The Arrow types the current state's data files hold their attribute column ``v`` in."""
    tbl = lake.catalog().load_table(CUR)
    return {
        str(pq.read_schema(task.file.file_path.removeprefix("file://")).field("v").type)
        for task in tbl.scan().plan_files()
    }


def _overlapping_then_merged(lake: Lake, monkeypatch: pytest.MonkeyPatch, *, written_by_old: bool) -> None:
    """A bucket whose first batch's file and a later batch's new file both overlap its base, and a
    batch that merges them; ``written_by_old``: the later files written as an older ddblake did
    (typed against pyiceberg's 64-bit schema)."""
    monkeypatch.setattr(files, "TARGET_FILE_BYTES", 8 << 10)  # many files in the one bucket
    monkeypatch.setattr(files, "open_file_bytes", lambda: 1)  # none takes new rows: new files
    monkeypatch.setattr(commits, "overlap_limit", lambda base: 1 << 40)  # no merge yet
    first = {f"a{i:03d}": {"v": _s(f"a{i}")} for i in range(20)}
    lake.write([event("INSERT", pk, 1, image=image) for pk, image in first.items()])
    lake.apply(buckets=1)  # one file, typed without a table schema
    with monkeypatch.context() as m:
        if written_by_old:
            m.setattr(current, "small_type", lambda t: t)
        bulk = {f"k{i:04d}": {"v": _s(f"v{i}")} for i in range(600)}
        lake.write([event("INSERT", pk, 2, image=image) for pk, image in bulk.items()])
        lake.apply(buckets=1)  # files of their own: the base, the first file overlapping it
        more = {f"n{i:03d}": {"v": _s(f"n{i}")} for i in range(20)}
        lake.write([event("INSERT", pk, 3, image=image) for pk, image in more.items()])
        assert lake.apply(buckets=1).files_rewritten == 0  # a second file overlapping the base
    if written_by_old:
        assert _string_types(lake) == {"string", "large_string"}
    monkeypatch.setattr(commits, "overlap_limit", lambda base: 0)  # the overlapping files are due
    lake.write([event("MODIFY", "a001", 4, image={"v": _s("changed")}), event("REMOVE", "n002", 4)])
    result = lake.apply(buckets=1)
    assert result.upserts == 1 and result.deletes == 1
    assert result.files_rewritten >= 3  # both overlapping files, and the base files taking their rows

    expected = {pk: {"pk": _s(pk), **image} for pk, image in {**first, **bulk, **more}.items()}
    expected["a001"] = {"pk": _s("a001"), "v": _s("changed")}
    del expected["n002"]
    assert lake.dump() == expected
    keys = lake.catalog().load_table(CUR).scan(selected_fields=("_ddb_key",)).to_arrow().column(0)
    assert len(keys) == len(set(keys.to_pylist())) == len(expected)


def test_every_file_apply_writes_holds_strings_with_32_bit_offsets_and_the_merge_works(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    _overlapping_then_merged(lake, monkeypatch, written_by_old=False)
    assert _string_types(lake) == {"string"}


def test_a_table_an_older_ddblake_wrote_with_both_kinds_of_files_merges_them(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    _overlapping_then_merged(lake, monkeypatch, written_by_old=True)


def test_files_read_together_are_given_one_schema(tmp_path: Path) -> None:
    big = pa.table(
        {
            "v": pa.array(["x", None], pa.large_string()),
            "l": pa.array([["a"], []], pa.large_list(pa.large_string())),
        }
    )
    small = pa.table({"v": pa.array(["y"], pa.string()), "l": pa.array([["b"]], pa.list_(pa.string()))})
    paths = []
    for name, rows in (("big", big), ("small", small)):
        path = tmp_path / f"{name}.parquet"
        pq.write_table(rows, path)
        paths.append((str(path), rows.num_rows))

    class _Input:
        def __init__(self, path: str) -> None:
            self.path = path

        def open(self) -> Any:
            return Path(self.path).open("rb")

    class _Io:
        def new_input(self, path: str) -> _Input:
            return _Input(path)

    class _File:
        def __init__(self, path: str, count: int) -> None:
            self.file_path, self.record_count = path, count

    class _Task:
        def __init__(self, path: str, count: int) -> None:
            self.file = _File(path, count)

    class _Table:
        io = _Io()

    expected = pa.schema([commits.small_field(f) for f in big.schema])
    rows = commits.read_files(_Table(), [_Task(p, n) for p, n in paths], expected=expected)  # type: ignore[arg-type]
    assert rows is not None and rows.schema.equals(expected)
    assert rows.column("v").to_pylist() == ["x", None, "y"]
    assert rows.column("l").to_pylist() == [["a"], [], ["b"]]
