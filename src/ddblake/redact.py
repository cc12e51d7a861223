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

# A quote that opens a quotation (not the apostrophe of "Couldn't"), to its closing quote or the end.
_QUOTED: Final = re.compile(r"(?<!\w)(['\"])(?:(?!\1).)*(?:\1|$)")
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


def without_values(text: str) -> str:
    """``text`` with what may be item data masked: quoted text other than a path or URI, and the
    number after "value" (``Could not convert '…' with type str``, ``Integer value … not in range``).

    A best effort for messages ddblake did not write; its own never quote values.
    """
    return _NUMBER_VALUE.sub(rf"\1 {MASK}", _QUOTED.sub(_mask, text))


def first_line(e: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message, values masked, at most ``limit`` characters."""
    first = without_values((str(e).splitlines() or [""])[0])
    return first if len(first) <= limit else first[:limit] + MASK
