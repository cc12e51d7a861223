"""The raw-log reader's fast path (ddblake.changes.rawline) against the reference reader.

The fast path must accept nothing ``ChangeEvent.from_line`` rejects, must read every line it accepts
to the same event with images of the same value, and must actually take the lines ddblake writes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_changes_fuzz import images, json_values, keys, values  # noqa: E402

from ddblake.changes import rawline  # noqa: E402
from ddblake.changes.model import ChangeEvent  # noqa: E402
from ddblake.errors import BadRecordError  # noqa: E402

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def event(**changes: Any) -> ChangeEvent:
    fields: dict[str, Any] = {
        "op": "MODIFY",
        "table": "orders.v2",
        "keys": {"pk": {"S": "Zoë#1"}, "sk": {"N": "7"}},
        "new_image": {
            "pk": {"S": "Zoë#1"},
            "sk": {"N": "7"},
            "n": {"N": "-15000000000.25"},
            "b": {"B": "AAEC"},
            "ok": {"BOOL": True},
            "nil": {"NULL": True},
            "ss": {"SS": ["a", "日本"]},
            "ns": {"NS": ["1", "2.5"]},
            "bs": {"BS": ["AA=="]},
            "m": {"M": {"l": {"L": [{"S": "x"}, {"M": {"deep": {"S": "y"}}}]}}},
            "quote": {"S": 'say "hi"\n\\'},
        },
        "old_image": {"pk": {"S": "Zoë#1"}, "sk": {"N": "7"}},
        "event_id": "e-1",
        "event_time_us": 1_732_000_000_000_000,
        "sequence": "1" * 21,
        "source": "streams",
        "ttl": False,
        "ingested_us": 1_732_000_000_100_000,
    }
    fields.update(changes)
    return ChangeEvent(**fields)


def same(line: bytes) -> tuple[ChangeEvent, str | None, str | None] | None:
    """Check the fast path against the reference on ``line``; returns what the fast path read."""
    try:
        reference: ChangeEvent | None = ChangeEvent.from_line(line)
    except BadRecordError:
        reference = None
    fast = rawline.fast_read(line)
    if fast is not None:
        assert reference is not None, f"fast path accepted a line the reference rejects: {line[:200]!r}"
        ev, new, old = fast
        assert ev == rawline.slim(reference)
        assert (None if new is None else json.loads(new)) == reference.new_image
        assert (None if old is None else json.loads(old)) == reference.old_image
    if reference is None:
        with pytest.raises(BadRecordError):
            rawline.read_line(line)
    else:
        ev, new, old = rawline.read_line(line)
        assert ev == rawline.slim(reference)
        assert (None if new is None else json.loads(new)) == reference.new_image
    return fast


@pytest.mark.parametrize(
    "ev",
    [
        event(),
        event(op="INSERT", old_image=None, sequence=None, source="kinesis"),
        event(op="REMOVE", new_image=None, ttl=True),
        event(op="LOAD", old_image=None, sequence=None, source="scan", event_id="load:0:1"),
        event(keys={"id": {"B": "AAEC"}}, new_image={"id": {"B": "AAEC"}}, old_image=None),
        event(new_image={}),
    ],
)
def test_lines_ddblake_writes_take_the_fast_path_and_read_back_equal(ev: ChangeEvent) -> None:
    line = ev.to_line().rstrip(b"\n")
    fast = same(line)
    assert fast is not None, "a line to_line() wrote missed the fast path"
    got, new, old = fast
    assert got == rawline.slim(ev)
    assert new == rawline.render(ev.new_image) and old == rawline.render(ev.old_image)


@pytest.mark.parametrize(
    "line",
    [
        event(op="INSERT").to_line().replace(b'"new":{', b'"new": {'),  # spacing: reference path
        event().to_line().replace(b'"n":{"N":"-1.5E+10"}', b'"n":{"N":"1x"}'),
        event().to_line().replace(b'"nil":{"NULL":true}', b'"nil":{"NULL":false}'),
        event().to_line().replace(b'"b":{"B":"AAEC"}', b'"b":{"B":"AAE"}'),
        event().to_line().replace(b'"ss":{"SS":["a","\xe6\x97\xa5\xe6\x9c\xac"]}', b'"ss":{"SS":[]}'),
        event().to_line().replace(b'"ttl":false', b'"ttl":true'),  # a TTL expiry that is no REMOVE
        event().to_line().replace(b'"new":{', b'"new":null,"x":{'),
        event(op="INSERT").to_line().replace(b'"new":{', b'"new":null,"old":null,"z":{'),
        event().to_line().replace(b"Zo\xc3\xab#1", b"Zo\xc3#1"),  # not UTF-8
        event().to_line().replace(b'"quote":{"S":"', b'"quote":{"S":"\\ud800'),  # lone surrogate
        event().to_line().replace(b'"event_time_us":1732000000000000', b'"event_time_us":253402300800000000'),
        event().to_line().replace(b'"table":"orders.v2"', b'"table":"ab"'),
        event().to_line().replace(b'"keys":{', b'"keys":{"x":{"BOOL":true},'),
        event(op="INSERT", new_image=None).to_line(),  # an INSERT without its image
        b'{"v":2' + event().to_line()[6:],
        event(
            new_image={"d": {"L": [{"L": [{"L": [{"L": [{"S": "deeper than the fast path"}]}]}]}]}}
        ).to_line(),
        b"",
        b"null",
    ],
)
def test_odd_and_bad_lines_agree_with_the_reference(line: bytes) -> None:
    same(line.rstrip(b"\n"))


def test_images_in_the_export_files_style_take_the_fast_path() -> None:
    """Export loads copy images verbatim: Python's default separators, astral characters escaped."""
    ev = event(new_image={**(event().new_image or {}), "emoji": {"S": "party 🎉"}, "e": {"SS": ["🎉", "x"]}})
    compact = ev.to_line().rstrip(b"\n")
    spaced = compact.replace(rawline.render(ev.new_image).encode(), json.dumps(ev.new_image).encode())
    assert b"\\ud83c\\udf89" in spaced and b'{"S": ' in spaced
    fast = same(spaced)
    assert fast is not None and json.loads(fast[1] or "") == ev.new_image
    # a lone surrogate, or a pair in the wrong order, is still for the reference reader to refuse
    for bad in (b"\\ud83c", b"\\udf89\\ud83c"):
        assert same(spaced.replace(b"\\ud83c\\udf89", bad, 1)) is None


