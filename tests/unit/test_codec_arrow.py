"""Items to typed Arrow columns: exact values, the type rules, conflicts, schema evolution."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_codec_strategies import DATE_LIKE, batches, decimals, jsonl, number_texts, texts, typed_batches

from ddblake.codec import (
    BadValueError,
    SchemaMismatchError,
    dumps,
    items_to_table,
    jsonl_to_table,
    parsed_to_table,
    prune_untyped,
    read_jsonl,
    table_to_items,
    unify_schemas,
)
from ddblake.codec.schema import JsonT, ListT, NullT, NumT, StructT, T, from_field
from ddblake.codec.texts import json_texts

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HEAVY = settings(SETTINGS, max_examples=20)
_ELEMENT = {"SS": "S", "NS": "N", "BS": "B"}


def expected(t: T, av: dict[str, Any] | None) -> Any:
    """What a column of type ``t`` must hold for ``av``, computed from the DynamoDB JSON alone."""
    if av is None or "NULL" in av:
        return None
    if isinstance(t, JsonT):
        return dumps(av)
    ((tag, value),) = av.items()
    if isinstance(t, NumT):
        assert tag == "N"
        return value if t.kind == "text" else int(Decimal(value)) if t.kind == "int" else Decimal(value)
    if isinstance(t, ListT):
        members = value if tag == "L" else [{_ELEMENT[tag]: m} for m in value]
        return [expected(t.elem, m) for m in members]
    if isinstance(t, StructT):
        assert tag == "M"
        return {name: expected(f, value.get(name)) for name, f in t.fields}
    assert not isinstance(t, NullT), "a null column only holds NULLs"
    return base64.b64decode(value) if tag == "B" else value


def assert_exact(table: pa.Table, rows: list[dict[str, Any]]) -> None:
    """Every typed value equals the item's value (numbers by Decimal equality, types by kind)."""
    assert table.num_rows == len(rows)
    for field in table.schema:
        t = from_field(field)
        assert t is not None
        actual = table.column(field.name).to_pylist()
        for row, item in zip(actual, rows, strict=True):
            want = expected(t, item.get(field.name))
            assert row == want, (field, item.get(field.name))
            if isinstance(t, NumT) and t.kind == "int" and row is not None:
                assert type(row) is int


def attributes(rows: list[dict[str, Any]]) -> set[str]:
    return {name for row in rows for name in row}


# --- exact values --------------------------------------------------------------------------------


@SETTINGS
@given(batches)
def test_any_batch_converts_exactly(rows: list[dict[str, Any]]) -> None:
    table = items_to_table(rows)
    assert set(table.column_names) == attributes(rows)
    assert table.column_names == sorted(table.column_names)
    assert_exact(table, rows)


@SETTINGS
@given(typed_batches())
def test_consistent_batches_get_typed_columns(rows: list[dict[str, Any]]) -> None:
    table = items_to_table(rows)
    assert_exact(table, rows)
    for field in table.schema:
        t = from_field(field)
        assert not isinstance(t, JsonT), "one kind per attribute never conflicts"


@SETTINGS
@given(batches)
def test_bytes_path_equals_dict_path(rows: list[dict[str, Any]]) -> None:
    from_dicts = items_to_table(rows)
    from_bytes = jsonl_to_table(jsonl(rows))
    assert from_bytes.equals(from_dicts)
    assert from_bytes.schema.equals(from_dicts.schema, check_metadata=True)


@SETTINGS
@given(typed_batches())
def test_raw_log_lines_convert_their_image_column(rows: list[dict[str, Any]]) -> None:
    lines = [{"op": "REMOVE" if not row else "INSERT", "new": row or None, "seq": "1"} for row in rows]
    table = jsonl_to_table(jsonl(lines), image_field="new")
    assert table.equals(items_to_table([row or None for row in rows]))
    if rows:
        assert parsed_to_table(read_jsonl(jsonl(lines)).column("new")).equals(table)


@SETTINGS
@given(st.lists(decimals(), min_size=1, max_size=6).flatmap(lambda ds: st.tuples(*map(number_texts, ds))))
def test_number_columns_are_exact_whatever_the_notation(texts: tuple[str, ...]) -> None:
    rows = [{"n": {"N": t}} for t in texts]
    for table in (
        items_to_table(rows),
        jsonl_to_table(jsonl(rows)),
        items_to_table(rows, max_decimal_precision=38),
    ):
        assert_exact(table, rows)
        assert not pa.types.is_floating(table.schema.field("n").type)


