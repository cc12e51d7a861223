"""A Scan load's start against AWS's clock: DescribeTable's Date header, and the lead taken off."""

from __future__ import annotations

from ddblake.load.table import CLOCK_AHEAD_ALLOWED_US, _server_time_us, clock_ahead_us

DATE = "Mon, 07 Dec 2026 17:30:00 GMT"
DATE_US = 1_796_664_600_000_000


def _response(date: str | None) -> dict[str, object]:
    headers = {"date": date} if date is not None else {}
    return {"Table": {}, "ResponseMetadata": {"HTTPHeaders": headers}}


def test_the_date_header_is_read_to_the_second() -> None:
    assert _server_time_us(_response(DATE)) == DATE_US
    assert _server_time_us(_response(None)) is None
    assert _server_time_us(_response("not a date")) is None
    assert _server_time_us({"Table": {}}) is None


def test_only_a_lead_beyond_the_allowance_moves_the_start() -> None:
    assert (
        clock_ahead_us(DATE_US, DATE_US + CLOCK_AHEAD_ALLOWED_US) == 0
    )  # the version rule's minute covers it
    assert clock_ahead_us(DATE_US, DATE_US + 180_000_000) == 180_000_000
    assert (
        clock_ahead_us(DATE_US, DATE_US - 600_000_000) == 0
    )  # behind: the start is earlier than AWS's already
    assert clock_ahead_us(None, DATE_US) == 0 and clock_ahead_us(DATE_US, None) == 0
