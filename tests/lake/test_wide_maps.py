"""A map keyed by data (user IDs) in the lake: one DynamoDB JSON text column, not a field per key.

Before, each new key was a new struct field: every batch evolved the schema (each metadata file
holding every schema so far), wrote a Parquet column per key and grew slower with the table; 15
batches of 200 such items took 47 s for the last one, with 3.4 MB of metadata.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from lake_helpers import Lake, MakeLake, applied, insert, same_whatever_the_batching
from lake_helpers import event as change
from lake_helpers import lake as lake  # noqa: F401 (fixture)
from lake_helpers import new_lake as new_lake  # noqa: F401 (fixture)

from ddblake.codec import dumps
from ddblake.codec import schema as lattice


def _scores(i: int, keys: int = 3) -> dict[str, Any]:
    return {
        "scores": {"M": {f"user-{i:04d}-{k}": {"N": f"{k}.5"} for k in range(keys)}},
        "profile": {"M": {"city": {"S": "Oslo"}, "age": {"N": str(20 + i)}}},
    }


def _field_names(type_: pa.DataType) -> int:
    """Every field at every depth of a type: what a per-key schema would grow."""
    if pa.types.is_struct(type_):
        return sum(1 + _field_names(type_.field(i).type) for i in range(type_.num_fields))
    if pa.types.is_list(type_):
        return _field_names(type_.value_type)
    return 0


def _current_schema(lake: Lake) -> pa.Schema:
    return lake.catalog().load_table("ddb.orders_table").schema().as_arrow()


def _schemas_kept(root: Path) -> int:
    """How many schemas the newest metadata file holds (Iceberg keeps every one a table had)."""
    files = root.glob("warehouse/**/orders_table/metadata/*.metadata.json")
    newest = max(files, key=lambda p: p.stat().st_mtime)
    return len(json.loads(newest.read_text())["schemas"])


def test_a_map_keyed_by_ids_is_one_json_text_column_and_the_schema_stops_growing(lake: Lake) -> None:
    batches = [[insert(f"p{b}-{i}", b * 100 + i, _scores(b * 100 + i)) for i in range(100)] for b in range(4)]
    applied(lake, batches[:1])
    schema_after_one, schemas_after_one = _current_schema(lake), _schemas_kept(lake.root)
    applied(lake, batches[1:])
    schema = _current_schema(lake)
    assert pa.types.is_large_string(schema.field("scores").type)
    assert schema.field("scores").metadata[b"doc"].startswith(b"ddblake:ddb-json")
    assert pa.types.is_struct(schema.field("profile").type)  # a map with few keys stays typed
    assert _field_names(schema.field("profile").type) == 2
    assert schema.equals(schema_after_one)  # 1,200 keys later: not one field more
    assert _schemas_kept(lake.root) == schemas_after_one  # no schema change at all
    dump = lake.dump()
    assert len(dump) == 400
    assert dump["p3-7"] == {"pk": {"S": "p3-7"}, **_scores(307)}
    cols, rows = _query(lake, "select scores, profile.age from orders_table where pk = 'p2-5'")
    assert rows == [(dumps(_scores(205)["scores"]), 225)]
    # docs/types.md's way to read one key, and the keys
    sql = """select scores->>'$.M."user-0205-1".N', json_keys(scores->'$.M')
             from orders_table where pk = 'p2-5'"""
    assert _query(lake, sql)[1] == [("1.5", ["user-0205-0", "user-0205-1", "user-0205-2"])]


def _query(lake: Lake, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    from ddblake.lake.query import run_sql

    cols, rows = run_sql(lake.catalog(), "ddb", sql)
    return cols, [tuple(r) for r in rows]


def test_the_column_is_the_same_whatever_the_batching(
    new_lake: MakeLake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches each under the limit, their union over it: the lake ends as one batch leaves it."""
    monkeypatch.setattr(lattice, "MAX_MAP_FIELDS", 8)
    events = [insert(f"p{i}", i, _scores(i, keys=2)) for i in range(8)]  # 16 keys in all
    events.append(change("MODIFY", "p1", 20, image=_scores(1, keys=1)))
    events.append(change("REMOVE", "p2", 21))
    lake = same_whatever_the_batching(
        new_lake, [events], [events[:3], events[3:6], events[6:]], [[e] for e in events]
    )
    assert pa.types.is_large_string(_current_schema(lake).field("scores").type)
    assert lake.dump()["p1"]["scores"] == _scores(1, keys=1)["scores"]
    assert "p2" not in lake.dump()


