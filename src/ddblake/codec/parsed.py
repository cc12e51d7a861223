"""DynamoDB JSON as Arrow arrays, before any typing: one struct of type tags per value.

Both inputs meet here in one shape, so one converter (``codec.arrow``) serves both. An attribute
value becomes a struct row with one child per type tag seen in the column, exactly one of them set:
``{"N": "5"}`` is ``{S: null, N: "5", ...}``. ``N`` and ``B`` stay text, ``M`` is a struct of such
slots, ``L`` a list of them, sets lists of text. That is precisely what ``pyarrow.json`` makes of
DynamoDB JSON Lines in C++ on all cores, which is why the bytes path is fast; Python dicts are
turned into the same shape column by column.

A map slot with more distinct keys than :data:`~ddblake.codec.schema.MAX_MAP_FIELDS` (a map keyed by
user IDs) is typed as DynamoDB JSON text, so it is never spread into a struct child per key here:
that costs a full-length array per key, memory and time that grow with keys times rows.
:func:`parse_maps` gives such a slot one *wide map* child instead (:data:`WIDE_MAP`): each map's
DynamoDB JSON text, and all its values in one slot array, which the converter checks as it checks
any value. ``pyarrow.json`` cannot do that, so :func:`read_jsonl` refuses input whose maps are
wide (:class:`WideMapsError`) and the Python way reads it.

One trap: ``pyarrow.json`` turns strings that look like dates into timestamps, which would lose
their text. :func:`read_jsonl` therefore reads a sample first and re-reads with every timestamp
typed as a string (and again in the rare case a later attribute brings new ones).
"""

from __future__ import annotations

import io
import json
import re
from typing import Any, Final

import pyarrow as pa
import pyarrow.json as pajson

from ddblake.codec import schema
from ddblake.codec.ddbjson import TAGS, dumps, encode_base64, is_text, map_key_path
from ddblake.codec.errors import BadValueError

_SAMPLE_BYTES: Final = 1 << 20
_PROBE_BYTES: Final = 1 << 16
_PROBE_EVERY: Final = 1 << 20
_STRING_TAGS: Final = frozenset({"S", "N", "B"})
_BOOL_TAGS: Final = frozenset({"BOOL", "NULL"})
_SET_TAGS: Final = frozenset({"SS", "NS", "BS"})
WIDE_MAP: Final = b"ddblake:wide-map"
"""Field metadata key marking the ``text`` field of an ``M`` child that holds wide maps
(``struct<text, values>``, :func:`is_wide`): metadata, since ``pyarrow.json`` never writes it, so no
input can pass for one."""


class WideMapsError(pa.ArrowInvalid):  # type: ignore[misc]
    """JSON Lines whose maps are too wide for ``pyarrow.json`` to spread into struct fields."""


def _mask(values: list[Any]) -> pa.Array | None:
    if all(v is not None for v in values):
        return None
    return pa.array([v is None for v in values], pa.bool_())


def _binary_text(value: Any) -> Any:
    # boto3's low-level client hands binary over already decoded; the log and this shape hold base64.
    return encode_base64(value) if isinstance(value, bytes | bytearray) else value


def _strings(column: list[Any], tag: str, where: str) -> pa.Array:
    if tag == "B":
        column = [_binary_text(v) for v in column]
    if not all(type(v) is str for v in column if v is not None):
        raise BadValueError(f"attribute {where}: {tag} value is not a string")
    return _utf8_array(column, pa.string(), f"attribute {where}: {tag} value is not a UTF-8 string")


def _utf8_array(column: list[Any], type_: pa.DataType, problem: str) -> pa.Array:
    """``pa.array``, a string holding a lone surrogate (which JSON escapes can spell, and Arrow,
    UTF-8 and DynamoDB cannot hold) refused as a bad value named by ``problem``."""
    try:
        return pa.array(column, type_)
    except UnicodeEncodeError:
        raise BadValueError(problem) from None  # the error's text holds the character


