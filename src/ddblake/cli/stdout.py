"""Standard output for the commands that print lake data (``query``, ``dump``, ``status``), and
what to do when it cannot be written."""

from __future__ import annotations

import contextlib
import io
import os
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


def discard_stdout() -> None:
    """Point standard output at the null device: what it still holds cannot be written (a closed
    pipe, a full disk), and Python's own flush at exit would fail again ("Exception ignored", 120)."""
    with contextlib.suppress(OSError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def stdout_lost() -> bool:
    """Whether standard output cannot take what it holds (:func:`discard_stdout` then done)."""
    try:
        sys.stdout.flush()
    except (OSError, ValueError):  # ValueError: closed
        discard_stdout()
        return True
    return False
