"""How ``ddblake query`` prints a result: an aligned table for people, JSON Lines for programs
(ARCHITECTURE.md: numbers exact, binary as base64, maps as objects, lists and sets as arrays; JSON
and number text the views mark as DuckDB ``JSON`` embedded as the JSON they hold), CSV for
spreadsheets. Pure functions of the rows: :mod:`ddblake.lake.query` runs the statement.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import math
import re
import uuid
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Any, Final, Literal

from ddblake.errors import ConfigError
from ddblake.lake.viewsql import unique_names

Format = Literal["table", "json", "csv"]

TABLE_CELL_WIDTH: Final = 60
"""Widest column of ``--format table``; a longer cell is cut and ends in :data:`CUT_MARK`."""
CUT_MARK: Final = "…"


class JsonText(str):
    """A value of DuckDB's ``JSON`` type in a result: JSON text (DuckDB checked it reads as JSON).
    ``--format json`` embeds it as JSON (:func:`_embedded`); table and CSV show the text."""

    __slots__ = ()


def _refuse(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_STRICT: Final = json.JSONDecoder(parse_int=str, parse_float=str, parse_constant=_refuse)
"""RFC 8259's JSON: no NaN or Infinity, no control characters in strings; numbers never parsed."""


_LOOSE_NUMBER: Final = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
"""Number text DynamoDB's parser takes that JSON does not (``007.50``, ``.5``, ``5.``, ``+1``)."""


def _embedded(text: str) -> str:
    """A JSON value's text for a JSON Lines row: itself when it is JSON as RFC 8259 has it, with any
    line break (only ever whitespace between tokens then) as a space; a number JSON does not spell
    so (``007.50``) as the same number written as JSON (``7.50``); else a JSON string of it
    (DuckDB's JSON also reads ``NaN``, ``Infinity`` and trailing commas: ``'[1,]'::JSON``)."""
    try:
        _STRICT.decode(text)
    except (ValueError, RecursionError):
        if _LOOSE_NUMBER.fullmatch(text):
            with contextlib.suppress(ArithmeticError):  # an exponent past Decimal's: as text
                return format(Decimal(text), "f" if "e" not in text.lower() else "")
        return json.dumps(text, ensure_ascii=False)
    if "\n" in text or "\r" in text:
        return text.replace("\n", " ").replace("\r", " ")
    return text


def _json_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_value(v) for v in value]
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):  # an INTERVAL (now() - _ddb_event_time): in seconds
        seconds = Decimal(value.days * 86_400 + value.seconds) + Decimal(value.microseconds).scaleb(-6)
        return seconds.normalize() if seconds else Decimal(0)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN or Infinity: as text, like a non-finite decimal
    return value


def _encode(value: Any, *, embed: bool = True) -> Iterable[str]:
    """JSON text of a :func:`_json_value`; ``embed``: a :class:`JsonText` as the JSON it holds (else
    as a string, as the table and CSV formats show nested values)."""
    if isinstance(value, Decimal):
        yield format(value, "f") if value.is_finite() else json.dumps(str(value))
    elif isinstance(value, dict):
        yield "{"
        for i, (k, v) in enumerate(value.items()):
            if i:
                yield ","
            yield json.dumps(str(k), ensure_ascii=False)
            yield ":"
            yield from _encode(v, embed=embed)
        yield "}"
    elif isinstance(value, list):
        yield "["
        for i, v in enumerate(value):
            if i:
                yield ","
            yield from _encode(v, embed=embed)
        yield "]"
    elif embed and isinstance(value, JsonText):
        yield _embedded(value)
    else:
        yield json.dumps(value, ensure_ascii=False)


