"""DynamoDB JSON items to typed Arrow columns, exactly (the rules: docs/types.md).

Pure functions, no I/O. Three entry points take the same path after parsing:

* :func:`items_to_table` — items as Python dicts of DynamoDB JSON (``json.loads`` of log lines);
* :func:`jsonl_to_table` — JSON Lines bytes of items (or of objects holding an item), parsed by
  ``pyarrow.json`` in C++: the fast path, many times quicker than dicts through boto3;
* :func:`parsed_to_table` — a table :func:`~ddblake.codec.parsed.read_jsonl` already read.

Each works column by column with vectorised Arrow kernels; Python touches single values only for
base64, numbers written with exponents or with more digits than a cast handles exactly, and the
DynamoDB JSON text of conflicting sets, maps and lists (and of strings that need escaping).
Without a schema the batch's own types are inferred; with one the values are converted to it
(``evolve=True`` widens it first, :func:`unify_schemas` rules).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import reduce
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ddblake.codec import numbers
from ddblake.codec import schema as lattice
from ddblake.codec.arrays import check_shape, combine, decode_binary, slot_texts, struct_array
from ddblake.codec.ddbjson import TAGS, map_key_path
from ddblake.codec.errors import BadValueError, SchemaMismatchError
from ddblake.codec.parsed import is_wide, load_lines, parse_items, read_jsonl
from ddblake.codec.schema import (
    BIN_T,
    BOOL_T,
    DEFAULT_MAX_PRECISION,
    JSON_T,
    NULL_T,
    STR_T,
    JsonT,
    ListT,
    NumT,
    StructT,
    T,
    arrow_field,
    arrow_type,
    check_precision,
    fits,
    from_field,
    join,
    number_type,
    prune,
    same_column,
    unify_field,
    widen,
)
from ddblake.codec.texts import json_texts
from ddblake.redact import shown_type

_ELEMENT_TAG = {"SS": "S", "NS": "N", "BS": "B"}


def _mismatch(where: str, value: T, target: T) -> SchemaMismatchError:
    return SchemaMismatchError(
        f"attribute {where}: values need {arrow_type(value)} but the target column is {arrow_type(target)}; "
        "unify the schemas first (evolve=True)"
    )


def _goal(value: T, target: T | None, where: str) -> T:
    if target is None:
        return value
    if not fits(value, target):
        raise _mismatch(where, value, target)
    return target


class _Converter:
    """Typed columns from struct-of-type-tags arrays (``codec.parsed``), checking every value."""

    def __init__(self, max_precision: int) -> None:
        self.max_precision = check_precision(max_precision)

    def slot(self, slot: pa.Array, target: T | None, where: str) -> tuple[T, pa.Array]:
        """One slot's values to a column of ``target`` (inferred when None): (type, array)."""
        count = len(slot)
        if pa.types.is_null(slot.type):
            goal = NULL_T if target is None else target
            return goal, pa.nulls(count, arrow_type(goal))
        if not pa.types.is_struct(slot.type):
            raise BadValueError(f"attribute {where}: not an attribute value (one type tag)")
        names = [slot.type.field(i).name for i in range(slot.type.num_fields)]
        children = dict(zip(names, slot.flatten(), strict=True))
        self._check_tags(slot, children, where)
        tags = [tag for tag, child in children.items() if tag != "NULL" and child.null_count < count]
        if not tags:
            goal = NULL_T if target is None else target
            return goal, pa.nulls(count, arrow_type(goal))
        if len(tags) == 1 and not isinstance(target, JsonT):
            return self.tag(tags[0], children[tags[0]], target, where)
        inferred = [self.tag(tag, children[tag], None, where) for tag in tags]
        joined = reduce(lambda a, b: join(a, b, self.max_precision), (t for t, _ in inferred))
        goal = _goal(joined, target, where)
        if isinstance(goal, JsonT):
            arrays = [slot_texts(tag, children[tag]) for tag in tags]
        else:
            arrays = [
                array if same_column(t, goal) else self.tag(tag, children[tag], goal, where)[1]
                for tag, (t, array) in zip(tags, inferred, strict=True)
            ]
        return goal, combine(arrays, [children[tag].is_valid() for tag in tags])

    @staticmethod
    def _check_tags(slot: pa.Array, children: dict[str, pa.Array], where: str) -> None:
        for tag, child in children.items():
            if tag not in TAGS:
                raise BadValueError(f"attribute {where}: unknown type tag (expected one of {sorted(TAGS)})")
            check_shape(tag, child.type, where)
        # Flattened children are null wherever the slot is, so one tag per present value means:
        if len(children) == 1:
            (only,) = children.values()
            one_each = only.null_count == slot.null_count
        elif not children:
            one_each = slot.null_count == len(slot)
        else:
            counts = reduce(pc.add, (pc.cast(child.is_valid(), pa.int8()) for child in children.values()))
            one_each = not pc.any(pc.and_(slot.is_valid(), pc.not_equal(counts, 1))).as_py()
        if not one_each:
            raise BadValueError(f"attribute {where}: not an attribute value (exactly one type tag)")
        nulls = children.get("NULL")
        if nulls is not None and pc.any(pc.invert(nulls)).as_py():
            raise BadValueError(f"attribute {where}: NULL value is not true")

    def tag(self, tag: str, child: pa.Array, target: T | None, where: str) -> tuple[T, pa.Array]:
        """The values of one type tag (null elsewhere) to a column of ``target`` (or inferred)."""
        if tag == "M" and is_wide(child.type):
            return self._wide(child, target, where)
        if isinstance(target, JsonT):
            self.tag(tag, child, None, where)  # check the values even though they stay text
            return JSON_T, json_texts(tag, child)
        if tag == "S":
            return _goal(STR_T, target, where), child
        if tag == "N":
            return self._numbers(child, target, where)
        if tag == "B":
            return _goal(BIN_T, target, where), decode_binary(child, where)
        if tag == "BOOL":
            return _goal(BOOL_T, target, where), child
        if tag == "M":
            return self._map(child, target, where)
        if target is not None and not isinstance(target, ListT):
            raise _mismatch(where, ListT(NULL_T), target)
        elem_target = None if target is None else target.elem
        if tag == "L":
            return self._list(child, lambda values: self._elements(values, elem_target, where))
        if pc.any(pc.equal(pc.list_value_length(child), 0)).as_py():
            raise BadValueError(
                f"attribute {where}: {tag} is empty (DynamoDB sets hold at least one element)"
            )
        if child.values.null_count:  # JSON null in a set ({"SS": [null]}): the Python path refuses it too
            raise BadValueError(f"attribute {where}: {tag} element is not a {_ELEMENT_TAG[tag]} value")
        elem_tag = _ELEMENT_TAG[tag]
        return self._list(child, lambda values: self.tag(elem_tag, values, elem_target, f"{where}[]"))

    def _numbers(self, texts: pa.Array, target: T | None, where: str) -> tuple[T, pa.Array]:
        inferred = number_type(numbers.number_stats(texts, where), self.max_precision)
        goal = _goal(inferred, target, where)
        if not isinstance(goal, NumT):  # only NULL_T: no values to convert
            return goal, pa.nulls(len(texts), arrow_type(goal))
        if goal.kind == "int":
            return goal, numbers.to_int64(texts)
        if goal.kind == "dec":
            return goal, numbers.to_decimal(texts, arrow_type(goal))
        return goal, texts

    def _elements(self, values: pa.Array, target: T | None, where: str) -> tuple[T, pa.Array]:
        if values.null_count:
            raise BadValueError(f"attribute {where}: L element is not an attribute value")
        return self.slot(values, target, f"{where}[]")

    @staticmethod
    def _list(lists: pa.Array, convert: Callable[[pa.Array], tuple[T, pa.Array]]) -> tuple[T, pa.Array]:
        # offsets index the whole child array, so convert all of it and keep the offsets as they are
        elem, values = convert(lists.values)
        rebuilt = pa.ListArray.from_arrays(lists.offsets, values, mask=lists.is_null())
        return ListT(elem), rebuilt

    def _wide(self, maps: pa.Array, target: T | None, where: str) -> tuple[T, pa.Array]:
        """Wide maps (``codec.parsed.wide_maps``): their values checked, their texts the column."""
        texts, lists = maps.flatten()
        self.slot(lists.values, None, f"{where or '?'}.<a key>")
        return _goal(JSON_T, target, where), texts

    def _map(self, maps: pa.Array, target: T | None, where: str) -> tuple[T, pa.Array]:
        if target is not None and not isinstance(target, StructT):
            raise _mismatch(where, StructT(()), target)
        names = [maps.type.field(i).name for i in range(maps.type.num_fields)]
        slots = dict(zip(names, maps.flatten(), strict=True))
        fields: list[tuple[str, T]] = []
        arrays = []
        if target is None:
            # Map keys are item data: an error names a key by its position (ddbjson.map_key_path).
            for position, name in enumerate(sorted(slots), 1):
                t, array = self.slot(slots[name], None, map_key_path(where, position))
                fields.append((name, t))
                arrays.append(array)
        else:
            for position, (name, field_t) in enumerate(target.fields, 1):
                if name in slots:
                    arrays.append(self.slot(slots[name], field_t, map_key_path(where, position))[1])
                else:
                    arrays.append(pa.nulls(len(maps), arrow_type(field_t)))
                fields.append((name, field_t))
        struct = StructT(tuple(fields))
        if target is None and lattice.typed_fields(fields) > lattice.MAX_MAP_FIELDS:
            return JSON_T, json_texts("M", maps)  # wide maps a caller's reader spread into fields
        return struct, struct_array(arrays, struct, maps.is_null())


