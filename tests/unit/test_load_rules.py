"""Load rows: the version rule against stream changes, deterministic event IDs, plan and rate limiter."""

from __future__ import annotations

import random

import pytest

from ddblake.changes.model import ChangeEvent
from ddblake.changes.resolve import keyed, version_of, winners
from ddblake.errors import BadRecordError
from ddblake.load.plan import (
    MIN_SEGMENTS,
    RateLimiter,
    backoff_delay,
    page_cost,
    page_limit,
    plan_segments,
    plan_workers,
    read_capacity,
    scan_budget,
)
from ddblake.load.rows import (
    export_event_id,
    incremental_op,
    key_of,
    load_event,
    parse_export_time,
    scan_event_id,
    to_wire_item,
    version_time_from_us,
    version_time_us,
)

KEYS = {"pk": {"S": "a"}, "sk": {"N": "10"}}


def _stream_change(time_s: int, seq: str, new: dict[str, object]) -> ChangeEvent:
    """A DynamoDB Streams change: its time is whole seconds (ApproximateCreationDateTime)."""
    return ChangeEvent(
        "MODIFY", "tbl", KEYS, new, None, f"ev-{seq}", time_s * 1_000_000, seq, "streams", False, 0
    )


def _load_row(start_us: int, new: dict[str, object]) -> ChangeEvent:
    return load_event(
        table="tbl",
        item={**KEYS, **new},
        key_names=("pk", "sk"),
        make_id=lambda keys: scan_event_id("L1", keys),
        event_time_us=version_time_from_us(start_us),
        ingested_us=0,
        source="scan",
    )


def test_version_is_the_start_minute_less_a_minute_of_skew_minus_one_microsecond() -> None:
    minute = 1_699_999_980_000_000  # 1_700_000_000 s falls 20 s into this minute
    assert version_time_us(1_700_000_000.999) == minute - 60_000_000 - 1
    assert version_time_from_us(1_700_000_000_999_999) == minute - 60_000_000 - 1
    assert version_time_from_us(minute) == minute - 60_000_000 - 1


def test_a_change_rounded_down_to_the_minute_still_beats_the_load_row() -> None:
    # DynamoDB Local stamps stream records with the minute; a change 1 s after the start is
    # reported at the start of that minute, which must still outrank the load's rows.
    start_us = 1_700_000_000_400_000
    row = _load_row(start_us, {"v": {"S": "read by the scan"}})
    change = _stream_change(1_699_999_980, "100", {"v": {"S": "changed after the start"}})
    assert next(iter(winners(keyed([row, change])).values())).event is change


def test_a_change_after_the_load_start_beats_the_load_row_even_in_the_same_second() -> None:
    start_us = 1_700_000_000_400_000  # the load starts 0.4 s into a second
    row = _load_row(start_us, {"v": {"S": "read by the scan"}})
    same_second = _stream_change(1_700_000_000, "100", {"v": {"S": "changed 0.3 s after the start"}})
    best = winners(keyed([same_second, row]))  # order of arrival does not matter
    assert next(iter(best.values())).event is same_second
    best = winners(keyed([row, same_second]))
    assert next(iter(best.values())).event is same_second


def test_the_load_row_beats_changes_of_earlier_seconds() -> None:
    row = _load_row(1_700_000_000_400_000, {"v": {"S": "newer, read by the scan"}})
    older = _stream_change(1_699_999_800, "99", {"v": {"S": "older"}})
    assert version_of(row) > version_of(older)
    assert next(iter(winners(keyed([row, older])).values())).event is row


