"""Amazon Ion text, as DynamoDB's ION exports write it, read into DynamoDB JSON.

An ION export line is one Ion struct such as::

    $ion_1_0 {Item:{id:"1",price:12.50,n:2d3,raw:{{AAEC}},tags:$dynamodb_SS::["a","b"],m:{ok:true}}}

DynamoDB maps S to string, N to decimal (``12.50``, ``2d3``, ``103.``), B to blob (``{{base64}}``),
BOOL to bool, NULL to null, M to struct, L to list, and SS/NS/BS to lists annotated
``$dynamodb_SS`` / ``$dynamodb_NS`` / ``$dynamodb_BS``. This reader covers that subset of Ion
text (plus comments, quoted symbols, long strings and every string escape) with no dependency;
numbers come back in the text DynamoDB itself returns (``12.5``, ``2000``), so a row loaded from an
ION export equals the row a Scan gives. Anything outside the subset is a ``ValueError`` naming the
offset, never the value.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from ddblake.codec.numbers import canonical_number

_WS: Final = re.compile(rb"(?:\s+|//[^\n]*|/\*.*?\*/)*", re.S)
_SYMBOL: Final = re.compile(rb"[A-Za-z_$][A-Za-z0-9_$]*")
_NUMBER: Final = re.compile(
    rb"[+-]?(?:\d[\d_]*)(?:\.[\d_]*)?(?:[dDeE][+-]?\d+)?|[+-]?\.\d+(?:[dDeE][+-]?\d+)?"
)
_ESCAPES: Final = {
    "n": "\n", "t": "\t", "r": "\r", "0": "\0", "a": "\a", "b": "\b", "f": "\f", "v": "\v",
    '"': '"', "'": "'", "\\": "\\", "/": "/", "?": "?",
}  # fmt: skip
_HEX: Final = {"x": 2, "u": 4, "U": 8}


_SURROGATE_PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")


def _paired(text: str) -> str:
    """``text`` with each escaped UTF-16 surrogate pair (``\\uD83D\\uDE00``) as its one character.

    Ion text, like JSON, may escape a character outside the BMP as two ``\\u`` halves; read one by
    one they are two lone surrogates, which no DynamoDB string holds (and which cannot be encoded).
    """
    if not _SURROGATE_PAIR.search(text):
        return text
    return _SURROGATE_PAIR.sub(lambda m: m.group().encode("utf-16", "surrogatepass").decode("utf-16"), text)


@dataclass(frozen=True)
class _Number:
    text: str


@dataclass(frozen=True)
class _Blob:
    data: bytes


@dataclass(frozen=True)
class _Annotated:
    annotations: tuple[str, ...]
    value: Any


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def fail(self, what: str) -> ValueError:
        return ValueError(f"Ion text: {what} at offset {self.pos}")

    def skip(self) -> None:
        match = _WS.match(self.data, self.pos)
        self.pos = match.end() if match else self.pos

    def peek(self, text: bytes) -> bool:
        return self.data.startswith(text, self.pos)

    def expect(self, text: bytes) -> None:
        self.skip()
        if not self.peek(text):
            raise self.fail(f"expected {text.decode()!r}")
        self.pos += len(text)

    def string(self, quote: str) -> str:
        return _paired(self._string(quote))

    def _string(self, quote: str) -> str:
        """A string (or quoted symbol) whose opening quote is at pos."""
        self.pos += len(quote)
        out: list[str] = []
        start = self.pos
        while True:
            end = self.data.find(quote.encode(), self.pos)
            slash = self.data.find(b"\\", self.pos)
            if end < 0:
                raise self.fail("unterminated string")
            if 0 <= slash < end:
                out.append(self.data[start:slash].decode("utf-8"))
                self.pos = slash + 1
                out.append(self.escape())
                start = self.pos
                continue
            out.append(self.data[start:end].decode("utf-8"))
            self.pos = end + len(quote)
            return "".join(out)

    def escape(self) -> str:
        char = chr(self.data[self.pos]) if self.pos < len(self.data) else ""
        self.pos += 1
        if char in _ESCAPES:
            return _ESCAPES[char]
        if char == "\n":
            return ""
        if char in _HEX:
            digits = self.data[self.pos : self.pos + _HEX[char]]
            self.pos += _HEX[char]
            try:
                return chr(int(digits, 16))
            except ValueError as e:
                raise self.fail("bad escape") from e
        raise self.fail("unknown escape")

    def field_name(self) -> str:
        self.skip()
        if self.peek(b"'''"):
            return self.long_string()
        if self.peek(b"'"):
            return self.string("'")
        if self.peek(b'"'):
            return self.string('"')
        match = _SYMBOL.match(self.data, self.pos)
        if not match:
            raise self.fail("expected a field name")
        self.pos = match.end()
        return match.group().decode()

    def long_string(self) -> str:
        parts: list[str] = []
        while True:
            self.skip()
            if not self.peek(b"'''"):
                return _paired("".join(parts))
            parts.append(self.string("'''"))

    def value(self) -> Any:
        self.skip()
        annotations: list[str] = []
        while True:
            save = self.pos
            name: str | None = None
            if self.peek(b"'") and not self.peek(b"'''"):
                name = self.string("'")
            else:
                match = _SYMBOL.match(self.data, self.pos)
                if match:
                    self.pos = match.end()
                    name = match.group().decode()
            self.skip()
            if name is not None and self.peek(b"::"):
                self.pos += 2
                annotations.append(name)
                self.skip()
                continue
            self.pos = save
            break
        value = self.plain()
        return _Annotated(tuple(annotations), value) if annotations else value

    def plain(self) -> Any:
        self.skip()
        if self.peek(b"{{"):
            end = self.data.find(b"}}", self.pos)
            if end < 0:
                raise self.fail("unterminated blob")
            text = re.sub(rb"\s+", b"", self.data[self.pos + 2 : end])
            self.pos = end + 2
            if text.startswith(b'"'):
                raise self.fail("clob values are not DynamoDB data")
            try:
                return _Blob(binascii.a2b_base64(text, strict_mode=True))
            except binascii.Error as e:
                raise self.fail("bad blob") from e
        if self.peek(b"{"):
            self.pos += 1
            struct: dict[str, Any] = {}
            self.skip()
            while not self.peek(b"}"):
                name = self.field_name()
                self.expect(b":")
                struct[name] = self.value()
                self.skip()
                if self.peek(b","):
                    self.pos += 1
                    self.skip()
                elif not self.peek(b"}"):
                    raise self.fail("expected ',' or '}'")
            self.pos += 1
            return struct
        if self.peek(b"["):
            self.pos += 1
            items: list[Any] = []
            self.skip()
            while not self.peek(b"]"):
                items.append(self.value())
                self.skip()
                if self.peek(b","):
                    self.pos += 1
                    self.skip()
                elif not self.peek(b"]"):
                    raise self.fail("expected ',' or ']'")
            self.pos += 1
            return items
        if self.peek(b"'''"):
            return self.long_string()
        if self.peek(b'"'):
            return self.string('"')
        for word, result in ((b"true", True), (b"false", False)):
            if self.peek(word) and not _SYMBOL.match(self.data, self.pos + len(word)):
                self.pos += len(word)
                return result
        if self.peek(b"null"):
            match = _SYMBOL.match(self.data, self.pos + 5) if self.peek(b"null.") else None
            self.pos = match.end() if match else self.pos + 4
            return None
        match = _NUMBER.match(self.data, self.pos)
        if match:
            self.pos = match.end()
            return _Number(match.group().decode().replace("_", ""))
        raise self.fail("unsupported value")


def _number_text(text: str) -> str:
    try:
        value = Decimal(text.replace("d", "E").replace("D", "E"))
    except InvalidOperation as e:
        raise ValueError("Ion text: bad number") from e
    if not value.is_finite():
        raise ValueError("Ion text: number is not finite")
    return canonical_number(value)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def to_attribute_value(value: Any) -> dict[str, Any]:
    """One Ion value as a DynamoDB JSON attribute value."""
    if isinstance(value, _Annotated):
        tag = {"$dynamodb_SS": "SS", "$dynamodb_NS": "NS", "$dynamodb_BS": "BS"}.get(value.annotations[0])
        if tag is None or not isinstance(value.value, list):
            raise ValueError("Ion text: unknown annotation")
        members = value.value
        if tag == "SS" and all(isinstance(m, str) for m in members):
            return {"SS": members}
        if tag == "NS" and all(isinstance(m, _Number) for m in members):
            return {"NS": [_number_text(m.text) for m in members]}
        if tag == "BS" and all(isinstance(m, _Blob) for m in members):
            return {"BS": [_b64(m.data) for m in members]}
        raise ValueError(f"Ion text: {tag} members of the wrong type")
    if isinstance(value, bool):
        return {"BOOL": value}
    if value is None:
        return {"NULL": True}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, _Number):
        return {"N": _number_text(value.text)}
    if isinstance(value, _Blob):
        return {"B": _b64(value.data)}
    if isinstance(value, list):
        return {"L": [to_attribute_value(v) for v in value]}
    if isinstance(value, dict):
        return {"M": {k: to_attribute_value(v) for k, v in value.items()}}
    raise ValueError("Ion text: unsupported value")


def parse_ion(data: bytes) -> Any:
    """The one top-level value of an Ion text line (after an optional ``$ion_1_0`` marker)."""
    reader = _Reader(data)
    reader.skip()
    if reader.peek(b"$ion_1_0"):
        reader.pos += len(b"$ion_1_0")
    value = reader.value()
    reader.skip()
    if reader.pos != len(data):
        raise reader.fail("trailing data")
    return value


def ion_line_to_json(line: bytes) -> dict[str, Any]:
    """One ION export line as the object the DYNAMODB_JSON export would hold for it.

    ``Item``, ``Keys``, ``NewImage``, ``OldImage`` and ``Metadata`` become maps of DynamoDB JSON
    attribute values.

    Raises:
        ValueError: not an Ion struct of a DynamoDB export.
    """
    value = parse_ion(line)
    if not isinstance(value, dict):
        raise ValueError("Ion text: the line is not a struct")
    out: dict[str, Any] = {}
    for name, inner in value.items():
        if not isinstance(inner, dict):
            raise ValueError(f"Ion text: field {name!r} is not a struct")
        out[name] = {k: to_attribute_value(v) for k, v in inner.items()}
    return out