# --- tables ---------------------------------------------------------------------------------------


def _fit(array: pa.Array, type_: pa.DataType) -> pa.Array:
    """Arrays are built in canonical types; an existing column may use large or view variants."""
    return array if array.type.equals(type_) else array.cast(type_)


def _castable(value: T, goal: T) -> bool:
    """Whether a column of ``value`` becomes one of ``goal`` (which holds it) by an Arrow cast alone:
    the two differ only in decimals, which widen exactly. (Arrow casts int64 only to a decimal of
    19 digits before the point: integers are converted again.)"""
    if value == goal:
        return True
    if isinstance(value, NumT) and isinstance(goal, NumT):
        return value.kind == goal.kind == "dec"
    if isinstance(value, ListT) and isinstance(goal, ListT):
        return _castable(value.elem, goal.elem)
    if isinstance(value, StructT) and isinstance(goal, StructT):
        return [n for n, _ in value.fields] == [n for n, _ in goal.fields] and all(
            _castable(v, g) for (_, v), (_, g) in zip(value.fields, goal.fields, strict=True)
        )
    return False


def _retarget(
    convert: _Converter, slot: pa.Array, array: pa.Array, value: T, goal: T, where: str
) -> pa.Array:
    """``array`` (the slot's values typed ``value``) as a column of ``goal``, which holds them."""
    if _castable(value, goal):
        return array.cast(arrow_type(goal))
    return convert.slot(slot, goal, where)[1]


