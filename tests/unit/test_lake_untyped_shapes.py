"""The record of untyped columns and their shapes (``ddblake.untyped-columns``, docs/types.md)."""

from __future__ import annotations

import json

import pytest

from ddblake.codec.schema import JSON_T, NULL_T, STR_T, ListT, StructT
from ddblake.lake import columns, untypedcols

EMPTY_LIST = ListT(NULL_T)
EMPTY_MAP = StructT(())


@pytest.mark.parametrize(
    "shape",
    [
        EMPTY_LIST,
        EMPTY_MAP,
        ListT(ListT(NULL_T)),
        StructT((("a.b", EMPTY_LIST),)),  # a NULL field is not recorded (it never conflicts)
        ListT(EMPTY_MAP),
    ],
)
def test_shapes_round_trip(shape: object) -> None:
    shapes: columns.Shapes = {"v": shape, "attr_ddb_x": EMPTY_MAP}  # type: ignore[dict-item]
    assert untypedcols.load_untyped(untypedcols.dump_untyped(shapes)) == shapes


def test_an_older_ddblake_reads_the_names_and_its_list_reads_as_unknown_shapes() -> None:
    text = untypedcols.dump_untyped({"b": EMPTY_LIST, "a": EMPTY_MAP})
    assert set(json.loads(text)) == {"a", "b"}  # what an older ddblake did with the property
    assert untypedcols.load_untyped('["a", "b"]') == {"a": None, "b": None}
    assert untypedcols.load_untyped(None) == {} and untypedcols.load_untyped("") == {}
    assert untypedcols.load_untyped('{"a": 5}') == {"a": None}  # unreadable: unknown, never an error


def test_a_typed_value_is_no_shape() -> None:
    with pytest.raises(ValueError):
        untypedcols.shape_json(STR_T)


def test_joining_shapes() -> None:
    joined = untypedcols.join_untyped(
        {"a": StructT((("k", NULL_T),)), "b": EMPTY_LIST, "c": None},
        {"a": StructT((("j", EMPTY_LIST),)), "b": EMPTY_MAP, "c": EMPTY_LIST, "d": EMPTY_MAP},
    )
    assert joined == {
        "a": StructT((("j", EMPTY_LIST),)),  # the NULL field k is left out
        "b": None,  # [] with {} is a typed column (JSON text): never a shape
        "c": None,  # unknown stays unknown
        "d": EMPTY_MAP,
    }
    assert JSON_T not in joined.values()


def test_known_shapes_become_codec_fields_of_columns_not_in_the_table() -> None:
    shapes: columns.Shapes = {"v": EMPTY_LIST, "attr_ddb_x": EMPTY_MAP, "w": None, "t": EMPTY_LIST}
    fields = untypedcols.untyped_fields(shapes, {"t"})
    assert [f.name for f in fields] == ["v", "_ddb_x"]  # attribute names; unknown and present left out


def test_a_recorded_shape_leaves_out_null_fields_and_stays_bounded() -> None:
    from ddblake.codec.schema import NULL_T, ListT, StructT
    from ddblake.lake.untypedcols import SHAPE_NODES_MAX, compact_shape, shape_json

    def nodes(t: object) -> int:
        if isinstance(t, ListT):
            return 1 + nodes(t.elem)
        if isinstance(t, StructT):
            return 1 + sum(nodes(f) for _, f in t.fields)
        return 0

    assert shape_json(compact_shape(StructT((("a", NULL_T), ("b", ListT(NULL_T)))))) == {"b": [None]}
    wide = StructT(tuple((f"user-{i}", ListT(StructT((("x", NULL_T),)))) for i in range(1_000)))
    kept = compact_shape(wide)
    assert isinstance(kept, StructT) and 0 < len(kept.fields) < 1_000
    assert nodes(kept) <= SHAPE_NODES_MAX
    deep = ListT(NULL_T)
    for _ in range(200):
        deep = ListT(deep)
    assert nodes(compact_shape(deep)) <= SHAPE_NODES_MAX
