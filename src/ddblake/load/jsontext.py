"""JSON objects decoded *with* the text of their members, so images can be copied, not re-encoded.

A load writes each item into the raw log exactly as DynamoDB sent it. Decoding a Scan page or an
export line gives the item's keys (needed for the event ID); this module also returns the item's
own JSON text, which :func:`ddblake.load.rows.spliced_line` puts into the raw-log line unchanged.
Decoding is the standard library's C scanner (``JSONDecoder.raw_decode``), member by member.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

_DECODER: Final = json.JSONDecoder()
_WS: Final = re.compile(r"[ \t\n\r]*")


def _skip(text: str, pos: int) -> int:
    match = _WS.match(text, pos)
    return match.end() if match else pos


def _expect(text: str, pos: int, char: str) -> int:
    if text[pos : pos + 1] != char:
        raise ValueError(f"expected {char!r} at offset {pos}")
    return pos + 1


def members_with_text(text: str, *, split: frozenset[str] = frozenset()) -> dict[str, tuple[Any, Any]]:
    """A JSON object's members as ``name -> (value, text)``.

    For a member named in ``split`` whose value is an array, ``value`` is the list of decoded
    elements and ``text`` the list of their texts.

    Raises:
        ValueError: the text is not one JSON object.
    """
    out: dict[str, tuple[Any, Any]] = {}
    pos = _expect(text, _skip(text, 0), "{")
    pos = _skip(text, pos)
    if text[pos : pos + 1] == "}":
        pos += 1
    else:
        while True:
            name, pos = _DECODER.raw_decode(text, pos)
            if not isinstance(name, str):
                raise ValueError(f"object key at offset {pos} is not a string")
            pos = _skip(text, _expect(text, _skip(text, pos), ":"))
            if name in split and text[pos : pos + 1] == "[":
                values: list[Any] = []
                texts: list[str] = []
                pos = _skip(text, pos + 1)
                if text[pos : pos + 1] == "]":
                    pos += 1
                else:
                    while True:
                        value, end = _DECODER.raw_decode(text, pos)
                        values.append(value)
                        texts.append(text[pos:end])
                        pos = _skip(text, end)
                        if text[pos : pos + 1] == ",":
                            pos = _skip(text, pos + 1)
                            continue
                        pos = _expect(text, pos, "]")
                        break
                out[name] = (values, texts)
            else:
                value, end = _DECODER.raw_decode(text, pos)
                out[name] = (value, text[pos:end])
                pos = end
            pos = _skip(text, pos)
            if text[pos : pos + 1] == ",":
                pos = _skip(text, pos + 1)
                continue
            pos = _expect(text, pos, "}")
            break
    if _skip(text, pos) != len(text):
        raise ValueError(f"extra data at offset {pos}")
    return out
