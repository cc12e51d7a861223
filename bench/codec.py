"""Benchmark: DynamoDB JSON items to a typed Arrow table, ddblake's codec against the boto3 way.

Both sides start from the same bytes: JSON Lines of DynamoDB JSON items, as the raw change log and
DynamoDB exports hold them.

* baseline: ``json.loads`` per line, boto3's ``TypeDeserializer`` per attribute (told to read the
  base64 text of B values, which it expects already decoded), sets made into sorted lists (Arrow has
  no set type), then ``pyarrow.Table.from_pylist``;
* ddblake: ``ddblake.codec.jsonl_to_table`` (C++ JSON reader, then column-wise conversion).

Each repeat runs both, one after the other, in this one process; the figures are the median and
the best of the repeats. A second, informational comparison starts from already-parsed dicts
(``items_to_table`` against ``TypeDeserializer`` + ``from_pylist``). Finally every value ddblake
produced is compared with the value computed from the DynamoDB JSON text (numbers by Decimal
equality, binary decoded, sets and lists element by element, maps field by field).

Usage: ``python bench/codec.py [--quick] [--items N] [--repeats R]``. The last line printed is one
JSON object with ``"bench": "codec"``, ``"ratio"`` (ddblake items/s over baseline items/s, medians;
higher is better), both throughputs and ``"lossless"``.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
from boto3.dynamodb.types import TypeDeserializer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from ddblake.codec import items_to_table, jsonl_to_table  # noqa: E402
from ddblake.codec.schema import JsonT, ListT, NullT, NumT, StructT, T, from_field  # noqa: E402

_WORDS = ["alice", "bob", "", "Zoë", "日本語", "emoji 🎉", "O'Brien", 'quote " and \\ slash']


def make_items(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """Items of mixed types, every attribute of one kind (the baseline cannot mix kinds)."""
    rnd = random.Random(seed)
    items = []
    for i in range(count):
        minute = rnd.randrange(60)
        item: dict[str, Any] = {
            "pk": {"S": f"user#{rnd.randrange(10**9):09d}"},
            "sk": {"N": str(i)},
            "name": {"S": f"{rnd.choice(_WORDS)}{rnd.randrange(1000)}"},
            "price": {"N": f"{rnd.randrange(10**6)}.{rnd.randrange(100):02d}"},
            "qty": {"N": str(rnd.randrange(-1000, 10**6))},
            "ratio": {"N": f"0.{rnd.randrange(10**20):020d}"},
            "big": {"N": str(rnd.randrange(10**37, 10**38))},
            "active": {"BOOL": rnd.random() < 0.5},
            "created": {
                "S": f"2024-{rnd.randrange(1, 13):02d}-{rnd.randrange(1, 29):02d}T10:{minute:02d}:00Z"
            },
            "blob": {"B": base64.b64encode(rnd.randbytes(rnd.randrange(0, 24))).decode()},
            "tags": {"SS": sorted({f"t{rnd.randrange(20)}" for _ in range(rnd.randrange(1, 4))})},
            "scores": {"NS": sorted({str(rnd.randrange(100)) for _ in range(rnd.randrange(1, 4))})},
            "meta": {
                "M": {
                    "source": {"S": rnd.choice(["web", "app", "api"])},
                    "version": {"N": str(rnd.randrange(100))},
                    "flags": {"L": [{"BOOL": rnd.random() < 0.5} for _ in range(rnd.randrange(0, 3))]},
                }
            },
            "hist": {"L": [{"N": str(rnd.randrange(1000))} for _ in range(rnd.randrange(0, 4))]},
        }
        roll = rnd.random()
        if roll < 0.3:
            item["note"] = {"NULL": True}
        elif roll < 0.6:
            item["note"] = {"S": rnd.choice(_WORDS)}
        items.append(item)
    return items


class _Deserializer(TypeDeserializer):
    """boto3's deserializer, reading B as the base64 text DynamoDB JSON carries."""

    def _deserialize_b(self, value: str) -> bytes:
        return base64.b64decode(value)

    def _deserialize_bs(self, value: list[str]) -> set[bytes]:
        return {base64.b64decode(v) for v in value}


def _arrowable(value: Any) -> Any:
    if isinstance(value, set):
        return sorted(value)
    if isinstance(value, dict):
        return {k: _arrowable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_arrowable(v) for v in value]
    return value


def baseline_from_dicts(items: list[dict[str, Any]]) -> pa.Table:
    deserialize = _Deserializer().deserialize
    rows = [{name: _arrowable(deserialize(av)) for name, av in item.items()} for item in items]
    return pa.Table.from_pylist(rows)


def baseline_from_bytes(data: bytes) -> pa.Table:
    return baseline_from_dicts([json.loads(line) for line in data.splitlines()])


