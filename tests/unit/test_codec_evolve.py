"""codec.evolve: the schema of many items from their parts' types, as typing them at once gives it.

A whole-table retype (ddblake.lake.retyping) types a table's items file by file; the schema must be
the one typing them all at once gives, or the table would widen further than the same items in one
batch (an int64 column read back counts 19 digits, whatever its values).
"""

from __future__ import annotations

import random
from typing import Any

import pyarrow as pa
import pytest

from ddblake.codec import items_to_table
from ddblake.codec.evolve import evolved_schema, infer_types, join_types

PRECISION = 38


def _value(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    kinds = ["int", "dec", "big", "s", "b", "bool", "null", "ss", "ns", "l", "m", "empty_l", "empty_m"]
    kind = rng.choice(kinds if depth < 2 else kinds[:9])
    if kind == "int":
        return {"N": str(rng.randint(-(10 ** rng.randint(1, 18)), 10 ** rng.randint(1, 18)))}
    if kind == "dec":
        return {"N": f"{rng.randint(0, 10 ** rng.randint(1, 12))}.{rng.randint(1, 10 ** rng.randint(1, 9))}"}
    if kind == "big":
        return {"N": "9" * rng.randint(19, 40)}
    if kind == "s":
        return {"S": rng.choice(["", "a", "Zoë"])}
    if kind == "b":
        return {"B": "YQ=="}
    if kind == "bool":
        return {"BOOL": rng.random() < 0.5}
    if kind == "null":
        return {"NULL": True}
    if kind == "ss":
        return {"SS": ["a", "b"]}
    if kind == "ns":
        return {"NS": [str(rng.randint(0, 999)), "1.5"]}
    if kind == "l":
        return {"L": [_value(rng, depth + 1) for _ in range(rng.randint(1, 3))]}
    if kind == "m":
        return {"M": {f"k{rng.randint(0, 3)}": _value(rng, depth + 1) for _ in range(rng.randint(1, 3))}}
    if kind == "empty_l":
        return {"L": []}
    return {"M": {}}


def _items(rng: random.Random, count: int) -> list[dict[str, Any]]:
    return [
        {f"a{rng.randint(0, 5)}": _value(rng) for _ in range(rng.randint(0, 4))} | {"pk": {"S": "x"}}
        for _ in range(count)
    ]


@pytest.mark.parametrize("seed", range(40))
def test_parts_give_the_schema_of_all_items_at_once(seed: int) -> None:
    rng = random.Random(seed)
    before = _items(rng, rng.randint(1, 20))
    schema = None if seed % 3 == 0 else items_to_table(before, max_decimal_precision=PRECISION).schema
    items = _items(rng, rng.randint(1, 60))
    cuts = sorted(rng.sample(range(1, len(items)), min(3, len(items) - 1))) if len(items) > 1 else []
    parts = [items[a:b] for a, b in zip([0, *cuts], [*cuts, len(items)], strict=True)]
    kw = {"max_decimal_precision": PRECISION}
    at_once = items_to_table(items, schema, evolve=True, wide_decimals=True, **kw).schema
    types: dict[str, Any] = {}
    for part in parts:
        types = join_types(types, infer_types(part, **kw), **kw)
    assert evolved_schema(types, schema, wide_decimals=True, **kw).equals(at_once, check_metadata=True)


def test_a_decimal_column_read_back_does_not_widen_what_the_values_do_not() -> None:
    """Typing part by part through Arrow schemas gave number text where one batch gives a decimal:
    a decimal(38, 4) read back counts 34 digits before the point, whatever its values."""
    kw = {"max_decimal_precision": PRECISION}
    parts = [[{"n": {"N": "74.603"}}], [{"n": {"N": "1.123456789"}}]]
    types: dict[str, Any] = {}
    for part in parts:
        types = join_types(types, infer_types(part, **kw), **kw)
    schema = evolved_schema(types, None, wide_decimals=True, **kw)
    assert schema.field("n").type == pa.decimal128(38, 9)
    through_arrow = items_to_table(parts[0], None, evolve=True, wide_decimals=True, **kw).schema
    again = items_to_table(parts[1], through_arrow, evolve=True, wide_decimals=True, **kw).schema
    assert again.field("n").type == pa.string()  # number text: the way a retype must not go


@pytest.mark.parametrize("seed", range(20))
def test_types_read_from_json_lines_are_those_of_the_items(seed: int) -> None:
    import json

    from ddblake.codec.evolve import infer_text_types

    rng = random.Random(1000 + seed)
    items = _items(rng, rng.randint(1, 40))
    data = "\n".join(json.dumps(i, separators=(",", ":"), ensure_ascii=False) for i in items).encode()
    kw = {"max_decimal_precision": PRECISION}
    assert infer_text_types(data, **kw) == infer_types(items, **kw)


@pytest.mark.parametrize("seed", range(30))
def test_map_fields_come_sorted_whatever_order_the_parts_come_in(seed: int) -> None:
    """Typing items at once sorts a map's fields by name; parts joined must give the same order."""
    rng = random.Random(2000 + seed)
    keys = [f"k{c}" for c in "zyxabc"]

    def item() -> dict[str, Any]:
        inner = {k: {"N": "1"} for k in rng.sample(keys, rng.randint(1, 3))}
        return {"pk": {"S": "x"}, "m": {"M": inner}, "l": {"L": [{"M": inner}]}}

    items = [item() for _ in range(rng.randint(2, 12))]
    kw = {"max_decimal_precision": PRECISION}
    at_once = items_to_table(items, None, evolve=True, wide_decimals=True, **kw).schema
    types: dict[str, Any] = {}
    for one in items:  # a part per item: the worst order
        types = join_types(types, infer_types([one], **kw), **kw)
    assert evolved_schema(types, None, wide_decimals=True, **kw).equals(at_once, check_metadata=True)