def test_dates_stay_text_in_the_bytes_path() -> None:
    rows = [{"d": {"S": d}, "m": {"M": {"d": {"SS": [d]}}}} for d in DATE_LIKE]
    table = jsonl_to_table(jsonl(rows))
    assert table.column("d").to_pylist() == DATE_LIKE
    assert table.equals(items_to_table(rows))
    big = [{"k": {"N": str(i)}, **({"late": {"S": "2021-02-03"}} if i > 30000 else {})} for i in range(40000)]
    assert jsonl_to_table(jsonl(big)).column("late").to_pylist()[-1] == "2021-02-03"


# --- the type rules ------------------------------------------------------------------------------


def column_type(*numbers: str, max_precision: int = 76) -> pa.DataType:
    rows = [{"n": {"N": n}} for n in numbers]
    table = items_to_table(rows, max_decimal_precision=max_precision)
    assert_exact(table, rows)
    return table.schema.field("n").type


def test_number_column_types() -> None:
    assert column_type("1", "-5", "007") == pa.int64()
    assert column_type("9223372036854775807", "-9223372036854775808") == pa.int64()
    assert column_type("12.0", "1E+5", "1.5e1") == pa.int64()  # integer values, whatever the text
    assert column_type("9223372036854775808") == pa.decimal128(19, 0)
    assert column_type("1", "2.5") == pa.decimal128(2, 1)
    assert column_type("12.50", "-0.001") == pa.decimal128(5, 3)
    assert column_type("12345678901234567890123456789012345678") == pa.decimal128(38, 0)
    assert column_type("1E+36", "0.5") == pa.decimal128(38, 1)
    assert column_type("1E+37", "0.5") == pa.decimal256(39, 1)
    assert column_type("1E+38", "0.5", max_precision=38) == pa.string()
    assert column_type("1.5" + "0" * 60) == pa.decimal128(2, 1)  # superfluous zeros do not count
    assert column_type("1E+60") == pa.decimal256(61, 0)
    assert column_type("1E+100") == pa.string()
    assert column_type("1E-130") == pa.string()
    assert column_type("-0.000") == pa.int64()


def test_text_columns_are_marked_in_field_docs() -> None:
    table = items_to_table([{"big": {"N": "1E-130"}, "mixed": {"N": "1"}}, {"mixed": {"S": "1"}}])
    assert table.schema.field("big").metadata[b"doc"].startswith(b"ddblake:number-text")
    assert table.schema.field("mixed").metadata[b"doc"].startswith(b"ddblake:ddb-json")
    assert table.column("big").to_pylist() == ["1E-130", None]


def test_type_conflicts_keep_every_value_as_dynamodb_json() -> None:
    rows = [
        {
            "a": {"N": "5"},
            "b": {"N": "5"},
            "c": {"SS": ["x"]},
            "d": {"M": {"k": {"N": "1"}, "j": {"S": "s"}}},
        },
        {"a": {"S": "5"}, "b": {"NULL": True}, "c": {"L": [{"S": "y"}]}, "d": {"M": {"k": {"S": "1"}}}},
        {"a": {"M": {"z": {"B": "AA=="}, "y": {"NS": ["1E+2", "3"]}}}, "d": {"L": []}},
    ]
    table = items_to_table(rows)
    assert_exact(table, rows)
    assert table.column("a").to_pylist() == [
        '{"N":"5"}',
        '{"S":"5"}',
        '{"M":{"y":{"NS":["1E+2","3"]},"z":{"B":"AA=="}}}',
    ]
    assert table.schema.field("b").type == pa.int64()  # NULL does not conflict
    assert table.schema.field("c").type == pa.list_(pa.string())  # sets and lists share list columns
    assert table.column("c").to_pylist() == [["x"], ["y"], None]
    assert table.schema.field("d").metadata[b"doc"].startswith(b"ddblake:ddb-json")


def test_conflicts_inside_maps_and_lists_stay_local() -> None:
    rows = [
        {
            "m": {"M": {"k": {"N": "1"}, "j": {"S": "s"}}},
            "l": {"L": [{"N": "1"}, {"S": "x"}, {"NULL": True}]},
        },
        {"m": {"M": {"k": {"S": "1"}}}},
    ]
    table = items_to_table(rows)
    m = table.schema.field("m").type
    assert m.field("j").type == pa.string() and m.field("j").metadata is None
    assert m.field("k").metadata[b"doc"].startswith(b"ddblake:ddb-json")
    assert table.schema.field("l").metadata[b"doc"].startswith(b"ddblake:[]ddb-json")
    assert table.column("l").to_pylist() == [['{"N":"1"}', '{"S":"x"}', None], None]
    assert_exact(table, rows)