def _string_lists(column: list[Any], tag: str, where: str) -> pa.Array:
    if tag == "BS":
        column = [v if type(v) is not list else [_binary_text(m) for m in v] for v in column]
    for value in column:
        if value is None:
            continue
        if type(value) is not list:
            raise BadValueError(f"attribute {where}: {tag} value is not a list")
        if not all(type(m) is str for m in value):
            raise BadValueError(f"attribute {where}: {tag} element is not a string")
    problem = f"attribute {where}: {tag} element is not a UTF-8 string"
    return _utf8_array(column, pa.list_(pa.string()), problem)


def _lists(column: list[Any], where: str) -> pa.Array:
    offsets = [0]
    elements: list[Any] = []
    for value in column:
        if value is not None:
            if type(value) is not list:
                raise BadValueError(f"attribute {where}: L value is not a list")
            elements.extend(value)
        offsets.append(len(elements))
    if any(e is None for e in elements):
        raise BadValueError(f"attribute {where}: L element is not an attribute value")
    values = parse_values(elements, f"{where}[]")
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values, mask=_mask(column))


def parse_values(values: list[Any], where: str) -> pa.Array:
    """Attribute values (None where missing) to a struct-of-type-tags array.

    Raises:
        BadValueError: a value is not DynamoDB JSON.
    """
    count = len(values)
    by_tag: dict[str, list[Any]] = {}
    for i, av in enumerate(values):
        if av is None:
            continue
        if type(av) is not dict or len(av) != 1:
            raise BadValueError(f"attribute {where}: not an attribute value (one type tag)")
        for tag, value in av.items():
            column = by_tag.get(tag)
            if column is None:
                if tag not in TAGS:
                    raise BadValueError(
                        f"attribute {where}: unknown type tag (expected one of {sorted(TAGS)})"
                    )
                column = by_tag[tag] = [None] * count
            column[i] = value
    if not by_tag:
        return pa.nulls(count, pa.struct([]))
    arrays = []
    for tag, column in by_tag.items():
        if tag in _STRING_TAGS:
            arrays.append(_strings(column, tag, where))
        elif tag in _BOOL_TAGS:
            if not all(type(v) is bool for v in column if v is not None):
                raise BadValueError(f"attribute {where}: {tag} value is not true or false")
            arrays.append(pa.array(column, pa.bool_()))
        elif tag in _SET_TAGS:
            arrays.append(_string_lists(column, tag, where))
        elif tag == "M":
            arrays.append(parse_maps(column, where))
        else:
            arrays.append(_lists(column, where))
    return pa.StructArray.from_arrays(arrays, names=list(by_tag), mask=_mask(values))


def is_wide(type_: pa.DataType) -> bool:
    """Whether an ``M`` child's type is :func:`wide_maps`' form, which only that function makes: its
    ``text`` field carries :data:`WIDE_MAP` metadata, which no JSON reader writes."""
    return (
        pa.types.is_struct(type_)
        and type_.num_fields == 2
        and type_.field(0).name == "text"
        and WIDE_MAP in (type_.field(0).metadata or {})
    )


def _columns(maps: list[Any], where: str) -> dict[str, list[Any]]:
    count = len(maps)
    fields: dict[str, list[Any]] = {}
    for i, m in enumerate(maps):
        if m is None:
            continue
        if type(m) is not dict:
            what = "M value" if where else "item"
            raise BadValueError(f"{what} {where or i} is {type(m).__name__}, not an object")
        for name, av in m.items():
            column = fields.get(name)
            if column is None:
                column = fields[name] = [None] * count
            column[i] = av
    if not all(map(is_text, fields)):
        raise BadValueError(f"attribute names in {where or 'an item'} must be UTF-8 strings")
    return fields


