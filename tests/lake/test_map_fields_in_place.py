"""A map gaining a key adds a field to its struct column in place (ddblake.lake.fieldadds).

Before, every new map key retyped every row of the table (a whole-table rewrite, once per key, up
to the 200 keys of a wide map). Iceberg adds a struct field as it adds a column: rows written
before read null there, which is what they held. Where they held an untyped value there instead
(``[]``, ``{}``), which the table records (the column's residue), every row is still retyped, so
that the table is the one applying all the changes in one batch gives.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pytest
from lake_helpers import Lake, MakeLake, applied, current_rows, insert, same_whatever_the_batching
from lake_helpers import lake as lake  # noqa: F401 (fixture)
from lake_helpers import new_lake as new_lake  # noqa: F401 (fixture)

from ddblake.lake import commits
from ddblake.lake.current import UNTYPED_PROPERTY

CURRENT = "ddb.orders_table"
BUCKETS = 16


def _m(**fields: Any) -> dict[str, Any]:
    return {"M": fields}


def _files(lake: Lake) -> set[str]:
    cur = lake.catalog().load_table(CURRENT)
    return {t.file.file_path for t in cur.scan().plan_files()}


def _record(lake: Lake) -> dict[str, Any]:
    raw = lake.catalog().load_table(CURRENT).properties.get(UNTYPED_PROPERTY)
    return {} if raw is None else dict(json.loads(raw))


def _base(n: int = 64) -> list[Any]:
    return [insert(f"k{i:03d}", i, {"m": _m(a={"S": f"a{i}"})}) for i in range(n)]


def test_a_new_map_key_adds_a_field_and_rewrites_only_the_touched_bucket(lake: Lake) -> None:
    applied(lake, [_base()])
    before = _files(lake)
    lake.write([insert("k001", 100, {"m": _m(a={"S": "new"}, b={"N": "5"})})])
    result = lake.apply()
    assert result.buckets_rewritten == 1  # a retype rewrites all 16
    after = _files(lake)
    assert len(before - after) == 1  # one file replaced, every other one kept as it was
    cur = lake.catalog().load_table(CURRENT)
    m = cur.schema().find_field("m")
    assert [f.name for f in m.field_type.fields] == ["a", "b"]
    rows = {r["_ddb_key"]: r["m"] for r in current_rows(lake)}
    assert rows['{"pk":{"S":"k001"}}'] == {"a": "new", "b": 5}
    assert rows['{"pk":{"S":"k002"}}'] == {"a": "a2", "b": None}
    assert lake.dump()["k001"]["m"] == _m(a={"S": "new"}, b={"N": "5"})


@pytest.mark.parametrize(
    ("old", "new"),
    [
        # a list of maps whose maps gain a key
        ({"l": {"L": [_m(a={"S": "x"})]}}, {"l": {"L": [_m(a={"S": "y"}, c={"BOOL": True})]}}),
        # a map inside a map
        ({"m": _m(n=_m(x={"S": "x"}))}, {"m": _m(n=_m(x={"S": "y"}, y={"B": "AAE="}))}),
        # a new key whose values conflict in the batch: a field of DynamoDB JSON text
        ({"m": _m(a={"S": "x"})}, {"m": _m(a={"S": "y"}, z={"SS": ["p", "q"]})}),
        # a new key holding a map of its own
        ({"m": _m(a={"S": "x"})}, {"m": _m(a={"S": "y"}, z=_m(q={"N": "1.25"}, r={"NULL": True}))}),
    ],
)
def test_nested_keys_are_added_in_place_and_give_the_table_one_batch_gives(
    new_lake: MakeLake, old: dict[str, Any], new: dict[str, Any]
) -> None:
    first = [insert(f"k{i:03d}", i, old) for i in range(40)]
    second = [insert("k001", 100, new), insert("k900", 101, new)]
    if "z" in json.dumps(new) and "SS" in json.dumps(new):
        second.append(insert("k901", 102, {"m": _m(z={"S": "text"})}))
    split = applied(new_lake(), [first])
    split.write(second)
    assert split.apply().buckets_rewritten < BUCKETS
    together = applied(new_lake(), [first + second])
    assert current_rows(split) == current_rows(together)
    assert split.dump() == together.dump()


def test_a_key_rows_held_an_empty_list_at_retypes_every_row(new_lake: MakeLake) -> None:
    first = [insert(f"k{i:03d}", i, {"m": _m(a={"S": "x"}, k={"L": []})}) for i in range(40)]
    second = [insert("k001", 100, {"m": _m(a={"S": "y"}, k={"L": [{"S": "s"}]})})]
    split = applied(new_lake(), [first])
    assert _record(split) == {"m": {"k": [None]}}  # the residue: m's rows held [] at k
    split.write(second)
    assert split.apply().buckets_rewritten == BUCKETS
    rows = {r["_ddb_key"]: r["m"] for r in current_rows(split)}
    assert rows['{"pk":{"S":"k002"}}'] == {"a": "x", "k": []}  # not null: as typed together
    together = applied(new_lake(), [first + second])
    assert current_rows(split) == current_rows(together)
    assert _record(split) == {"m": {}} == _record(together)


def test_an_empty_map_then_a_list_at_one_key_make_text_whatever_the_batching(new_lake: MakeLake) -> None:
    a = [insert(f"k{i:03d}", i, {"m": _m(a={"S": "x"}, k=_m())}) for i in range(20)]
    b = [insert("k100", 100, {"m": _m(a={"S": "y"}, k={"L": [{"S": "s"}]})})]
    lake = same_whatever_the_batching(new_lake, [a + b], [a, b])
    field = lake.catalog().load_table(CURRENT).schema().find_field("m.k")
    assert str(field.field_type) == "string" and (field.doc or "").startswith("ddblake:ddb-json")


def test_a_table_without_a_residue_record_retypes_once_and_then_adds_in_place(lake: Lake) -> None:
    applied(lake, [_base()])
    cur = lake.catalog().load_table(CURRENT)
    assert _record(lake) == {"m": {}}
    with cur.transaction() as tx:  # as an older ddblake leaves it: no record of m's untyped values
        tx.remove_properties(UNTYPED_PROPERTY)
    lake.write([insert("k001", 100, {"m": _m(a={"S": "y"}, b={"N": "1"})})])
    assert lake.apply().buckets_rewritten == BUCKETS
    assert _record(lake) == {"m": {}}  # the retype read every row: known again
    lake.write([insert("k002", 101, {"m": _m(a={"S": "z"}, c={"N": "2"})})])
    assert lake.apply().buckets_rewritten == 1


def test_a_residue_past_its_bound_is_not_kept_and_a_new_key_then_retypes(new_lake: MakeLake) -> None:
    empties = {f"e{i:02d}": {"L": []} for i in range(80)}  # more shapes than a record keeps
    first = [insert(f"k{i:03d}", i, {"m": _m(a={"S": "x"}, **empties)}) for i in range(20)]
    second = [insert("k001", 100, {"m": _m(a={"S": "y"}, e79={"L": [{"N": "1"}]})})]
    split = applied(new_lake(), [first])
    assert "m" not in _record(split)
    split.write(second)
    assert split.apply().buckets_rewritten == BUCKETS
    together = applied(new_lake(), [first + second])
    assert current_rows(split) == current_rows(together)


def test_untyped_values_at_one_key_of_an_existing_map_conflict_as_in_one_batch(new_lake: MakeLake) -> None:
    # Before residues, m.k was left out of the split lake (each batch held only an untyped value
    # there), where one batch makes it DynamoDB JSON text.
    a = insert("a", 1, {"m": _m(a={"S": "x"}, k={"L": []})})
    b = insert("b", 2, {"m": _m(a={"S": "y"}, k=_m())})
    lake = same_whatever_the_batching(new_lake, [[a, b]], [[a], [b]], [[b], [a]])
    field = lake.catalog().load_table(CURRENT).schema().find_field("m.k")
    assert (field.doc or "").startswith("ddblake:ddb-json")
    assert {r["pk"]: r["m"]["k"] for r in current_rows(lake)} == {"a": '{"L":[]}', "b": '{"M":{}}'}


def test_a_new_key_beside_a_column_that_retypes_every_row(new_lake: MakeLake) -> None:
    # m gains a key (in place on its own) in the batch whose n goes int64 -> decimal (every row).
    first = [
        insert(f"k{i:03d}", i, {"m": _m(b={"S": "x"}, a={"N": "1"}), "n": {"N": str(i)}}) for i in range(30)
    ]
    second = [
        insert("k001", 100, {"m": _m(b={"S": "y"}, a={"N": "2"}, c=_m(z={"BOOL": False})), "n": {"N": "0.5"}})
    ]
    split = applied(new_lake(), [first])
    split.write(second)
    assert split.apply().buckets_rewritten == BUCKETS
    together = applied(new_lake(), [first + second])
    assert current_rows(split) == current_rows(together)
    assert _record(split) == {"m": {}}
    split.write([insert("k002", 200, {"m": _m(d={"S": "later"})})])
    assert split.apply().buckets_rewritten == 1  # the residue survived the retype


def _names(t: Any) -> Any:
    """A type's field names at every depth, in order (Iceberg types)."""
    if hasattr(t, "fields"):
        return [(f.name, _names(f.field_type)) for f in t.fields]
    if hasattr(t, "element_field"):
        return ["element", _names(t.element_field.field_type)]
    return None


