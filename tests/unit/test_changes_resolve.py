"""Canonical keys: one string per DynamoDB key value, never two keys on one string."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ddblake.changes.resolve import key_string
from ddblake.errors import BadRecordError


def n(text: str) -> str:
    return key_string({"k": {"N": text}})


@pytest.mark.parametrize(
    ("texts", "canonical"),
    [
        (["10", "10.0", "1E+1", "1.0e1", "100E-1"], "10"),
        (["0", "-0", "0.000", "0E+55"], "0"),
        (["1.50", "1.5", "15E-1"], "1.5"),
        (["-1.5E-3", "-0.0015"], "-0.0015"),
        (["100", "1E+2"], "100"),
    ],
)
def test_numbers_that_dynamodb_treats_as_one_key_are_one_key(texts: list[str], canonical: str) -> None:
    assert {n(t) for t in texts} == {f'{{"k":{{"N":"{canonical}"}}}}'}


def test_38_digit_keys_stay_apart() -> None:
    """The default decimal context (28 digits) once rounded these two keys into one item."""
    a, b = "12345678901234567890123456789012345678", "12345678901234567890123456789012345679"
    assert n(a) != n(b)
    assert n(a) == f'{{"k":{{"N":"{a}"}}}}'
    big = "1.234567890123456789012345678901234567{}E+125"
    assert n(big.format(8)) != n(big.format(9))


def test_exponents_beyond_dynamodbs_range_stay_small_and_apart() -> None:
    started = time.monotonic()
    huge, tiny = n("1E+999999999"), n("1E-999999999")
    assert time.monotonic() - started < 1  # no gigabyte of zeros
    assert len(huge) < 40 and len(tiny) < 40 and huge != tiny != n("1")


def test_a_number_decimal_cannot_hold_is_a_bad_record() -> None:
    with pytest.raises(BadRecordError):
        n("1E+99999999999999999999")


@given(st.integers(-(10**38) + 1, 10**38 - 1), st.integers(-130, 125))
def test_distinct_numbers_give_distinct_keys(digits: int, exponent: int) -> None:
    a, b = f"{digits}E{exponent}", f"{digits + 1}E{exponent}"
    assert n(a) != n(b)
    assert n(a) == n(f"{digits}0E{exponent - 1}")  # the same value written another way


def test_decide_lets_only_a_newer_change_touch_the_current_state() -> None:
    from ddblake.changes.model import ChangeEvent
    from ddblake.changes.resolve import Keyed, decide

    def change(op: str, pk: str, version: str) -> Keyed:
        keys = {"pk": {"S": pk}}
        ev = ChangeEvent(
            op=op,  # type: ignore[arg-type]
            table="t",
            keys=keys,
            new_image=None if op == "REMOVE" else keys,
            old_image=None,
            event_id=f"{pk}-{version}",
            event_time_us=1,
            sequence=None,
            source="streams",
            ttl=False,
            ingested_us=1,
        )
        return Keyed(key_string(keys), version, ev)

    best = {
        c.key: c
        for c in (
            change("MODIFY", "updated", "2"),  # newer than the table's 1
            change("MODIFY", "stale", "1"),  # the table holds this version already
            change("REMOVE", "deleted", "5"),
            change("REMOVE", "never-held", "5"),  # nothing to delete
            change("INSERT", "new", "3"),
            change("INSERT", "resurrected", "3"),  # the history removed it later
        )
    }
    held = (("updated", "1"), ("stale", "1"), ("deleted", "4"))
    present = {key_string({"pk": {"S": k}}): v for k, v in held}
    removed = change("REMOVE", "resurrected", "4")
    upserts, deletes, stale = decide(best, {removed.key: removed}, present)
    assert sorted(u.event.keys["pk"]["S"] for u in upserts) == ["new", "updated"]
    assert deletes == {key_string({"pk": {"S": "deleted"}})}
    assert stale == 1
