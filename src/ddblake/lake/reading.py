"""Reading a lake table's rows without holding them all: its data files as one lazy Arrow dataset.

pyiceberg's ``scan().to_arrow()`` materialises every row of a table before DuckDB sees the first,
so ``query`` on a table of tens of millions of rows needed its whole size in memory, even for a
``count(*)`` or a lookup of one key. DuckDB reads a ``pyarrow.dataset`` lazily instead: it asks
only for the columns a statement uses, pushes its filters down to the Parquet row groups, and
streams record batches, so memory follows the result, not the table.

A dataset matches a file's columns to the schema by name, where Iceberg matches them by field ID.
The two read the same rows only when every column in every data file sits under the name the
snapshot's schema gives its field ID, and when no delete file hides rows. :func:`lazy_rows` reads
each file's footer (in parallel; the dataset then reuses it) and checks exactly that, and that no
column a file lacks would get a value other than null from the table's metadata (an Iceberg
initial default, or an identity partition's value); it returns None when any of these fails: for
example a file written before a column was dropped and added again under the same name, a file
without field IDs, or a delete file written by another engine. The caller then reads the table
through pyiceberg, as before. ddblake's own writes (copy-on-write, full rewrites when a column
changes type) always pass.

Names: Iceberg writers store names that are not Avro names (``created-at``, ``x%2Ey``) under a
sanitised form (``created_x2Dat``). The dataset reads the stored names and :func:`register` gives
them back through a DuckDB view: top-level columns by position (DuckDB's names are
case-insensitive, DynamoDB's are not), struct fields (map keys such as ``in-side``, at any depth)
by rebuilding the struct under its own names (:func:`ddblake.lake.viewsql.value_sql`). A table
with two names that sanitise alike, or with a renamed field DuckDB could not rebuild
(:func:`ddblake.lake.viewsql.renamable`), is read through pyiceberg.

Kinds: a column of JSON text (a ``ddblake:ddb-json`` field, ``_ddb_item``, the history's images) or
of number text (``ddblake:number-text``) is a string to Iceberg and Parquet.
:func:`ddblake.lake.viewsql.json_casts` gives such columns DuckDB's ``JSON`` type in the view
:func:`register` makes, at any depth (struct fields, list elements), so that the kind survives a
statement's expressions (``SELECT m AS x``, ``coalesce(m, ...)``, ``l[1]``) and ``query --format
json`` can embed the values as JSON (docs/lake.md, query). A number text that is no JSON number
(``007``, ``+1``, ``.5``, ``5.``, which DynamoDB never returns but an export written by hand may
hold) is written as one of the same value (``7``, ``1``, ``0.5``, ``5``); a value DuckDB cannot read
as JSON at all becomes a JSON string of its text, never an error nor a null.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
from pyiceberg.io.pyarrow import PYARROW_PARQUET_FIELD_ID_KEY, PyArrowFileIO, schema_to_pyarrow
from pyiceberg.manifest import FileFormat
from pyiceberg.partitioning import PartitionSpec
from pyiceberg.schema import Schema, sanitize_column_names
from pyiceberg.table import Table
from pyiceberg.transforms import IdentityTransform

from ddblake.errors import TerminalError
from ddblake.lake.viewsql import (
    Cast,
    duck_name,
    folded,
    literal,
    quoted,
    renamable,
    rename_casts,
    unique_names,
)
from ddblake.signals import SCRATCH_DIRS

log = logging.getLogger(__name__)

FOOTER_THREADS = 8
Path = tuple[str, ...]


@dataclass(frozen=True)
class Rows:
    """A table's rows for DuckDB: in memory (``pa.Table``) or lazily (a dataset), and the top-level
    columns whose stored names differ from their own (stored name → name)."""

    source: pa.Table | ds.Dataset
    renamed: dict[str, str] = field(default_factory=dict)
    stored: Schema | None = None
    """The Iceberg schema under the names the files store, when a nested one differs from its
    own (a map key ``in-side`` stored as ``in_x2Dside``): the view rebuilds those columns."""
    nested: dict[str, Cast] = field(default_factory=dict)
    """The SQL rebuilding those columns (by their own names), where no other cast is given."""


def _walk(fields: Any, prefix: Path = ()) -> Iterator[tuple[Path, int | None, str]]:
    """Every field at every depth: its path (list elements ``[]``, map keys ``{k}`` and values
    ``{v}``, whatever a writer named them), its Parquet field ID and its kind."""
    for f in fields:
        path = (*prefix, f.name)
        raw = (f.metadata or {}).get(PYARROW_PARQUET_FIELD_ID_KEY)
        fid = int(raw) if raw is not None else None
        t = f.type
        if pa.types.is_struct(t):
            yield path, fid, "struct"
            yield from _walk([t.field(i) for i in range(t.num_fields)], path)
        elif pa.types.is_map(t):
            yield path, fid, "map"
            yield from _walk([t.key_field.with_name("{k}"), t.item_field.with_name("{v}")], path)
        elif pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
            yield path, fid, "list"
            yield from _walk([t.value_field.with_name("[]")], path)
        else:
            yield path, fid, _leaf_kind(t)


def _leaf_kind(t: pa.DataType) -> str:
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return "binary"
    return str(t)


class _Expected:
    """The stored shape the snapshot's schema asks of a file: field ID and kind by path."""

    def __init__(self, schema: Schema, stored: pa.Schema, specs: dict[int, PartitionSpec]) -> None:
        self.schema = schema
        self.by_path = {path: (fid, kind) for path, fid, kind in _walk(stored)}
        self.paths_by_id = {fid: path for path, (fid, _) in self.by_path.items()}
        self.specs = specs

    def agrees(self, physical: pa.Schema, spec_id: int) -> bool:
        """Whether reading this file by name gives what reading it by field ID would."""
        held: set[int] = set()
        for path, fid, kind in _walk(physical):
            if fid is None:
                return False  # no IDs: only a name mapping can say what its columns are
            held.add(fid)
            want = self.by_path.get(path)
            if want is None:
                if fid in self.paths_by_id:  # a field of the schema, stored under another name
                    return False
            elif want != (fid, kind):
                return False
        return not any(self._filled(fid, spec_id) for fid in self.paths_by_id if fid not in held)

    def _filled(self, fid: int | None, spec_id: int) -> bool:
        """Whether Iceberg gives a column a file lacks a value other than null: its initial default,
        or the file's partition value when the partition is the column's identity."""
        if fid is None:
            return False
        if self.schema.find_field(fid).initial_default is not None:
            return True
        spec = self.specs.get(spec_id)
        return spec is None or any(
            f.source_id == fid and isinstance(f.transform, IdentityTransform) for f in spec.fields
        )