def _expected(t: T, av: dict[str, Any] | None) -> Any:
    if av is None or "NULL" in av:
        return None
    if isinstance(t, JsonT):
        return json.dumps(av, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    ((tag, value),) = av.items()
    if isinstance(t, NumT):
        return value if t.kind == "text" else int(value) if t.kind == "int" else Decimal(value)
    if isinstance(t, ListT):
        element = {"SS": "S", "NS": "N", "BS": "B"}.get(tag)
        members = value if element is None else [{element: m} for m in value]
        return [_expected(t.elem, m) for m in members]
    if isinstance(t, StructT):
        return {name: _expected(f, value.get(name)) for name, f in t.fields}
    if isinstance(t, NullT):
        raise AssertionError("a null column holds a value")
    return base64.b64decode(value) if tag == "B" else value


def check_lossless(table: pa.Table, items: list[dict[str, Any]]) -> tuple[bool, int, list[str]]:
    """Compare every typed value with the value computed from the DynamoDB JSON text."""
    checked, problems = 0, []
    names = {name for item in items for name in item}
    if set(table.column_names) != names or table.num_rows != len(items):
        return False, 0, ["columns or rows differ from the items"]
    for field in table.schema:
        t = from_field(field)
        if t is None or pa.types.is_floating(field.type):
            problems.append(f"{field.name}: unexpected type {field.type}")
            continue
        for row, (actual, item) in enumerate(zip(table.column(field.name).to_pylist(), items, strict=True)):
            checked += 1
            if actual != _expected(t, item.get(field.name)) or (
                isinstance(t, NumT) and t.kind == "int" and actual is not None and type(actual) is not int
            ):
                problems.append(f"{field.name} row {row}")
    return not problems, checked, problems[:5]


def _time(fn: Callable[[], pa.Table]) -> tuple[float, pa.Table]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer items and repeats (well under 2 minutes)")
    parser.add_argument("--items", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    count = args.items or (20_000 if args.quick else 100_000)
    repeats = args.repeats or 3

    items = make_items(count)
    data = "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items).encode()
    print(f"codec bench: {count} items, {len(data) / 1e6:.1f} MB of DynamoDB JSON Lines, {repeats} repeats")
    print("input for both: JSON Lines bytes of DynamoDB JSON items")
    print("  baseline: json.loads + boto3 TypeDeserializer + sets->lists + pyarrow.Table.from_pylist")
    print("  ddblake:  ddblake.codec.jsonl_to_table")

    base_times, ours_times, dict_base_times, dict_ours_times = [], [], [], []
    table = None
    parsed = [json.loads(line) for line in data.splitlines()]
    for r in range(repeats):
        seconds, _ = _time(lambda: baseline_from_bytes(data))
        base_times.append(seconds)
        seconds, table = _time(lambda: jsonl_to_table(data))
        ours_times.append(seconds)
        seconds, _ = _time(lambda: baseline_from_dicts(parsed))
        dict_base_times.append(seconds)
        seconds, _ = _time(lambda: items_to_table(parsed))
        dict_ours_times.append(seconds)
        print(
            f"  repeat {r + 1}: bytes baseline {base_times[-1]:.2f}s ddblake {ours_times[-1]:.2f}s | "
            f"dicts baseline {dict_base_times[-1]:.2f}s ddblake {dict_ours_times[-1]:.2f}s"
        )

    def rate(times: list[float], pick: Callable[[list[float]], float]) -> float:
        return count / pick(times)

    base_rate, ours_rate = rate(base_times, statistics.median), rate(ours_times, statistics.median)
    ratio = ours_rate / base_rate
    ratio_best = rate(ours_times, min) / rate(base_times, min)
    dict_ratio = rate(dict_ours_times, statistics.median) / rate(dict_base_times, statistics.median)
    print(f"bytes input: baseline {base_rate:,.0f} items/s, ddblake {ours_rate:,.0f} items/s (median)")
    print(f"  ratio {ratio:.2f}x median, {ratio_best:.2f}x best")
    print(
        f"dict input (informational): baseline {rate(dict_base_times, statistics.median):,.0f} items/s, "
        f"ddblake {rate(dict_ours_times, statistics.median):,.0f} items/s, ratio {dict_ratio:.2f}x"
    )

    assert table is not None
    lossless, checked, problems = check_lossless(table, items)
    same = table.equals(items_to_table(parsed))
    verdict = "ok" if lossless else problems
    print(f"lossless check: {checked:,} values compared with the DynamoDB JSON text: {verdict}")
    print(f"bytes path and dict path give the same table: {same}")
    types = {f.name: str(f.type) for f in table.schema}
    print("ddblake column types: " + ", ".join(f"{k}={v}" for k, v in types.items()))

    try:
        _Deserializer().deserialize({"N": "1" + "0" * 100})
        boto3_big = "ok"
    except Exception as e:  # noqa: BLE001 - reporting what boto3 does with a legal DynamoDB number
        boto3_big = type(e).__name__
    ours_big = jsonl_to_table(b'{"n": {"N": "1' + b"0" * 100 + b'"}}\n').column("n")[0].as_py()
    print(f"1E+100 (legal in DynamoDB): boto3 TypeDeserializer {boto3_big}; ddblake {len(ours_big)} digits")

    print(
        json.dumps(
            {
                "bench": "codec",
                "input": "JSON Lines bytes of DynamoDB JSON items (both sides)",
                "items": count,
                "repeats": repeats,
                "quick": args.quick,
                "ratio": round(ratio, 2),
                "ratio_best": round(ratio_best, 2),
                "ddblake_items_per_s": round(ours_rate),
                "baseline_items_per_s": round(base_rate),
                "dict_input_ratio": round(dict_ratio, 2),
                "lossless": lossless and same,
                "values_checked": checked,
            }
        )
    )


if __name__ == "__main__":
    main()
