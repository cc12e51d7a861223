"""Values DynamoDB never writes are refused by apply's reader, fast path and reference alike.

``validate_item`` refuses a set holding a member twice (NS by value, ``1`` and ``1.0``; BS by the
decoded bytes), a number outside DynamoDB's range and a string holding a lone surrogate. The raw-log
reader apply uses (``rawline.read_line``: its fast path and ``ChangeEvent.from_line``) refused the
numbers and the surrogates already, but took such a set, so apply typed it into the tables and
``dump`` printed a set DynamoDB would never return: now it refuses the set too, whatever wrote the
line (the Firehose transform and capture write it as they found it). The codec raises its
documented ``BadValueError`` for a lone surrogate, and ``validate_item`` refuses one. Reasons say
where, never what.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ddblake.changes import rawline, transform
from ddblake.changes.model import ChangeEvent
from ddblake.changes.parse import parse_record
from ddblake.codec import BadValueError, items_to_table, jsonl_to_table, validate_item
from ddblake.errors import BadRecordError

SECRET = "7731"  # noqa: S105 - a marker that must never reach a message

REPEATS: dict[str, Any] = {
    "SS": {"SS": [SECRET, "b", SECRET]},
    "SS, one member escaped": '{"SS":["A7731","\\u00417731"]}',  # JSON text: both are "A7731"
    "SS, astral as a pair": '{"SS":["\U0001f389","\\ud83c\\udf89"]}',
    "NS": {"NS": [SECRET, SECRET]},
    "NS by value": {"NS": [SECRET, f"{SECRET}.0"]},
    "NS with an exponent": {"NS": ["7.731E+3", SECRET]},
    "NS zero signs": {"NS": ["0", "-0"]},
    "BS": {"BS": ["NzczMQ==", "NzczMQ=="]},
    "BS by its bytes": {"BS": ["AA==", "AB=="]},  # different text, the same byte
    "SS of 41, the last twice": {"SS": [f"m{i}" for i in range(40)] + ["m39"]},
}
NEAR_MISSES: dict[str, Any] = {
    "ss": {"SS": [SECRET, f"{SECRET} ", "a", "A", 'q"', "q", "\\", "\\\\", '"SS":["x","x"]']},
    "ss_one": {"SS": [SECRET]},
    "ss_many": {"SS": [f"m{i}" for i in range(40)]},
    "ns_many": {"NS": [str(i) for i in range(40)]},
    "ns": {"NS": [SECRET, "773.1", f"-{SECRET}", "0", "77310", "1E+3"]},
    "bs": {"BS": ["AA==", "AQ==", "AAA=", "AAAA"]},
    "s": {"S": '"SS":["x","x"] "NS":["1","1"]'},
    "m": {"M": {"SS": {"SS": ["x", "y"]}, "NS": {"S": "x"}}},
}


def _text(av: Any) -> str:
    return av if isinstance(av, str) else json.dumps(av, separators=(",", ":"), ensure_ascii=False)


def _placed(av: Any) -> list[str]:
    """The value's text at the top level, inside a map and inside a list."""
    text = _text(av)
    return [text, '{"M":{"inner":' + text + "}}", '{"L":[{"S":"x"},' + text + "]}"]


def _image(value: str) -> str:
    return "null" if value == "null" else '{"pk":{"S":"k"},"v":' + value + "}"


def _raw_line(new: str, old: str = "null", *, spaced: bool = False) -> bytes:
    image, old_image = _image(new), _image(old)
    if spaced:  # as an export file writes its items, and so the raw-log line an export load makes
        image, old_image = (
            x if x == "null" else json.dumps(json.loads(x), ensure_ascii=False) for x in (image, old_image)
        )
    return (
        '{"v":1,"op":"MODIFY","table":"orders","keys":{"pk":{"S":"k"}},"new":'
        + image
        + ',"old":'
        + old_image
        + ',"event_id":"e-1","event_time_us":1764316800000000,"seq":null,"source":"kinesis","ttl":false,'
        '"ingested_us":1764316800000000}'
    ).encode()


def _kinesis(new: str, old: str | None = None) -> bytes:
    ddb = '"ApproximateCreationDateTime":1764316800000,"Keys":{"pk":{"S":"k"}},"NewImage":' + _image(new)
    if old is not None:
        ddb += ',"OldImage":' + _image(old)
    return (
        '{"awsRegion":"us-east-1","eventID":"e-1","eventName":"MODIFY","recordFormat":"application/json",'
        '"tableName":"orders","dynamodb":{' + ddb + '},"eventSource":"aws:dynamodb"}'
    ).encode()