def test_keys_added_in_place_take_their_place_in_key_order_as_one_batch_gives(new_lake: MakeLake) -> None:
    old = {"m": _m(a={"S": "x"}, c={"S": "y"}), "l": {"L": [_m(b={"N": "1"}, d={"N": "2"})]}}
    new = {"m": _m(a={"S": "x"}, c={"S": "y"}, b={"N": "3"}, A={"S": "z"}, z={"BOOL": True})}
    new["l"] = {"L": [_m(b={"N": "1"}, d={"N": "2"}, a={"S": "e"}, c={"S": "f"})]}
    first = [insert(f"k{i:03d}", i, old) for i in range(30)]
    split = applied(new_lake(), [first])
    before = _files(split)
    split.write([insert("k900", 100, new)])
    assert split.apply().buckets_rewritten == 1
    together = applied(new_lake(), [[*first, insert("k900", 100, new)]])
    schemas = [lake.catalog().load_table(CURRENT).schema() for lake in (split, together)]
    m, l_ = ([_names(s.find_field(c).field_type) for s in schemas] for c in ("m", "l"))
    assert m[0] == m[1] == [("A", None), ("a", None), ("b", None), ("c", None), ("z", None)]
    assert l_[0] == l_[1]
    # The batch's files hold the table's schema, so the next batch reads them straight.
    cur = split.catalog().load_table(CURRENT)
    expected = pa.schema([commits.small_field(f) for f in cur.schema().as_arrow()])
    written = [t for t in cur.scan().plan_files() if t.file.file_path not in before]
    assert written and all(commits.read_files(cur, [t], expected=expected) is not None for t in written)


