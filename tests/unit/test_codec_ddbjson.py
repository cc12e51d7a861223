"""DynamoDB JSON <-> Python: exact round trips, DynamoDB's number limits, clear refusals."""

from __future__ import annotations

import base64
import pickle
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_codec_strategies import avs, decimals, items, number_texts

from ddblake.codec import (
    BadValueError,
    NumberText,
    canonical_number,
    deserialize_item,
    deserialize_value,
    serialize_item,
    serialize_value,
    validate_item,
)
from ddblake.errors import BadRecordError

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def sorted_sets(av: Any) -> Any:
    """The same DynamoDB JSON with set members in the order ``serialize_value`` writes them."""
    ((tag, value),) = av.items()
    if tag == "SS":
        return {tag: sorted(value)}
    if tag == "NS":
        return {tag: sorted(value, key=Decimal)}
    if tag == "BS":
        return {tag: sorted(value, key=base64.b64decode)}
    if tag == "M":
        return {tag: {k: sorted_sets(v) for k, v in value.items()}}
    if tag == "L":
        return {tag: [sorted_sets(v) for v in value]}
    return av


# --- round trips ---------------------------------------------------------------------------------


@SETTINGS
@given(avs)
def test_every_value_round_trips_exactly(av: dict[str, Any]) -> None:
    assert serialize_value(deserialize_value(av)) == sorted_sets(av)


@SETTINGS
@given(items)
def test_items_round_trip_exactly(item: dict[str, Any]) -> None:
    assert serialize_item(deserialize_item(item)) == {k: sorted_sets(v) for k, v in item.items()}


@SETTINGS
@given(number_texts())
def test_number_text_comes_back_exactly(text: str) -> None:
    value = deserialize_value({"N": text})
    assert isinstance(value, Decimal)
    assert value == Decimal(text)
    assert serialize_value(value) == {"N": text}


@SETTINGS
@given(decimals())
def test_dynamodb_number_text_is_a_plain_decimal(value: Decimal) -> None:
    # What DynamoDB returns (plain notation, trimmed) needs no remembered text.
    text = canonical_number(value)
    parsed = deserialize_value({"N": text})
    assert type(parsed) is Decimal
    assert str(serialize_value(parsed)["N"]) == text
    assert canonical_number(parsed) == text


@pytest.mark.parametrize(
    "text",
    [
        "12345678901234567890123456789012345678",  # 38 digits
        "-12345678901234567890123456789012345678",
        "0.12345678901234567890123456789012345678",
        "99999999999999999999999999999999999999" + "0" * 88,  # 9.99..E+125 in plain notation
        "0." + "0" * 129 + "1",  # 1E-130 in plain notation
        "-0." + "0" * 129 + "1",
        "1" + "0" * 100,  # 1E+100: one significant digit (boto3's deserializer raises here)
        "12.50",
        "0",
        "-0",
        "0.000",
        "1E+5",
        "1e5",
        "9.9999999999999999999999999999999999999E+125",
        "1E-130",
        "-1.5e-3",
        "+7",
        "007",
        ".5",
        "5.",
    ],
)
def test_extreme_and_odd_numbers_keep_their_text(text: str) -> None:
    value = deserialize_value({"N": text})
    assert value == Decimal(text)
    assert serialize_value(value) == {"N": text}


def test_number_text_that_plain_notation_would_change_is_remembered() -> None:
    value = deserialize_value({"N": "1E+5"})
    assert isinstance(value, NumberText)
    assert value.text == "1E+5" and str(value) == "1E+5" and value == 100000
    assert pickle.loads(pickle.dumps(value)).text == "1E+5"  # noqa: S301 - our own bytes
    assert type(value + 1) is Decimal
    assert type(deserialize_value({"N": "12.50"})) is Decimal


def test_canonical_number_is_what_dynamodb_returns() -> None:
    assert canonical_number(Decimal("12.50")) == "12.5"
    assert canonical_number(Decimal("1E+5")) == "100000"
    assert canonical_number(Decimal("1E-7")) == "0.0000001"
    assert canonical_number(Decimal("-0.000")) == "0"
    assert canonical_number(7) == "7"


