"""pyiceberg's name mapping looked up by name, not by a search of every field.

pyiceberg matches each column of an Arrow schema to the table's name mapping (writing a file,
checking rows against a table's schema) by a search of the mapping's fields for the column's name:
a table of ``n`` columns costs ``n * n / 2`` name comparisons per schema converted. Attribute
names that are data give a table thousands of columns (docs/types.md), where a batch spent about
2 s of 19 there at 4,000 columns, and the cost grows with the square of the width.

:func:`install` makes the lookup a dict index per list of mapped fields, built once per list
object (a schema's mapping is cached by pyiceberg, so one index serves every file of a batch).
The answer is the one the search gives: the first field holding the name. An index lives as long
as the mapping it indexes, no longer.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import Any

SMALL = 32
"""Levels with fewer fields are searched, as pyiceberg does: an index costs more than it saves."""
_INDEXES: dict[int, tuple[weakref.ref[Any], int, dict[str, Any]]] = {}
"""Index by ``id`` of the mapped field (or mapping) whose fields it indexes, with a weak reference
to that owner (the entry goes when the owner does, so no mapping is kept alive here, and a reused
id is never taken for its owner) and its field count when indexed."""


def index_of(owner: Any, fields: Sequence[Any]) -> dict[str, Any]:
    """Each name of ``fields`` (``owner``'s mapped fields, each with ``names``) to the first field
    holding it, built once per owner.

    Safe from pyiceberg's writer threads without a lock: an entry is used only if it is ``owner``'s
    (its weak reference answers ``owner``) with as many fields, and two threads indexing one owner
    build equal indexes.
    """
    key = id(owner)
    held = _INDEXES.get(key)
    if held is not None and held[0]() is owner and held[1] == len(fields):
        return held[2]
    index: dict[str, Any] = {}
    for field in fields:
        for name in field.names:
            index.setdefault(name, field)

    def forget(ref: weakref.ref[Any]) -> None:
        entry = _INDEXES.get(key)
        if entry is not None and entry[0] is ref:
            _INDEXES.pop(key, None)

    _INDEXES[key] = (weakref.ref(owner, forget), len(fields), index)
    return index


def install() -> None:
    """Make pyiceberg's ``NameMappingAccessor.field_partner`` use :func:`index_of` (once per
    process). A pyiceberg without it is left as it is."""
    from pyiceberg.table import name_mapping

    accessor = getattr(name_mapping, "NameMappingAccessor", None)
    search: Callable[..., Any] | None = getattr(accessor, "field_partner", None)
    if accessor is None or search is None or getattr(search, "_ddblake", False):
        return
    mapped_field = name_mapping.MappedField
    mapping = name_mapping.NameMapping

    def field_partner(self: Any, partner_struct: Any, field_id: int, field_name: str) -> Any:
        if isinstance(partner_struct, mapped_field):
            fields = partner_struct.fields
        elif isinstance(partner_struct, mapping):
            fields = partner_struct.root
        else:  # None, or a plain list (no owner to tie an index to)
            return search(self, partner_struct, field_id, field_name)
        if len(fields) < SMALL:
            return search(self, partner_struct, field_id, field_name)
        return index_of(partner_struct, fields).get(field_name)

    field_partner._ddblake = True  # type: ignore[attr-defined]
    accessor.field_partner = field_partner
