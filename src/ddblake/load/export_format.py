"""What format an export data file really holds, told from its first non-empty line.

An export whose ``manifest-summary.json`` says ``ION`` while its data files hold DynamoDB JSON (or
the reverse) would not fail everywhere: ``{"Item": {"id": {"S": "1"}}}`` is valid Ion text too, and
read as Ion it loads ``id`` as a map holding an ``S`` attribute — every value with a wrong type. So
the export check (``ddblake.load.export.verify_export``) looks at the first non-empty line of each
data file, which it decompresses anyway, and refuses a file whose line is of the other format.

* ``DYNAMODB_JSON``: a JSON object whose members (``Item``, ``Keys``, ``NewImage``, ``OldImage``,
  ``Metadata``) are objects of DynamoDB JSON attribute values, each ``{"<type>": ...}``.
* ``ION``: a line starting ``$ion_1_0``; or Ion text that is not JSON (``{Item:{id:"1"}}``); or
  JSON-compatible Ion whose values are plain (``{"Item": {"id": "1"}}``: no type tags).
* Anything else is left to the load, which names the damaged line as it always has.
"""

from __future__ import annotations

import json
from typing import Any, Final

from ddblake.load.ion import ion_line_to_json

_TYPES: Final = frozenset({"S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"})
MAX_FIRST_LINE: Final = 16 << 20
"""Bytes kept while looking for the end of the first line: DynamoDB items are 400 KB at most, so a
line longer than this is no export line, and the load reports it."""


class FirstLine:
    """Collects the first non-empty line of decompressed data fed to it in pieces.

    :attr:`line` is the line (without its newline) once found; at the end of the data, the last
    line if it had no newline (see :meth:`finish`). Pieces past the line cost nothing.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.line: bytes | None = None
        self._given_up = False

    @property
    def done(self) -> bool:
        """Whether more data can change nothing."""
        return self.line is not None or self._given_up

    def feed(self, data: bytes) -> None:
        """Take the next piece of decompressed data."""
        while not self.done and data:
            end = data.find(b"\n")
            if end < 0:
                self._buffer += data
                self._given_up = len(self._buffer) > MAX_FIRST_LINE
                return
            self._buffer += data[:end]
            data = data[end + 1 :]
            if self._buffer.strip():
                self.line = bytes(self._buffer)
            self._buffer.clear()

    def finish(self) -> None:
        """The data ended: a last line without a newline counts."""
        if not self.done and self._buffer.strip():
            self.line = bytes(self._buffer)


def _tagged(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in _TYPES


def sniff_format(line: bytes) -> str | None:
    """``DYNAMODB_JSON`` or ``ION`` as the line is written, or None when it is neither (damaged)."""
    text = line.strip()
    if text.startswith(b"$ion_1_0"):
        return "ION"
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        obj = None
    else:
        if not isinstance(obj, dict) or not obj:
            return None
        images = list(obj.values())
        # A null image ("OldImage": null) is read as absent by the load, as by the Glue job.
        if any(image is not None for image in images) and all(
            image is None or (isinstance(image, dict) and all(_tagged(v) for v in image.values()))
            for image in images
        ):
            return "DYNAMODB_JSON"
    try:
        ion_line_to_json(text)
    except (ValueError, RecursionError):
        return None
    return "ION"


def format_problem(where: str, declared: str, first: FirstLine) -> str | None:
    """The refusal for a data file whose first line is not in the ``declared`` format, or None."""
    if first.line is None:
        return None
    found = sniff_format(first.line)
    if found is None or found == declared:
        return None
    return (
        f"data file {where} holds {found} (its first line reads as {found}), but manifest-summary.json "
        f"declares outputFormat {declared}: read as {declared}, its values would get wrong types (if "
        "only the manifest is wrong, correct its outputFormat)"
    )
