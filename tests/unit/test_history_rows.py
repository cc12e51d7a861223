"""The history table's rows: the ``keys`` column is each key's compact JSON as received."""

from __future__ import annotations

import random
from typing import Any

import pytest

from ddblake.changes.model import ChangeEvent, compact_json
from ddblake.changes.resolve import Keyed, key_string, version_of
from ddblake.lake import history


def _change(keys: dict[str, Any]) -> Keyed:
    ev = ChangeEvent(
        op="REMOVE",
        table="t-1",
        keys=keys,
        new_image=None,
        old_image=None,
        event_id="e1",
        event_time_us=1,
        sequence=None,
        source="kinesis",
        ttl=False,
        ingested_us=1,
    )
    return Keyed(key_string(keys), version_of(ev), ev)


@pytest.mark.parametrize(
    "keys",
    [
        {"pk": {"S": "a"}},
        {"pk": {"S": "a"}, "sk": {"S": "b"}},
        {"sk": {"S": "b"}, "pk": {"S": "a"}},  # names out of order: kept as received
        {"pk": {"N": "10.0"}},  # the canonical key says 10
        {"pk": {"S": "a"}, "sk": {"N": "1E+1"}},
        {"pk": {"B": "AAE="}, "sk": {"S": 'zoë \\" \u2028 🎉'}},
        {"a": {"S": "x"}, "a\u0000": {"S": "y"}},
    ],
)
def test_the_keys_column_is_the_keys_compact_json_as_received(keys: dict[str, Any]) -> None:
    rows = history.rows([_change(keys)], ["raw/t-1/f.gz"])
    assert rows.column("keys").to_pylist() == [compact_json(keys)]


def test_random_keys_keep_their_json() -> None:
    rng = random.Random(5)
    alphabet = ["a", "b", "pk", "sk", "é", '"', "\\", "\n", "🎉", "0"]
    changes = []
    for _ in range(500):
        names = rng.sample(alphabet, rng.choice([1, 2]))
        keys: dict[str, Any] = {}
        for name in names:
            tag = rng.choice(["S", "N", "B"])
            value = {
                "S": rng.choice(alphabet) * rng.randint(1, 3),
                "N": rng.choice(["1", "-2.50", "3e2"]),
                "B": "AA==",
            }[tag]
            keys[name] = {tag: value}
        changes.append(_change(keys))
    rows = history.rows(changes, ["f"] * len(changes))
    assert rows.column("keys").to_pylist() == [compact_json(c.event.keys) for c in changes]
