"""Maps keyed by data (user IDs, dates) are DynamoDB JSON text, not a struct field per key.

A struct field per distinct key made a schema, a Parquet column per key and an apply batch whose
cost grew with keys times rows (5,000 items with two fresh keys each: 88 s and 1.5 GB). Past
``MAX_MAP_FIELDS`` distinct keys a map slot is typed as a type conflict is: each value's DynamoDB
JSON text (docs/types.md, "Wide maps").
"""

from __future__ import annotations

import base64
import json
import random
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from ddblake.codec import BadValueError, dumps, items_to_table, jsonl_to_table, read_jsonl
from ddblake.codec import schema as lattice
from ddblake.codec.parsed import WideMapsError
from ddblake.codec.schema import JSON_T, STR_T, NumT, StructT, from_field, join


def _lines(items: list[dict[str, Any]], wrap: str | None = None) -> bytes:
    return b"".join(json.dumps(i if wrap is None else {wrap: i}).encode() + b"\n" for i in items)


def _keyed(count: int, keys_each: int = 2, *, offset: int = 0) -> list[dict[str, Any]]:
    """Items whose map ``m`` is keyed by fresh IDs, beside a typed ``n`` and a small map ``p``."""
    return [
        {
            "pk": {"S": f"p{i}"},
            "n": {"N": str(i)},
            "p": {"M": {"a": {"S": "x"}, "b": {"N": "1.5"}}},
            "m": {"M": {f"user-{offset + i:05d}-{k}": {"N": f"{k}.25"} for k in range(keys_each)}},
        }
        for i in range(count)
    ]


def _is_ddb_json(field: pa.Field) -> bool:
    return from_field(field) == JSON_T


def test_a_map_with_more_keys_than_the_limit_is_dynamodb_json_text_and_the_rest_stays_typed() -> None:
    items = _keyed(lattice.MAX_MAP_FIELDS // 2 + 1)  # two keys each: one past the limit
    table = items_to_table(items)
    assert _is_ddb_json(table.schema.field("m"))
    assert table.column("m").to_pylist() == [dumps(item["m"]) for item in items]
    assert table.schema.field("n").type == pa.int64()
    assert pa.types.is_struct(table.schema.field("p").type)
    assert table.column("p").to_pylist()[0] == {"a": "x", "b": Decimal("1.5")}


def test_the_limit_itself_is_still_a_struct() -> None:
    items = _keyed(lattice.MAX_MAP_FIELDS // 2)  # exactly MAX_MAP_FIELDS keys
    field = items_to_table(items).schema.field("m")
    assert pa.types.is_struct(field.type)
    assert field.type.num_fields == lattice.MAX_MAP_FIELDS


@pytest.mark.parametrize("wrap", [None, "Item", "new"])
def test_the_json_lines_path_gives_the_same_table(wrap: str | None) -> None:
    items = _keyed(400)
    assert jsonl_to_table(_lines(items, wrap), image_field=wrap).equals(items_to_table(items))


def test_the_arrow_reader_refuses_wide_maps_and_reads_narrow_ones() -> None:
    with pytest.raises(WideMapsError):
        read_jsonl(_lines(_keyed(400)), refuse_wide=1)
    with pytest.raises(WideMapsError):
        read_jsonl(_lines(_keyed(400), "Item"), refuse_wide=2)
    narrow = _keyed(50)
    assert read_jsonl(_lines(narrow), refuse_wide=1).num_rows == 50
    # Many attributes are columns, not a wide map: only maps count.
    many = [{f"a{k}": {"S": "x"} for k in range(lattice.MAX_MAP_FIELDS + 5)}]
    assert read_jsonl(_lines(many, "Item"), refuse_wide=2).num_rows == 1
    assert items_to_table(many).num_columns == lattice.MAX_MAP_FIELDS + 5


def test_wide_maps_past_the_first_lines_are_found(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fresh keys that begin after the probe's lines still send the batch the Python way."""
    monkeypatch.setattr(lattice, "MAX_MAP_FIELDS", 20)
    quiet = [{"pk": {"S": f"q{i}"}, "m": {"M": {"same": {"S": "x" * 200}}}} for i in range(400)]
    items = quiet + _keyed(30)  # the first 64 KB hold one key; the rest 60 more
    assert len(_lines(quiet)) > 1 << 16
    table = jsonl_to_table(_lines(items))
    assert _is_ddb_json(table.schema.field("m"))
    assert table.equals(items_to_table(items))


def test_wide_maps_nested_in_lists_and_maps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lattice, "MAX_MAP_FIELDS", 4)
    items = [
        {
            "pk": {"S": f"p{i}"},
            "l": {"L": [{"M": {f"k{i}{j}": {"S": "v"}}} for j in range(3)]},
            "o": {"M": {"inner": {"M": {f"id{i}": {"BOOL": True}}}, "fixed": {"N": "7"}}},
        }
        for i in range(5)
    ]
    table = items_to_table(items)
    assert table.schema.field("l").type == pa.list_(pa.string())
    assert table.column("l").to_pylist()[1] == [dumps(e) for e in items[1]["l"]["L"]]
    o = table.schema.field("o").type
    assert [o.field(i).name for i in range(o.num_fields)] == ["fixed", "inner"]
    assert table.column("o").to_pylist()[2] == {"fixed": 7, "inner": dumps(items[2]["o"]["M"]["inner"])}
    assert jsonl_to_table(_lines(items)).equals(table)


def test_binary_in_a_wide_map_is_its_base64_text_whichever_way_it_arrives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lattice, "MAX_MAP_FIELDS", 2)
    raw = [bytes([i, 255, 0]) for i in range(3)]
    as_text = [
        {
            "pk": {"S": f"p{i}"},
            "m": {
                "M": {
                    f"k{i}": {"B": base64.b64encode(b).decode()},
                    "s": {"BS": [base64.b64encode(b).decode()]},
                }
            },
        }
        for i, b in enumerate(raw)
    ]
    as_bytes = [
        {"pk": {"S": f"p{i}"}, "m": {"M": {f"k{i}": {"B": b}, "s": {"BS": [b]}}}} for i, b in enumerate(raw)
    ]
    assert items_to_table(as_bytes).equals(items_to_table(as_text))
    assert items_to_table(as_text).column("m").to_pylist()[0] == dumps(as_text[0]["m"])


def test_a_bad_value_in_a_wide_map_is_refused_without_naming_its_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lattice, "MAX_MAP_FIELDS", 3)
    items = _keyed(4)
    items[2]["m"]["M"]["secret-user-id"] = {"N": "12abc"}
    for convert in (lambda: items_to_table(items), lambda: jsonl_to_table(_lines(items))):
        with pytest.raises(BadValueError) as raised:
            convert()
        assert "m.<a key>" in str(raised.value)
        assert "secret" not in str(raised.value)
    items[2]["m"]["M"]["secret-user-id"] = {"S": "x", "N": "1"}
    with pytest.raises(BadValueError, match="one type tag"):
        items_to_table(items)


