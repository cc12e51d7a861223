"""A key attribute whose DynamoDB type changes: the table deleted and created again (docs/lake.md).

The history's typed key column takes its kind (text for S and N, binary for B) from the first key
value; a value of the other kind used to stop apply for good (a B key's bytes are no UTF-8 text).
Now it goes to a second column of its own kind and every value stays exact, while the current
state's key column follows the rule for mixed types (DynamoDB JSON text) and ``dump`` gives back
each item exactly.
"""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

from lake_helpers import BASE_US, TABLE, Lake

from ddblake.lake.query import run_sql
from ddblake.lake.report import dump_items


def _line(op: str, keys: dict[str, Any], t: int, image: dict[str, Any] | None = None) -> bytes:
    """One raw-log line as capture writes it (docs/raw-log.md)."""
    new = None if op == "REMOVE" else {**keys, **(image or {})}
    obj = {
        "v": 1,
        "op": op,
        "table": TABLE,
        "keys": keys,
        "new": new,
        "old": None,
        "event_id": uuid.uuid4().hex,
        "event_time_us": BASE_US + t * 1_000_000,
        "seq": None,
        "source": "streams",
        "ttl": False,
        "ingested_us": BASE_US + t * 1_000_000,
    }
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _history(lake: Lake) -> list[dict[str, Any]]:
    cols, rows = run_sql(lake.catalog(), "ddb", "select * from orders_table_changes order by event_time")
    return [dict(zip(cols, row, strict=True)) for row in rows]


def _current(lake: Lake) -> list[dict[str, Any]]:
    cols, rows = run_sql(lake.catalog(), "ddb", "select * from orders_table order by _ddb_key")
    return [dict(zip(cols, row, strict=True)) for row in rows]


def _dump(lake: Lake) -> list[dict[str, Any]]:
    return [json.loads(line)["Item"] for line in dump_items(lake.catalog(), "ddb", TABLE)]


def _typed(value: dict[str, str]) -> str | bytes:
    ((tag, inner),) = value.items()
    return base64.b64decode(inner) if tag == "B" else inner


def _assert_key_columns_exact(rows: list[dict[str, Any]]) -> None:
    """Each key value is in exactly one typed column of its attribute, as its text or bytes."""
    for row in rows:
        for attr, value in json.loads(row["keys"]).items():
            kind = "binary" if "B" in value else "text"
            candidates = [row.get(attr), row.get(f"_ddb_{kind}_{attr}")]
            held = [c for c in candidates if c is not None]
            assert held == [_typed(value)], (attr, value, row)


def test_a_key_recreated_as_binary_keeps_applying_and_every_value(lake: Lake) -> None:
    lake.write([], lines=[_line("INSERT", {"pk": {"S": "a"}}, 1, {"n": {"N": "1"}})])
    lake.write([], lines=[_line("INSERT", {"pk": {"S": "b"}}, 2, {"n": {"N": "2"}})])
    lake.apply()
    binary = {"pk": {"B": _b64(b"\xff\x00")}}
    same_bytes = {"pk": {"B": _b64(b"a")}}  # the bytes of the old S key "a": another item
    lake.write(
        [],
        lines=[
            _line("INSERT", binary, 3, {"n": {"N": "3"}}),
            _line("INSERT", same_bytes, 4, {"n": {"N": "4"}}),
            _line("REMOVE", {"pk": {"S": "b"}}, 5),
        ],
    )
    result = lake.apply()
    assert result.history_rows == 3 and result.upserts == 2 and result.deletes == 1
    lake.write([], lines=[_line("MODIFY", binary, 6, {"n": {"N": "6"}})])
    lake.apply()

    history = _history(lake)
    assert len(history) == 6
    _assert_key_columns_exact(history)
    assert [r["pk"] for r in history] == ["a", "b", None, None, "b", None]
    assert [r["_ddb_binary_pk"] for r in history] == [None, None, b"\xff\x00", b"a", None, b"\xff\x00"]

    assert _dump(lake) == [
        {"pk": {"B": _b64(b"\xff\x00")}, "n": {"N": "6"}},
        {"pk": {"B": _b64(b"a")}, "n": {"N": "4"}},
        {"pk": {"S": "a"}, "n": {"N": "1"}},
    ]
    current = {r["_ddb_key"]: r["pk"] for r in _current(lake)}  # S against B: DynamoDB JSON text
    assert {json.loads(k)["pk"] == json.loads(v) for k, v in current.items()} == {True}
    assert len(current) == 3


def test_a_binary_key_then_text_and_numbers(lake: Lake) -> None:
    lake.write([], lines=[_line("INSERT", {"pk": {"B": _b64(b"\x00\x01")}}, 1)])
    lake.apply()
    lake.write([], lines=[_line("INSERT", {"pk": {"S": "x"}}, 2), _line("INSERT", {"pk": {"N": "10.50"}}, 3)])
    lake.apply()
    history = _history(lake)
    _assert_key_columns_exact(history)
    assert [(r["pk"], r["_ddb_text_pk"]) for r in history] == [
        (b"\x00\x01", None),
        (None, "x"),
        (None, "10.50"),
    ]
    assert {json.dumps(item, sort_keys=True) for item in _dump(lake)} == {
        json.dumps({"pk": {"B": _b64(b"\x00\x01")}}),
        json.dumps({"pk": {"S": "x"}}),
        json.dumps({"pk": {"N": "10.50"}}),
    }


def test_a_sort_key_that_changes_type_in_one_batch_or_two(lake: Lake, tmp_path: Path) -> None:
    lines = [
        _line("INSERT", {"pk": {"S": "a"}, "sk": {"N": "1"}}, 1, {"x": {"S": "one"}}),
        _line("INSERT", {"pk": {"S": "a"}, "sk": {"B": _b64(b"\x80")}}, 2, {"x": {"S": "two"}}),
        _line("INSERT", {"pk": {"S": "a"}, "sk": {"S": "1"}}, 3, {"x": {"S": "three"}}),
    ]
    one, two = lake, Lake(tmp_path / "two")  # the fixture cleared DDBLAKE_* settings
    one.write([], lines=lines)
    one.apply()
    for line in lines:
        two.write([], lines=[line])
        two.apply()
    for lake in (one, two):
        history = _history(lake)
        _assert_key_columns_exact(history)
        assert [(r["sk"], r["_ddb_binary_sk"]) for r in history] == [
            ("1", None),
            (None, b"\x80"),
            ("1", None),
        ]
        assert [json.loads(r["keys"])["sk"] for r in history] == [{"N": "1"}, {"B": "gA=="}, {"S": "1"}]
        assert len(_dump(lake)) == 3
    drop = ("_ddb_version", "_ddb_event_time")  # event IDs and times differ between the two lakes
    rows_one = [{k: v for k, v in r.items() if k not in drop} for r in _current(one)]
    rows_two = [{k: v for k, v in r.items() if k not in drop} for r in _current(two)]
    assert rows_one == rows_two
    assert _dump(one) == _dump(two)
