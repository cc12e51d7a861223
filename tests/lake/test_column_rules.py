"""The current state's typed columns do not depend on how changes were batched (docs/types.md).

Each test applies the same items to fresh lakes in one batch and in several (and in other orders
where order could matter): ``query`` must show the same rows and ``dump`` the same items. The rules
behind them: reversible column names (metadata prefix, dots), a text-encoding marker that changes
as a type change, and attributes first seen with only untyped values (``[]``, ``{}``).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from lake_helpers import TABLE, Lake, MakeLake
from lake_helpers import applied as _applied
from lake_helpers import current_rows as _rows
from lake_helpers import insert as _insert
from lake_helpers import new_lake as new_lake  # noqa: F401  (fixture)
from lake_helpers import same_whatever_the_batching as _same_whatever_the_batching

from ddblake.changes.model import ChangeEvent
from ddblake.lake import columns
from ddblake.lake.current import UNTYPED_PROPERTY
from ddblake.lake.report import dump_items


def _columns(lake: Lake) -> dict[str, Any]:
    return {f.name: f for f in lake.catalog().load_table("ddb.orders_table").schema().fields}


def _dump_lines(lake: Lake) -> list[str]:
    return list(dump_items(lake.catalog(), "ddb", TABLE))


# -- A. column names that could shadow a metadata column ----------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "",
        "v",
        "_ddb_",
        "_ddb_key",
        "attr",
        "attr_ddb_",
        "attr_ddb_x",
        "attrattr_ddb_x",
        "attrx_ddb_",
        "x.y",
        ".",
        "..",
        "%",
        "%25",
        "%2E",
        "%2e",
        "a%2Eb.c",
        "attr_ddb_.x",
        "ü.ß",
        "_DDB_ITEM",
        "_Ddb_Key",
        "ATTR_ddb_x",
        "attrATTR_DDB_x",
    ],
)
def test_column_names_are_reversible_and_never_metadata_or_dotted(name: str) -> None:
    col = columns.column_name(name)
    assert columns.attribute_name(col) == name
    assert not col.lower().startswith("_ddb_") and "." not in col  # DuckDB ignores case
    assert columns.key_name(columns.field_name(name)) == name and "." not in columns.field_name(name)


def test_names_unchanged_for_existing_lakes() -> None:
    for plain in ("v", "pk", "price", "attrx", "a%b", "ü"):
        assert columns.column_name(plain) == plain
    assert columns.column_name("_ddb_x") == "attr_ddb_x"  # as before: existing columns stay valid


def test_an_attribute_named_like_an_escaped_one_gets_its_own_column(new_lake: MakeLake) -> None:
    a = _insert("a", 1, {"attr_ddb_x": {"S": "one"}})
    b = _insert("b", 2, {"attr_ddb_x": {"S": "two"}, "_ddb_x": {"S": "three"}})
    c = _insert("c", 3, {"attrattr_ddb_x": {"N": "4"}, "_ddb_key": {"S": "five"}})
    lake = _same_whatever_the_batching(new_lake, [[a, b, c]], [[a], [b], [c]], [[c], [b], [a]])
    rows = {r["pk"]: r for r in _rows(lake)}
    assert rows["b"]["attr_ddb_x"] == "three"  # the escaped _ddb_x
    assert rows["b"]["attrattr_ddb_x"] == "two"
    assert rows["c"]["attrattrattr_ddb_x"] == 4 and rows["c"]["attr_ddb_key"] == "five"
    assert rows["c"]["_ddb_key"] == '{"pk":{"S":"c"}}'


def test_an_attribute_named_like_a_metadata_column_in_another_case_dumps_and_sorts_right(
    new_lake: MakeLake,
) -> None:
    """DuckDB matches names without regard to case: a column ``_DDB_ITEM`` beside ``_ddb_item``
    made ``dump`` read the attribute as the item, and ``_Ddb_Key`` made it sort by the attribute."""
    a = _insert("a", 1, {"_DDB_ITEM": {"S": "x"}, "_Ddb_Key": {"S": "z"}})
    b = _insert("b", 2, {"n": {"N": "1"}, "_Ddb_Key": {"S": "a"}})
    c = _insert("c", 3, {"n": {"N": "2"}})
    lake = _same_whatever_the_batching(new_lake, [[a, b, c]], [[a], [b, c]])
    assert [json.loads(line)["Item"]["pk"]["S"] for line in _dump_lines(lake)] == ["a", "b", "c"]
    assert json.loads(_dump_lines(lake)[0])["Item"] == a.new_image
    rows = {r["pk"]: r for r in _rows(lake)}
    assert rows["a"]["attr_DDB_ITEM"] == "x" and rows["b"]["attr_Ddb_Key"] == "a"


# -- B. names holding dots --------------------------------------------------------------------------


def test_dotted_names_beside_the_paths_they_spell_never_wedge(new_lake: MakeLake) -> None:
    # Every item has a list of maps "l": pyiceberg writes a null list<struct> as [] (its issue
    # 3833), which would differ between a row written before the column existed and one after.
    plain = {"L": [{"M": {"e": {"M": {"f": {"S": "r"}}}}}]}
    k = _insert("k", 1, {"x.y": {"S": "dotted"}, "t.element": {"S": "z"}, "l": plain})
    m = _insert("m", 2, {"x": {"M": {"y": {"S": "nested"}}}, "t": {"L": [{"S": "a"}]}, "l": plain})
    n = _insert(
        "n",
        3,
        {
            "s": {"M": {"a.b": {"N": "1"}, "a": {"M": {"b": {"N": "2"}}}}},
            "l": {"L": [{"M": {"e.f": {"S": "p"}, "e": {"M": {"f": {"S": "q"}}}}}]},
        },
    )
    later = _insert("later", 4, {"v": {"N": "3"}, "l": plain})
    lake = _same_whatever_the_batching(
        new_lake, [[k, m, n, later]], [[k], [m], [n], [later]], [[m, n], [k], [later]], [[later], [n, k], [m]]
    )
    rows = {r["pk"]: r for r in _rows(lake)}
    assert rows["k"]["x%2Ey"] == "dotted" and rows["k"]["t%2Eelement"] == "z"
    assert rows["m"]["x"] == {"y": "nested"} and rows["m"]["t"] == ["a"]
    assert rows["n"]["s"] == {"a%2Eb": 1, "a": {"b": 2}}
    assert rows["n"]["l"] == [{"e%2Ef": "p", "e": {"f": "q"}}]
    assert set(lake.dump()) == {"k", "m", "n", "later"}


def test_a_lake_with_dotted_columns_from_before_keeps_working(
    new_lake: MakeLake, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = [_insert("a", 1, {"x.y": {"S": "top"}, "s": {"M": {"p.q": {"N": "1"}}}})]
    second = [_insert("b", 2, {"x.y": {"S": "again"}, "x": {"M": {"y": {"S": "nested"}}}})]
    third = [_insert("c", 3, {"v": {"N": "1"}})]
    old = new_lake()
    with monkeypatch.context() as patch:  # the naming before dots were escaped
        patch.setattr(columns, "field_name", lambda name: name)
        _applied(old, [first])
    assert {"x.y", "s"} <= set(_columns(old))
    _applied(old, [second, third])
    assert "x.y" not in _columns(old) and "x%2Ey" in _columns(old)
    fresh = _applied(new_lake(), [[*first, *second, *third]])
    assert _rows(old) == _rows(fresh)
    assert old.dump() == fresh.dump()


# -- C. a column that becomes DynamoDB JSON text ---------------------------------------------------


def test_a_string_column_that_becomes_json_text_is_retyped_everywhere(new_lake: MakeLake) -> None:
    first = [
        _insert("a", 1, {"v": {"S": "5"}, "m": {"M": {"f": {"S": "5"}}}, "l": {"L": [{"S": "5"}]}}),
        _insert("c", 1, {"v": {"S": '{"N":"7"}'}, "big": {"N": "1" + "0" * 100}}),
    ]
    second = [_insert("b", 2, {"v": {"N": "5"}, "m": {"M": {"f": {"N": "5"}}}, "l": {"L": [{"N": "5"}]}})]
    third = [_insert("d", 3, {"big": {"S": "x"}})]
    lake = _same_whatever_the_batching(
        new_lake, [[*first, *second, *third]], [first, second, third], [first, [*second, *third]]
    )
    rows = {r["pk"]: r for r in _rows(lake)}
    assert json.loads(rows["a"]["v"]) == {"S": "5"} and json.loads(rows["b"]["v"]) == {"N": "5"}
    assert json.loads(rows["a"]["m"]["f"]) == {"S": "5"} and json.loads(rows["a"]["l"][0]) == {"S": "5"}
    assert json.loads(rows["c"]["big"]) == {"N": "1" + "0" * 100}
    fields = _columns(lake)
    assert fields["v"].doc is not None and fields["v"].doc.startswith("ddblake:ddb-json")
    assert fields["l"].doc is not None and fields["l"].doc.startswith("ddblake:[]ddb-json")


# -- D. attributes seen only untyped, then typed ----------------------------------------------------


def _untyped_first() -> list[ChangeEvent]:
    # Built per test: module-level events would stay alive (test_apply counts the live ones).
    return [
        _insert(
            "a",
            1,
            {
                "tags": {"L": []},
                "m": {"M": {}},
                "ss": {"L": [{"NULL": True}]},
                "deep": {"M": {"k": {"L": []}}},
                "objs": {"L": [{"M": {}}]},
                "n": {"NULL": True},
                "s": {"M": {"typed": {"N": "1"}, "later": {"L": []}}},
            },
        )
    ]


def _typed_later() -> list[ChangeEvent]:
    return [
        _insert(
            "b",
            2,
            {
                "tags": {"L": [{"S": "x"}]},
                "m": {"M": {"k": {"S": "v"}}},
                "ss": {"L": [{"S": "y"}]},
                "deep": {"M": {"k": {"L": [{"N": "1"}]}}},
                "objs": {"L": [{"M": {"a": {"N": "1"}}}]},
                "n": {"N": "2"},
                "s": {"M": {"later": {"SS": ["z"]}}},
            },
        )
    ]


def test_untyped_values_read_the_same_once_their_attribute_is_typed(new_lake: MakeLake) -> None:
    first, later = _untyped_first(), _typed_later()
    lake = _same_whatever_the_batching(new_lake, [[*first, *later]], [first, later])
    row = {r["pk"]: r for r in _rows(lake)}["a"]
    assert row["tags"] == [] and row["m"] == {"k": None} and row["ss"] == [None]
    assert row["deep"] == {"k": []} and row["objs"] == [{"a": None}] and row["n"] is None
    assert row["s"] == {"typed": 1, "later": []}


@pytest.mark.parametrize(
    ("untyped", "typed"),
    [
        ({"L": []}, {"S": "x"}),
        ({"M": {}}, {"L": [{"S": "x"}]}),
        ({"L": []}, {"N": "7"}),
        ({"M": {"x": {"NULL": True}}}, {"S": "x"}),
        ({"M": {"k": {"L": []}}}, {"M": {"k": {"S": "x"}}}),
        ({"L": [{"L": []}]}, {"L": [{"M": {"a": {"S": "x"}}}]}),
        ({"L": [{"M": {"k": {"M": {}}}}]}, {"L": [{"M": {"k": {"N": "1"}}}]}),
    ],
)
def test_an_untyped_value_then_a_conflicting_type_reads_as_in_one_batch(
    new_lake: MakeLake, untyped: dict[str, Any], typed: dict[str, Any]
) -> None:
    # The rows written before hold a value the new type cannot (``[]`` under a string): the
    # column takes the rule for mixed types, as it does when both come in one batch; it used
    # to stop apply for good (the old rows were retyped to the batch's type alone).
    first, later = [_insert("a", 1, {"v": untyped})], [_insert("b", 2, {"v": typed})]
    lake = _same_whatever_the_batching(new_lake, [[*first, *later]], [first, later])
    lake.write([_insert("c", 3, {"w": {"S": "unrelated"}})])
    lake.apply()
    assert sorted(lake.dump()) == ["a", "b", "c"]


def test_only_a_new_column_that_older_rows_may_hold_untyped_rewrites_the_table(new_lake: MakeLake) -> None:
    lake = new_lake()
    lake.write([_insert("a", 1, {"v": {"N": "1"}, "e": {"L": []}})])
    lake.apply()
    table = lake.catalog().load_table("ddb.orders_table")
    assert json.loads(table.properties[UNTYPED_PROPERTY]) == {"e": [None]}  # its name and shape
    lake.write([_insert("b", 2, {"w": {"S": "new attribute"}})])
    assert lake.apply().buckets_rewritten == 1  # an ordinary new column: only the touched bucket
    lake.write([_insert("c", 3, {"e": {"L": [{"S": "typed"}]}})])
    assert lake.apply().buckets_rewritten == 16  # e was held untyped: every row retyped
    table = lake.catalog().load_table("ddb.orders_table")
    assert UNTYPED_PROPERTY not in table.properties
    assert {r["pk"]: r["e"] for r in _rows(lake)} == {"a": [], "b": None, "c": ["typed"]}


def test_a_batch_of_the_types_the_table_has_retypes_nothing(new_lake: MakeLake) -> None:
    """The shape check must see the table's own columns as unchanged, markers and all."""
    image = {
        "i": {"N": "-42"},
        "d": {"N": "12345678901234567890.123456789012345678"},
        "big": {"N": "1" + "0" * 100},
        "b": {"B": "AAEC/w=="},
        "ns": {"NS": ["1", "2.5"]},
        "m": {"M": {"k": {"N": "1"}, "j": {"L": [{"N": "1"}, {"S": "x"}]}}},
        "l": {"L": [{"N": "1"}, {"S": "two"}]},
        "x.y": {"S": "dotted"},
        "_ddb_x": {"BOOL": True},
        "e": {"L": []},
    }
    lake = new_lake()
    lake.write([_insert("a", 1, image), _insert("b", 1, {**image, "i": {"S": "text"}})])
    lake.apply()
    for t in range(2, 5):
        lake.write([_insert(f"k{t}", t, {**image, "i": {"N": str(t)}})])
        assert lake.apply().buckets_rewritten == 1