def test_a_map_holding_keys_named_text_and_values_is_an_ordinary_map() -> None:
    """The wide form is marked by metadata no JSON reader writes, so input cannot pass for it."""
    items = [{"pk": {"S": "a"}, "m": {"M": {"text": {"S": "t"}, "values": {"L": [{"S": "v"}]}}}}]
    for table in (items_to_table(items), jsonl_to_table(_lines(items))):
        assert table.column("m").to_pylist() == [{"text": "t", "values": ["v"]}]


def test_join_makes_json_text_once_the_union_of_fields_passes_the_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lattice, "MAX_MAP_FIELDS", 6)
    parts = [StructT(tuple((f"k{i}{j}", STR_T) for j in range(2))) for i in range(4)]  # 8 fields in all
    rnd = random.Random(7)
    for _ in range(20):
        order = rnd.sample(parts, len(parts))
        joined = order[0]
        for part in order[1:]:
            joined = join(joined, part)
        assert joined == JSON_T
    three = join(join(parts[0], parts[1]), parts[2])
    assert isinstance(three, StructT)
    assert len(three.fields) == 6
    assert join(three, StructT((("k00", NumT("int", 1, 0)),))) == StructT(
        (("k00", JSON_T), *three.fields[1:])
    )


def test_split_batches_end_with_the_type_one_batch_gives(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each batch under the limit, the union over it: the evolved schema is the whole batch's."""
    monkeypatch.setattr(lattice, "MAX_MAP_FIELDS", 10)
    items = _keyed(8)  # 16 keys in all, 2 per item
    whole = items_to_table(items)
    first = items_to_table(items[:4])  # 8 keys: a struct
    assert pa.types.is_struct(first.schema.field("m").type)
    evolved = items_to_table(items[4:], first.schema, evolve=True)
    assert evolved.schema.field("m").equals(whole.schema.field("m"))
    assert evolved.column("m").to_pylist() == whole.column("m").to_pylist()[4:]


def test_a_wide_map_inside_a_conflict_is_rendered_as_its_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """An attribute S in one item and a map holding a wide map in another: the JSON text of both
    (the wide form inside a struct or list is rendered from its text, not taken for a map)."""
    monkeypatch.setattr(lattice, "MAX_MAP_FIELDS", 3)
    wide = {"M": {f"user-{i}": {"N": str(i)} for i in range(5)}}
    items = [
        {"pk": {"S": "1"}, "a": {"S": "x"}, "l": {"L": [{"S": "x"}, {"M": {"inner": wide}}]}},
        {"pk": {"S": "2"}, "a": {"M": {"inner": wide, "n": {"N": "1"}}}, "l": {"L": [wide, {"N": "2"}]}},
    ]
    expected = items_to_table(items)
    assert expected.column("a").to_pylist() == [dumps(items[0]["a"]), dumps(items[1]["a"])]
    assert expected.column("l").to_pylist() == [[dumps(v) for v in item["l"]["L"]] for item in items]
    assert jsonl_to_table(_lines(items)).equals(expected)


@pytest.mark.parametrize("untyped", [{"NULL": True}, {"M": {}}, {"L": []}, {"L": [{"NULL": True}]}])
def test_keys_holding_only_null_or_empty_values_do_not_count(
    monkeypatch: pytest.MonkeyPatch, untyped: dict[str, Any]
) -> None:
    """They leave no field (pruned, and not remembered between batches), so counting them would
    make the column depend on how the items were batched."""
    monkeypatch.setattr(lattice, "MAX_MAP_FIELDS", 4)
    items = [{"pk": {"S": f"p{i}"}, "m": {"M": {f"k{i}{j}": untyped for j in range(3)}}} for i in range(4)]
    items[0]["m"]["M"].update({"t1": {"S": "a"}, "t2": {"N": "1"}})
    for table in (items_to_table(items, drop_untyped=True), jsonl_to_table(_lines(items), drop_untyped=True)):
        m = table.schema.field("m").type
        assert [m.field(i).name for i in range(m.num_fields)] == ["t1", "t2"]  # 12 untyped keys, 2 typed
    items[1]["m"]["M"].update({"t3": {"S": "b"}, "t4": {"BOOL": True}, "t5": {"SS": ["z"]}})
    assert _is_ddb_json(items_to_table(items).schema.field("m"))  # 5 typed keys
    assert jsonl_to_table(_lines(items)).equals(items_to_table(items))


def test_wrong_python_values_in_a_wide_map_are_bad_values_and_none_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lattice, "MAX_MAP_FIELDS", 2)
    base = {f"k{i}": {"S": "v"} for i in range(4)}
    for bad in ({"N": Decimal("1")}, {"SS": {"a"}}, {"S": b"x"}):
        with pytest.raises(BadValueError, match=r"m\.<a key>"):
            items_to_table([{"pk": {"S": "a"}, "m": {"M": {**base, "x": bad}}}])
    with_none = items_to_table([{"pk": {"S": "a"}, "m": {"M": {**base, "x": None}}}])
    assert with_none.column("m").to_pylist() == [dumps({"M": base})]


