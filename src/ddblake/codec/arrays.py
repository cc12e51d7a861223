"""Arrow array helpers of the typed-column converter (``codec.arrow``): shapes, base64, assembly."""

from __future__ import annotations

import binascii
from binascii import a2b_base64

import pyarrow as pa
import pyarrow.compute as pc

from ddblake.codec.ddbjson import decode_base64
from ddblake.codec.errors import BadValueError
from ddblake.codec.parsed import is_wide
from ddblake.codec.schema import StructT, arrow_field
from ddblake.codec.texts import STRING_TAGS, json_texts


def slot_texts(tag: str, child: pa.Array) -> pa.Array:
    """:func:`json_texts` of one tag's values; wide maps have theirs already."""
    return child.flatten()[0] if tag == "M" and is_wide(child.type) else json_texts(tag, child)


def check_shape(tag: str, type_: pa.DataType, where: str) -> None:
    if tag in STRING_TAGS:
        ok = pa.types.is_string(type_) or pa.types.is_large_string(type_)
    elif tag in ("BOOL", "NULL"):
        ok = pa.types.is_boolean(type_)
    elif tag == "M":
        ok = pa.types.is_struct(type_)
    elif tag == "L":
        ok = pa.types.is_list(type_) and (
            pa.types.is_struct(type_.value_type) or pa.types.is_null(type_.value_type)
        )
    else:
        ok = pa.types.is_list(type_) and (
            pa.types.is_string(type_.value_type) or pa.types.is_null(type_.value_type)
        )
    if not ok and not pa.types.is_null(type_):
        raise BadValueError(f"attribute {where}: {tag} value has the wrong JSON type")


def decode_binary(texts: pa.Array, where: str) -> pa.Array:
    values = texts.to_pylist()
    try:
        decoded = [None if t is None else a2b_base64(t, strict_mode=True) for t in values]
    except (binascii.Error, ValueError):
        decoded = [None if t is None else decode_base64(t, where) for t in values]  # raises, with where
    return pa.array(decoded, pa.binary())


def struct_array(arrays: list[pa.Array], struct: StructT, mask: pa.Array) -> pa.Array:
    if not struct.fields:
        return pa.array([None if m else {} for m in mask.to_pylist()], pa.struct([]))
    fields = [arrow_field(name, t) for name, t in struct.fields]
    return pa.StructArray.from_arrays(arrays, fields=fields, mask=mask)


def combine(arrays: list[pa.Array], valid: list[pa.Array]) -> pa.Array:
    """One array taking each row from the array whose tag the row has (null where none has)."""
    count = len(valid[0])
    positions = pa.array(range(count), pa.int64())
    index = pa.nulls(count, pa.int64())
    for k, is_valid in enumerate(valid):
        index = pc.if_else(is_valid, pc.add(positions, k * count), index)
    return pc.take(pa.concat_arrays(arrays), index)
