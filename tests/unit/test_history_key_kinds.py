"""The history's typed key columns: one kind per column, a second column for the other kind."""

from __future__ import annotations

import base64
import random
from typing import Any

import pyarrow as pa
import pytest

from ddblake.changes.model import ChangeEvent
from ddblake.changes.resolve import Keyed, key_string, version_of
from ddblake.lake import history


def _change(keys: dict[str, Any], n: int = 0) -> Keyed:
    ev = ChangeEvent(
        op="REMOVE",
        table="t-1",
        keys=keys,
        new_image=None,
        old_image=None,
        event_id=f"e{n}",
        event_time_us=1 + n,
        sequence=None,
        source="kinesis",
        ttl=False,
        ingested_us=1,
    )
    return Keyed(key_string(keys), version_of(ev), ev)


def _typed(value: dict[str, str]) -> str | bytes:
    ((tag, inner),) = value.items()
    return base64.b64decode(inner) if tag == "B" else inner


@pytest.mark.parametrize(
    "attr",
    ["pk", "_ddb_binary_pk", "_ddb_text_pk", "key__ddb_text_pk", "_ddb_key", "op", "key_op", "_ddb_binaryx"],
)
def test_no_key_column_is_a_second_column_or_a_fixed_one(attr: str) -> None:
    col = history.key_column(attr)
    assert col not in history.FIXED_NAMES
    assert not col.startswith(("_ddb_binary_", "_ddb_text_"))
    assert history.other_kind_column(attr, history.BINARY) not in history.FIXED_NAMES


def test_key_columns_are_one_to_one() -> None:
    names = ["pk", "_ddb_binary_pk", "key__ddb_binary_pk", "key_key__ddb_binary_pk", "op", "key_op", "key_pk"]
    cols = [history.key_column(n) for n in names]
    seconds = [history.other_kind_column(n, k) for n in names for k in (history.BINARY, history.TEXT)]
    assert len(set(cols + seconds)) == len(cols) + len(seconds)


def test_a_value_of_the_other_kind_goes_to_its_own_column() -> None:
    schema = pa.schema([pa.field("pk", pa.large_string())])  # the table's column: text
    changes = [
        _change({"pk": {"B": "/wA="}}, 1),
        _change({"pk": {"S": "a"}}, 2),
        _change({"pk": {"N": "5"}}, 3),
    ]
    rows = history.rows(changes, ["f"] * 3, schema=schema)
    assert rows.column("pk").to_pylist() == [None, "a", "5"]
    assert rows.column("_ddb_binary_pk").to_pylist() == [b"\xff\x00", None, None]
    assert rows.schema.field("_ddb_binary_pk").type == pa.binary()
    binary = pa.schema([pa.field("pk", pa.binary())])
    rows = history.rows(changes, ["f"] * 3, schema=binary)
    assert rows.column("pk").to_pylist() == [b"\xff\x00", None, None]
    assert rows.column("_ddb_text_pk").to_pylist() == [None, "a", "5"]


def test_mixed_kinds_in_one_batch_never_change_a_value() -> None:
    # Before, the first value typed the column and the rest were forced into it: an S key "a" in
    # a binary column read b"a", a B key of valid UTF-8 read as text, and other bytes failed.
    rng = random.Random(7)
    changes = []
    for n in range(400):
        keys: dict[str, Any] = {}
        for name in rng.sample(["pk", "sk", "key_op", "_ddb_text_pk"], rng.choice([1, 2])):
            tag = rng.choice(["S", "N", "B"])
            inner = {"S": rng.choice(["a", "", "é"]), "N": rng.choice(["1", "-2.50"]), "B": "/wA="}[tag]
            keys[name] = {tag: inner}
        changes.append(_change(keys, n))
    rows = history.rows(changes, ["f"] * len(changes)).to_pylist()
    for change, row in zip(changes, rows, strict=True):
        for attr, value in change.event.keys.items():
            kind = history.BINARY if "B" in value else history.TEXT
            cols = [history.key_column(attr), history.other_kind_column(attr, kind)]
            assert [row[c] for c in cols if row.get(c) is not None] == [_typed(value)]
