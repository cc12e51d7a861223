"""Library error text without the values it may quote, for one-line errors and logs.

ddblake's own messages are written without item data: they name the table, file, line, event ID,
top-level attribute and the kind of problem. The libraries underneath do not hold to that:
pyarrow's conversion errors quote the value (``Could not convert 'alice@example.com' with type
str``, ``Integer value 300 not in range``) and pyiceberg's quote expression literals (key values).
Where such a message must be shown anyway - the command's last-resort error line, the apply
Lambda's error - it goes through :func:`without_values` first: quoted text becomes ``'…'`` (file
paths and URIs stay, they name the lake's files), and so does a number after the word "value".
"""

from __future__ import annotations

import re
from typing import Final

# A quote that opens a quotation (not the apostrophe of "Couldn't", but the quote of a bytes repr,
# b'...'), to its closing quote (skipping backslash escapes: 'it\'s') or the end.
_QUOTED: Final = re.compile(r"(?:(?<!\w)|(?<=(?<!\w)[bBrRuU]))(['\"])(?:\\.|(?!\1).)*(?:\1|$)")
# What a type or a repr holds: Arrow's nested types name their fields (a map of few keys is a
# struct column named by its keys: struct<alice@example.com: int64>; DuckDB's STRUCT(alice INTEGER)),
# reprs list values.
_NESTED_OPEN: Final = re.compile(
    r"\b(?:struct|map|list|large_list|dictionary)<|\b(?:STRUCT|MAP|UNION)\(|\{|\[(?![Ee]rrno )"
)
_CLOSES: Final = {"<": ">", "{": "}", "[": "]", "(": ")"}
# DuckDB's JSON errors echo the input after "Input:".
_ECHO: Final = re.compile(r"\bInput:\s.*$")
# pyarrow's and pyiceberg's conversion errors name the value unquoted when it is not a string.
_CONVERTED: Final = re.compile(r"\b(Could not convert)\s+(?!['\"]|b['\"])\S+")
_PATH: Final = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.-]*://|/|~/|[A-Za-z]:[\\/])\S*$")
_NUMBER_VALUE: Final = re.compile(r"\b([Vv]alue)\s+[-+]?[0-9][^\s,;:]*")
MASK: Final = "…"


def _mask(match: re.Match[str]) -> str:
    quoted = match.group(0)
    quote = match.group(1)
    inner = quoted[1:-1] if len(quoted) > 1 and quoted.endswith(quote) else quoted[1:]
    if _PATH.match(inner):
        return quoted
    return f"{quote}{MASK}{quote}"


def _nested(text: str) -> str:
    """``text`` with the inside of every nested type and bracketed repr masked: ``struct<…>``,
    ``{…}``; brackets are matched by kind, and one left open masks the rest."""
    out: list[str] = []
    at = 0
    while (found := _NESTED_OPEN.search(text, at)) is not None:
        opener = found.group(0)[-1]
        expected, end = [_CLOSES[opener]], len(text)
        for i in range(found.end(), len(text)):
            char = text[i]
            if char in _CLOSES:
                expected.append(_CLOSES[char])
            elif char == expected[-1]:
                expected.pop()
                if not expected:
                    end = i + 1
                    break
        out.append(f"{text[at : found.end()]}{MASK}{_CLOSES[opener]}")
        at = end
    out.append(text[at:])
    return "".join(out)


def without_values(text: str) -> str:
    """``text`` with what may be item data masked: quoted text other than a path or URI, the
    number after "value" (``Could not convert '…' with type str``, ``Integer value … not in range``),
    the inside of nested types and bracketed reprs (``struct<…>``, ``{…}``), and an echoed input.
    A quoted path or URI is kept whole, brackets and all.

    A best effort for messages ddblake did not write; its own never quote values.
    """
    text = _CONVERTED.sub(rf"\1 {MASK}", _ECHO.sub(f"Input: {MASK}", text).replace("\0", ""))
    kept: list[str] = []  # quoted paths, set aside while brackets are masked (a lake[prod] folder)

    def quoted(match: re.Match[str]) -> str:
        shown = _mask(match)
        if shown == match.group(0):
            kept.append(shown)
            return f"\0{len(kept) - 1}\0"
        return shown

    masked = _nested(_QUOTED.sub(quoted, text))
    masked = re.sub(r"\0(\d+)\0", lambda m: kept[int(m.group(1))], masked)
    return _NUMBER_VALUE.sub(rf"\1 {MASK}", masked)


def shown_type(t: object) -> str:
    """An Arrow type for a message: as it is when flat (``int64``), only its kind when nested
    (``struct<…>``), whose field names may be map keys, which are item data."""
    text = str(t)
    return text if "<" not in text else text.split("<", 1)[0] + f"<{MASK}>"


def first_line(e: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message, values masked, at most ``limit`` characters."""
    first = without_values((str(e).splitlines() or [""])[0])
    return first if len(first) <= limit else first[:limit] + MASK