def _quiet(message: str) -> None:
    assert SECRET not in message and "NzczMQ" not in message, message


CASES = [(name, text) for name, av in REPEATS.items() for text in _placed(av)]
IDS = [f"{name}-{where}" for name, _ in REPEATS.items() for where in ("top", "in-map", "in-list")]


# --- the raw-log reader (apply) -------------------------------------------------------------------


@pytest.mark.parametrize(("name", "text"), CASES, ids=IDS)
@pytest.mark.parametrize("image", ["new", "old"])
@pytest.mark.parametrize("spaced", [False, True], ids=["compact", "export-spaced"])
def test_the_raw_log_reader_refuses_a_set_holding_a_member_twice(
    name: str, text: str, image: str, spaced: bool
) -> None:
    good = _text({"S": "ok"})
    line = _raw_line(text, good, spaced=spaced) if image == "new" else _raw_line(good, text, spaced=spaced)
    assert rawline.fast_read(line) is None
    for read in (rawline.read_line, ChangeEvent.from_line):
        with pytest.raises(BadRecordError, match="more than once") as caught:
            read(line)
        _quiet(str(caught.value))


@pytest.mark.parametrize("spaced", [False, True], ids=["compact", "export-spaced"])
def test_sets_near_a_repeat_are_read_by_the_fast_path(spaced: bool) -> None:
    for av in NEAR_MISSES.values():
        for text in _placed(av):
            line = _raw_line(text, text, spaced=spaced)
            fast = rawline.fast_read(line)
            assert fast is not None, text
            reference = ChangeEvent.from_line(line)
            assert fast[0] == rawline.slim(reference)
            assert fast[1] is not None and json.loads(fast[1]) == reference.new_image


# --- the Firehose transform and capture ----------------------------------------------------------
# They write such a change to the raw log as they found it (checking sets in the Kinesis record's
# text would cost the transform much of its time on records with many sets); apply's reader refuses
# it, so it is quarantined there with its reason.


@pytest.mark.parametrize(("name", "text"), CASES, ids=IDS)
def test_a_change_the_transform_writes_with_such_a_set_is_refused_by_apply(name: str, text: str) -> None:
    good = _text({"S": "ok"})
    for data in (_kinesis(text), _kinesis(good, text)):
        line, _, _ = transform.kinesis_line(data, 0)
        assert json.loads(line) == json.loads(transform.reference_line(data, 0)[0])  # the fast path agrees
        with pytest.raises(BadRecordError, match="more than once") as caught:
            rawline.read_line(line.rstrip(b"\n"))
        _quiet(str(caught.value))


def test_sets_near_a_repeat_take_the_transforms_fast_path_and_apply_reads_them() -> None:
    for av in NEAR_MISSES.values():
        for text in _placed(av):
            data = _kinesis(text, text)
            fast = transform.fast_line(data, 0)
            assert fast is not None, text
            assert fast == transform.reference_line(data, 0)
            assert rawline.fast_read(fast[0].rstrip(b"\n")) is not None


def test_a_captured_binary_set_boto3_decoded_with_a_member_twice_is_refused_by_apply() -> None:
    record = {
        "eventID": "e-1",
        "eventName": "INSERT",
        "dynamodb": {
            "ApproximateCreationDateTime": dt.datetime(2025, 11, 28, 8, tzinfo=dt.UTC),  # boto3's
            "Keys": {"pk": {"S": "k"}},
            "NewImage": {"pk": {"S": "k"}, "v": {"BS": [b"7731", base64.b64decode("NzczMQ==")]}},
            "SequenceNumber": "1" * 21,
        },
    }
    line = parse_record(record, table="orders", ingested_us=0).to_line().rstrip(b"\n")
    with pytest.raises(BadRecordError, match="more than once") as caught:
        rawline.read_line(line)
    _quiet(str(caught.value))
    record["dynamodb"]["NewImage"]["v"] = {"BS": [b"7731", b"7732"]}  # type: ignore[index]
    line = parse_record(record, table="orders", ingested_us=0).to_line()
    assert rawline.fast_read(line.rstrip(b"\n")) is not None


def test_a_line_not_utf8_within_an_escaped_set_member_is_a_bad_record() -> None:
    line = _raw_line('{"SS":["\\n\xff","\\n\xff"]}').replace(b"\xc3\xbf", b"\xff")
    assert b"\xff" in line
    assert rawline.fast_read(line) is None
    with pytest.raises(BadRecordError):
        rawline.read_line(line)


# --- the codec ------------------------------------------------------------------------------------

