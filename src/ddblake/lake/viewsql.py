"""The SQL of the DuckDB views :mod:`ddblake.lake.reading` makes over a table's rows.

Names as DuckDB compares them (ASCII letters without regard to case), the names it gives repeated
columns, and the expressions that give a column's value its kinds back (JSON and number text as
DuckDB's ``JSON``) and its struct fields their own names where the files store others
(Avro-sanitised map keys: ``in-side`` stored as ``in_x2Dside``).
"""

from __future__ import annotations

import string
from collections.abc import Callable, Iterable, Sequence
from functools import partial

from pyiceberg.schema import Schema
from pyiceberg.types import IcebergType, ListType, MapType, StringType, StructType

from ddblake.codec.schema import DDB_JSON, NUMBER_TEXT

Cast = Callable[[str], str]
"""The SQL of a column's value in the view, given the SQL of its stored value."""

_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def folded(name: str) -> str:
    """A name as DuckDB compares names: ASCII letters without regard to case, every other
    character as it is (``Имя`` and ``имя``, ``É`` and ``é`` are two names to it)."""
    return name.translate(_ASCII_LOWER)


def _folds_alike(names: Sequence[str]) -> bool:
    """Whether two of ``names`` are one name to DuckDB."""
    return len({folded(n) for n in names}) < len(names)


def _renames_below(own: IcebergType, stored: IcebergType) -> bool:
    """Whether a field name under ``own`` is stored under another name."""
    if isinstance(own, StructType) and isinstance(stored, StructType):
        return any(
            f.name != s.name or _renames_below(f.field_type, s.field_type)
            for f, s in zip(own.fields, stored.fields, strict=True)
        )
    if isinstance(own, ListType) and isinstance(stored, ListType):
        return _renames_below(own.element_type, stored.element_type)
    if isinstance(own, MapType) and isinstance(stored, MapType):
        return _renames_below(own.key_type, stored.key_type) or _renames_below(
            own.value_type, stored.value_type
        )
    return False


def renamable(own: IcebergType, stored: IcebergType) -> bool:
    """Whether :func:`value_sql` can rebuild ``own``'s names from ``stored``'s: not inside an Iceberg
    map (ddblake writes none; :func:`value_sql` does not rebuild one), not in a struct whose fields
    differ only in case (DuckDB's ``struct_extract`` would not tell them apart), and not for a name
    holding a NUL (SQL text ends there in DuckDB)."""
    if not _renames_below(own, stored):
        return True
    if isinstance(own, StructType) and isinstance(stored, StructType):
        # Fields one name to DuckDB, by their own names or by the names stored (``a-b`` stored as
        # ``a_x2Db`` beside a key ``A_X2DB``): it reads one value for both.
        if _folds_alike([f.name for f in own.fields]) or _folds_alike([f.name for f in stored.fields]):
            return False
        return all(
            "\0" not in f.name and renamable(f.field_type, s.field_type)
            for f, s in zip(own.fields, stored.fields, strict=True)
        )
    if isinstance(own, ListType) and isinstance(stored, ListType):
        return renamable(own.element_type, stored.element_type)
    return False


def unique_names(columns: Sequence[str]) -> list[str]:
    """Result column names made unique as DuckDB makes a view's: a repeated name gets ``_1``,
    ``_2``, ... (names compared as DuckDB does, without regard to case)."""
    taken = {folded(c) for c in columns}
    seen: set[str] = set()
    out = []
    for name in columns:
        if folded(name) in seen:
            n = 1
            while folded(f"{name}_{n}") in taken:
                n += 1
            name = f"{name}_{n}"
            taken.add(folded(name))
        seen.add(folded(name))
        out.append(name)
    return out


def duck_name(name: str) -> str:
    """A name as DuckDB keeps it: C strings end at the first NUL, so ``a\0b`` is ``a`` there (and a
    second such name ``a_1``, as :func:`unique_names` says; ``\0a`` is empty, which
    :func:`register` names ``_``)."""
    return name.split("\0", 1)[0]


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_MARK = "ddblake:"
_JSON_NUMBER = r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?"
"""JSON's grammar of a number (RFC 8259), for RE2."""
_LAMBDA = "__ddblake_e"


def _marker(doc: str | None) -> str | None:
    """The text encoding a field's doc names (``ddb-json``, ``[]number-text``), if any."""
    if not doc or not doc.startswith(_MARK):
        return None
    words = doc[len(_MARK) :].split()
    return words[0] if words else None


