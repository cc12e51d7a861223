"""Reading raw-log lines for ``apply``: the event without its images, and the images as text.

``apply`` never needs an image as a dict: the history stores its text, the current state stores it
(``_ddb_item``) and types its columns from it in C++. Decoding every image into dicts, checking them
value by value in Python and encoding them back to text was most of what apply spent per change.

So lines go through a fast path first, built like the Firehose transform's
(:mod:`ddblake.changes.transform`): one precompiled regular expression checks the whole line in C -
the envelope exactly as :meth:`ChangeEvent.to_line` writes it, the key, and both images down to
every attribute value by the same grammar the transform uses - and captures the images' text, which
is kept as it is. Only the key is decoded. Anything the pattern does not fully understand (other
field order or spacing, nesting deeper than :data:`~ddblake.changes.transform.FAST_DEPTH`, escapes,
a bad value) goes to the reference reader, :meth:`ChangeEvent.from_line`, which accepts it or names
what is wrong. The fast path accepts nothing the reference reader rejects and reads every line it
accepts to the same event and to images of the same value (tests hold the two together).

A set holding a member twice (NS compared by value, BS by bytes, SS after escapes) is no change
DynamoDB could have written, and ``from_line`` refuses it: the fast path leaves such a line to it
(:func:`ddblake.changes.sets.text_repeats_a_member`).

The text kept is the line's own: for lines ddblake wrote it is compact JSON, as the reference path
renders it. A line whose image repeats an attribute name (DynamoDB never writes one) keeps it
verbatim; every reader of the text takes the last occurrence, as the reference path does.
"""

from __future__ import annotations

import json
import re
from typing import Any, cast

from ddblake.changes import transform
from ddblake.changes.model import MAX_LINE_BYTES, ChangeEvent, Operation, Source, compact_json
from ddblake.changes.parse import MAX_EVENT_TIME_US
from ddblake.changes.sets import text_repeats_a_member

_fast: re.Pattern[bytes] | None = None


def _compile() -> re.Pattern[bytes]:
    # Images also as export files write them: ", " and ": ", astral characters as escaped pairs.
    image = transform.image_pattern(transform.FAST_DEPTH, " ?", transform.TEXT_WITH_PAIRS)
    number = r"0|[1-9][0-9]{0,17}+"
    pattern = (
        r'\{"v":1,"op":"(INSERT|MODIFY|REMOVE|LOAD)","table":"([A-Za-z0-9_.-]{3,255}+)",'
        rf'"keys":({transform.KEYS_PATTERN}),"new":(null|{image}),"old":(null|{image}),'
        r'"event_id":"([^"\\\x00-\x1f]++)",'
        rf'"event_time_us":({number}),"seq":(?:null|"([0-9]{{1,40}}+)"),'
        r'"source":"(streams|kinesis|scan|export)","ttl":(true|false),'
        rf'"ingested_us":({number})\}}'
    )
    return re.compile(pattern.encode("ascii"))


def prepare() -> None:
    """Compile the fast path now (tens of milliseconds) rather than on the first line."""
    global _fast
    if _fast is None:
        _fast = _compile()


_PLAIN = r'"([^"\\\x00-\x1f]*+)"'
_SIMPLE_KEYS = re.compile(rf'\{{{_PLAIN}:\{{"([SNB])":{_PLAIN}\}}(?:,{_PLAIN}:\{{"([SNB])":{_PLAIN}\}})?\}}')


def _keys(text: str) -> Any:
    """A key's JSON text (already checked by the fast pattern) as ``json.loads`` reads it.

    The usual key, with no escape in its strings, is split by one small pattern: a quarter of what
    ``json.loads`` takes, and this runs once per line of every batch.
    """
    m = _SIMPLE_KEYS.fullmatch(text)
    if m is None:
        return json.loads(text)
    name, tag, value, name2, tag2, value2 = m.groups()
    keys = {name: {tag: value}}
    if name2 is not None:
        keys[name2] = {tag2: value2}  # a repeated name keeps its first place and last value, as json
    return keys


def render(image: Any) -> str | None:
    """An image's text as the reference path keeps it: compact JSON, non-ASCII as is (None for none)."""
    return None if image is None else compact_json(image)


def fast_read(line: bytes) -> tuple[ChangeEvent, str | None, str | None] | None:
    """The fast path: ``(event without images, new image text, old image text)``, or None.

    None means the reference reader must decide (it may still accept the line).
    """
    if _fast is None:
        prepare()
    m = _fast.fullmatch(line)  # type: ignore[union-attr]  # prepare() set it
    if m is None:
        return None
    op, table, keys, new, old, event_id, event_time, seq, source, ttl, ingested = m.groups()
    event_time_us, ingested_us = int(event_time), int(ingested)
    if event_time_us >= MAX_EVENT_TIME_US or ingested_us >= MAX_EVENT_TIME_US:
        return None
    if (ttl == b"true" and op != b"REMOVE") or (new == b"null" and op != b"REMOVE"):
        return None  # the reference reader names what is wrong
    try:  # every non-ASCII byte of the line lies in these four groups
        new_text = None if new == b"null" else new.decode("utf-8")
        old_text = None if old == b"null" else old.decode("utf-8")
        event = ChangeEvent(
            op=cast(Operation, op.decode("ascii")),
            table=table.decode("ascii"),
            keys=_keys(keys.decode("utf-8")),
            new_image=None,
            old_image=None,
            event_id=event_id.decode("utf-8"),
            event_time_us=event_time_us,
            sequence=None if seq is None else seq.decode("ascii"),
            source=cast(Source, source.decode("ascii")),
            ttl=ttl == b"true",
            ingested_us=ingested_us,
        )
    except UnicodeDecodeError:
        return None
    if text_repeats_a_member(line):  # after the UTF-8 check: the members are compared as text
        return None  # a set holding a member twice: the reference reader names it
    return event, new_text, old_text


def read_line(line: bytes) -> tuple[ChangeEvent, str | None, str | None]:
    """One raw-log line as ``(event without images, new image text, old image text)``.

    Raises:
        BadRecordError: the line is not a raw-log line (the reference reader's reason).
    """
    if len(line) <= MAX_LINE_BYTES:
        fast = fast_read(line)
        if fast is not None:
            return fast
    event = ChangeEvent.from_line(line)
    return slim(event), render(event.new_image), render(event.old_image)


def slim(ev: ChangeEvent) -> ChangeEvent:
    """``ev`` without its images (``dataclasses.replace`` without its per-call introspection)."""
    return ChangeEvent(
        op=ev.op,
        table=ev.table,
        keys=ev.keys,
        new_image=None,
        old_image=None,
        event_id=ev.event_id,
        event_time_us=ev.event_time_us,
        sequence=ev.sequence,
        source=ev.source,
        ttl=ev.ttl,
        ingested_us=ev.ingested_us,
    )
