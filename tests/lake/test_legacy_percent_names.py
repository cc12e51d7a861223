"""Names ending in ``%~`` and digits that an older ddblake gave its attributes keep their meaning.

Before names stored alike got other names (``_1st`` beside ``1st`` is ``_1st%~2``: docs/types.md,
Names stored alike), ddblake (commit fe269cc) named an attribute ``a%~2`` column ``a%~2``. Read by
its suffix alone, such a column became attribute ``a``'s: with ``a`` beside it every later apply
stopped (``Field "a" exists 2 times in schema``), and alone its values were split between ``a%~2``
and ``a%25~2``. Whether ``X%~n`` is ``X``'s other name is now decided by its level (the columns, or
a map's fields): only if no name there is ``X`` and another is stored like ``X``
(:func:`ddblake.lake.columns.other_names`). A column that is not is the attribute's own, named by
an older rule, and is retyped once under today's name ``a%25~2``, as a dotted ``x.y`` is.

The lakes are written by fe269cc itself (``git archive``, run in a subprocess), then applied by
this tree.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
from lake_helpers import BASE_US, TABLE, Lake, MakeLake, insert
from lake_helpers import new_lake as new_lake  # noqa: F401  (fixture)
from pyiceberg.schema import sanitize_column_names

from ddblake.changes.model import ChangeEvent
from ddblake.lake import columns
from ddblake.lake.query import run_sql

OLD = "fe269cc"
"""The last commit that named an attribute ``a%~2`` column ``a%~2``."""
REPO = Path(__file__).resolve().parents[2]

_WRITER = """
import json, sys, uuid
from lake_helpers import Lake
from ddblake.changes.model import ChangeEvent

lake = Lake(__import__("pathlib").Path(sys.argv[1]))
for batch in json.loads(sys.stdin.read()):
    lake.write([ChangeEvent(**ev) for ev in batch])
    result = lake.apply()
    assert result.events == len(batch) and result.quarantined == 0, result
"""


@pytest.fixture(scope="session")
def old_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """fe269cc's ``src`` and lake test helpers, from this repository's history."""
    root = tmp_path_factory.mktemp("ddblake-fe269cc")
    archive = root / "old.tar"
    try:
        with archive.open("wb") as out:
            subprocess.run(
                ["git", "-C", str(REPO), "archive", OLD, "src", "tests/lake/lake_helpers.py"],
                stdout=out,
                stderr=subprocess.PIPE,
                check=True,
            )
    except (OSError, subprocess.CalledProcessError) as e:  # a source tree without its history
        pytest.skip(f"commit {OLD} is not available: {e}")
    with tarfile.open(archive) as tar:
        tar.extractall(root, filter="data")
    return root


def _event(keys: dict[str, Any], t: int, image: dict[str, Any]) -> ChangeEvent:
    return ChangeEvent(
        op="INSERT",
        table=TABLE,
        keys=keys,
        new_image={**keys, **image},
        old_image=None,
        event_id=f"e{t}-{json.dumps(keys, sort_keys=True)}",
        event_time_us=BASE_US + t * 1_000_000,
        sequence=None,
        source="streams",
        ttl=False,
        ingested_us=BASE_US + t * 1_000_000,
    )


def _old_apply(old: Path, lake: Lake, *batches: list[ChangeEvent]) -> None:
    """Each batch written and applied by fe269cc's ddblake."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DDBLAKE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(old / "src"), str(old / "tests" / "lake")])
    fields = ("op", "table", "keys", "new_image", "old_image", "event_id", "event_time_us")
    more = ("sequence", "source", "ttl", "ingested_us")
    payload = [[{f: getattr(ev, f) for f in fields + more} for ev in batch] for batch in batches]
    done = subprocess.run(
        [sys.executable, "-c", _WRITER, str(lake.root)],
        input=json.dumps(payload),
        env=env,
        cwd=old,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]


def _apply(lake: Lake, *batches: list[ChangeEvent]) -> None:
    for batch in batches:
        lake.write(batch)
        result = lake.apply()
        assert result.quarantined == 0 and result.events == len(batch), result


def _rows(lake: Lake) -> dict[str, dict[str, Any]]:
    cols, rows = run_sql(lake.catalog(), "ddb", "select * from orders_table")
    return {r["pk"]: r for r in (dict(zip(cols, row, strict=True)) for row in rows)}


def _names(lake: Lake, table: str = "orders_table") -> list[str]:
    return list(lake.catalog().load_table(f"ddb.{table}").schema().column_names)


def _items(*events: ChangeEvent) -> dict[str, dict[str, Any]]:
    return {ev.keys["pk"]["S"]: ev.new_image for ev in events if ev.new_image is not None}


def _writable(lake: Lake, table: str = "orders_table") -> None:
    sanitize_column_names(lake.catalog().load_table(f"ddb.{table}").schema())