LONE: dict[str, dict[str, Any]] = {
    "S": {"v": {"S": SECRET + "\ud800"}},
    "SS member": {"v": {"SS": ["a", SECRET + "\udc00"]}},
    "map key": {"v": {"M": {SECRET + "\ud800": {"S": "x"}}}},
    "map value": {"v": {"M": {"k": {"S": SECRET + "\ud800"}}}},
    "list element": {"v": {"L": [{"S": SECRET + "\ud800"}]}},
    "attribute name": {SECRET + "\ud800": {"S": "x"}},
}


@pytest.mark.parametrize("name", sorted(LONE))
def test_validate_item_refuses_a_lone_surrogate(name: str) -> None:
    with pytest.raises(BadValueError, match="UTF-8") as caught:
        validate_item({"pk": {"S": "k"}, **LONE[name]})
    _quiet(str(caught.value))


@pytest.mark.parametrize("name", sorted(LONE))
def test_the_typed_path_refuses_a_lone_surrogate_as_a_bad_value(name: str) -> None:
    item: dict[str, Any] = {"pk": {"S": "k"}, **LONE[name]}
    data = json.dumps(item).encode()  # ASCII: the surrogate escaped, as a JSON writer must
    converts: list[Callable[[], object]] = [lambda: items_to_table([item]), lambda: jsonl_to_table(data)]
    for convert in converts:
        with pytest.raises(BadValueError) as caught:
            convert()
        _quiet(str(caught.value))


# --- the fast check against the reference, on sets built to collide --------------------------------

_NUMBERS = st.sampled_from(
    ["0", "-0", "1", "1.0", "1.50", "1.5", "01", "+1", "1E0", "1e+0", ".5", "0.5", "5.", "10", "-1"]
)
_BASE64S = st.sampled_from(["", "AA==", "AB==", "AQ==", "AAA=", "AAB=", "AAE=", "AAAA", "QUJD"])
_STRINGS = st.sampled_from(
    ["", "a", "A", "a ", "]", "[", "x[", ",", ", ", "a,b", '", "', "\\", "é", "\U0001f389", '["x"]', "\t"]
)


@st.composite
def _set_values(draw: st.DrawFn) -> Any:
    tag, members = draw(
        st.sampled_from([("SS", _STRINGS), ("NS", _NUMBERS), ("BS", _BASE64S)]).flatmap(
            lambda t: st.tuples(st.just(t[0]), st.lists(t[1], min_size=1, max_size=5))
        )
    )
    return {tag: members}


_nested_sets = st.recursive(
    _set_values() | st.builds(lambda v: {"S": v}, _STRINGS),  # strings ending in '[' mimic a set's start
    lambda inner: st.one_of(
        st.builds(
            lambda d: {"M": d},
            st.dictionaries(st.sampled_from(["a", "SS", ",", "]", "x["]), inner, min_size=1, max_size=3),
        ),
        st.builds(lambda v: {"L": v}, st.lists(inner, min_size=1, max_size=3)),
    ),
    max_leaves=4,
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(st.sampled_from(["v", ",", "x[", "]"]), _nested_sets, min_size=1, max_size=4),
    st.sampled_from(["compact", "ascii", "spaced"]),
    st.booleans(),
)
def test_the_fast_path_refuses_exactly_the_sets_the_reference_refuses(
    image: dict[str, Any], style: str, as_old: bool
) -> None:
    """Member by member as the reference compares them (NS by value, BS by bytes, SS after escapes),
    whatever the spelling: escapes (ASCII), the export files' spacing, nesting."""
    full = {"pk": {"S": "k"}, **image}
    if style == "spaced":
        text = json.dumps(full, ensure_ascii=False)
    else:
        text = json.dumps(full, separators=(",", ":"), ensure_ascii=style == "ascii")
    ok = '{"pk":{"S":"k"},"v":{"S":"ok"}}'
    new, old = (ok, text) if as_old else (text, ok)
    line = (
        '{"v":1,"op":"MODIFY","table":"orders","keys":{"pk":{"S":"k"}},"new":'
        + new
        + ',"old":'
        + old
        + ',"event_id":"e-1","event_time_us":1764316800000000,"seq":null,"source":"kinesis","ttl":false,'
        '"ingested_us":1764316800000000}'
    ).encode()
    try:
        ChangeEvent.from_line(line)
        refused = False
    except BadRecordError as e:
        assert "more than once" in str(e)
        refused = True
    fast = rawline.fast_read(line)
    if refused:
        assert fast is None, text
    elif rawline._fast is not None and rawline._fast.fullmatch(line) is not None:  # the grammar takes it
        assert fast is not None, text