def test_empty_and_null_only_attributes() -> None:
    rows = [{"n": {"NULL": True}, "l": {"L": []}, "m": {"M": {}}, "k": {"S": ""}}]
    table = items_to_table(rows)
    assert table.schema.field("n").type == pa.null()
    assert table.schema.field("l").type == pa.list_(pa.null())
    assert table.schema.field("m").type == pa.struct([])
    assert table.column("k").to_pylist() == [""]
    assert jsonl_to_table(jsonl(rows)).equals(table)
    pruned = items_to_table(rows, drop_untyped=True)
    assert pruned.column_names == ["k"]
    assert prune_untyped(table.schema).names == ["k"]


# --- schema evolution ----------------------------------------------------------------------------


@HEAVY
@given(st.lists(batches, min_size=2, max_size=3))
def test_evolving_schema_holds_every_batch_exactly(runs: list[list[dict[str, Any]]]) -> None:
    schema: pa.Schema | None = None
    for rows in runs:
        table = items_to_table(rows, schema, evolve=True) if schema is not None else items_to_table(rows)
        assert_exact(table, rows)
        if schema is not None:
            assert table.schema.names[: len(schema)] == schema.names
        schema = table.schema
    assert schema is not None
    for rows in runs:  # earlier batches can be rewritten under the final schema
        assert_exact(items_to_table(rows, schema), rows)


@HEAVY
@given(batches, batches)
def test_unified_schema_holds_both_batches(first: list[dict[str, Any]], second: list[dict[str, Any]]) -> None:
    unified = unify_schemas(items_to_table(first).schema, items_to_table(second).schema)
    for rows in (first, second):
        table = items_to_table(rows, unified)
        assert table.schema.equals(unified, check_metadata=True)
        assert_exact(table, rows)
        assert jsonl_to_table(jsonl(rows), unified).equals(table)