def test_a_map_known_only_by_its_empty_values_gets_its_fields_in_key_order(new_lake: MakeLake) -> None:
    # The column is on the untyped list (its maps held only []); its first typed key retypes every
    # row, which typed the recorded shape's keys first (d before b) where one batch gives b, d.
    a = [insert(f"k{i}", i, {"m": _m(d={"L": []})}) for i in range(3)]
    b = [insert("k9", 9, {"m": _m(b={"N": "1"}, d={"L": [{"S": "s"}]})})]
    lakes = [applied(new_lake(), [a, b]), applied(new_lake(), [a + b])]
    orders = [
        _names(lake.catalog().load_table(CURRENT).schema().find_field("m").field_type) for lake in lakes
    ]
    assert orders[0] == orders[1] == [("b", None), ("d", ["element", None])]
    assert current_rows(lakes[0]) == current_rows(lakes[1])


def test_a_key_pyiceberg_cannot_add_beside_an_element_key_retypes_instead_of_failing(
    new_lake: MakeLake,
) -> None:
    # In a list of maps holding a key "element" with a map under it, pyiceberg takes l.element.y
    # for that map's y: adding a key y beside "element" in place is refused, so the column is
    # retyped; apply used to fail on it at every run.
    inner = {"L": [_m(element=_m(y={"S": "a"}), z={"S": "b"})]}
    grown = {"L": [_m(element=_m(y={"S": "a"}), z={"S": "b"}, y={"N": "1"})]}
    first = [insert(f"k{i}", i, {"l": inner}) for i in range(5)]
    later = insert("k9", 9, {"l": grown})
    split = applied(new_lake(), [first])
    split.write([later])
    assert split.apply().buckets_rewritten == BUCKETS
    together = applied(new_lake(), [[*first, later]])
    assert current_rows(split) == current_rows(together)
    assert split.dump() == together.dump()
