"""Attribute names that Iceberg writers store alike: apply never stops on them (docs/types.md).

pyiceberg writes each data file under Avro names (``make_compatible_name``: ``1st`` as ``_1st``,
``a-b`` as ``a_x2Db``) and refuses a schema in which two names of one level are stored alike. An
item with ``1st`` and ``_1st`` (or items bringing them in two batches; map keys ``in-side`` and
``in_x2Dside``; key attributes ``1st`` and ``_1st`` in the history) stopped every later apply of
the table with ``ValueError: Invalid schema, multiple fields for name _1st``. Now the name added
later is another one, ``<name>%~2``: every value is applied, ``dump`` gives back every item, and
``query`` shows each column.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pyarrow as pa
import pytest
from lake_helpers import BASE_US, TABLE, Lake, MakeLake, insert
from lake_helpers import new_lake as new_lake  # noqa: F401  (fixture)
from pyiceberg.schema import sanitize_column_names

from ddblake.changes.model import ChangeEvent
from ddblake.changes.resolve import Keyed, key_string, version_of
from ddblake.lake import columns, history
from ddblake.lake.current import UNTYPED_PROPERTY
from ddblake.lake.query import run_sql

PAIRS = [("1st", "_1st"), ("2fa", "_2fa"), ("a-b", "a_x2Db"), ("a-B", "a˛")]
"""Names stored alike, first in code point order first: ``a˛`` (U+02DB) is stored ``a_x2DB``."""


def _rows(lake: Lake, table: str = "orders_table") -> list[dict[str, Any]]:
    cols, rows = run_sql(lake.catalog(), "ddb", f"select * from {table} order by _ddb_key")  # noqa: S608
    return [dict(zip(cols, row, strict=True)) for row in rows]


def _names(lake: Lake, table: str = "orders_table") -> list[str]:
    return lake.catalog().load_table(f"ddb.{table}").schema().column_names


def _apply_all(lake: Lake, *batches: list[ChangeEvent]) -> None:
    for batch in batches:
        lake.write(batch)
        result = lake.apply()
        assert result.quarantined == 0 and result.events == len(batch), result


def _writable(lake: Lake, table: str = "orders_table") -> None:
    """The table's schema is one Iceberg writers can store (no two names stored alike)."""
    sanitize_column_names(lake.catalog().load_table(f"ddb.{table}").schema())


def _items(*events: ChangeEvent) -> dict[str, dict[str, Any]]:
    return {ev.keys["pk"]["S"]: ev.new_image for ev in events if ev.new_image is not None}


# -- names: reversible, never stored alike -------------------------------------------------------


@pytest.mark.parametrize("name", ["1st", "_1st", "a-b", "x.y", "x%~2", "x%~02", "_ddb_x", "_ddb_x%~3", "%~"])
def test_other_names_read_back_as_their_attribute(name: str) -> None:
    own = columns.column_name(name)
    for n in (2, 3, 17):
        other = columns.other_name(own, n)
        assert columns.attribute_name(other) == name and columns.is_column_name(other)
        assert columns.key_name(columns.other_name(columns.field_name(name), n)) == name
    assert columns.attribute_name(own) == name and columns.is_column_name(own)
    assert columns.own_name(own) == own  # no attribute's own name reads as an other name


def test_a_name_ending_like_an_other_name_is_encoded_and_an_existing_name_is_not() -> None:
    assert columns.field_name("x%~2") == "x%25~2"
    assert columns.field_name("x%~") == "x%~" and columns.field_name("50%") == "50%"
    for plain in ("1st", "_1st", "a-b", "a_x2Db", "created-at"):
        assert columns.column_name(plain) == plain  # existing lakes keep their columns