def _table(
    columns: Mapping[str, pa.Array],
    count: int,
    schema: pa.Schema | None,
    evolve: bool,
    drop_untyped: bool,
    max_precision: int,
    wide_decimals: bool = False,
) -> pa.Table:
    convert = _Converter(max_precision)
    fields: list[pa.Field] = []
    arrays: list[pa.Array] = []
    todo = set(columns)
    for field in schema if schema is not None else ():
        slot = columns.get(field.name)
        todo.discard(field.name)
        if slot is None:
            fields.append(field)
            arrays.append(pa.nulls(count, field.type))
            continue
        if evolve:
            inferred, array = convert.slot(slot, None, field.name)
            unified, goal = unify_field(field, inferred, max_precision)
            if wide_decimals and unified is not field:  # a column that changes type anyway
                goal = widen(goal, max_precision)
                unified = arrow_field(field.name, goal)
            field = unified
            if not same_column(inferred, goal):
                array = _retarget(convert, slot, array, inferred, goal, field.name)
        else:
            goal_t = from_field(field)
            if goal_t is None:
                raise SchemaMismatchError(
                    f"column {field.name!r} has type {shown_type(field.type)}, which ddblake does not write"
                )
            array = convert.slot(slot, goal_t, field.name)[1]
        fields.append(field)
        arrays.append(_fit(array, field.type))
    if schema is None or evolve:
        for name in sorted(todo):
            t, array = convert.slot(columns[name], None, name)
            if wide_decimals:
                goal = widen(t, max_precision)
                if not same_column(t, goal):
                    array = _retarget(convert, columns[name], array, t, goal, name)
                t = goal
            fields.append(arrow_field(name, t))
            arrays.append(array)
    if drop_untyped:
        fields, arrays = _drop_untyped(fields, arrays, columns, convert)
    metadata = schema.metadata if schema is not None else None
    if not fields:  # keep the row count even without a single column (schema metadata cannot stay)
        return pa.Table.from_struct_array(pa.array([{}] * count, pa.struct([])))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=metadata))


