"""Random nested items give the same current state in one batch or in many (docs/types.md).

Maps and lists of maps gaining keys at every depth (fields added in place, or every row retyped
where rows held an untyped value there), untyped values (``[]``, ``{}``, NULL, ``[NULL]``), names
with dots, type conflicts: applied together, or split at random points, the typed rows read
through ``query`` and the ``dump`` must be equal. Items have distinct keys (an overwritten or
deleted item's types still count, docs/types.md) and no two names stored alike (which of them keeps
its own name depends on the order, docs/types.md, Names stored alike).
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from lake_helpers import MakeLake, applied, current_rows, insert
from lake_helpers import new_lake as new_lake  # noqa: F401 (fixture)

KEYS = ["a", "b", "c", "d", "e", "f", "x.y", "1st"]
SCALARS: list[dict[str, Any]] = [
    {"S": "p"},
    {"N": "3"},
    {"N": "-1.5"},
    {"BOOL": True},
    {"NULL": True},
    {"L": []},
    {"M": {}},
    {"SS": ["s"]},
    {"B": "AA=="},
]


def _kept(rng: random.Random, key: str, depth: int) -> dict[str, Any]:
    """A value whose type depends on its key alone (NULL and empty values now and then)."""
    if rng.random() < 0.1:
        return {"NULL": True}
    if key in ("a", "x.y"):
        return {"S": rng.choice("pq")}
    if key in ("b", "1st"):
        return {"N": str(rng.randint(-5, 5))}
    if key == "e":
        return {"L": [{"S": "s"}] * rng.randint(0, 2)}
    if key == "f":
        return rng.choice([{"L": []}, {"M": {}}]) if rng.random() < 0.8 else {"L": [{"N": "1"}]}
    if key == "d":
        return {"L": [_map(rng, depth + 1, _kept) for _ in range(rng.randint(0, 2))]}
    return _map(rng, depth + 1, _kept)


def _any(rng: random.Random, key: str, depth: int) -> dict[str, Any]:
    """A value of any type (conflicts make DynamoDB JSON text)."""
    r = rng.random()
    if depth > 2 or r < 0.3:
        return dict(rng.choice(SCALARS))
    if r < 0.65:
        return _map(rng, depth + 1, _any)
    return {"L": [_any(rng, key, depth + 1) for _ in range(rng.randint(0, 2))]}


def _map(rng: random.Random, depth: int, value: Any) -> dict[str, Any]:
    keys = KEYS if depth < 3 else ["a", "b", "e", "f"]
    return {"M": {k: value(rng, k, depth) for k in rng.sample(keys, rng.randint(0, 3))}}


@pytest.mark.parametrize(("seed", "kind"), [(s, "kept") for s in range(6)] + [(s, "any") for s in range(4)])
def test_random_nested_items_give_the_same_table_in_one_batch_or_many(
    new_lake: MakeLake, seed: int, kind: str
) -> None:
    rng = random.Random(f"{kind}-{seed}")
    value = _kept if kind == "kept" else _any
    events = [
        insert(f"k{i:03d}", i, {k: _map(rng, 0, value) for k in rng.sample(["m", "n"], rng.randint(1, 2))})
        for i in range(rng.randint(8, 24))
    ]
    cuts = sorted(rng.sample(range(1, len(events)), rng.randint(2, 6)))
    batches = [events[a:b] for a, b in zip([0, *cuts], [*cuts, len(events)], strict=True)]
    together = applied(new_lake(), [events])
    split = applied(new_lake(), batches)
    assert current_rows(split) == current_rows(together)
    assert split.dump() == together.dump()
    # Struct fields in the same order too (map keys in key order); top-level columns may differ.
    assert _struct_orders(split) == _struct_orders(together)


def _struct_orders(lake: Any) -> dict[str, Any]:
    schema = lake.catalog().load_table("ddb.orders_table").schema()
    return {f.name: _names(f.field_type) for f in schema.fields if not f.field_type.is_primitive}


def _names(t: Any) -> Any:
    if hasattr(t, "element_field"):
        return [_names(t.element_field.field_type)]
    if hasattr(t, "fields"):
        return [(f.name, _names(f.field_type)) for f in t.fields]
    return None