def parse_maps(maps: list[Any], where: str) -> pa.Array:
    """M values (dicts of attribute values, None where missing) to a struct of slots; maps with more
    distinct keys holding a typed value than :data:`~ddblake.codec.schema.MAX_MAP_FIELDS` to
    :func:`wide_maps`."""
    keys: set[str] = set()
    for m in maps:
        if type(m) is dict:
            keys.update(m)
    if len(keys) > schema.MAX_MAP_FIELDS and len(_typed_keys(maps)) > schema.MAX_MAP_FIELDS:
        return wide_maps(maps, where)
    fields = _columns(maps, where)
    if not fields:
        return pa.array([None if m is None else {} for m in maps], pa.struct([]))
    # A field's place as its position among the maps' keys, never its name: map keys are item data.
    arrays = [parse_values(column, map_key_path(where, i)) for i, column in enumerate(fields.values(), 1)]
    return pa.StructArray.from_arrays(arrays, names=list(fields), mask=_mask(maps))


def _untyped(av: Any) -> bool:
    """Whether a value holds nothing a column can type (NULL, ``{}``, ``[]``, lists and maps of only
    such values): the values :func:`ddblake.codec.schema.prune` leaves out. Malformed values count
    as typed, so that they are checked."""
    if av is None:
        return True
    if type(av) is not dict or len(av) != 1:
        return False
    ((tag, value),) = av.items()
    if tag == "NULL":
        return True
    if tag == "M":
        return type(value) is dict and all(_untyped(v) for v in value.values())
    if tag == "L":
        return type(value) is list and all(_untyped(v) for v in value)
    return False


def _typed_keys(maps: list[Any]) -> set[str]:
    """The keys that hold a typed value in at least one of the maps (what the limit counts)."""
    typed: set[str] = set()
    for m in maps:
        if type(m) is dict:
            typed.update(k for k, v in m.items() if k not in typed and not _untyped(v))
    return typed


def _plain(av: Any) -> Any:
    """An attribute value as the log holds it: binary as base64 text (boto3 hands over bytes)."""
    ((tag, value),) = av.items()
    if tag == "B":
        return {tag: _binary_text(value)}
    if tag == "BS":
        return {tag: [_binary_text(m) for m in value]}
    if tag == "M":
        return {tag: {k: _plain(v) for k, v in value.items() if v is not None}}
    if tag == "L":
        return {tag: [_plain(v) for v in value]}
    return av


def wide_maps(maps: list[Any], where: str) -> pa.Array:
    """Wide M values as ``struct<text, values>``: each map's DynamoDB JSON text (``{"M": {...}}``,
    keys sorted, what a conflict's text would be) and its values, all maps' in one list of slots
    for the converter to check (named ``<a key>``: map keys are item data). A None value is a
    missing key, as in a struct."""
    offsets = [0]
    values: list[Any] = []
    for i, m in enumerate(maps):
        if m is not None and type(m) is not dict:
            raise BadValueError(f"M value {where or i} is {type(m).__name__}, not an object")
        if m is not None:
            if not all(isinstance(name, str) for name in m):
                raise BadValueError(f"attribute names in {where or 'an item'} must be strings")
            values.extend(v for v in m.values() if v is not None)
        offsets.append(len(values))
    slots = parse_values(values, f"{where or '?'}.<a key>")  # checked before any text is written
    texts = [
        None if m is None else dumps({"M": {k: _plain(v) for k, v in m.items() if v is not None}})
        for m in maps
    ]
    lists = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), slots)
    fields = [pa.field("text", pa.string(), metadata={WIDE_MAP: b"1"}), pa.field("values", lists.type)]
    text = _utf8_array(texts, pa.string(), f"attribute names in {where or 'an item'} must be UTF-8 strings")
    return pa.StructArray.from_arrays([text, lists], fields=fields, mask=_mask(maps))


def parse_items(items: list[Any]) -> dict[str, pa.Array]:
    """Items in DynamoDB JSON (None for a row without an item) to one slot array per attribute.

    Raises:
        BadValueError: an item is not DynamoDB JSON.
    """
    return {name: parse_values(column, name) for name, column in _columns(items, "").items()}