def test_event_ids_are_deterministic_per_load_and_key() -> None:
    assert scan_event_id("L1", KEYS) == scan_event_id("L1", dict(reversed(KEYS.items())))
    assert scan_event_id("L1", KEYS) == scan_event_id("L1", {"pk": {"S": "a"}, "sk": {"N": "1E+1"}})
    assert scan_event_id("L1", KEYS) != scan_event_id("L2", KEYS)
    assert scan_event_id("L1", KEYS) != scan_event_id("L1", {"pk": {"S": "b"}, "sk": {"N": "10"}})
    assert scan_event_id("L1", KEYS).startswith("load-L1-") and len(scan_event_id("L1", KEYS)) == 8 + 40
    assert export_event_id("E", KEYS).startswith("export-E-")
    assert export_event_id("E", KEYS, 5) != export_event_id("E", KEYS, 6)
    assert export_event_id("E", KEYS, 5).startswith("export-E-5-")


def test_load_rows_carry_the_item_as_read() -> None:
    row = _load_row(1_700_000_000_000_000, {"b": {"B": "AAE="}})
    assert row.op == "LOAD" and row.source == "scan" and row.old_image is None and row.sequence is None
    assert row.keys == KEYS and row.new_image == {**KEYS, "b": {"B": "AAE="}}
    assert ChangeEvent.from_line(row.to_line()) == row
    with pytest.raises(BadRecordError, match="'sk'"):
        key_of({"pk": {"S": "a"}}, ("pk", "sk"))


def test_incremental_ops_and_export_time() -> None:
    assert incremental_op(None, {"a": 1}, "NEW_AND_OLD_IMAGES") == "REMOVE"
    assert incremental_op({"a": 1}, {"a": 0}, "NEW_AND_OLD_IMAGES") == "MODIFY"
    assert incremental_op({"a": 1}, None, "NEW_AND_OLD_IMAGES") == "INSERT"
    assert incremental_op({"a": 1}, None, "NEW_IMAGE") == "LOAD"
    assert parse_export_time("2026-11-28T08:00:00.000Z") == 1_795_852_800_000_000
    assert parse_export_time("2026-11-28T08:00:00.123456+00:00") == 1_795_852_800_123_456


def test_parsed_items_go_back_to_dynamodb_json() -> None:
    parsed = {"b": {"B": b"\x00\x01"}, "bs": {"BS": [b"\xff"]}, "m": {"M": {"x": {"L": [{"B": b"a"}]}}}}
    assert to_wire_item(parsed) == {
        "b": {"B": "AAE="},
        "bs": {"BS": ["/w=="]},
        "m": {"M": {"x": {"L": [{"B": "YQ=="}]}}},
    }


def test_segments_follow_table_size() -> None:
    assert plan_segments(0, 0) == MIN_SEGMENTS  # DescribeTable may lag: assume work
    assert plan_segments(100, 50_000) == 1
    assert plan_segments(10**6, 200 * 1024**2) == MIN_SEGMENTS
    assert plan_segments(10**9, 100 * 1024**3) == 400
    assert plan_segments(10**12, 10**15) == 1000
    assert plan_segments(10**6, 10**9, requested=3) == 3
    assert plan_workers(3) == 3 and plan_workers(100) == 16 and plan_workers(100, 4) == 4


def test_read_budget_and_page_limit() -> None:
    def read_budget(provisioned: float, percent: float, on_demand: float) -> float:
        return scan_budget(read_capacity(provisioned, on_demand)[0], percent)

    assert read_budget(400, 50, 12_000) == 200  # provisioned
    assert read_budget(0, 50, 12_000) == 6_000  # on-demand: the assumed capacity
    assert read_budget(1, 1, 12_000) > 0  # never zero (fractions stay: test_scan_fixes)
    assert page_cost(False) == 128 and page_cost(True) == 256
    assert page_limit(200, 400, False) is None
    assert page_limit(10, 400, False) == 204  # 10 units * 8 KB / 400 B
    assert page_limit(10, 400, True) == 102
    assert page_limit(0.001, 10**6, True) == 1


def test_backoff_is_jittered_and_capped() -> None:
    rng = random.Random(1)
    delays = [backoff_delay(a, base=0.1, cap=2.0, rng=rng) for a in range(12)]
    assert all(0 <= d <= min(2.0, 0.1 * 2**a) for a, d in enumerate(delays))
    assert len(set(delays)) == len(delays)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> bool:
        self.sleeps.append(seconds)
        self.now += seconds
        return False


