"""Retyping a whole table goes file by file (ddblake.lake.retyping): the same rows, less memory.

Before, a retype read the whole current state into memory and parsed every item at once (2.7 GB at
the peak for a million small items), so a table of a few million stopped apply for good. Now each
pass holds one data file; what must not change is any row.
"""

from __future__ import annotations

from typing import Any

import pytest
from lake_helpers import Lake, applied, insert, reads_during
from lake_helpers import event as change
from lake_helpers import lake as lake  # noqa: F401 (fixture)

from ddblake.lake import apply as apply_module
from ddblake.lake import files
from ddblake.lake.query import run_sql


def _item(i: int, n: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"n": {"N": n}, "m": {"M": {"a": {"S": f"a{i}"}, **(extra or {})}}, "s": {"S": "x" * 40}}


def test_a_retype_over_many_files_per_bucket_keeps_every_row(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small files: every bucket holds several, so the batch's rows share buckets (and file names
    # of one write) with several kept files.
    monkeypatch.setattr(files, "TARGET_FILE_BYTES", 2_000)
    applied(lake, [[insert(f"k{i:04d}", i, _item(i, str(i))) for i in range(600)]])
    cur = lake.catalog().load_table("ddb.orders_table")
    before = len(list(cur.scan().plan_files()))
    assert before >= 48  # 16 buckets, three or more files each
    reads, _ = reads_during(monkeypatch, apply_module, "retype_table")
    # int64 -> decimal (n), a map gaining a field (m.b), an update, a delete and an insert in many buckets.
    batch = [
        insert("k0001", 1000, _item(1, "1.5")),
        insert("k0002", 1001, _item(2, "2", {"b": {"BOOL": True}})),
        change("REMOVE", "k0003", 1002),
        *(insert(f"new{i:03d}", 1003 + i, _item(i, "7")) for i in range(40)),
    ]
    lake.write(batch)
    result = lake.apply()
    assert result.files_rewritten == before  # every file replaced: a retype
    assert reads and max(reads) == 1  # one file at a time, in both passes
    assert len(reads) == 2 * before
    dump = lake.dump()
    assert len(dump) == 600 - 1 + 40
    assert "k0003" not in dump
    assert dump["k0001"] == {"pk": {"S": "k0001"}, **_item(1, "1.5")}
    assert dump["k0002"] == {"pk": {"S": "k0002"}, **_item(2, "2", {"b": {"BOOL": True}})}
    assert dump["k0599"] == {"pk": {"S": "k0599"}, **_item(599, "599")}
    assert dump["new039"] == {"pk": {"S": "new039"}, **_item(39, "7")}
    _, rows = run_sql(lake.catalog(), "ddb", "select count(*), count(distinct pk), sum(n) from orders_table")
    expected = sum(range(600)) - 1 - 2 - 3 + 1.5 + 2 + 40 * 7
    assert [tuple(r) for r in rows] == [(639, 639, pytest.approx(expected))]
    _, rows = run_sql(
        lake.catalog(), "ddb", "select m.a, m.b from orders_table where pk in ('k0002', 'k0100') order by pk"
    )
    assert [tuple(r) for r in rows] == [("a2", True), ("a100", None)]