# --- JSON Lines ----------------------------------------------------------------------------------


def _explicit(type_: pa.DataType) -> pa.DataType | None:
    """A type to give the JSON reader: timestamps as strings; None to leave a part to inference."""
    if pa.types.is_timestamp(type_) or pa.types.is_date(type_) or pa.types.is_time(type_):
        return pa.string()
    if pa.types.is_null(type_):
        return None
    if pa.types.is_list(type_):
        value = _explicit(type_.value_type)
        return None if value is None else pa.list_(value)
    if pa.types.is_struct(type_):
        fields = []
        for i in range(type_.num_fields):
            child = type_.field(i)
            child_type = _explicit(child.type)
            if child_type is not None:
                fields.append(pa.field(child.name, child_type))
        return pa.struct(fields)
    return type_


def _has_time(type_: pa.DataType) -> bool:
    if pa.types.is_timestamp(type_) or pa.types.is_date(type_) or pa.types.is_time(type_):
        return True
    if pa.types.is_list(type_):
        return _has_time(type_.value_type)
    if pa.types.is_struct(type_):
        return any(_has_time(type_.field(i).type) for i in range(type_.num_fields))
    return False


def _read(data: bytes, schema: pa.Schema | None, *, threads: bool = True) -> pa.Table:
    parse = None
    if schema is not None:
        fields = [pa.field(f.name, t) for f in schema if (t := _explicit(f.type)) is not None]
        parse = pajson.ParseOptions(explicit_schema=pa.schema(fields), unexpected_field_behavior="infer")
    read = pajson.ReadOptions(use_threads=threads)
    return pajson.read_json(io.BytesIO(data), read_options=read, parse_options=parse)


def _typed_slot(type_: pa.DataType) -> bool:
    """Whether a slot's struct-of-tags type holds a typed value (see :func:`_untyped`)."""
    if not pa.types.is_struct(type_):
        return False
    for i in range(type_.num_fields):
        tag = type_.field(i)
        if tag.name == "NULL" or pa.types.is_null(tag.type):
            continue
        if tag.name == "M" and pa.types.is_struct(tag.type):
            if any(_typed_slot(tag.type.field(j).type) for j in range(tag.type.num_fields)):
                return True
        elif tag.name == "L" and pa.types.is_list(tag.type):
            if _typed_slot(tag.type.value_type):
                return True
        else:
            return True
    return False


def _widest(type_: pa.DataType) -> int:
    """The most typed fields of a map nested in a slot's type (``type_``'s own fields not counted)."""
    if pa.types.is_list(type_) or pa.types.is_large_list(type_):
        return _widest(type_.value_type)
    if not pa.types.is_struct(type_):
        return 0
    widest = 0
    for i in range(type_.num_fields):
        child = type_.field(i)
        if child.name == "M" and pa.types.is_struct(child.type):
            fields = [child.type.field(j).type for j in range(child.type.num_fields)]
            widest = max(widest, sum(map(_typed_slot, fields)), *map(_widest, fields))
        else:
            widest = max(widest, _widest(child.type))
    return widest


def _check_width(table: pa.Table, levels: int) -> None:
    """Refuse a read whose maps are wide (:class:`WideMapsError`). ``levels``: 1 when the columns
    are attributes, 2 when each column holds items (whose fields are attributes)."""
    attributes = list(table.schema)
    if levels == 2:
        attributes = [
            f.type.field(i)
            for f in attributes
            if pa.types.is_struct(f.type)
            for i in range(f.type.num_fields)
        ]
    widest = max((_widest(f.type) for f in attributes), default=0)
    if widest > schema.MAX_MAP_FIELDS:
        raise WideMapsError(
            f"a map with {widest} typed keys, over {schema.MAX_MAP_FIELDS}: read the Python way"
        )