def test_a_repeated_attribute_keeps_the_last_value_as_every_reader_of_the_text_does() -> None:
    line = event().to_line().rstrip(b"\n")
    line = line.replace(b'"ok":{"BOOL":true}', b'"ok":{"BOOL":true},"ok":{"S":"2"}')
    fast = same(line)
    assert fast is not None and json.loads(fast[1] or "")["ok"] == {"S": "2"}


@FUZZ
@given(
    st.sampled_from(["INSERT", "MODIFY", "REMOVE", "LOAD"]),
    keys,
    images,
    st.one_of(st.none(), images),
    st.one_of(st.none(), st.integers(1, 10**39).map(str)),
    st.integers(0, 253_402_300_799_999_999),
    st.text(min_size=1, max_size=8),
    st.booleans(),
)
def test_any_written_event_reads_back_the_same_whichever_path(
    op: str, k: Any, new: Any, old: Any, seq: str | None, t: int, event_id: str, ttl: bool
) -> None:
    try:
        ev = event(
            op=op,
            keys=k,
            new_image=None if op == "REMOVE" else new,
            old_image=old,
            event_id=event_id,
            event_time_us=t,
            sequence=seq,
            ttl=ttl and op == "REMOVE",
            ingested_us=t,
        )
        line = ev.to_line().rstrip(b"\n")
    except UnicodeEncodeError:
        return
    same(line)


@FUZZ
@given(st.data())
def test_a_line_with_one_field_or_value_replaced_agrees_with_the_reference(data: st.DataObject) -> None:
    obj = event().to_dict()
    name = data.draw(st.sampled_from(sorted(obj)))
    if name in ("new", "old", "keys") and data.draw(st.booleans()):
        image = dict(obj[name] or {"a": {"S": "x"}})
        image[data.draw(st.sampled_from(sorted(image)))] = data.draw(st.one_of(values, json_values))
        obj[name] = image
    else:
        obj[name] = data.draw(st.one_of(json_values, values))
    line = json.dumps(obj, separators=(",", ":"), ensure_ascii=data.draw(st.booleans())).encode()
    same(line)


@FUZZ
@given(keys, st.booleans())
def test_a_key_reads_as_json_reads_it_in_order_too(k: Any, repeat: bool) -> None:
    text = json.dumps(k, ensure_ascii=False, separators=(",", ":"))
    if repeat:  # a repeated name (DynamoDB never writes one): first place, last value, as json
        first = next(iter(k))
        text = text[:-1] + "," + json.dumps({first: {"S": "again"}}, separators=(",", ":"))[1:]
    got, expected = rawline._keys(text), json.loads(text)
    assert got == expected and list(got) == list(expected)