def test_each_type_maps_to_its_python_type() -> None:
    item = {
        "s": {"S": ""},
        "n": {"N": "1.50"},
        "b": {"B": base64.b64encode(b"\x00\xff").decode()},
        "t": {"BOOL": True},
        "z": {"NULL": True},
        "m": {"M": {"x": {"L": [{"N": "1"}, {"S": "y"}]}}},
        "ss": {"SS": ["b", "a"]},
        "ns": {"NS": ["2", "1.5"]},
        "bs": {"BS": [base64.b64encode(b"x").decode()]},
    }
    assert deserialize_item(item) == {
        "s": "",
        "n": Decimal("1.50"),
        "b": b"\x00\xff",
        "t": True,
        "z": None,
        "m": {"x": [Decimal(1), "y"]},
        "ss": {"a", "b"},
        "ns": {Decimal("1.5"), Decimal(2)},
        "bs": {b"x"},
    }
    assert serialize_value({"b", "a"}) == {"SS": ["a", "b"]}
    assert serialize_value({Decimal("2"), 1}) == {"NS": ["1", "2"]}


def test_binary_from_boto3_low_level_is_accepted() -> None:
    assert deserialize_value({"B": b"\x01"}) == b"\x01"
    assert deserialize_value({"BS": [b"\x01", "Ag=="]}) == {b"\x01", b"\x02"}


def test_deep_nesting() -> None:
    av: dict[str, Any] = {"S": "leaf"}
    for i in range(40):
        av = {"M": {"k": av}} if i % 2 else {"L": [av]}
    assert serialize_value(deserialize_value(av)) == av


@SETTINGS
@given(
    st.recursive(
        st.none() | st.booleans() | st.text() | st.integers() | st.binary(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
    )
)
def test_python_values_round_trip(value: Any) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and len(str(abs(value)).rstrip("0")) > 38:
        return
    try:
        av = serialize_value(value)
    except BadValueError:
        return  # an integer DynamoDB cannot store, somewhere inside
    assert deserialize_value(av) == value


# --- refusals ------------------------------------------------------------------------------------

SECRET = "SECRET7731"  # noqa: S105 - a marker that must never reach a message


@pytest.mark.parametrize(
    "av",
    [
        {"N": SECRET},
        {"N": "7731" * 10},  # 40 significant digits
        {"N": "7731E+200"},
        {"N": "7731E-200"},
        {"N": "NaN"},
        {"N": "Infinity"},
        {"N": "7_731"},
        {"N": " 7731"},
        {"N": ""},
        {"N": "0x7731"},
        {"N": "\u0667\u0667"},  # Arabic-Indic digits: Decimal reads them, DynamoDB does not
        {"N": 7731},
        {"B": SECRET + "!"},
        {"B": "QQ"},  # no padding
        {"BOOL": SECRET},
        {"NULL": False},
        {"S": 7731},
        {"SS": []},
        {"SS": [SECRET, SECRET]},
        {"NS": ["7731", "7731.0"]},
        {"SS": [SECRET, 7731]},
        {"X": SECRET},
        {"S": SECRET, "N": "7731"},
        {},
        {"M": [SECRET]},
        {"L": {SECRET: {"S": "x"}}},
    ],
)
def test_invalid_values_are_bad_records_that_do_not_quote_values(av: dict[str, Any]) -> None:
    with pytest.raises(BadRecordError) as caught:
        validate_item({"attr": av})
    message = str(caught.value)
    assert "attr" in message
    assert SECRET not in message and "7731" not in message


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (3.14159, "Decimal"),
        ({3.14159}, "Decimal"),
        (set(), "empty set"),
        ({"a", 1}, "only strings"),
        (Decimal("7731E+200"), "larger"),
        (Decimal("7731E-200"), "smaller"),
        (int("7731" * 10), "38 significant digits"),
        (Decimal("NaN"), "finite"),
        ({1: "x"}, "map key"),
        (object(), "no DynamoDB type"),
    ],
)
def test_serializing_refuses_what_dynamodb_cannot_store(value: Any, words: str) -> None:
    with pytest.raises(BadValueError, match=words) as caught:
        serialize_item({"attr": value})
    assert "3.14159" not in str(caught.value) and "7731" not in str(caught.value)


def test_serializing_nested_float_names_the_path() -> None:
    with pytest.raises(BadValueError, match=r"attribute m\.<key 1>\[1\]: float"):
        serialize_item({"m": {"x": [Decimal(1), 2.5]}})