def test_a_level_names_what_is_stored_alike_other_names() -> None:
    level = columns.columns_level(["_ddb_key", "1st", "pk"])
    assert level.name("1st", "1st") == "1st"
    assert level.name("_1st", "_1st") == "_1st%~2"
    assert level.name("_1st", "_1st") == "_1st%~2"
    # "1st%~2" the attribute is stored as "_1st_x25_x7E2"; its other name must avoid it too.
    assert level.name("1st%~2", "1st%25~2") == "1st%25~2"
    again = columns.columns_level(["_ddb_key", "1st", "pk", "_1st%~2"])
    assert again.name("_1st", "_1st") == "_1st%~2"  # once named, a column keeps its name


# -- the current state ----------------------------------------------------------------------------


@pytest.mark.parametrize(("first", "second"), PAIRS)
def test_two_attributes_stored_alike_on_one_item(new_lake: MakeLake, first: str, second: str) -> None:
    lake = new_lake()
    a = insert("a", 1, {first: {"N": "1"}, second: {"N": "2"}})
    later = insert("b", 2, {"plain": {"S": "later"}})
    _apply_all(lake, [a], [later])
    assert lake.dump() == _items(a, later)
    _writable(lake)
    row = _rows(lake)[0]
    assert row[first] == 1 and row[f"{second}%~2"] == 2  # the later in code point order: another name
    assert _rows(lake)[1]["plain"] == "later"


@pytest.mark.parametrize(("first", "second"), PAIRS)
@pytest.mark.parametrize("order", ["first-then-second", "second-then-first"])
def test_two_attributes_stored_alike_across_batches(
    new_lake: MakeLake, first: str, second: str, order: str
) -> None:
    lake = new_lake()
    earlier, later = (first, second) if order == "first-then-second" else (second, first)
    a = insert("a", 1, {earlier: {"S": "x"}})
    b = insert("b", 2, {later: {"S": "y"}})
    c = insert("c", 3, {later: {"S": "z"}, earlier: {"S": "w"}})
    d = insert("d", 4, {"plain": {"N": "5"}})
    _apply_all(lake, [a], [b], [c], [d])
    assert lake.dump() == _items(a, b, c, d)
    _writable(lake)
    rows = {r["pk"]: r for r in _rows(lake)}
    other = f"{later}%~2"  # the column added first keeps its name
    assert (rows["a"][earlier], rows["b"][other], rows["c"][other], rows["c"][earlier]) == (
        "x",
        "y",
        "z",
        "w",
    )
    assert rows["d"]["plain"] == 5
    assert [n for n in _names(lake) if columns.attribute_name(n) in (first, second)] == [earlier, other]


@pytest.mark.parametrize(("first", "second"), [("in-side", "in_x2Dside"), ("1st", "_1st")])
def test_map_keys_stored_alike(new_lake: MakeLake, first: str, second: str) -> None:
    lake = new_lake()
    both = {"M": {first: {"S": "a"}, second: {"S": "b"}}}
    a = insert("a", 1, {"m": both, "l": {"L": [both]}})
    b = insert("b", 2, {"n": {"M": {second: {"S": "c"}}}})
    c = insert("c", 3, {"n": {"M": {first: {"S": "d"}}}})
    d = insert("d", 4, {"plain": {"S": "later"}})
    _apply_all(lake, [a], [b], [c], [d])
    assert lake.dump() == _items(a, b, c, d)
    _writable(lake)
    rows = {r["pk"]: r for r in _rows(lake)}
    assert rows["a"]["m"] == {first: "a", f"{second}%~2": "b"}
    assert rows["a"]["l"] == [{first: "a", f"{second}%~2": "b"}]
    # In "n", the key met first keeps its name: the other one is another name.
    assert rows["b"]["n"] == {second: "c", f"{first}%~2": None}
    assert rows["c"]["n"] == {second: None, f"{first}%~2": "d"}
    assert rows["d"]["plain"] == "later"


