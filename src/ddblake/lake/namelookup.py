"""pyiceberg's name mapping looked up by name, not by a search of every field.

pyiceberg matches each column of an Arrow schema to the table's name mapping (writing a file,
checking rows against a table's schema) by a search of the mapping's fields for the column's name:
a table of ``n`` columns costs ``n * n / 2`` name comparisons per schema converted. Attribute
names that are data give a table thousands of columns (docs/types.md), where a batch spent about
2 s of 19 there at 4,000 columns, and the cost grows with the square of the width.

:func:`install` makes the lookup a dict index per list of mapped fields, built once per list
object (a schema's mapping is cached by pyiceberg, so one index serves every file of a batch).
The answer is the one the search gives: the first field holding the name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

SMALL = 32
"""Levels with fewer fields are searched, as pyiceberg does: an index costs more than it saves."""
_HELD = 256
_INDEXES: dict[int, tuple[Sequence[Any], int, dict[str, Any]]] = {}
"""Index by ``id`` of the list of mapped fields, holding the list (so its id is not reused) and
its length when indexed (a list that changed is indexed again)."""


def index_of(fields: Sequence[Any]) -> dict[str, Any]:
    """Each name of ``fields`` (mapped fields, each with ``names``) to the first field holding it."""
    held = _INDEXES.get(id(fields))
    if held is not None and held[0] is fields and held[1] == len(fields):
        return held[2]
    index: dict[str, Any] = {}
    for field in fields:
        for name in field.names:
            index.setdefault(name, field)
    if len(_INDEXES) >= _HELD:
        _INDEXES.pop(next(iter(_INDEXES)))
    _INDEXES[id(fields)] = (fields, len(fields), index)
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
        fields = partner_struct
        if isinstance(fields, mapped_field):
            fields = fields.fields
        elif isinstance(fields, mapping):
            fields = fields.root
        if not isinstance(fields, list) or len(fields) < SMALL:
            return search(self, partner_struct, field_id, field_name)
        return index_of(fields).get(field_name)

    field_partner._ddblake = True  # type: ignore[attr-defined]
    accessor.field_partner = field_partner