def test_widening_rules() -> None:
    def unified(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> pa.Schema:
        return unify_schemas(items_to_table(a).schema, items_to_table(b).schema)

    n = lambda text: {"x": {"N": text}}  # noqa: E731
    assert unified([n("1")], [n("2")]).field("x").type == pa.int64()
    assert unified([n("1")], [n("2.25")]).field("x").type == pa.decimal128(21, 2)  # any int64 fits
    assert unified([n("1.5")], [n("123.25")]).field("x").type == pa.decimal128(5, 2)
    assert unified([n("1.5")], [n("1E+40")]).field("x").type == pa.decimal256(42, 1)
    assert unified([n("1.5")], [n("1E-130")]).field("x").type == pa.string()
    json_field = unified([n("1")], [{"x": {"S": "1"}}]).field("x")
    assert from_field(json_field) == JsonT()
    assert unified([{"y": {"S": "a"}}], [n("1")]).names == ["y", "x"]  # new attributes come last
    merged = unified([{"m": {"M": {"a": {"N": "1"}}}}], [{"m": {"M": {"b": {"S": "s"}}}}]).field("m").type
    assert [merged.field(i).name for i in range(merged.num_fields)] == ["a", "b"]


def test_evolve_uses_the_batch_values_not_just_types() -> None:
    existing = items_to_table([{"price": {"N": "12.25"}}]).schema
    table = items_to_table([{"price": {"N": "5"}}], existing, evolve=True)
    assert table.schema.field("price") is existing.field("price") or table.schema.equals(existing)
    assert table.column("price").to_pylist() == [Decimal("5.00")]


def test_unchanged_fields_keep_their_metadata_and_variants() -> None:
    field_id = {b"PARQUET:field_id": b"7"}
    existing = pa.schema(
        [
            pa.field("s", pa.large_string(), metadata=field_id),
            pa.field("l", pa.large_list(pa.field("element", pa.int64()))),
            pa.field("_item", pa.large_string()),
        ]
    )
    rows = [{"s": {"S": "a"}, "l": {"L": [{"N": "1"}]}}]
    table = items_to_table(rows, existing, evolve=True)
    assert table.schema.equals(existing, check_metadata=True)
    assert table.column("l").to_pylist() == [[1]]
    assert table.column("_item").to_pylist() == [None]
    assert unify_schemas(existing, items_to_table(rows).schema).equals(existing, check_metadata=True)


def test_values_that_do_not_fit_the_target_are_refused() -> None:
    existing = items_to_table([{"x": {"N": "1.5"}}]).schema
    with pytest.raises(SchemaMismatchError, match="evolve=True"):
        items_to_table([{"x": {"N": "123.25"}}], existing)
    with pytest.raises(SchemaMismatchError):
        items_to_table([{"x": {"S": "1"}}], existing)
    with pytest.raises(SchemaMismatchError, match="does not write"):
        items_to_table([{"x": {"N": "1"}}], pa.schema([pa.field("x", pa.float64())]), evolve=True)
    # attributes the target does not have are left out, as a projection
    assert items_to_table([{"x": {"N": "1"}, "y": {"S": "a"}}], existing).column_names == ["x"]


def test_conflict_docs_survive_an_iceberg_schema() -> None:
    from pyiceberg.catalog import Catalog
    from pyiceberg.io.pyarrow import schema_to_pyarrow

    rows = [
        {"a": {"N": "1"}, "l": {"L": [{"N": "1"}, {"S": "x"}]}, "big": {"N": "1E-130"}},
        {"a": {"S": "1"}},
    ]
    schema = items_to_table(rows, max_decimal_precision=38).schema
    back = schema_to_pyarrow(Catalog._convert_schema_if_needed(schema))
    for name in ("a", "l", "big"):
        assert from_field(back.field(name)) == from_field(schema.field(name))
    assert_exact(items_to_table(rows, back), rows)


# --- back to DynamoDB JSON -----------------------------------------------------------------------


def test_rows_back_to_items() -> None:
    rows = [
        {"pk": {"S": "a"}, "n": {"N": "12.5"}, "i": {"N": "7"}, "b": {"B": "AAE="}, "t": {"BOOL": False}},
        {"pk": {"S": "b"}, "m": {"M": {"x": {"L": [{"N": "1"}, {"NULL": True}]}}}, "c": {"N": "1"}},
        {"pk": {"S": "c"}, "c": {"S": "1"}, "big": {"N": "1" + "0" * 100}, "e": {"N": "100000"}},
    ]
    assert table_to_items(items_to_table(rows)) == rows
    sets = table_to_items(items_to_table([{"s": {"SS": ["b", "a"]}, "z": {"NULL": True}}]))
    assert sets == [{"s": {"L": [{"S": "b"}, {"S": "a"}]}}]


@SETTINGS
@given(batches)
def test_rows_back_to_items_keep_values(rows: list[dict[str, Any]]) -> None:
    table = items_to_table(rows)
    again = items_to_table(table_to_items(table), table.schema)
    assert again.equals(table)


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "av",
    [
        {"N": "SECRET"},
        {"N": "0x10"},
        {"B": "SECRET!"},
        {"X": "SECRET"},
        {"S": "SECRET", "N": "1"},
        {"NULL": False},
        {"SS": []},
        {"SS": ["SECRET", None]},
        {"NS": ["1", None]},
        {"BS": [None]},
        {"L": [None]},
        {"BOOL": "SECRET"},
        {"M": {"k": {"N": "SECRET"}}},
    ],
)
def test_bad_values_are_refused_on_both_paths(av: dict[str, Any]) -> None:
    rows = [{"pk": {"S": "a"}, "x": av}]
    for convert in (lambda: items_to_table(rows), lambda: jsonl_to_table(jsonl(rows))):
        with pytest.raises(BadValueError) as caught:
            convert()
        assert "x" in str(caught.value) and "SECRET" not in str(caught.value)


def test_bad_lines_name_the_line() -> None:
    with pytest.raises(BadValueError, match="line 2"):
        jsonl_to_table(b'{"a": {"S": "x"}}\n{"a": \n')
    with pytest.raises(BadValueError):
        jsonl_to_table(b'{"a": {"S": "\xff"}}\n')
    assert jsonl_to_table(b"").num_rows == 0
    assert items_to_table([]).num_rows == 0


def test_json_text_is_canonical_and_exact() -> None:
    av = {"M": {"b": {"N": "1.50"}, "a": {"SS": ["z", "y"]}}}
    table = items_to_table([{"x": av}, {"x": {"S": "s"}}])
    text = table.column("x")[0].as_py()
    assert text == '{"M":{"a":{"SS":["z","y"]},"b":{"N":"1.50"}}}'
    assert json.loads(text) == av


