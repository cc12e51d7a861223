"""DynamoDB JSON text of typed Arrow values, rendered column-wise (for columns that keep text).

Pure functions. An attribute whose values differ in type keeps each value as its DynamoDB JSON
text (docs/types.md); rendering that text value by value in Python dominated the codec's fast
path, so scalar tags are rendered here with Arrow kernels, byte for byte what
:func:`~ddblake.codec.ddbjson.dumps` writes.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ddblake.codec.ddbjson import dumps
from ddblake.codec.parsed import is_wide

STRING_TAGS = ("S", "N", "B")
"""Tags whose value is a JSON string."""


def _plain(tag: str, value: Any) -> Any:
    if tag == "M":
        return {k: _av(v) for k, v in value.items() if v is not None}
    if tag == "L":
        return [_av(v) for v in value]
    return value


def _av(slot: dict[str, Any]) -> dict[str, Any]:
    for tag, value in slot.items():
        if value is not None:
            return {tag: _plain(tag, value)}
    return {}


def json_texts(tag: str, child: pa.Array) -> pa.Array:
    """DynamoDB JSON text of each value of one tag, as received (map keys sorted); NULL stays null.

    The text is :func:`~ddblake.codec.ddbjson.dumps` of each value, byte for byte. Conflicting
    attributes (a list of numbers and strings) are common enough that rendering each value in
    Python dominated the fast path, so the scalar tags are rendered with Arrow kernels; sets, maps
    and lists are nested and rare, and keep the Python way.
    """
    if tag == "NULL" or pa.types.is_null(child.type):
        return pa.nulls(len(child), pa.string())
    if tag == "BOOL":
        return pc.if_else(child, pa.scalar('{"BOOL":true}'), pa.scalar('{"BOOL":false}'))
    if tag in STRING_TAGS:
        return _wrapped_texts(tag, child.cast(pa.string()))
    return pa.array(
        [None if v is None else dumps({tag: _plain(tag, v)}) for v in _pylist(child)], pa.string()
    )


def _has_wide(type_: pa.DataType) -> bool:
    if is_wide(type_):
        return True
    if pa.types.is_struct(type_):
        return any(_has_wide(type_.field(i).type) for i in range(type_.num_fields))
    if pa.types.is_list(type_) or pa.types.is_large_list(type_):
        return _has_wide(type_.value_type)
    return False


def _pylist(array: pa.Array) -> list[Any]:
    """``array.to_pylist()``, but a wide map (``codec.parsed.wide_maps``) at any depth as the plain
    map of attribute values its text holds, which :func:`_plain` renders like any map."""
    type_ = array.type
    if not _has_wide(type_):
        return list(array.to_pylist())
    valid = array.is_valid().to_pylist()
    if is_wide(type_):
        texts = array.flatten()[0].to_pylist()
        return [
            json.loads(t)["M"] if ok and t is not None else None for ok, t in zip(valid, texts, strict=True)
        ]
    if pa.types.is_struct(type_):
        names = [type_.field(i).name for i in range(type_.num_fields)]
        columns = [_pylist(c) for c in array.flatten()]
        return [
            dict(zip(names, row, strict=True)) if ok else None
            for ok, row in zip(valid, zip(*columns, strict=True), strict=True)
        ]
    values, offsets = _pylist(array.values), array.offsets.to_pylist()  # offsets index all of .values
    return [values[offsets[i] : offsets[i + 1]] if ok else None for i, ok in enumerate(valid)]


_JSON_ESCAPED = r'["\\\x00-\x1f]'
"""Characters ``json.dumps(..., ensure_ascii=False)`` escapes: quote, backslash, controls (RE2)."""


def _wrapped_texts(tag: str, texts: pa.Array) -> pa.Array:
    """``{"<tag>":"<text>"}`` of each string value, escaped exactly as ``json.dumps`` does.

    Text that needs no escaping (nearly all of it) is wrapped by a kernel; the rest goes through
    ``dumps`` itself rather than a second escaper that would have to agree with it on every
    character (``\\u00XX`` spellings, which characters stay as they are).
    """
    wrapped = pc.binary_join_element_wise(f'{{"{tag}":"', texts, '"}', "")
    escape = pc.fill_null(pc.match_substring_regex(texts, _JSON_ESCAPED), False)
    if not pc.any(escape).as_py():
        return wrapped
    rendered = [dumps({tag: v}) for v in pc.filter(texts, escape).to_pylist()]
    return pc.replace_with_mask(wrapped, escape, pa.array(rendered, pa.string()))