# -- the rule --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "others"),
    [
        (["a%~2"], set()),  # an older ddblake's attribute a%~2
        (["a", "a%~2"], set()),  # a is there: a%~2 is not its other name
        (["1st%~2"], set()),  # nothing is stored like 1st
        (["_1st", "1st%~2"], {"1st%~2"}),  # 1st was taken (ambiguous with an older lake: docs)
        (["1st", "_1st%~2"], {"_1st%~2"}),
        (["1st", "_1st", "_1st%~2"], set()),
        (["_1st", "1st%~3", "1st%~2"], {"1st%~3", "1st%~2"}),
        (["_1st", "1st%~1"], set()),  # ddblake gives %~2 first
        (["_1st", "1st%~02"], set()),
        (["1.st", "_1_x2Est%~2"], set()),  # x.y is an older rule's name: it does not count
        (["_1st", "attr_ddb_x%~2"], set()),
    ],
)
def test_other_names_depend_on_the_level(level: list[str], others: set[str]) -> None:
    assert columns.column_others(level) == others
    attributes = columns.column_attributes(level)
    for name in level:
        assert attributes[name] == columns.attribute_name(name, other=name in others)
    assert attributes.get("attr_ddb_x%~2", "_ddb_x%~2") == "_ddb_x%~2"


def test_in_the_history_what_is_stored_alike_must_come_first() -> None:
    def any_name(_: str) -> bool:
        return True

    assert columns.other_names(["1st%~2", "_1st"], any_name, any_name, ordered=True) == set()
    assert columns.other_names(["_1st", "1st%~2"], any_name, any_name, ordered=True) == {"1st%~2"}


def test_a_level_never_gives_a_name_that_reads_as_another() -> None:
    for level in (["a%~2"], ["a", "a%~2"], ["_1st", "1st%~2"], ["1st"]):
        named = columns.columns_level(level)
        for attr in ("a", "a%~2", "1st", "_1st", "1st%~2", "_1st%~2"):
            named.name(attr, columns.column_name(attr))
        final = list(named.names.values())
        read = columns.column_attributes([*level, *(n for n in final if n not in level)])
        for attr, col in named.names.items():
            if columns.is_column_name(col, col in columns.column_others([*level, *final])):
                assert read[col] == attr, (level, attr, col)


# -- current state: lakes fe269cc wrote ------------------------------------------------------------


def test_a_and_a_literal_percent_name_apply_again(old_tree: Path, new_lake: MakeLake) -> None:
    lake = new_lake()
    one = insert("k1", 1, {"a%~2": {"S": "literal-name"}})
    two = insert("k2", 2, {"a": {"S": "plain"}})
    _old_apply(old_tree, lake, [one, two])
    assert {"a", "a%~2"} <= set(_names(lake))
    three = insert("k3", 3, {"b": {"S": "unrelated"}})
    four = insert("k4", 4, {"a": {"S": "p4"}, "a%~2": {"S": "l4"}})
    _apply(lake, [three], [four])
    assert lake.dump() == _items(one, two, three, four)
    _writable(lake)
    names = _names(lake)
    assert "a%~2" not in names and {"a", "a%25~2", "b"} <= set(names)
    rows = _rows(lake)
    assert [rows[k]["a"] for k in ("k1", "k2", "k3", "k4")] == [None, "plain", None, "p4"]
    assert [rows[k]["a%25~2"] for k in ("k1", "k2", "k3", "k4")] == ["literal-name", None, None, "l4"]
    assert rows["k3"]["b"] == "unrelated"


def test_a_literal_percent_name_alone_keeps_its_values_in_one_column(
    old_tree: Path, new_lake: MakeLake
) -> None:
    lake = new_lake()
    one = insert("k1", 1, {"a%~2": {"S": "first"}})
    _old_apply(old_tree, lake, [one])
    two = insert("k2", 2, {"a%~2": {"S": "second"}})
    three = insert("k3", 3, {"a": {"N": "3"}})
    _apply(lake, [two], [three])
    assert lake.dump() == _items(one, two, three)
    names = _names(lake)
    assert "a%~2" not in names and {"a", "a%25~2"} <= set(names)
    rows = _rows(lake)
    assert [rows[k]["a%25~2"] for k in ("k1", "k2", "k3")] == ["first", "second", None]
    assert [rows[k]["a"] for k in ("k1", "k2", "k3")] == [None, None, 3]