def _drop_untyped(
    fields: list[pa.Field], arrays: list[pa.Array], columns: Mapping[str, pa.Array], convert: _Converter
) -> tuple[list[pa.Field], list[pa.Array]]:
    kept_fields, kept_arrays = [], []
    for field, array in zip(fields, arrays, strict=True):
        t = from_field(field)
        kept = None if t is None else prune(t)
        if t is not None and kept is None:
            continue
        if kept is not None and kept != t:
            field = arrow_field(field.name, kept)
            slot = columns.get(field.name)
            array = (
                pa.nulls(len(array), field.type) if slot is None else convert.slot(slot, kept, field.name)[1]
            )
        kept_fields.append(field)
        kept_arrays.append(array)
    return kept_fields, kept_arrays


def items_to_table(
    items: Iterable[dict[str, Any] | None],
    schema: pa.Schema | None = None,
    *,
    evolve: bool = False,
    drop_untyped: bool = False,
    max_decimal_precision: int = DEFAULT_MAX_PRECISION,
    wide_decimals: bool = False,
) -> pa.Table:
    """Items in DynamoDB JSON to an Arrow table with one typed column per attribute.

    Args:
        items: DynamoDB JSON items (``{"pk": {"S": "a"}, ...}``); None gives a row of nulls.
        schema: convert to this schema instead of inferring one: its columns in its order (nulls
            where the batch lacks the attribute); attributes and map fields it lacks are left out.
        evolve: widen ``schema`` first so every value fits: new attributes become new columns
            (sorted by name) and columns widen by the documented rules, using the batch's actual
            values (small integers arriving in a decimal(5, 2) column leave it decimal(5, 2)).
        drop_untyped: leave out columns and map fields that hold only nulls so far (Iceberg before
            v3 has no null type, Parquet no empty struct).
        max_decimal_precision: widest decimal before number text; 76 (decimal256), or 38 to keep
            to decimal128 as Iceberg requires.
        wide_decimals: a decimal column the batch adds or widens takes ``max_decimal_precision``
            digits and a scale rounded up to 2, 4, 9 or 18 (:func:`~ddblake.codec.schema.widen`),
            rather than as few as its values need, so that values with more digits fit it later
            (the lake: Iceberg cannot change a decimal's scale, and a new precision would rewrite
            every file). An existing column the values fit stays as it is.

    Raises:
        BadValueError: an item is not DynamoDB JSON.
        SchemaMismatchError: a value does not fit ``schema`` (and ``evolve`` is False).
    """
    rows = items if isinstance(items, list) else list(items)
    return _table(
        parse_items(rows), len(rows), schema, evolve, drop_untyped, max_decimal_precision, wide_decimals
    )


