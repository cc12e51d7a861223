"""Standard output for the commands that print lake data (``query``, ``dump``)."""

from __future__ import annotations

import io
import sys
from typing import TextIO


def stdout_for(*, data: bool) -> TextIO:
    """Standard output, able to hold any value.

    DynamoDB JSON, JSON Lines and CSV (``data``) are written in UTF-8 whatever the locale: a Latin-1
    or cp1252 console raised UnicodeEncodeError at the first item holding other text, and JSON
    exchanged between programs is UTF-8 (RFC 8259). A table, for a person to read, keeps the
    console's encoding and shows what it cannot hold as escapes (``\\u65e5``).
    """
    out = sys.stdout
    if (getattr(out, "encoding", None) or "").lower().replace("-", "").replace("_", "") == "utf8":
        return out
    if isinstance(out, io.TextIOWrapper):
        if data:
            out.reconfigure(encoding="utf-8")
        else:
            out.reconfigure(errors="backslashreplace")
    return out