def test_rate_limiter_keeps_the_long_run_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=100.0, clock=clock, sleep=clock.sleep)
    for _ in range(50):  # 50 pages of 40 units reserved as 20, settled at 40
        assert limiter.acquire(20.0)
        limiter.settle(20.0, 40.0)
    # 2000 units at 100/s: one second of burst to start, the last page's 40 units still owed
    assert clock.now == pytest.approx((2000 - 100 - 40) / 100, abs=0.1)
    assert limiter.consumed == 2000.0


def test_rate_limiter_waits_only_in_debt_and_can_be_abandoned() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=10.0, clock=clock, sleep=clock.sleep)
    assert limiter.acquire(5.0) and clock.sleeps == []
    limiter.settle(5.0, 30.0)  # 20 units of debt
    assert limiter.acquire(1.0)
    assert clock.now == pytest.approx(2.001, abs=0.01)
    stopping = RateLimiter(rate=1.0, clock=clock, sleep=lambda s: True)
    stopping.settle(0.0, 10.0)
    assert stopping.acquire(1.0) is False
    with pytest.raises(ValueError):
        RateLimiter(rate=0)


def test_spliced_lines_equal_encoded_lines_and_keep_the_image_text() -> None:
    import json

    from ddblake.load.jsontext import members_with_text
    from ddblake.load.rows import fast_key_digest, key_digest, spliced_line

    text = (
        '{"pk": {"S": "a\\u00e9"}, "sk": {"N": "10"}, "n": {"N": "1.50"}, "s": {"S": "Zoë \\ud83c\\udf89"}}'
    )
    item = json.loads(text)
    keys = {"pk": item["pk"], "sk": item["sk"]}
    line = spliced_line(
        op="LOAD",
        table="tbl",
        keys=keys,
        new_text=text,
        event_id="load-x-1",
        event_time_us=5,
        source="scan",
        ingested_us=6,
    )
    event = ChangeEvent("LOAD", "tbl", keys, item, None, "load-x-1", 5, None, "scan", False, 6)
    assert ChangeEvent.from_line(line) == event
    assert json.loads(line) == json.loads(event.to_line()), "same fields, same values"
    assert text.encode() in line, "the image bytes are DynamoDB's own"
    removed = spliced_line(
        op="REMOVE",
        table="tbl",
        keys=keys,
        new_text=None,
        old_text=text,
        event_id="e",
        event_time_us=1,
        source="export",
        ingested_us=2,
    )
    assert (
        ChangeEvent.from_line(removed).old_image == item and ChangeEvent.from_line(removed).new_image is None
    )
    for k in (keys, {"pk": {"S": "a"}}, {"b": {"B": "AAE="}, "a": {"S": '"'}}):
        assert fast_key_digest(k) == key_digest(k)
    members = members_with_text(' { "Items" : [ ] , "Count":0 } ', split=frozenset({"Items"}))
    assert members == {"Items": ([], []), "Count": (0, "0")}
    for bad in ("[1]", '{"a":1} x', '{"a" 1}', '{"a":1,}', ""):
        with pytest.raises(ValueError):
            members_with_text(bad)


def test_a_lone_surrogate_in_a_key_is_escaped_not_fatal() -> None:
    from ddblake.load.rows import spliced_line

    keys = {"pk": {"S": "\ud800"}}
    line = spliced_line(
        op="LOAD",
        table="tbl",
        keys=keys,
        new_text='{"pk":{"S":"\\ud800"}}',
        event_id="e",
        event_time_us=1,
        source="scan",
        ingested_us=1,
    )
    assert b"\\ud800" in line  # escaped: the line is valid UTF-8 (the raw-log parser then rejects it)
    assert __import__("json").loads(line)["keys"] == keys