def _stored_names(schema: Schema) -> tuple[Schema, dict[str, str], bool] | None:
    """The schema under the names writers store (Avro-sanitised), the top-level renames, and
    whether a nested name differs too; None when a view could not give every name back (two names
    that sanitise alike, or a nested rename :func:`renamable` refuses)."""
    try:
        stored = sanitize_column_names(schema)
    except ValueError:  # two names that sanitise alike ("a-b" and "a_x2Db"): no stored schema
        return None
    renamed = {s.name: f.name for s, f in zip(stored.fields, schema.fields, strict=True) if s.name != f.name}
    own = [p for p, _, _ in _walk(schema_to_pyarrow(schema))]
    kept = [p for p, _, _ in _walk(schema_to_pyarrow(stored))]
    nested = any(a[1:] != b[1:] for a, b in zip(own, kept, strict=True))
    if nested and not all(
        renamable(f.field_type, s.field_type) for f, s in zip(schema.fields, stored.fields, strict=True)
    ):
        return None
    return stored, renamed, nested


def lazy_rows(table: Table, snapshot_id: int) -> Rows | None:
    """The snapshot's rows as a lazy dataset over its data files, or None where that could read
    other rows than Iceberg's field-ID projection would (the module docstring says when)."""
    if not isinstance(table.io, PyArrowFileIO):
        return None
    scan = table.scan(snapshot_id=snapshot_id)
    schema = scan.projection()
    names = _stored_names(schema)
    if names is None:
        return None
    stored, renamed, nested = names
    expected_schema = schema_to_pyarrow(stored, include_field_ids=True)
    paths: list[str] = []
    spec_ids: list[int] = []
    place: tuple[str, str] | None = None
    for task in scan.plan_files():
        data = task.file
        if task.delete_files or data.file_format != FileFormat.PARQUET:
            return None
        scheme, netloc, path = PyArrowFileIO.parse_location(data.file_path, table.io.properties)
        if place is not None and place != (scheme, netloc):
            return None  # one dataset reads through one filesystem
        place = (scheme, netloc)
        paths.append(path)
        spec_ids.append(data.spec_id)
    arrow_schema = schema_to_pyarrow(stored, include_field_ids=False)
    kept = stored if nested else None
    rebuilt = rename_casts(schema, stored) if nested else {}
    if place is None:
        return Rows(ds.dataset(arrow_schema.empty_table()), renamed, kept, rebuilt)
    filesystem = table.io.fs_by_scheme(*place)
    parquet = ds.ParquetFileFormat()
    fragments = [parquet.make_fragment(p, filesystem=filesystem) for p in paths]
    with ThreadPoolExecutor(max_workers=min(FOOTER_THREADS, len(fragments))) as pool:
        list(pool.map(lambda f: f.ensure_complete_metadata(), fragments))  # footers, read once
    expected = _Expected(schema, expected_schema, table.specs())  # defaults: sanitising drops them
    if not all(expected.agrees(f.physical_schema, sid) for f, sid in zip(fragments, spec_ids, strict=True)):
        return None
    dataset = ds.FileSystemDataset(fragments, arrow_schema, parquet, filesystem)
    return Rows(dataset, renamed, kept, rebuilt)


