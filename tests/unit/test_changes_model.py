"""The raw-log line: field names, one line per event, and a lossless round trip."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from ddblake.changes import ChangeEvent
from ddblake.errors import BadRecordError

EVENT = ChangeEvent(
    op="MODIFY",
    table="example-ddb-table",
    keys={"id": {"S": "864732"}, "name": {"S": "Adam"}},
    new_image={"id": {"S": "864732"}, "name": {"S": "Adam"}, "bio": {"S": "line one\nline two\u2028東京"}},
    old_image={"id": {"S": "864732"}, "name": {"S": "Adam"}, "n": {"N": "1E-130"}},
    event_id="2b7d1a3e-9c1f-4d55-8a0e-4f3c2b1a0d9e",
    event_time_us=1764316800123000,
    sequence="4421584500000000017450439092",
    source="streams",
    ttl=False,
    ingested_us=1764316800500000,
)


def test_line_field_names_are_the_documented_ones() -> None:
    obj = json.loads(EVENT.to_line())
    assert list(obj) == [
        "v", "op", "table", "keys", "new", "old", "event_id", "event_time_us", "seq", "source", "ttl",
        "ingested_us",
    ]  # fmt: skip
    assert obj["v"] == 1
    assert obj["seq"] == "4421584500000000017450439092"


def test_line_is_compact_utf8_with_exactly_one_newline_at_the_end() -> None:
    line = EVENT.to_line()
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    assert line.count(b"\r") == 0
    assert "東京".encode() in line  # UTF-8, not \\u escapes
    assert b'":' in line and b'": ' not in line


def test_line_round_trips() -> None:
    assert ChangeEvent.from_line(EVENT.to_line()) == EVENT
    assert ChangeEvent.from_line(EVENT.to_line().decode()) == EVENT
    assert ChangeEvent.from_dict(EVENT.to_dict()) == EVENT


def test_lone_surrogates_are_escaped_in_writing_and_quarantined_in_reading() -> None:
    odd = dataclasses.replace(EVENT, new_image={"a": {"S": "\ud800"}})
    line = odd.to_line()  # writing never fails, whatever a caller put in an event
    assert line.isascii() and line.endswith(b"\n") and line.count(b"\n") == 1
    with pytest.raises(BadRecordError):  # but no parser makes such an event, and readers refuse it
        ChangeEvent.from_line(line)


@pytest.mark.parametrize(
    "change",
    [
        {"v": True},
        {"v": 1.0},
        {"v": 2},
        {"op": "UPDATE"},
        {"op": ["INSERT"]},
        {"source": {"kinesis": 1}},
        {"source": "firehose"},
        {"table": ""},
        {"keys": {}},
        {"event_id": 5},
        {"new": []},
        {"old": {"tags": {"SS": []}}},  # an empty set: the fast reader refuses it too
        {"old": {"n": {"N": "1.5e"}}},
        {"old": {"n": {"N": "1E+126"}}},  # past DynamoDB's range
        {"old": {"": {"S": "x"}}},  # an empty attribute name
        {"seq": 5},
        {"event_time_us": 1.5},
        {"ingested_us": True},
        {"ttl": "no"},
    ],
)
def test_from_dict_rejects_malformed_lines(change: dict[str, Any]) -> None:
    with pytest.raises(BadRecordError):
        ChangeEvent.from_dict({**EVENT.to_dict(), **change})


@pytest.mark.parametrize("field", ["v", "op", "source"])
def test_a_bad_field_value_is_named_by_its_type_not_quoted(field: str) -> None:
    """Reasons go to logs and quarantine records: a damaged line's text must not."""
    for value, shown in (("alice@example.com", "<str>"), ({"x": "secret"}, "<dict>"), ("UPSERT", "'UPSERT'")):
        with pytest.raises(BadRecordError) as caught:
            ChangeEvent.from_dict({**EVENT.to_dict(), field: value})
        assert (
            shown in str(caught.value) and "secret" not in str(caught.value) and "@" not in str(caught.value)
        )


@pytest.mark.parametrize("line", [b"", b"{", b"[]", b"\xff", b"[" * 50_000 + b"]" * 50_000])
def test_from_line_rejects_what_is_not_a_line(line: bytes) -> None:
    with pytest.raises(BadRecordError):
        ChangeEvent.from_line(line)