def test_a_literal_name_then_one_stored_like_its_own_part(old_tree: Path, new_lake: MakeLake) -> None:
    """``1st%~2`` of an older ddblake, then ``_1st`` and ``1st``: each keeps its values."""
    lake = new_lake()
    one = insert("k1", 1, {"1st%~2": {"S": "literal"}})
    _old_apply(old_tree, lake, [one])
    two = insert("k2", 2, {"_1st": {"S": "underscore"}})
    three = insert("k3", 3, {"1st": {"S": "digit"}, "1st%~2": {"S": "literal3"}})
    _apply(lake, [two], [three])
    assert lake.dump() == _items(one, two, three)
    _writable(lake)
    rows = _rows(lake)
    assert rows["k1"]["1st%25~2"] == "literal" and rows["k3"]["1st%25~2"] == "literal3"
    assert rows["k2"]["_1st"] == "underscore" and rows["k3"]["1st%~2"] == "digit"
    assert rows["k1"]["1st%~2"] is None and rows["k2"]["1st%~2"] is None
    read = columns.column_attributes(_names(lake))
    assert (read["1st%~2"], read["1st%25~2"], read["_1st"]) == ("1st", "1st%~2", "_1st")


@pytest.mark.parametrize("in_list", [False, True])
def test_map_keys_a_and_a_literal_percent_name(old_tree: Path, new_lake: MakeLake, in_list: bool) -> None:
    lake = new_lake()

    def value(m: dict[str, Any]) -> dict[str, Any]:
        return {"L": [{"M": m}]} if in_list else {"M": m}

    one = insert("k1", 1, {"m": value({"a": {"S": "plain"}, "a%~2": {"S": "literal"}})})
    two = insert("k2", 2, {"m": value({"a%~2": {"S": "literal2"}})})
    _old_apply(old_tree, lake, [one], [two])
    three = insert("k3", 3, {"z": {"S": "unrelated"}})
    four = insert("k4", 4, {"m": value({"a%~2": {"S": "l4"}, "a": {"S": "p4"}})})
    _apply(lake, [three], [four])
    assert lake.dump() == _items(one, two, three, four)
    _writable(lake)
    rows = _rows(lake)

    def fields(pk: str) -> dict[str, Any]:
        m = rows[pk]["m"]
        return dict(m[0] if in_list else m)

    assert fields("k1") == {"a": "plain", "a%25~2": "literal"}
    assert fields("k2") == {"a": None, "a%25~2": "literal2"}
    assert fields("k4") == {"a": "p4", "a%25~2": "l4"}


def test_map_key_literal_percent_name_alone(old_tree: Path, new_lake: MakeLake) -> None:
    lake = new_lake()
    one = insert("k1", 1, {"m": {"M": {"1st%~2": {"S": "literal"}}}})
    _old_apply(old_tree, lake, [one])
    two = insert("k2", 2, {"m": {"M": {"_1st": {"S": "u"}}}})
    three = insert("k3", 3, {"m": {"M": {"1st": {"S": "d"}, "1st%~2": {"S": "l3"}}}})
    _apply(lake, [two], [three])
    assert lake.dump() == _items(one, two, three)
    _writable(lake)
    rows = _rows(lake)
    assert dict(rows["k1"]["m"])["1st%25~2"] == "literal"
    assert dict(rows["k3"]["m"]) == {"1st%25~2": "l3", "_1st": None, "1st%~2": "d"}
    assert dict(rows["k2"]["m"])["_1st"] == "u"


def test_untyped_record_of_a_literal_percent_name(old_tree: Path, new_lake: MakeLake) -> None:
    """The untyped-columns record names own columns: its ``a%~2`` is attribute ``a%~2``'s."""
    lake = new_lake()
    one = insert("k1", 1, {"a%~2": {"L": []}, "a": {"S": "plain"}})
    _old_apply(old_tree, lake, [one])
    two = insert("k2", 2, {"a%~2": {"L": [{"S": "x"}]}})
    _apply(lake, [two])
    assert lake.dump() == _items(one, two)
    rows = _rows(lake)
    assert rows["k1"]["a%25~2"] == [] and rows["k2"]["a%25~2"] == ["x"]
    assert rows["k1"]["a"] == "plain"


# -- history: key columns fe269cc named ------------------------------------------------------------


def test_history_key_column_of_a_literal_percent_name(old_tree: Path, new_lake: MakeLake) -> None:
    """A history column is never renamed: ``1st%~2`` stays key ``1st%~2``'s, whatever comes later."""
    lake = new_lake()
    one = _event({"1st%~2": {"S": "literal"}}, 1, {})
    _old_apply(old_tree, lake, [one])
    two = _event({"_1st": {"S": "u"}}, 2, {})
    three = _event({"1st": {"S": "d"}}, 3, {})
    four = _event({"1st%~2": {"S": "l4"}}, 4, {})
    _apply(lake, [two], [three], [four])
    _writable(lake, "orders_table_changes")
    names = _names(lake, "orders_table_changes")
    assert names.index("1st%~2") < names.index("_1st") < names.index("1st%~3")
    by_time = sorted(lake.history(), key=lambda r: r["event_time"])
    assert [r["1st%~2"] for r in by_time] == ["literal", None, None, "l4"]
    assert [r["_1st"] for r in by_time] == [None, "u", None, None]
    assert [r["1st%~3"] for r in by_time] == [None, None, "d", None]
