"""A null list of maps stays null through pyiceberg (apache/iceberg-python #3833), and a list of
lists keeps the values of its renamed struct fields (:func:`of_projected`).

pyiceberg 0.12 rebuilds every list of structs it projects, on write and on read, from the list's
offsets alone, which carry no validity: a null ``list<struct<...>>`` comes out as ``[]``. An item
without a list-of-maps attribute (or a map without such a key) then read ``[]`` in the current
state's typed columns, where its item holds nothing, and whether a row read ``[]`` or null
depended on how it was written. The file written held ``[]``, so no reader could tell.

:func:`install` wraps that projection so that the rebuilt list keeps the validity of the list it
came from (the fix upstream proposes, pull request #3834). Rows written before it hold ``[]`` in
their files, and a bucket rewrite copies them as read; a retype of the table (a change that
retypes every row, from ``_ddb_item``) writes them null. ``dump`` and ``_ddb_item`` were always
exact.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc


def with_nulls(result: pa.Array | None, source: pa.Array | None) -> pa.Array | None:
    """``result`` (a list array projected from ``source``) null wherever ``source`` is."""
    if result is None or source is None or source.null_count == 0 or result.null_count == source.null_count:
        return result
    if not isinstance(result, pa.ListArray | pa.LargeListArray) or len(result) != len(source):
        return result
    offsets, values = result.offsets, result.values
    first = offsets[0].as_py()
    if first:  # a slice (a batch of a row group): Arrow takes a null mask only with offsets from 0
        values = values.slice(first, offsets[-1].as_py() - first)
        offsets = pc.subtract(offsets, pa.scalar(first, offsets.type))
    return type(result).from_arrays(offsets, values, type=result.type, mask=source.is_null())


def of_projected(list_array: Any, value_array: Any) -> Any:
    """``list_array`` holding ``value_array`` (its values, already projected) when those are lists.

    pyiceberg rebuilds a list from its projected values only when they are structs; any other list
    it casts whole, from the values as the file holds them, and Arrow casts struct fields by name:
    a list of lists of maps whose key Iceberg stores renamed (``k-1`` as ``k_x2D1``) came out null,
    on write (the file held null) and on read. Its validity is put back by :func:`with_nulls`.
    """
    lists = (pa.ListArray, pa.LargeListArray)
    if not isinstance(list_array, lists) or not isinstance(value_array, lists):
        return list_array
    return pa.LargeListArray.from_arrays(pc.cast(list_array.offsets, pa.int64()), value_array)


MENDED_PROPERTY = "ddblake.lists-of-lists-mended"
"""Set on a current-state table whose lists of lists were written with :func:`of_projected` in
place: at its creation, or by the retype that rewrote what an older ddblake wrote."""


def _renamed_in_lists(field_type: Any, in_list: int = 0) -> bool:
    """Whether a type holds, inside a list of lists, a struct field Iceberg stores renamed."""
    from pyiceberg.schema import make_compatible_name
    from pyiceberg.types import ListType, MapType, StructType

    if isinstance(field_type, ListType):
        return _renamed_in_lists(field_type.element_type, in_list + 1)
    if isinstance(field_type, MapType):
        return _renamed_in_lists(field_type.value_type, in_list)
    if isinstance(field_type, StructType):
        renamed = in_list >= 2 and any(make_compatible_name(f.name) != f.name for f in field_type.fields)
        return renamed or any(_renamed_in_lists(f.field_type, in_list) for f in field_type.fields)
    return False


def mend_needed(table: Any) -> bool:
    """Whether a current-state table an older ddblake wrote may hold null where its items have a
    value (a key stored renamed, in a list of lists of maps): its rows are then retyped once, from
    ``_ddb_item``, with the next batch."""
    if table is None or table.properties.get(MENDED_PROPERTY):
        return False
    return any(_renamed_in_lists(f.field_type) for f in table.schema().fields)


def install() -> None:
    """Make pyiceberg's Arrow projection keep null lists null (once per process). A pyiceberg
    without ``ArrowProjectionVisitor.list`` is left as it is."""
    from pyiceberg.io import pyarrow as pyiceberg_arrow

    visitor = getattr(pyiceberg_arrow, "ArrowProjectionVisitor", None)
    project: Callable[..., pa.Array | None] | None = getattr(visitor, "list", None)
    if visitor is None or project is None or getattr(project, "_ddblake", False):
        return

    def projected_list(self: Any, list_type: Any, list_array: Any, value_array: Any) -> pa.Array | None:
        return with_nulls(
            project(self, list_type, of_projected(list_array, value_array), value_array), list_array
        )

    projected_list._ddblake = True  # type: ignore[attr-defined]
    visitor.list = projected_list