def row_source(table: Table, snapshot_id: int | None) -> Rows:
    """The rows of ``table`` at ``snapshot_id`` for DuckDB: lazily where :func:`lazy_rows` can, else
    read whole by pyiceberg (empty before the table's first snapshot).

    Raises:
        TerminalError: a file of the snapshot is not there (:func:`missing_file`).
    """
    if snapshot_id is None:
        return Rows(schema_to_pyarrow(table.schema(), include_field_ids=False).empty_table())
    try:
        rows = lazy_rows(table, snapshot_id)
        if rows is not None:
            return rows
        log.info(
            "table %s: read whole through pyiceberg (its files need Iceberg's own reader)",
            ".".join(table.name()),
        )
        return Rows(table.scan(snapshot_id=snapshot_id).to_arrow())
    except FileNotFoundError as e:
        gone = missing_file(e, [table])
        if gone is None:
            raise
        raise gone from e


# pyarrow's words for a file that is not there (local, S3), quoting its path; DuckDB passes them on
# when a file goes missing while it reads ("reading the stream registered as ... failed: IOError: ...").
# The path is not parsed out of the quotes (a lake's path may hold an apostrophe, /home/bob's lake):
# each table's own location is looked for in the text (:func:`_file_under`).
_MISSING: Final = re.compile(r"(?:Failed to open local file|Path does not exist) '")


def _place(uri: str) -> str:
    """A path or URI without its scheme, as pyarrow names the files it opens."""
    return uri.split("://", 1)[-1]


def _shown_location(uri: str) -> str:
    return uri.removeprefix("file://") if uri.startswith("file:///") else uri


def restore_or_rebuild(table: Table) -> str:
    """What to do about a lake table one of whose files is missing or damaged: restore the file, or
    rebuild the table from ``raw/`` (docs/lake.md, Recovering). Apply cannot go on either: it reads
    the table's files too, so neither a rerun nor ``sync --rebootstrap`` gets past such a file."""
    ident = ".".join(table.name())
    return (
        "restore it (a backup; on AWS, the bucket's earlier version of it: docs/lake.md, Recovering), "
        f"or rebuild the table from raw/: catalog.drop_table('{ident}') (the catalog's entry only: no "
        f"file is deleted), delete its folder {_shown_location(table.location())}, then run apply, "
        "which rebuilds it from the raw change log"
    )


def missing_file(e: BaseException, tables: Iterable[Table]) -> TerminalError | None:
    """A file of one of ``tables`` that is not there (deleted, or the lake restored from an older
    backup), as one line naming the table, the file and what to do (:func:`restore_or_rebuild`);
    None for another error, or a file of none of them."""
    text = str(e)
    if _MISSING.search(text) is None or not (isinstance(e, FileNotFoundError) or "[errno 2]" in text.lower()):
        return None
    for table in tables:
        location = table.location().rstrip("/")
        path = _file_under(text, location)
        if path is None:
            continue
        scheme = location.split("://", 1)[0] if "://" in location else "file"
        shown = path if "://" in path or scheme == "file" else f"{scheme}://{path}"  # s3: bucket/key
        kind = "data file" if path.endswith(".parquet") else "file"
        return TerminalError(
            f"table {'.'.join(table.name())} cannot be read: its {kind} {shown} is not there (deleted, "
            f"or the lake restored from an older backup); {restore_or_rebuild(table)}"
        )
    return None


def _file_under(text: str, location: str) -> str | None:
    """The file under ``location`` (a table's) that pyarrow's message ``text`` quotes, as it quotes it
    (``/path`` for a local lake, ``bucket/key`` for S3); None when it quotes none there. The
    location is matched as it is, whatever it holds (an apostrophe too); the rest, the path Iceberg
    made under it (``data/<partition>/<uuid>.parquet``, ``metadata/...``), runs to the closing quote."""
    found = re.search("'(" + re.escape(_place(location)) + "/[^']+)'", text)
    return None if found is None else found.group(1)


def _nul_names(field_type: pa.DataType, path: str) -> Iterator[str]:
    """The paths of struct fields (map keys) under ``field_type`` whose names hold a NUL."""
    if pa.types.is_struct(field_type):
        for child in field_type:
            where = f"{path}.{child.name}"
            if "\0" in child.name:
                yield where
            yield from _nul_names(child.type, where)
    elif pa.types.is_list(field_type) or pa.types.is_large_list(field_type):
        yield from _nul_names(field_type.value_type, f"{path}[]")


