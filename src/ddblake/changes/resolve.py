"""Versions, keys and winners: the pure rules that make apply exactly-once and order-proof.

A change's version is (event time, sequence number when the source has one, event ID). It is
encoded as one fixed-width string so that plain string comparison — in Python, Arrow or SQL — is
version comparison, and the lake stores it in one column.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal, InvalidOperation
from json.encoder import encode_basestring
from typing import Any

from ddblake.changes.model import ChangeEvent
from ddblake.errors import BadRecordError

_SEQ_WIDTH = 40
_encode = encode_basestring  # json.dumps's own string encoder when ensure_ascii=False


def version_of(event: ChangeEvent) -> str:
    """The sortable version string of a change: ``<time µs, 20 digits>:<seq, 40 digits>:<event id>``.

    A missing sequence number (Kinesis, loads) sorts as zero, so among changes with the same
    microsecond the event ID decides — deterministic, if arbitrary, which is all that Kinesis offers.
    """
    seq = event.sequence or ""
    return f"{event.event_time_us:020d}:{seq:0>{_SEQ_WIDTH}}:{event.event_id}"


_PLAIN_INT = re.compile(r"-?[1-9][0-9]{0,99}")


def _canonical_number(text: str) -> str:
    if _PLAIN_INT.fullmatch(text):  # the usual key number: already canonical
        return text
    try:
        number = Decimal(text)
    except InvalidOperation as e:
        raise BadRecordError("key attribute of type N is not a number") from e
    if not number.is_finite():
        raise BadRecordError("key attribute of type N is not finite")
    if number == 0:
        return "0"
    # Exact: the default context (28 digits) would round 38-digit keys together. A context as wide
    # as the text never rounds. Beyond DynamoDB's range (|exponent| <= 130) the plain form could be
    # a gigabyte of zeros ("1E+999999999"): such numbers keep scientific form, still one per value.
    normal = number.normalize(Context(prec=len(text), Emax=MAX_EMAX, Emin=MIN_EMIN))
    return format(normal, "f" if -200 <= normal.adjusted() <= 200 else "E")


def _canonical_value(value: Mapping[str, Any]) -> Any:
    ((tag, inner),) = value.items()
    if tag == "N":
        return {"N": _canonical_number(str(inner))}
    return {tag: inner}


def key_string(keys: Mapping[str, Any]) -> str:
    """One canonical string per primary key, whatever its types, for joins and partitioning.

    Numbers are normalised (``10``, ``10.0`` and ``1E+1`` are one key in DynamoDB, and here).
    The text is what ``json.dumps(canonical, separators=(",", ":"), ensure_ascii=False)`` gives for
    the attributes sorted by name; the usual key (string names, tags and values) is built from json's
    own string encoder, several times faster. This runs once per change and per loaded item.
    """
    parts = []
    try:
        for name in sorted(keys) if len(keys) > 1 else keys:
            ((tag, inner),) = keys[name].items()
            if tag == "N":
                inner = _canonical_number(str(inner))
            if type(name) is not str or type(tag) is not str or type(inner) is not str:
                return _key_string_of_any(keys)
            parts.append(f"{_encode(name)}:{{{_encode(tag)}:{_encode(inner)}}}")
    except (ValueError, AttributeError, TypeError) as e:
        raise BadRecordError("key is not DynamoDB JSON") from e
    return "{" + ",".join(parts) + "}"


def _key_string_of_any(keys: Mapping[str, Any]) -> str:
    """:func:`key_string` of a key holding values other than strings (json encodes them)."""
    canonical = {name: _canonical_value(keys[name]) for name in sorted(keys)}
    return json.dumps(canonical, separators=(",", ":"), ensure_ascii=False)


def key_hash(key: str) -> int:
    """The CRC-32 of a canonical key (the same in every process and release): ``_ddb_hash``."""
    return zlib.crc32(key.encode())


def bucket_of(key: str, buckets: int) -> int:
    """Stable partition bucket of a canonical key: its :func:`key_hash` modulo the bucket count."""
    return key_hash(key) % buckets


@dataclass(frozen=True, slots=True)
class Keyed:
    """A change with its canonical key and version computed once."""

    key: str
    version: str
    event: ChangeEvent


def keyed(events: Iterable[ChangeEvent]) -> list[Keyed]:
    """Attach key strings and versions, dropping repeated event IDs (first one wins)."""
    seen: set[str] = set()
    out: list[Keyed] = []
    for ev in events:
        if ev.event_id in seen:
            continue
        seen.add(ev.event_id)
        out.append(Keyed(key_string(ev.keys), version_of(ev), ev))
    return out


def winners(changes: Iterable[Keyed]) -> dict[str, Keyed]:
    """The newest change per key; a late or repeated change never beats a newer one."""
    best: dict[str, Keyed] = {}
    for ch in changes:
        cur = best.get(ch.key)
        if cur is None or ch.version > cur.version:
            best[ch.key] = ch
    return best


def decide(
    best: Mapping[str, Keyed], newer: Mapping[str, Keyed], present: Mapping[str, str]
) -> tuple[list[Keyed], set[str], int]:
    """What each key's winning change does to the current state: ``(upserts, deletes, stale)``.

    ``best`` is the batch's winner per key, ``newer`` the history's newer REMOVE of a key the
    current state lacks (it beats the batch's change, so a late change never resurrects an item),
    ``present`` the version the current state holds per key. A change no newer than that version
    is stale and counted; a REMOVE of a key the table does not hold deletes nothing.
    """
    upserts: list[Keyed] = []
    deletes: set[str] = set()
    stale = 0
    for key, change in best.items():
        winner = newer.get(key, change)
        held = present.get(key)
        if held is not None and held >= winner.version:
            stale += 1
        elif winner.event.op != "REMOVE":
            upserts.append(winner)
        elif held is not None:
            deletes.add(key)
    return upserts, deletes, stale