def test_the_probe_takes_a_first_line_longer_than_itself_alone() -> None:
    from ddblake.codec.parsed import _head

    data = b'{"a": "' + b"x" * 100_000 + b'"}\n{"b": 1}\n' + b'{"c": 2}\n' * 10_000
    assert _head(data, 1 << 16) == data[: data.index(b"\n") + 1]
    assert _head(data, 1 << 16, len(data) - 9) == b'{"c": 2}\n'


def test_wide_maps_after_the_sample_are_refused_before_the_whole_input_is_spread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import ddblake.codec.parsed as parsed

    filler = [{"pk": {"S": f"f{i:06d}"}, "pad": {"S": "x" * 80}} for i in range(13_000)]  # 1.6 MB
    items = filler + _keyed(2_000, 3)
    data = _lines(items)
    reads: list[int] = []
    real_read = parsed._read

    def spy(chunk: bytes, schema: Any, **kwargs: Any) -> pa.Table:
        reads.append(len(chunk))
        return real_read(chunk, schema, **kwargs)

    monkeypatch.setattr(parsed, "_read", spy)
    with pytest.raises(WideMapsError):
        read_jsonl(data, refuse_wide=1)
    assert max(reads) <= 1 << 20 < len(data)  # found by a probe: no read past the sample
    reads.clear()
    assert jsonl_to_table(data).equals(items_to_table(items))
    assert max(reads) <= 1 << 20
