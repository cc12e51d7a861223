"""Untyped values (``[]``, ``{}``) of one attribute split across batches (docs/types.md).

An attribute holding only untyped values gets no column, yet two of them can conflict: ``[]`` and
``{}`` in one batch make a DynamoDB JSON text column. The table records the shape of what its
untyped columns held (property ``ddblake.untyped-columns``), so the same values in two batches give
that column too, and ``query`` never depends on how the changes were batched.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from lake_helpers import Lake, MakeLake, event
from lake_helpers import applied as _applied
from lake_helpers import current_rows as _rows
from lake_helpers import insert as _insert
from lake_helpers import new_lake as new_lake  # noqa: F401  (fixture)
from lake_helpers import same_whatever_the_batching as _same_whatever_the_batching

from ddblake.lake.current import UNTYPED_PROPERTY

CURRENT = "ddb.orders_table"


def _fields(lake: Lake) -> dict[str, Any]:
    return {f.name: f for f in lake.catalog().load_table(CURRENT).schema().fields}


@pytest.mark.parametrize(
    ("one", "two"),
    [
        ({"L": []}, {"M": {}}),
        ({"M": {}}, {"L": []}),
        ({"M": {"k": {"L": []}}}, {"M": {"k": {"M": {}}}}),
        ({"L": [{"L": []}]}, {"L": [{"M": {}}]}),
        ({"L": [{"NULL": True}]}, {"M": {"x": {"NULL": True}}}),
    ],
)
def test_untyped_values_that_conflict_across_batches_make_the_column_of_one_batch(
    new_lake: MakeLake, one: dict[str, Any], two: dict[str, Any]
) -> None:
    first = [_insert("a", 1, {"v": one, "w": {"S": "x"}})]
    second = [_insert("b", 2, {"v": two})]
    lake = _same_whatever_the_batching(new_lake, [[*first, *second]], [first, second], [second, first])
    assert "v" in _fields(lake)  # the conflict is a DynamoDB JSON text column, at some level
    rows = {r["pk"]: r for r in _rows(lake)}
    assert rows["a"]["v"] is not None and rows["b"]["v"] is not None


def test_the_conflict_is_found_after_other_batches_and_deletes(new_lake: MakeLake) -> None:
    first = [_insert("a", 1, {"v": {"L": []}})]
    other = [_insert("c", 2, {"w": {"N": "1"}, "u": {"M": {}}})]
    second = [_insert("b", 3, {"v": {"M": {}}})]
    lake = _same_whatever_the_batching(
        new_lake, [[*first, *other, *second]], [first, other, second], [first, [*other, *second]]
    )
    rows = {r["pk"]: r for r in _rows(lake)}
    assert json.loads(rows["a"]["v"]) == {"L": []} and json.loads(rows["b"]["v"]) == {"M": {}}
    assert rows["c"]["v"] is None
    assert "u" not in _fields(lake)  # still untyped: no column


def test_the_property_still_reads_as_a_list_of_names(new_lake: MakeLake) -> None:
    # An older ddblake reads the property with ``set(json.loads(...))``: the column names.
    lake = _applied(new_lake(), [[_insert("a", 1, {"v": {"L": []}, "m": {"M": {"k": {"NULL": True}}}})]])
    recorded = json.loads(lake.catalog().load_table(CURRENT).properties[UNTYPED_PROPERTY])
    assert set(recorded) == {"v", "m"}


def _old_format(lake: Lake) -> None:
    """The property as an older ddblake wrote it: a JSON list of names, without shapes."""
    table = lake.catalog().load_table(CURRENT)
    names = sorted(json.loads(table.properties[UNTYPED_PROPERTY]))
    with table.transaction() as tx:
        tx.set_properties({UNTYPED_PROPERTY: json.dumps(names)})


def test_a_table_with_the_old_list_of_names_finds_the_conflict_in_its_rows(new_lake: MakeLake) -> None:
    first = [_insert("a", 1, {"v": {"L": []}, "u": {"M": {}}})]
    second = [_insert("b", 2, {"v": {"M": {}}, "u": {"M": {}}})]
    third = [_insert("c", 3, {"v": {"L": []}, "u": {"L": [{"NULL": True}]}})]
    old = _applied(new_lake(), [first])
    _old_format(old)
    _applied(old, [second])
    fresh = _applied(new_lake(), [[*first, *second]])
    assert _rows(old) == _rows(fresh) and old.dump() == fresh.dump()
    assert "v" in _fields(old)
    _applied(old, [third])  # the old names are known by their shapes now
    _applied(fresh, [third])
    assert _rows(old) == _rows(fresh) and old.dump() == fresh.dump()
    assert "u" in _fields(old)


def test_an_old_name_no_row_holds_any_more_costs_one_rewrite_at_most(new_lake: MakeLake) -> None:
    lake = _applied(new_lake(), [[_insert("a", 1, {"v": {"L": []}})]])
    lake.write([event("REMOVE", "a", 2)])
    lake.apply()
    _old_format(lake)
    lake.write([_insert("b", 3, {"v": {"M": {}}})])
    lake.apply()
    assert "v" not in _fields(lake)  # no row held [] any more: {} alone has no column
    lake.write([_insert("c", 4, {"v": {"M": {}}})])
    assert lake.apply().buckets_rewritten == 1


def test_the_record_stays_small_for_a_map_keyed_by_many_distinct_keys(new_lake: MakeLake) -> None:
    """A map keyed by user IDs: the recorded shape must not grow with every key (the property is
    rewritten by each commit and copied into Glue's parameters), yet a conflict is still found."""
    lake = new_lake()
    for batch in range(3):
        lake.write(
            [
                _insert(
                    f"k{batch}-{i}", batch * 100 + i, {"seen_by": {"M": {f"user-{batch}-{i}@example.com": v}}}
                )
                for i, v in enumerate([{"NULL": True}, {"L": []}, {"M": {}}] * 40)
            ]
        )
        lake.apply()
        raw = lake.catalog().load_table(CURRENT).properties[UNTYPED_PROPERTY]
        assert len(raw) < 2_000, raw[:200]
    shapes = json.loads(lake.catalog().load_table(CURRENT).properties[UNTYPED_PROPERTY])
    assert set(shapes) == {"seen_by"} and isinstance(shapes["seen_by"], dict)
    assert None not in shapes["seen_by"].values()  # NULL fields never conflict: not recorded
    # A later [] for the column still meets the recorded {}: DynamoDB JSON text, as in one batch.
    lake.write([_insert("z", 9_999, {"seen_by": {"L": []}})])
    lake.apply()
    assert json.loads(next(r for r in _rows(lake) if r["pk"] == "z")["seen_by"]) == {"L": []}