def test_a_struct_wider_than_the_limit_becomes_json_text_at_the_next_batch_that_holds_it(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lake written before the limit (here: under a higher one) converts when its map next changes."""
    monkeypatch.setattr(lattice, "MAX_MAP_FIELDS", 1000)
    applied(lake, [[insert(f"p{i}", i, _scores(i, keys=5)) for i in range(60)]])  # 300 fields
    assert _field_names(_current_schema(lake).field("scores").type) == 300
    monkeypatch.setattr(lattice, "MAX_MAP_FIELDS", 200)
    applied(lake, [[insert("other", 100, {"x": {"S": "no map"}})]])
    assert _field_names(_current_schema(lake).field("scores").type) == 300  # not touched: kept
    applied(lake, [[insert("q", 101, _scores(999, keys=1))]])
    schema = _current_schema(lake)
    assert pa.types.is_large_string(schema.field("scores").type)
    cols, rows = _query(lake, "select pk, scores from orders_table order by pk")
    texts = dict(rows)
    assert texts["p7"] == dumps(_scores(7, keys=5)["scores"])  # every row retyped, exactly
    assert texts["q"] == dumps(_scores(999, keys=1)["scores"])
    assert texts["other"] is None
    assert json.loads(texts["p59"]) == _scores(59, keys=5)["scores"]
    assert lake.dump()["p59"]["scores"] == _scores(59, keys=5)["scores"]


@pytest.mark.parametrize("untyped", [{"NULL": True}, {"M": {}}, {"L": []}])
def test_keys_of_only_null_or_empty_values_give_the_same_lake_whatever_the_batching(
    new_lake: MakeLake, monkeypatch: pytest.MonkeyPatch, untyped: dict[str, Any]
) -> None:
    monkeypatch.setattr(lattice, "MAX_MAP_FIELDS", 4)
    events = [insert(f"p{i}", i, {"m": {"M": {f"u{i}-{j}": untyped for j in range(2)}}}) for i in range(4)]
    events.append(insert("t", 10, {"m": {"M": {"k1": {"N": "1"}, "k2": {"S": "two"}}}}))
    lake = same_whatever_the_batching(new_lake, [events], [[e] for e in events], [events[4:], events[:4]])
    m = _current_schema(lake).field("m").type
    assert [m.field(i).name for i in range(m.num_fields)] == ["k1", "k2"]  # 8 untyped keys not counted


def test_an_attribute_that_is_a_string_here_and_holds_a_wide_map_there_applies(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A type conflict over a map holding a wide map: both values as their DynamoDB JSON text."""
    monkeypatch.setattr(lattice, "MAX_MAP_FIELDS", 3)
    wide = {"M": {f"user-{i}": {"N": str(i)} for i in range(5)}}
    applied(lake, [[insert("a", 1, {"x": {"S": "s"}})], [insert("b", 2, {"x": {"M": {"inner": wide}}})]])
    rows = dict(_query(lake, "select pk, x from orders_table")[1])
    assert rows == {"a": dumps({"S": "s"}), "b": dumps({"M": {"inner": wide}})}
    assert lake.dump()["b"]["x"] == {"M": {"inner": wide}}


def test_a_batch_adding_columns_to_a_table_with_very_many_is_warned_about_without_names(
    lake: Lake, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Attribute names that are data get a column each (not capped, unlike map keys): say so."""
    from ddblake.lake import current

    monkeypatch.setattr(current, "MANY_COLUMNS", 5)
    caplog.set_level(logging.WARNING, logger="ddblake.lake.current")
    applied(lake, [[insert("a", 1, {f"day-secret-{d}": {"N": "1"} for d in range(4)})]])
    assert not caplog.records  # 5 columns with the key: not more than 5
    applied(lake, [[insert("b", 2, {f"day-secret-{d}": {"N": "1"} for d in range(4, 7)})]])
    (record,) = caplog.records
    assert "orders_table has 8 attribute columns, 3 of them added by this batch" in record.getMessage()
    assert "secret" not in record.getMessage()
    caplog.clear()
    applied(lake, [[insert("c", 3, {"day-secret-1": {"N": "2"}})]])
    assert not caplog.records  # no column added
