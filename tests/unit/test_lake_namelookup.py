"""pyiceberg's name mapping looked up through an index (ddblake.lake.namelookup): the same answers."""

from __future__ import annotations

import gc

import pyarrow as pa
from pyiceberg.io.pyarrow import pyarrow_to_schema
from pyiceberg.schema import Schema
from pyiceberg.table.name_mapping import MappedField, NameMapping, NameMappingAccessor
from pyiceberg.types import LongType, NestedField, StringType, StructType

from ddblake.lake import namelookup


def _wide_schema(n: int) -> Schema:
    fields = [NestedField(i + 1, f"c{i}", StringType(), required=False) for i in range(n)]
    inner = StructType(*(NestedField(10_000 + i, f"k{i}", LongType(), required=False) for i in range(n)))
    return Schema(*fields, NestedField(20_000, "m", inner, required=False))


def test_an_indexed_lookup_answers_as_the_search_does() -> None:
    namelookup.install()
    assert getattr(NameMappingAccessor.field_partner, "_ddblake", False)  # the index answers below
    # a field found under an alias, the first of two fields holding a name, a name held by none
    fields = [MappedField(field_id=i, names=[f"n{i}"]) for i in range(40)]
    fields += [MappedField(field_id=100, names=["alias", "n3"]), MappedField(field_id=101, names=["alias"])]
    accessor = NameMappingAccessor()
    for partner in (fields, MappedField(field_id=0, names=["top"], fields=fields), NameMapping(fields)):
        assert accessor.field_partner(partner, 0, "n3").field_id == 3  # type: ignore[union-attr]
        assert accessor.field_partner(partner, 0, "alias").field_id == 100  # type: ignore[union-attr]
        assert accessor.field_partner(partner, 0, "n39").field_id == 39  # type: ignore[union-attr]
        assert accessor.field_partner(partner, 0, "missing") is None
    assert accessor.field_partner(None, 0, "n3") is None
    small = [MappedField(field_id=1, names=["a"])]  # under SMALL: searched as pyiceberg does
    assert accessor.field_partner(small, 0, "a").field_id == 1  # type: ignore[union-attr]


def test_a_wide_arrow_schema_converts_to_the_same_iceberg_schema() -> None:
    namelookup.install()
    schema = _wide_schema(300)
    arrow = schema.as_arrow()
    arrow = pa.schema([f.remove_metadata() for f in arrow])  # no field IDs: the mapping names them
    converted = pyarrow_to_schema(arrow, name_mapping=schema.name_mapping)
    assert converted == schema


def test_an_index_follows_its_owner_and_goes_with_it() -> None:
    owner = MappedField(
        field_id=0, names=["top"], fields=[MappedField(field_id=i, names=[f"n{i}"]) for i in range(40)]
    )
    assert namelookup.index_of(owner, owner.fields)["n1"].field_id == 1
    owner.fields.append(MappedField(field_id=99, names=["late"]))  # a changed list is indexed again
    assert namelookup.index_of(owner, owner.fields)["late"].field_id == 99
    key = id(owner)
    assert key in namelookup._INDEXES
    del owner  # the mapping goes: so does its index (no mapping is kept alive by the cache)
    gc.collect()
    assert key not in namelookup._INDEXES