def parsed_to_table(
    parsed: pa.Table | pa.StructArray | pa.ChunkedArray,
    schema: pa.Schema | None = None,
    *,
    evolve: bool = False,
    drop_untyped: bool = False,
    max_decimal_precision: int = DEFAULT_MAX_PRECISION,
    wide_decimals: bool = False,
) -> pa.Table:
    """Like :func:`items_to_table`, from DynamoDB JSON that ``read_jsonl`` parsed into Arrow.

    ``parsed`` is either a table of items (one struct-of-type-tags column per attribute) or one
    struct column of items, such as the ``new`` image column of raw change-log lines (a null there
    gives a row of nulls).
    """
    if isinstance(parsed, pa.Table):
        count = parsed.num_rows
        columns = {name: _whole(parsed.column(name)) for name in parsed.column_names}
    else:
        items = _whole(parsed)
        if pa.types.is_null(items.type):  # no line had an image
            items = pa.nulls(len(items), pa.struct([]))
        if not pa.types.is_struct(items.type):
            raise BadValueError("the image column is not objects of attributes")
        count = len(items)
        names = [items.type.field(i).name for i in range(items.type.num_fields)]
        columns = dict(zip(names, items.flatten(), strict=True))
    return _table(columns, count, schema, evolve, drop_untyped, max_decimal_precision, wide_decimals)


def _whole(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        if column.num_chunks == 0:
            return pa.nulls(0, column.type)
        return column.combine_chunks()
    return column


def jsonl_to_table(
    data: bytes,
    schema: pa.Schema | None = None,
    *,
    image_field: str | None = None,
    evolve: bool = False,
    drop_untyped: bool = False,
    max_decimal_precision: int = DEFAULT_MAX_PRECISION,
    wide_decimals: bool = False,
) -> pa.Table:
    """JSON Lines bytes of DynamoDB JSON items to a typed Arrow table (the fast path).

    Args:
        data: one JSON object per line: an item, or with ``image_field`` an object holding one
            (``"Item"`` for DynamoDB export lines, ``"new"`` for raw change-log lines).
        schema, evolve, drop_untyped, max_decimal_precision, wide_decimals: as
            :func:`items_to_table`.

    The result equals ``items_to_table`` of the same items. Input the C++ reader refuses (or reads
    differently from Python's ``json``) goes the exact Python way, which names the bad line.

    Raises:
        BadValueError: a line is not JSON, or an item is not DynamoDB JSON.
        SchemaMismatchError: as :func:`items_to_table`.
    """
    try:
        # pyarrow's reader crashes the process on a first line that is not an object (b"null"):
        # such input goes the exact Python way, which names the bad line.
        # Wide maps are read the Python way, which never spreads them into a field per key.
        levels = 1 if image_field is None else 2
        parsed = read_jsonl(data, refuse_wide=levels) if data.lstrip()[:1] in (b"{", b"") else None
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, UnicodeDecodeError):
        parsed = None
    if parsed is None:
        items: Any = load_lines(data, image_field)
    elif image_field is None:
        items = parsed
    elif image_field in parsed.column_names:
        items = parsed.column(image_field)
    else:
        items = [None] * parsed.num_rows
    options: dict[str, Any] = {
        "evolve": evolve,
        "drop_untyped": drop_untyped,
        "max_decimal_precision": max_decimal_precision,
        "wide_decimals": wide_decimals,
    }
    if isinstance(items, list):
        return items_to_table(items, schema, **options)
    return parsed_to_table(items, schema, **options)


def infer_schema(
    items: Iterable[dict[str, Any] | None], *, max_decimal_precision: int = DEFAULT_MAX_PRECISION
) -> pa.Schema:
    """The Arrow schema :func:`items_to_table` gives these items (columns sorted by name)."""
    return items_to_table(items, max_decimal_precision=max_decimal_precision).schema