def _json_text(ref: str, text: str | None = None) -> str:
    """JSON text as DuckDB's JSON, the text unchanged (``text``: the SQL of the text, when it is
    not ``ref`` itself); a value DuckDB cannot read as JSON as a JSON string of ``ref``."""
    return f"COALESCE(TRY_CAST({text or ref} AS JSON), to_json({ref}))"


def _number_text(ref: str) -> str:
    """Number text as DuckDB's JSON: a JSON number, its text unchanged when JSON's grammar allows
    it, else the same value in that grammar (sign ``+`` dropped, leading zeros dropped, ``.5`` as
    ``0.5``, ``5.`` as ``5``), never through a float."""
    fixed = ref
    for pattern, replacement in (
        (r"^\+", ""),
        (r"^(-?)0*([0-9])", r"\1\2"),
        (r"^(-?)\.", r"\10."),
        (r"\.($|[eE])", r"\1"),
    ):
        fixed = f"regexp_replace({fixed}, {literal(pattern)}, {literal(replacement)})"
    return _json_text(
        ref, f"CASE WHEN regexp_full_match({ref}, {literal(_JSON_NUMBER)}) THEN {ref} ELSE {fixed} END"
    )


def value_sql(
    t: IcebergType,
    marker: str | None,
    ref: str,
    depth: int,
    stored: IcebergType | None = None,
    *,
    marks: bool = True,
) -> str | None:
    """The SQL giving the value at ``ref`` (of type ``t``, marked ``marker``) its JSON parts as
    DuckDB's JSON, and its struct fields their own names where the file stores ``stored``'s
    (Avro-sanitised: :func:`renamable` said it can); None when nothing in it changes. ``marks``:
    False gives the names back and leaves the text as text (the plain view)."""
    stored = stored or t
    if isinstance(t, ListType) and isinstance(stored, ListType):
        inner = marker[2:] if marker and marker.startswith("[]") else None
        var = f"{_LAMBDA}{depth}"
        body = value_sql(t.element_type, inner, var, depth + 1, stored.element_type, marks=marks)
        return None if body is None else f"list_transform({ref}, lambda {var}: {body})"
    if isinstance(t, StructType) and isinstance(stored, StructType):
        if _folds_alike([f.name for f in t.fields]):
            return None  # fields DuckDB would not tell apart: left as they are
        parts, changed = [], False
        for f, s in zip(t.fields, stored.fields, strict=True):
            field = f"struct_extract({ref}, {literal(s.name)})"
            mark = _marker(f.doc) if marks else None
            body = value_sql(f.field_type, mark, field, depth, s.field_type, marks=marks)
            changed = changed or body is not None or f.name != s.name
            parts.append(f"{quoted(f.name)} := {body or field}")
        if not changed:
            return None
        return f"CASE WHEN {ref} IS NULL THEN NULL ELSE struct_pack({', '.join(parts)}) END"
    if isinstance(t, StringType) and marks:
        if marker == DDB_JSON:
            return _json_text(ref)
        if marker == NUMBER_TEXT:
            return _number_text(ref)
    return None


def json_casts(
    schema: Schema, json_text: Iterable[str] = (), stored: Schema | None = None
) -> dict[str, Cast]:
    """The columns of ``schema`` holding JSON or number text (by the codec's doc marks, at any
    depth; and the string columns named in ``json_text``, JSON text by the caller's knowledge),
    with the SQL that gives their view column DuckDB's JSON type there; ``stored``: the rows'
    :attr:`Rows.stored`, whose nested names the SQL gives back too."""
    plain = set(json_text)
    casts: dict[str, Cast] = {}
    for i, f in enumerate(schema.fields):
        marker = DDB_JSON if f.name in plain and isinstance(f.field_type, StringType) else _marker(f.doc)
        kept = stored.fields[i].field_type if stored is not None else None
        if value_sql(f.field_type, marker, "c", 0, kept) is not None:
            casts[f.name] = partial(_column_cast, f.field_type, marker, kept, True)
    return casts


def rename_casts(schema: Schema, stored: Schema) -> dict[str, Cast]:
    """The SQL giving the columns whose nested names ``stored`` holds otherwise their own names
    back (by the column's own name), for the plain view: text stays text there."""
    casts: dict[str, Cast] = {}
    for f, s in zip(schema.fields, stored.fields, strict=True):
        if value_sql(f.field_type, None, "c", 0, s.field_type, marks=False) is not None:
            casts[f.name] = partial(_column_cast, f.field_type, None, s.field_type, False)
    return casts


def _column_cast(
    t: IcebergType, marker: str | None, stored: IcebergType | None, marks: bool, ref: str
) -> str:
    return value_sql(t, marker, ref, 0, stored, marks=marks) or ref
