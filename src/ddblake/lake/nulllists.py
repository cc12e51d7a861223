"""A null list of maps stays null through pyiceberg (apache/iceberg-python #3833).

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


def install() -> None:
    """Make pyiceberg's Arrow projection keep null lists null (once per process). A pyiceberg
    without ``ArrowProjectionVisitor.list`` is left as it is."""
    from pyiceberg.io import pyarrow as pyiceberg_arrow

    visitor = getattr(pyiceberg_arrow, "ArrowProjectionVisitor", None)
    project: Callable[..., pa.Array | None] | None = getattr(visitor, "list", None)
    if visitor is None or project is None or getattr(project, "_ddblake", False):
        return

    def projected_list(self: Any, list_type: Any, list_array: Any, value_array: Any) -> pa.Array | None:
        return with_nulls(project(self, list_type, list_array, value_array), list_array)

    projected_list._ddblake = True  # type: ignore[attr-defined]
    visitor.list = projected_list
