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
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

from ddblake.load.ion import ion_line_to_json

KEY_TYPES: Final = ("S", "N", "B")
"""The types a DynamoDB key attribute can have."""


class KeyCheck:
    """What is wrong with one line of a full export, for the key attributes ``keys`` (None: nothing).

    Problems name the attribute and its type, never a value (item data stays out of messages).
    """

    def __init__(self, keys: Sequence[str], output_format: str) -> None:
        self.keys = tuple(keys)
        self.ion = output_format == "ION"

    def __call__(self, line: bytes) -> tuple[str, bool] | None:
        """The problem with ``line`` and whether it is the keys' (False: the line is damaged)."""
        try:
            obj: Any = ion_line_to_json(line) if self.ion else json.loads(line)
        except (ValueError, RecursionError) as e:
            return f"it is not an export line ({str(e)[:200]})", False
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