def _warn_nul(table: str, schema: pa.Schema, own: list[str]) -> None:
    """Say which names DuckDB cuts at a NUL (DynamoDB takes NUL in names): a top-level one is read
    under its cut name (``a``, ``a_1``), and of two map keys cut alike DuckDB keeps one value. Every
    value is still in ``_ddb_item``, and ``dump`` is not affected. Column names are named; map keys
    are item data (docs/types.md), so only the columns holding them are.

    ``own``: the columns' own names, by position; ``schema``'s are the names the files store, where
    a NUL is written ``_x0`` (a lazy read: :func:`_stored_names`). A map key holding a NUL makes the
    table read whole through pyiceberg (:func:`lazy_rows`), under its own names."""
    cut = [name for name in own if "\0" in name]
    holders = [
        name for f, name in zip(schema, own, strict=True) if any(True for _ in _nul_names(f.type, name))
    ]
    if cut or holders:
        log.warning(
            "table %s: column name(s) %s hold a NUL character, where DuckDB ends a name: read under the "
            "name before the NUL (with _1, _2 when repeated); map keys holding one, in column(s) %s, "
            "read as one when cut alike; read their values from _ddb_item",
            table,
            ", ".join(repr(n) for n in cut[:3]) or "(none)",
            ", ".join(repr(n) for n in holders[:3]) or "(none)",
        )


def register(
    con: duckdb.DuckDBPyConnection,
    name: str,
    rows: Rows,
    casts: Mapping[str, Cast] | None = None,
    *,
    warn: bool = True,
) -> None:
    """Make ``rows`` DuckDB's table ``name``, each column under its own name, and the columns in
    ``casts`` (by name) typed by them (:func:`json_casts`).

    DynamoDB's names are case-sensitive and DuckDB's are not: of two attributes whose names differ
    only in case the first (in column order) answers to both spellings, and the later ones are named
    ``<name>_1``, ``<name>_2`` (the first such name no column has: with attributes ``A``, ``a`` and
    ``a_1``, ``a`` is ``a_2``, never another attribute's name); a warning names them (their values
    are in ``_ddb_item``). A name DuckDB would cut to nothing (one starting with NUL) is ``_``.
    """
    own = [rows.renamed.get(s, s) for s in rows.source.schema.names]
    names = [duck_name(o) or "_" for o in own]
    aliases = unique_names(names)
    if warn:
        _warn_nul(name, rows.source.schema, own)
    first: dict[str, str] = {}
    for column, alias in zip(names, aliases, strict=True):
        earlier = first.setdefault(folded(column), column)
        if warn and earlier != column:
            log.warning(
                "table %s: columns %r and %r differ only in case, which DuckDB does not tell apart: "
                "both spellings read %r, and %r is read as %r (or from _ddb_item)",
                name,
                earlier,
                column,
                earlier,
                column,
                alias,
            )
    casts = {**rows.nested, **(casts or {})}  # by own name; a caller's were built on rows.stored
    if not rows.renamed and aliases == own and not any(o in casts for o in own):
        con.register(name, rows.source)  # the stored names are the own ones, each one to DuckDB
        return
    files = f"{name}__ddblake_files"
    con.register(files, rows.source)
    # The stored columns as DuckDB named them: it makes repeated names unique its own way (of A, a
    # and a_1: A, a_1, a_1_1) and names an empty one itself; referred to by position from here on.
    stored = [d[0] for d in con.execute(f"SELECT * FROM {quoted(files)} LIMIT 0").description or []]  # noqa: S608
    refs = [quoted(u) for u in stored]
    values = ", ".join(casts[o](r) if o in casts else r for o, r in zip(own, refs, strict=True))
    columns = ", ".join(quoted(a) for a in aliases)
    con.execute(f"CREATE TEMP VIEW {quoted(name)} ({columns}) AS SELECT {values} FROM {quoted(files)}")  # noqa: S608


@contextlib.contextmanager
def duck() -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB connection in UTC whose spill files (a sort or join larger than memory)
    go to a folder of its own, deleted when it closes, or by a stop that ends the process at once
    (:data:`ddblake.signals.SCRATCH_DIRS`): DuckDB's default, ``./.tmp``, outlived a killed query."""
    scratch = tempfile.mkdtemp(prefix="ddblake-duckdb-")
    SCRATCH_DIRS.add(scratch)
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"SET temp_directory = {literal(scratch)}")
        yield con
    finally:
        con.close()
        shutil.rmtree(scratch, ignore_errors=True)
        SCRATCH_DIRS.discard(scratch)