# Every character json.dumps escapes (quote, backslash, each control) and ones it leaves alone.
TRICKY_TEXTS = [
    "",
    "plain",
    '"',
    'say "hi"',
    "\\",
    "back\\slash\\",
    *(f"a{chr(c)}b" for c in range(0x20)),
    "".join(map(chr, range(0x20))),
    "\x7f",
    "\u2028 \u2029",
    "Zoë 日本語",
    "emoji 🎉 𝄞",
    '{"S":"x"}',
    "\\u0041",
]


def python_texts(tag: str, values: list[Any]) -> list[str | None]:
    return [None if v is None else dumps({tag: v}) for v in values]


@pytest.mark.parametrize("type_", [pa.string(), pa.large_string()])
@pytest.mark.parametrize("tag", ["S", "N", "B"])
def test_json_texts_of_strings_equal_the_python_rendering(tag: str, type_: pa.DataType) -> None:
    # tags the values never had still render exactly: N and B are checked before, but not here
    values = [v for text in TRICKY_TEXTS for v in (text, None)]
    for chunk in (values, values[1:], TRICKY_TEXTS[:2], [None, None], []):
        assert json_texts(tag, pa.array(chunk, type_)).to_pylist() == python_texts(tag, chunk)
    sliced = pa.array([None, *TRICKY_TEXTS], type_).slice(3, 9)  # an offset into the buffers
    assert json_texts(tag, sliced).to_pylist() == python_texts(tag, sliced.to_pylist())


@SETTINGS
@given(
    st.sampled_from(["S", "N", "B"]),
    st.lists(st.none() | texts | st.sampled_from(TRICKY_TEXTS) | st.text(st.characters(max_codepoint=0x7F))),
)
def test_json_texts_of_any_strings_equal_the_python_rendering(tag: str, values: list[str | None]) -> None:
    assert json_texts(tag, pa.array(values, pa.string())).to_pylist() == python_texts(tag, values)


def test_json_texts_of_booleans_nulls_and_nested_values() -> None:
    flags = [True, None, False, False, None]
    assert json_texts("BOOL", pa.array(flags)).to_pylist() == python_texts("BOOL", flags)
    assert json_texts("BOOL", pa.array(flags)).type == pa.string()
    assert json_texts("NULL", pa.array([True, None])).to_pylist() == [None, None]
    assert json_texts("S", pa.nulls(2)).to_pylist() == [None, None]
    sets = [["b", 'q"'], None, ["\n"]]
    assert json_texts("SS", pa.array(sets)).to_pylist() == python_texts("SS", sets)


def test_mixed_lists_and_attributes_on_the_bytes_path_are_exact() -> None:
    rows = [
        {
            "hist": {"L": [{"N": str(i)}, {"S": text}, {"BOOL": i % 2 == 0}, {"B": "AAE="}, {"NULL": True}]},
            "x": {"N": "1.50"} if i % 3 == 0 else {"S": text} if i % 3 == 1 else {"BOOL": True},
        }
        for i, text in enumerate(TRICKY_TEXTS)
    ]
    table = jsonl_to_table(jsonl([{"Item": row} for row in rows]), image_field="Item")
    assert_exact(table, rows)  # each text is dumps() of the value, computed from the item alone
    assert table.equals(items_to_table(rows))
    assert table.column("x").to_pylist()[:3] == ['{"N":"1.50"}', '{"S":"plain"}', '{"BOOL":true}']


def test_jsonl_falls_back_to_the_exact_path_when_the_arrow_reader_cannot_convert(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Seen in a fault-suite workload: pyarrow's JSON reader inferred timestamps inside a struct
    # and then refused the conversion (ArrowNotImplementedError) instead of ArrowInvalid.
    import ddblake.codec.arrow as arrow_module

    items = [{"a": {"S": "2020-01-01"}}, {"a": {"N": "1"}}]
    data = b"".join(json.dumps(i).encode() + b"\n" for i in items)

    def refuse(_: bytes, **__: object) -> pa.Table:
        raise pa.ArrowNotImplementedError("JSON conversion to struct<N: timestamp[s]> is not supported")

    monkeypatch.setattr(arrow_module, "read_jsonl", refuse)
    assert arrow_module.jsonl_to_table(data).equals(items_to_table(items))