_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NAMED_CONTROL: Final = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def shown(text: str) -> str:
    """``text`` with every control character (C0, DEL, C1) written as an escape, ``\\n``, ``\\t``,
    ``\\r``, else ``\\x`` and two hex digits (``\\x1b``, ``\\x7f``, ``\\x9b``): text for a terminal,
    where a line break in a value would read as another row, a tab or carriage return would break
    the columns, and an escape sequence would act on the terminal. Only the table format (and
    ``query``'s error line) shows text so: JSON escapes them its own way, CSV keeps values as they are."""
    return _CONTROL.sub(lambda m: _NAMED_CONTROL.get(m.group(0)) or f"\\x{ord(m.group(0)):02x}", text)


def format_rows(columns: Sequence[str], rows: Sequence[tuple[Any, ...]], fmt: Format) -> str:
    """Render a result for people (table), programs (JSON Lines) or spreadsheets (CSV)."""
    if fmt == "json":
        keys = unique_names(columns)  # a join's two pk columns are two members, not one
        return "".join("".join(_encode(_json_value(dict(zip(keys, r, strict=True))))) + "\n" for r in rows)
    if fmt == "csv":
        return _csv(rows, header=columns)
    if fmt != "table":
        raise ConfigError(f"--format {fmt!r} must be table, json or csv")
    heads = [shown(c) for c in columns]
    cells = [[shown(_cell(v)) for v in r] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(heads)]
    widths = [min(w, TABLE_CELL_WIDTH) for w in widths]
    cut = False

    def fit(text: str, width: int) -> str:
        """The cell padded to its column, or cut with a visible mark: 1E-130 must not read as 0."""
        nonlocal cut
        if len(text) <= width:
            return text.ljust(width)
        cut = True
        return text[: width - 1] + CUT_MARK

    line = "-+-".join("-" * w for w in widths)
    out_lines = [" | ".join(fit(c, w) for c, w in zip(heads, widths, strict=True)), line]
    out_lines += [" | ".join(fit(c, w) for c, w in zip(row, widths, strict=True)) for row in cells]
    count = f"{len(rows)} row{'s' if len(rows) != 1 else ''}"
    if cut:
        count += f"; cells ending in {CUT_MARK} are cut at {TABLE_CELL_WIDTH} characters"
        count += ": --format json shows them whole"
    out_lines.append(f"({count})")
    return "\n".join(out_lines) + "\n"


_CSV_SPECIAL: Final = re.compile(r'[",\r\n]')


def _csv_field(value: Any) -> str:
    """RFC 4180, with NULL as an empty field and an empty string as ``""`` (as DuckDB's COPY
    writes them), so that the two stay apart."""
    if value is None:
        return ""
    text = _cell(value)
    if text == "" or _CSV_SPECIAL.search(text):
        return '"' + text.replace('"', '""') + '"'
    return text


def _csv(rows: Iterable[Sequence[Any]], *, header: Sequence[str] | None = None) -> str:
    lines = [] if header is None else [",".join(_csv_field(c) for c in header)]
    lines += [",".join(_csv_field(v) for v in r) for r in rows]
    return "".join(line + "\n" for line in lines)


def format_chunks(
    columns: Sequence[str], chunks: Iterable[Sequence[tuple[Any, ...]]], fmt: Format
) -> Iterator[str]:
    """:func:`format_rows` for a result given in chunks: JSON Lines and CSV text as each chunk comes
    (the CSV header once); a table needs every row for its widths, so it comes at the end."""
    if fmt == "table":
        yield format_rows(columns, [row for chunk in chunks for row in chunk], fmt)
        return
    if fmt == "csv":
        yield _csv([], header=columns)  # the header, even for no rows
        for chunk in chunks:
            yield _csv(chunk)
        return
    for chunk in chunks:
        yield format_rows(columns, chunk, fmt)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):  # as SQL and JSON spell them, not Python's True/False
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bytes | bytearray | memoryview):  # base64, as JSON has it, without quotes
        return str(_json_value(value))
    if isinstance(value, dict | list | tuple):
        return "".join(_encode(_json_value(value), embed=False))
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value)