def _head(data: bytes, size: int, start: int = 0) -> bytes:
    """The whole lines of ``data`` from ``start`` in about ``size`` bytes: those ending in the first
    ``size`` bytes, else the first line alone (an item can be 400 KB)."""
    if len(data) - start <= size:
        return data[start:]
    cut = data.rfind(b"\n", start, start + size)
    if cut < 0:
        cut = data.find(b"\n", start)
        if cut < 0:
            return data[start:]
    return data[start : cut + 1]


def _probes(data: bytes, levels: int, after: int) -> None:
    """Probe windows across ``data`` past ``after`` (every :data:`_PROBE_EVERY` bytes, and its last
    lines), each read on its own and checked for wide maps, so that a map keyed by IDs that first
    shows after the sample is found before the whole input is read into a column per key."""
    for start in [
        *range(after, len(data) - _PROBE_BYTES, _PROBE_EVERY),
        max(after, len(data) - _PROBE_BYTES),
    ]:
        line = data.rfind(b"\n", 0, start) + 1  # the start of the line holding ``start``
        window = _head(data, _PROBE_BYTES, line)
        if window.strip():
            _check_width(_read(window, None, threads=False), levels)  # small: no pool


_LATER_LINE_NOT_AN_OBJECT = re.compile(rb"\n[ \t\r]*+[^{ \t\r\n]")
"""A line after the first that does not open an object (one scan in C, about 4 % of the read)."""


def read_jsonl(data: bytes, *, refuse_wide: int = 0) -> pa.Table:
    """JSON Lines to an Arrow table whose strings are exactly the JSON strings (no timestamps).

    Each line's keys become struct fields; for DynamoDB JSON items that is the struct-of-type-tags
    shape this package converts. The lake can read raw change-log lines with it too and take the
    image columns.

    Args:
        data: the JSON Lines.
        refuse_wide: 1 for lines that are items, 2 for lines holding an item: raise
            :class:`WideMapsError` as soon as a map is seen with more keys than
            :data:`~ddblake.codec.schema.MAX_MAP_FIELDS` (in the sample read first, else in the
            whole), so that the caller reads such input the Python way. 0 reads whatever it holds.

    Raises:
        pyarrow.ArrowInvalid: the text is not JSON Lines of objects, or is not UTF-8.
        WideMapsError: wide maps, with ``refuse_wide``.
    """
    if not data or data.isspace():
        return pa.table({})
    if data.lstrip()[:1] != b"{" or _LATER_LINE_NOT_AN_OBJECT.search(data) is not None:
        # pyarrow reads a later ``null`` line as a row of nulls (and crashes on a first one):
        # such input goes the exact Python way, which names the line.
        raise pa.ArrowInvalid("a line is not a JSON object")
    if refuse_wide and len(data) > _PROBE_BYTES:  # a map keyed by IDs shows in a few hundred lines
        _check_width(_read(_head(data, _PROBE_BYTES), None, threads=False), refuse_wide)
    sample = _head(data, _SAMPLE_BYTES)
    table = _read(sample, None)
    if refuse_wide:
        _check_width(table, refuse_wide)
        if len(sample) < len(data):
            _probes(data, refuse_wide, len(sample))
    if len(sample) < len(data):
        table = _read(data, table.schema)
        if refuse_wide:
            _check_width(table, refuse_wide)
    for _ in range(3):
        if not _has_time(pa.struct(list(table.schema))):
            table.validate(full=True)  # the reader does not check UTF-8
            return table
        table = _read(data, table.schema)
    raise pa.ArrowInvalid("JSON reader kept inferring timestamps")


def load_lines(data: bytes, image_field: str | None = None) -> list[Any]:
    """JSON Lines to Python objects, the slow and exact way (the reference for :func:`read_jsonl`).

    Raises:
        BadValueError: a line is not a JSON object; names the line number.
    """
    rows: list[Any] = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as e:
            raise BadValueError(f"line {number} is not JSON ({e.__class__.__name__})") from e
        if not isinstance(obj, dict):
            raise BadValueError(f"line {number} is not a JSON object")
        rows.append(obj if image_field is None else obj.get(image_field))
    return rows
