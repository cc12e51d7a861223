"""A check of every line of a full export against the key attributes a user named (``--keys``).

A full export's lines carry items, not keys: a load takes each row's key from the attributes it is
told are the table's key. When those come from ``--keys`` rather than DescribeTable, they may name
an attribute most items hold but that is not the key (a sparse attribute, a typo of the range key).
The load used to find that out at the first item without it, after it had written every raw file
before that item under the wrong keys; apply then kept those rows as items of their own, and the
load's own state refused the rerun with the right keys. So before anything is written, the export
check reads every line (:func:`ddblake.load.export.verify_export`) and this module says what is
wrong with a line: the same rule the Glue job's check pass applies (:mod:`ddblake.gluejob.rules`).
A key DescribeTable gives needs no such pass: DynamoDB writes every item with its key attributes.

An incremental export's lines are all checked the same way (:class:`IncrementalCheck`): they are
usually few, and a line the load cannot read stopped it after it had written the rows before it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

from ddblake.load.ion import ion_line_to_json

KEY_TYPES: Final = ("S", "N", "B")
"""The types a DynamoDB key attribute can have."""


def _parsed(line: bytes, ion: bool) -> tuple[Any, tuple[str, bool] | None]:
    """A line's object, or why it is none (the line is damaged)."""
    try:
        return (ion_line_to_json(line) if ion else json.loads(line)), None
    except (ValueError, RecursionError) as e:
        return None, (f"it is not an export line ({str(e)[:200]})", False)


class KeyCheck:
    """What is wrong with one line of a full export, for the key attributes ``keys`` (None: nothing).

    Problems name the attribute and its type, never a value (item data stays out of messages).
    """

    def __init__(self, keys: Sequence[str], output_format: str) -> None:
        self.keys = tuple(keys)
        self.ion = output_format == "ION"

    def __call__(self, line: bytes) -> tuple[str, bool] | None:
        """The problem with ``line`` and whether it is the keys' (False: the line is damaged)."""
        obj, damaged = _parsed(line, self.ion)
        if damaged is not None:
            return damaged
        item = obj.get("Item") if isinstance(obj, dict) else None
        if not isinstance(item, dict) or not item:
            return "it is not a full export line (no Item)", False
        for name in self.keys:
            value = item.get(name)
            if value is None:
                return f"its item has no attribute {name!r}", True
            kind = next(iter(value)) if isinstance(value, dict) and len(value) == 1 else None
            if kind not in KEY_TYPES:
                shown = kind if isinstance(kind, str) else "not a single-type value"
                return (
                    f"its attribute {name!r} is of type {shown}, which no key attribute has (S, N or B)",
                    True,
                )
        return None


class IncrementalCheck:
    """What is wrong with one line of an incremental export (never the keys': ``keys`` is empty).

    The rule the load applies to it (:mod:`ddblake.load.export_rows`) and the Glue job's check pass
    too (:func:`ddblake.gluejob.rules.export_fields`): a JSON (or Ion) object with
    ``Metadata.WriteTimestampMicros`` and a ``Keys`` object, its images objects when present.
    """

    keys: tuple[str, ...] = ()

    def __init__(self, output_format: str) -> None:
        self.ion = output_format == "ION"

    def __call__(self, line: bytes) -> tuple[str, bool] | None:
        """The problem with ``line``, and False (the line is damaged); None when it is whole."""
        obj, damaged = _parsed(line, self.ion)
        if damaged is not None:
            return damaged
        if not isinstance(obj, dict):
            return "it is not an export line (not an object)", False
        try:
            int(obj["Metadata"]["WriteTimestampMicros"]["N"])
        except (KeyError, TypeError, ValueError):
            return "it is not an incremental export line (no Metadata.WriteTimestampMicros)", False
        if not isinstance(obj.get("Keys"), dict) or not obj["Keys"]:
            return "it is not an incremental export line (no Keys)", False
        if not all(
            obj.get(image) is None or isinstance(obj[image], dict) for image in ("NewImage", "OldImage")
        ):
            return "its NewImage or OldImage is not an object", False
        return None


def line_check(
    incremental: bool, keys: Sequence[str] | None, output_format: str
) -> KeyCheck | IncrementalCheck | None:
    """The check of every line an export gets before it is loaded, if any."""
    if incremental:
        return IncrementalCheck(output_format)
    return KeyCheck(keys, output_format) if keys else None