def test_names_stay_put_and_nothing_is_retyped_when_the_same_names_come_again(new_lake: MakeLake) -> None:
    lake = new_lake()
    _apply_all(
        lake,
        [insert("a", 1, {"1st": {"N": "1"}, "m": {"M": {"a-b": {"S": "x"}}}})],
        [insert("b", 2, {"_1st": {"N": "2"}, "m": {"M": {"a_x2Db": {"S": "y"}}}})],
    )
    names = _names(lake)
    schema = str(lake.catalog().load_table("ddb.orders_table").schema())
    lake.write([insert("c", 3, {"_1st": {"N": "3"}, "1st": {"N": "4"}, "m": {"M": {"a_x2Db": {"S": "z"}}}})])
    result = lake.apply()
    assert result.upserts == 1 and result.files_rewritten <= 1  # only the bucket of "c"
    assert _names(lake) == names and str(lake.catalog().load_table("ddb.orders_table").schema()) == schema
    assert {r["pk"]: r["_1st%~2"] for r in _rows(lake)} == {"a": None, "b": 2, "c": 3}


def test_an_untyped_value_recorded_before_its_column_gets_another_name(new_lake: MakeLake) -> None:
    """``_1st: []`` (no column, recorded untyped) then ``_1st: ["x"]`` beside ``1st``: the column
    is ``_1st%~2``, and the row written before reads ``[]`` there, as in one batch."""
    a = insert("a", 1, {"1st": {"N": "1"}, "_1st": {"L": []}})
    b = insert("b", 2, {"_1st": {"L": [{"S": "x"}]}})
    split, together = new_lake(), new_lake()
    _apply_all(split, [a], [b])
    _apply_all(together, [a, b])
    for lake in (split, together):
        rows = {r["pk"]: r for r in _rows(lake)}
        assert (rows["a"]["_1st%~2"], rows["b"]["_1st%~2"], rows["a"]["1st"]) == ([], ["x"], 1)
        assert UNTYPED_PROPERTY not in lake.catalog().load_table("ddb.orders_table").properties
        assert lake.dump() == _items(a, b)


