"""A null list of maps stays null in the typed columns (ddblake.lake.nulllists; pyiceberg #3833).

pyiceberg 0.12 wrote and read a null ``list<struct>`` as ``[]``: an item without a list-of-maps
attribute read ``[]`` in the current state, where its item holds nothing.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest
from lake_helpers import Lake, MakeLake, applied, current_rows, insert, same_whatever_the_batching
from lake_helpers import lake as lake  # noqa: F401 (fixture)
from lake_helpers import new_lake as new_lake  # noqa: F401 (fixture)

from ddblake.lake.nulllists import with_nulls

LIST_OF_MAPS = {"L": [{"M": {"a": {"S": "x"}}}]}


def _rows(lake: Lake) -> dict[str, dict[str, Any]]:
    return {r["pk"]: r for r in current_rows(lake)}


def test_an_item_without_a_list_of_maps_reads_null_not_an_empty_list(lake: Lake) -> None:
    applied(
        lake,
        [
            [
                insert("with", 1, {"l": LIST_OF_MAPS, "m": {"M": {"d": LIST_OF_MAPS}}}),
                insert("without", 2, {"m": {"M": {"e": {"S": "y"}}}}),
                insert("empty", 3, {"l": {"L": []}, "m": {"M": {"d": {"L": []}}}}),
            ]
        ],
    )
    rows = _rows(lake)
    assert rows["with"]["l"] == [{"a": "x"}] and rows["with"]["m"]["d"] == [{"a": "x"}]
    assert rows["without"]["l"] is None and rows["without"]["m"]["d"] is None
    assert rows["empty"]["l"] == [] and rows["empty"]["m"]["d"] == []  # an empty list stays one
    # rewritten through pyiceberg's read of the file (a later batch in the same bucket)
    lake.write([insert("without", 4, {"m": {"M": {"e": {"S": "z"}}}, "n": {"N": "1"}})])
    lake.apply()
    assert _rows(lake)["without"]["l"] is None


def test_rows_written_before_and_after_a_list_of_maps_existed_read_alike(new_lake: MakeLake) -> None:
    a = insert("a", 1, {"n": {"N": "1"}})
    b = insert("b", 2, {"l": LIST_OF_MAPS})
    c = insert("c", 3, {"n": {"N": "2"}})
    lake = same_whatever_the_batching(new_lake, [[a, b, c]], [[a], [b], [c]], [[c, b], [a]])
    assert _rows(lake)["a"]["l"] is None and _rows(lake)["c"]["l"] is None


def test_with_nulls_restores_the_validity_a_rebuilt_list_lost() -> None:
    values = pa.array([{"a": 1}, {"a": 2}, {"a": 3}])
    source = pa.ListArray.from_arrays(pa.array([0, 1, 1, 3]), values, mask=pa.array([False, True, False]))
    source = pa.concat_arrays([source, source]).slice(2, 3)  # a slice, as record batches are
    rebuilt = pa.LargeListArray.from_arrays(source.offsets, source.values)  # what pyiceberg does
    assert rebuilt.to_pylist() == [[{"a": 2}, {"a": 3}], [{"a": 1}], []]
    fixed = with_nulls(rebuilt, source)
    assert fixed is not None and fixed.type == rebuilt.type
    assert fixed.to_pylist() == source.to_pylist() == [[{"a": 2}, {"a": 3}], [{"a": 1}], None]
    assert with_nulls(source, source) is source  # nothing lost: left as it is


def test_with_nulls_takes_a_slice_of_64_bit_lists_whose_offsets_do_not_start_at_0() -> None:
    # pyiceberg hands out batches cut from a row group; for a large_list it reuses the sliced
    # offsets, and Arrow refuses a null mask with offsets that do not start at 0.
    values = pa.array([{"a": i} for i in range(6)])
    whole = pa.LargeListArray.from_arrays(
        pa.array([0, 2, 2, 3, 6, 6], pa.int64()), values, mask=pa.array([False, True, False, False, True])
    )
    source = whole.slice(2, 3)
    rebuilt = pa.LargeListArray.from_arrays(source.offsets, source.values)  # offsets from 2
    assert rebuilt.offsets[0].as_py() == 2 and rebuilt.to_pylist()[2] == []
    fixed = with_nulls(rebuilt, source)
    assert fixed is not None and fixed.type == rebuilt.type
    assert fixed.to_pylist() == source.to_pylist() == [[{"a": 2}], [{"a": 3}, {"a": 4}, {"a": 5}], None]


def _nested(key: str, value: str) -> dict[str, Any]:
    return {"L": [{"L": [{"M": {key: {"S": value}}}]}, {"NULL": True}]}


def test_a_list_of_lists_of_maps_keeps_the_values_of_keys_stored_renamed(lake: Lake) -> None:
    """pyiceberg cast a list of lists whole, and Arrow casts struct fields by name: a key Iceberg
    stores renamed (``k-1`` as ``k_x2D1``, ``1k`` as ``_1k``) came out null, in the file written
    and on read, where ``_ddb_item`` held the value."""
    applied(
        lake,
        [
            [
                insert("a", 1, {"v": _nested("k-1", "x"), "w": {"L": [{"L": [{"M": {"1k": {"S": "y"}}}]}]}}),
                insert("b", 2, {"v": {"L": [{"L": []}, {"L": [{"M": {"k-1": {"S": "z"}}}]}]}}),
                insert("c", 3, {"n": {"N": "1"}}),
            ]
        ],
    )
    rows = _rows(lake)
    assert rows["a"]["v"] == [[{"k-1": "x"}], None] and rows["a"]["w"] == [[{"1k": "y"}]]
    assert rows["b"]["v"] == [[], [{"k-1": "z"}]]
    assert rows["c"]["v"] is None and rows["c"]["w"] is None
    lake.write([insert("c", 4, {"n": {"N": "2"}})])  # the bucket rewritten through pyiceberg's read
    lake.apply()
    assert _rows(lake)["a"]["v"] == [[{"k-1": "x"}], None]


def test_a_table_an_older_ddblake_wrote_is_mended_once_by_the_next_batch(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its files hold null where the items have a value: the next batch retypes every row from
    ``_ddb_item`` once, and says so in the table's properties."""
    from ddblake.lake import nulllists

    with monkeypatch.context() as old:  # as an older ddblake wrote it: no rebuild, no property
        old.setattr(nulllists, "of_projected", lambda list_array, value_array: list_array)
        applied(lake, [[insert("a", 1, {"v": _nested("k-1", "x")})]])
        cur = lake.catalog().load_table("ddb.orders_table")
        with cur.transaction() as tx:
            tx.remove_properties(nulllists.MENDED_PROPERTY)
        assert _rows(lake)["a"]["v"] == [[{"k-1": None}], None]
    assert nulllists.mend_needed(lake.catalog().load_table("ddb.orders_table"))
    lake.write([insert("b", 2, {"n": {"N": "1"}})])
    lake.apply()
    assert _rows(lake)["a"]["v"] == [[{"k-1": "x"}], None]
    assert not nulllists.mend_needed(lake.catalog().load_table("ddb.orders_table"))


def test_only_a_renamed_key_inside_a_list_of_lists_needs_mending(lake: Lake) -> None:
    from ddblake.lake import nulllists

    applied(lake, [[insert("a", 1, {"v": {"L": [{"M": {"k-1": {"S": "x"}}}]}})]])  # one list deep
    cur = lake.catalog().load_table("ddb.orders_table")
    assert cur.properties[nulllists.MENDED_PROPERTY] == "true"  # a new table is written mended
    with cur.transaction() as tx:
        tx.remove_properties(nulllists.MENDED_PROPERTY)
    assert not nulllists.mend_needed(lake.catalog().load_table("ddb.orders_table"))
