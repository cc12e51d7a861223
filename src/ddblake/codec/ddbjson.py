"""DynamoDB JSON <-> Python values, losslessly.

DynamoDB JSON wraps every value in a one-key object naming its type: ``{"S": "x"}``, ``{"N": "12.50"}``,
``{"B": "<base64>"}``, ``{"BOOL": true}``, ``{"NULL": true}``, ``{"M": {...}}``, ``{"L": [...]}``,
``{"SS": [...]}``, ``{"NS": [...]}``, ``{"BS": [...]}``. The Python side:

======  ==============================  ==========================================================
tag     Python                          notes
======  ==============================  ==========================================================
S       ``str``                         empty strings are fine
N       ``decimal.Decimal``             never float; the text read is the text written back
B       ``bytes``                       DynamoDB JSON carries base64 text
BOOL    ``bool``
NULL    ``None``
M       ``dict[str, value]``
L       ``list[value]``
SS      ``set[str]``                    written back sorted (DynamoDB does not keep set order)
NS      ``set[Decimal]``                written back sorted by value
BS      ``set[bytes]``                  written back sorted
======  ==============================  ==========================================================

Why not boto3's ``TypeDeserializer``: it rounds through a 38-digit context and so raises on numbers
DynamoDB stores happily (``1E+100`` comes back as 101 digits of text), wants bytes rather than
base64 text, and loses the number's text. Errors here never quote a value, only where it is: a
top-level attribute by its name (schema), a key inside an ``M`` value by its position
(:func:`map_key_path`), since map keys are item data (maps keyed by user IDs or emails) and these
messages reach logs and one-line command errors.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

from ddblake.codec.errors import BadValueError
from ddblake.codec.numbers import number_text, parse_number
from ddblake.limits import range_problem

TAGS: Final[frozenset[str]] = frozenset({"S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"})

AttributeValue = dict[str, Any]
"""One value in DynamoDB JSON, e.g. ``{"N": "5"}``."""
Item = dict[str, AttributeValue]
"""An item in DynamoDB JSON: attribute name -> attribute value."""


def map_key_path(parent: str, position: int) -> str:
    """Where a member of an ``M`` value is, for error messages: ``profile.<key 2>`` for the second
    key of attribute ``profile``'s map (``<key 1>.<key 3>`` deeper down, ``items[0].<key 1>`` inside
    lists).

    Map keys are item data (maps keyed by user IDs, emails), so a message never names them; only
    top-level attribute names, which are the table's schema, appear as they are.

    Args:
        parent: the map's own path (``""`` for a value with no known place: shown as ``?``).
        position: 1-based position of the key in the map as written (in a batch of maps read
            column by column, ``ddblake.codec.parsed``: among the keys of all of them, in order of
            first appearance).
    """
    return f"{parent or '?'}.<key {position}>"


def decode_base64(text: Any, where: str) -> bytes:
    """Strict base64 (padding required, no whitespace): what DynamoDB JSON carries for binary.

    Raises:
        BadValueError: the text is not base64.
    """
    if type(text) is not str:
        raise BadValueError(f"attribute {where}: B value is not base64 text")
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError) as e:
        raise BadValueError(f"attribute {where}: B value is not valid base64") from e


def encode_base64(data: bytes | bytearray | memoryview) -> str:
    """Standard padded base64 text, as DynamoDB JSON writes binary."""
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def is_text(value: Any) -> bool:
    """Whether ``value`` is a ``str`` UTF-8 can carry: JSON escapes can spell a lone surrogate
    (``"\\ud800"``), which DynamoDB, UTF-8 and Arrow cannot hold."""
    if type(value) is not str:
        return False
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _binary(value: Any, where: str) -> bytes:
    # boto3's low-level client hands binary over already decoded; accept both shapes.
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    return decode_base64(value, where)


def _members(value: Any, tag: str, where: str) -> list[Any]:
    if type(value) is not list:
        raise BadValueError(f"attribute {where}: {tag} value is not a list")
    if not value:
        raise BadValueError(f"attribute {where}: {tag} is empty (DynamoDB sets hold at least one element)")
    return value


def _unique(members: set[Any], count: int, tag: str, where: str) -> set[Any]:
    if len(members) != count:
        raise BadValueError(f"attribute {where}: {tag} has duplicate elements")
    return members


def deserialize_value(av: Any, where: str = "") -> Any:
    """One DynamoDB JSON attribute value to its Python value (see the module table).

    Args:
        av: e.g. ``{"N": "12.50"}``.
        where: the attribute's path, used only in error messages.

    Raises:
        BadValueError: not exactly one known type tag, or a value of the wrong shape.
    """
    if type(av) is not dict or len(av) != 1:
        raise BadValueError(f"attribute {where or '?'}: not an attribute value (one type tag)")
    ((tag, value),) = av.items()
    if tag == "S":
        if not is_text(value):
            raise BadValueError(f"attribute {where}: S value is not a UTF-8 string")
        return value
    if tag == "N":
        return parse_number(value, where)
    if tag == "M":
        if type(value) is not dict:
            raise BadValueError(f"attribute {where}: M value is not an object")
        if not all(map(is_text, value)):
            raise BadValueError(f"attribute {where}: M value has a key that is not a UTF-8 string")
        return {k: deserialize_value(v, map_key_path(where, i)) for i, (k, v) in enumerate(value.items(), 1)}
    if tag == "L":
        if type(value) is not list:
            raise BadValueError(f"attribute {where}: L value is not a list")
        return [deserialize_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if tag == "BOOL":
        if type(value) is not bool:
            raise BadValueError(f"attribute {where}: BOOL value is not true or false")
        return value
    if tag == "NULL":
        if value is not True:
            raise BadValueError(f"attribute {where}: NULL value is not true")
        return None
    if tag == "B":
        return _binary(value, where)
    if tag == "SS":
        members = _members(value, tag, where)
        if not all(map(is_text, members)):
            raise BadValueError(f"attribute {where}: SS element is not a UTF-8 string")
        return _unique(set(members), len(members), tag, where)
    if tag == "NS":
        members = _members(value, tag, where)
        return _unique({parse_number(m, where) for m in members}, len(members), tag, where)
    if tag == "BS":
        members = _members(value, tag, where)
        return _unique({_binary(m, where) for m in members}, len(members), tag, where)
    raise BadValueError(f"attribute {where or '?'}: unknown type tag (expected one of {sorted(TAGS)})")


def deserialize_item(item: Any) -> dict[str, Any]:
    """A DynamoDB JSON item to a dict of Python values.

    Raises:
        BadValueError: the item is not an object of attribute values.
    """
    if type(item) is not dict:
        raise BadValueError(f"item is {type(item).__name__}, not an object of attributes")
    if not all(map(is_text, item)):
        raise BadValueError("item has an attribute name that is not a UTF-8 string")
    return {name: deserialize_value(av, name) for name, av in item.items()}


def validate_item(item: Any) -> None:
    """Check that an item is valid DynamoDB JSON, so one bad record can be set aside before a batch.

    Raises:
        BadValueError: what is wrong and where, without the value.
    """
    deserialize_item(item)


def _number(value: Decimal | int, where: str) -> str:
    problem = range_problem(Decimal(value) if isinstance(value, int) else value)
    if problem is not None:
        raise BadValueError(f"attribute {where}: number {problem}")
    return number_text(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, Decimal | int) and not isinstance(value, bool)


def _set(value: set[Any] | frozenset[Any], where: str) -> AttributeValue:
    if not value:
        raise BadValueError(f"attribute {where}: empty set (DynamoDB sets hold at least one element)")
    if all(isinstance(m, str) for m in value):
        return {"SS": sorted(value)}
    if all(isinstance(m, bytes | bytearray | memoryview) for m in value):
        return {"BS": [encode_base64(m) for m in sorted(bytes(m) for m in value)]}
    if all(_is_number(m) for m in value):
        return {"NS": [_number(m, where) for m in sorted(value)]}
    if any(isinstance(m, float) for m in value):
        raise BadValueError(
            f"attribute {where}: set holds a float; use decimal.Decimal (DynamoDB numbers are exact decimals)"
        )
    raise BadValueError(f"attribute {where}: set must hold only strings, only numbers or only bytes")


def serialize_value(value: Any, where: str = "") -> AttributeValue:
    """A Python value to DynamoDB JSON (the inverse of :func:`deserialize_value`).

    Tuples serialise as lists; ``bytearray`` and ``memoryview`` as binary; ``int`` as a number.

    Raises:
        BadValueError: a float (use Decimal), an empty set, a number DynamoDB cannot store, a map key
            that is not a string, or a type DynamoDB has no place for.
    """
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, Decimal | int):
        return {"N": _number(value, where or "?")}
    if isinstance(value, float):
        raise BadValueError(
            f"attribute {where or '?'}: float is not allowed; use decimal.Decimal "
            "(DynamoDB numbers are exact decimals, floats are binary approximations)"
        )
    if isinstance(value, bytes | bytearray | memoryview):
        return {"B": encode_base64(value)}
    if isinstance(value, Mapping):
        out: dict[str, AttributeValue] = {}
        for i, (k, v) in enumerate(value.items(), 1):
            if not isinstance(k, str):
                raise BadValueError(f"attribute {where or '?'}: map key is {type(k).__name__}, not a string")
            out[k] = serialize_value(v, map_key_path(where, i))
        return {"M": out}
    if isinstance(value, list | tuple):
        return {"L": [serialize_value(v, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, set | frozenset):
        return _set(value, where or "?")
    raise BadValueError(f"attribute {where or '?'}: {type(value).__name__} has no DynamoDB type")


def serialize_item(item: Mapping[str, Any]) -> Item:
    """A dict of Python values to a DynamoDB JSON item.

    Raises:
        BadValueError: as :func:`serialize_value`; also for a name that is not a non-empty string.
    """
    out: Item = {}
    for name, value in item.items():
        if not isinstance(name, str) or not name:
            raise BadValueError("attribute names must be non-empty strings")
        out[name] = serialize_value(value, name)
    return out


def dumps(value: Any) -> str:
    """Compact JSON text of DynamoDB JSON, map keys sorted so equal values give equal text."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