def test_a_table_an_older_apply_left_stopped_recovers(
    new_lake: MakeLake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An older ddblake created the table with both names, then failed to write its first rows."""
    # Names as ddblake gave them before: each its own, whatever else its level holds.
    monkeypatch.setattr(columns.Level, "name", lambda self, key, own: self.names.get(key, own))
    lake = new_lake()
    inside = {"M": {"in-side": {"S": "p"}, "in_x2Dside": {"S": "q"}}}
    a = insert("a", 1, {"1st": {"N": "1"}, "_1st": {"N": "2"}, "m": inside})
    lake.write([a])
    with pytest.raises(ValueError, match="multiple fields for name"):
        lake.apply()
    assert {"1st", "_1st"} <= set(_names(lake))
    monkeypatch.undo()
    b = insert("b", 2, {"plain": {"S": "later"}})
    lake.write([b])
    lake.apply()
    _writable(lake)
    assert lake.dump() == _items(a, b)
    rows = {r["pk"]: r for r in _rows(lake)}
    assert (rows["a"]["1st"], rows["a"]["_1st%~2"]) == (1, 2)
    assert rows["a"]["m"] == {"in-side": "p", "in_x2Dside%~2": "q"} and rows["b"]["plain"] == "later"
    assert "_1st" not in _names(lake)


# -- the history's key columns ----------------------------------------------------------------------


def _keyed(keys: dict[str, Any], t: int, image: dict[str, Any] | None = None) -> ChangeEvent:
    return ChangeEvent(
        op="INSERT",
        table=TABLE,
        keys=keys,
        new_image={**keys, **(image or {})},
        old_image=None,
        event_id=uuid.uuid4().hex,
        event_time_us=BASE_US + t * 1_000_000,
        sequence=None,
        source="streams",
        ttl=False,
        ingested_us=BASE_US + t * 1_000_000,
    )


def _history_rows(lake: Lake) -> list[dict[str, Any]]:
    cols, rows = run_sql(lake.catalog(), "ddb", "select * from orders_table_changes order by event_time")
    return [dict(zip(cols, row, strict=True)) for row in rows]


def _dumped(lake: Lake) -> list[dict[str, Any]]:
    from ddblake.lake.report import dump_items

    return sorted((json.loads(line)["Item"] for line in dump_items(lake.catalog(), "ddb", TABLE)), key=str)


@pytest.mark.parametrize(("first", "second"), [("1st", "_1st"), ("a-b", "a_x2Db")])
def test_key_attributes_stored_alike(new_lake: MakeLake, first: str, second: str) -> None:
    lake = new_lake()
    one = _keyed({first: {"S": "h1"}, second: {"S": "r1"}}, 1, {"v": {"N": "1"}})
    two = _keyed({first: {"S": "h2"}, second: {"S": "r2"}}, 2, {"v": {"N": "2"}})
    _apply_all(lake, [one], [two])
    _writable(lake, "orders_table_changes")
    rows = _history_rows(lake)
    assert [(r[first], r[f"{second}%~2"]) for r in rows] == [("h1", "r1"), ("h2", "r2")]
    assert _dumped(lake) == sorted([one.new_image, two.new_image], key=str)
    current = sorted(_rows(lake), key=lambda r: r[first])
    assert [(r[first], r[f"{second}%~2"], r["v"]) for r in current] == [("h1", "r1", 1), ("h2", "r2", 2)]


def test_key_attributes_stored_alike_across_recreated_tables(new_lake: MakeLake) -> None:
    """The DynamoDB table deleted and created again with another key, stored like the first."""
    lake = new_lake()
    one = _keyed({"1st": {"S": "a"}}, 1)
    two = _keyed({"_1st": {"S": "b"}}, 2)
    three = _keyed({"_1st": {"B": "/wA="}}, 3)  # and of the other kind: a second column of its own
    four = _keyed({"1st": {"S": "c"}}, 4)
    _apply_all(lake, [one], [two], [three], [four])
    _writable(lake, "orders_table_changes")
    rows = _history_rows(lake)
    assert [r["1st"] for r in rows] == ["a", None, None, "c"]
    assert [r["_1st%~2"] for r in rows] == [None, "b", None, None]
    assert [r["_ddb_binary__1st"] for r in rows] == [None, None, b"\xff\x00", None]


@pytest.mark.parametrize("attr", ["OP", "Op", "_DDB_KEY", "Keys", "_DDB_BINARY_pk", "Key_op"])
def test_a_key_named_as_a_fixed_column_in_another_case_is_prefixed(new_lake: MakeLake, attr: str) -> None:
    """DuckDB and Athena match names without regard to case: ``OP`` must not sit beside ``op``."""
    assert history.key_column(attr) == f"key_{attr}"
    lake = new_lake()
    _apply_all(lake, [_keyed({attr: {"S": "a"}}, 1)])
    names = _names(lake, "orders_table_changes")
    assert attr not in names and f"key_{attr}" in names
    assert len({n.lower() for n in names}) == len(names)
    row = _history_rows(lake)[0]
    assert row[f"key_{attr}"] == "a" and row["op"] == "INSERT"


def test_a_history_written_before_keeps_its_key_column_named_in_another_case() -> None:
    """A table whose key ``OP`` has its column ``OP`` (the case-sensitive rule) keeps writing it."""
    schema = history.iceberg_schema().as_arrow()
    old = schema.append(pa.field("OP", pa.large_string()))
    keys = {"OP": {"S": "a"}}
    ev = _keyed(keys, 1)
    change = Keyed(key_string(keys), version_of(ev), ev)
    assert history.rows([change], ["f"], schema=old).column("OP").to_pylist() == ["a"]
    assert history.rows([change], ["f"], schema=schema).column("key_OP").to_pylist() == ["a"]
