"""``ddblake query``: SQL over the lake's Iceberg tables with DuckDB.

Tables are planned by pyiceberg (which reads the Iceberg metadata: snapshots, schema evolution,
deletes) and handed to DuckDB as lazy Arrow datasets under their ARCHITECTURE.md identifiers
(:mod:`ddblake.lake.reading`), so DuckDB needs no extension — nothing is downloaded at run time,
``file://`` and ``s3://`` lakes work alike, and DuckDB reads only the columns and row groups a
statement needs. Only the tables a statement names are opened.

JSON and number text (docs/types.md) are strings to Iceberg, and to SQL. For ``--format json``
(``open_sql(json_values=True)``) the statement is also bound, not run, on views that give them
DuckDB's ``JSON`` type (:func:`ddblake.lake.viewsql.json_casts`), which DuckDB carries through a
statement's expressions; the result's values at the places that bind types ``JSON``, whatever made
them (``_ddb_item->'$.a'`` too), come out as :class:`JsonText`, which the JSON format embeds.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final

import duckdb
from duckdb.sqltypes import DuckDBPyType
from pyiceberg.catalog import Catalog
from pyiceberg.schema import Schema
from pyiceberg.table import Table

from ddblake.errors import NotFoundError, TerminalError, UsageError
from ddblake.lake.advice import tables_elsewhere
from ddblake.lake.catalog import table_names
from ddblake.lake.options import SOURCE_PROPERTY, other_owner
from ddblake.lake.output import Format, JsonText, format_chunks, format_rows, shown
from ddblake.lake.ownership import check_own_lake
from ddblake.lake.reading import duck, missing_file, register, row_source
from ddblake.lake.storage import Storage
from ddblake.lake.viewsql import json_casts

__all__ = [
    "Format",
    "JsonText",
    "check_own_lake",
    "format_chunks",
    "format_rows",
    "open_sql",
    "parse_time",
    "run_sql",
]

log = logging.getLogger(__name__)

# Set by snapshot expiry (ddblake.lake.maintain): commit time (ms) of the newest snapshot expired.
EXPIRED_PROPERTY = "ddblake.expired-through-ms"
# Set by the first snapshot expiry (ddblake.lake.maintain) when the table still holds its first
# snapshot then: that snapshot's commit time (ms), so that --as-of before it reads an empty table
# rather than an expired one.
FIRST_COMMIT_PROPERTY = "ddblake.first-commit-ms"


EPOCH_MIN_DIGITS: Final = 9
"""Digits (before any fraction) a bare number needs to be taken for epoch seconds or milliseconds:
``100000000`` is 1973-03-03 in seconds. A shorter one is refused, since it is most likely a date
written without dashes (``20261207`` as epoch seconds is 1970-08-23, and would answer quietly)."""


def parse_time(text: str) -> dt.datetime:
    """An ``--as-of`` time: ISO 8601 (UTC when no offset) or epoch seconds/milliseconds.

    A bare number is epoch seconds, or milliseconds above 10^11, when it has at least
    :data:`EPOCH_MIN_DIGITS` digits before any fraction; shorter ones are refused.

    Raises:
        UsageError: the text is not a time, or is a number too short to be an epoch time.
    """
    value = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        if len(value.split(".")[0].lstrip("0")) < EPOCH_MIN_DIGITS:
            raise UsageError(
                f"--as-of {text!r} is too short for epoch seconds or milliseconds (they have "
                f"{EPOCH_MIN_DIGITS} digits or more); write a date as YYYY-MM-DD "
                "(2026-12-07) or a time as ISO 8601 (2026-12-07T10:00:00Z)"
            )
        number = float(value)
        seconds = number / 1000 if number > 1e11 else number
        try:
            return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
        except (OverflowError, OSError, ValueError) as e:
            raise UsageError(f"--as-of {text!r} is out of range; give epoch seconds or milliseconds") from e
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as e:
        raise UsageError(
            f"--as-of {text!r} is not a time; use ISO 8601 (2026-11-28, 2026-11-28T10:00:00Z; UTC "
            f"unless an offset is given) or epoch seconds or milliseconds ({EPOCH_MIN_DIGITS} digits "
            "or more: 1764324000 or 1764324000000)"
        ) from e
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _snapshot_at(table: Table, when: dt.datetime) -> int | None:
    """The snapshot current at ``when``; None before the table's first one.

    Raises:
        UsageError: ``when`` is older than the snapshots the table keeps (docs/lake.md, Maintenance):
            the snapshot current then was expired, so no answer would be right.
    """
    at_ms = int(when.timestamp() * 1000)
    snap = table.snapshot_as_of_timestamp(at_ms)
    expired_through = int(table.properties.get(EXPIRED_PROPERTY, "0") or 0)
    first = table.properties.get(FIRST_COMMIT_PROPERTY) or first_commit_ms(table)
    if snap is None and first is not None and at_ms < int(first):
        # It held nothing then, which is the right answer, yet reads as "the table is empty": said
        # on stderr (the CLI prints warnings there), naming the time the table starts at.
        log.warning(
            "table %s: --as-of %s is before its first commit (%s), so it reads as empty; "
            "give a time at or after that one to see its rows",
            ".".join(table.name()),
            when.isoformat(),
            _iso(int(first)),
        )
        return None
    # A table whose first snapshot is gone without ddblake's record (expired by pyiceberg, Spark)
    # cannot tell "before its first commit" from "expired": refused, never read as empty.
    foreign = snap is None and first is None and bool(table.snapshots())
    if foreign or (expired_through and (snap is None or snap.timestamp_ms <= expired_through)):
        kept = min((s.timestamp_ms for s in table.snapshots()), default=None)
        oldest = "none" if kept is None else _iso(kept)
        raise UsageError(
            f"--as-of {when.isoformat()} is older than what table {'.'.join(table.name())} keeps "
            f"(its oldest snapshot is from {oldest}); older snapshots were expired, see Maintenance "
            "in docs/lake.md (DDBLAKE_KEEP_HOURS, DDBLAKE_KEEP_SNAPSHOTS)"
        )
    return None if snap is None else snap.snapshot_id


def _iso(ms: int) -> str:
    """Epoch milliseconds as an ISO 8601 UTC time, as messages show commit times."""
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).isoformat()


def first_commit_ms(table: Table) -> int | None:
    """Commit time of the table's first snapshot when the table still holds it: the snapshot of
    sequence number 1 (Iceberg v2 numbers a table's commits from 1; pyiceberg's expiry clears the
    parent of the oldest kept snapshot, so a missing parent proves nothing). None when that one is
    gone, the table has no snapshot, or it is a v1 table (no sequence numbers): a table whose
    first snapshot was expired before :data:`FIRST_COMMIT_PROPERTY` was recorded cannot tell."""
    return next((s.timestamp_ms for s in table.snapshots() if s.sequence_number == 1), None)


def snapshot_for(table: Table, as_of: dt.datetime | None = None) -> int | None:
    """The snapshot a statement reads: the current one, or the one current at ``as_of``; None
    before the table's first."""
    if as_of is not None:
        return _snapshot_at(table, as_of)
    snap = table.current_snapshot()
    return None if snap is None else snap.snapshot_id


def lake_tables(catalog: Catalog, namespace: str) -> list[str]:
    """Table names (without namespace) in the lake's namespace."""
    return sorted(ident[-1] for ident in table_names(catalog, namespace))


FETCH_ROWS = 10_000
"""Rows fetched from DuckDB at a time: a result is printed as it comes, never held whole (json, csv)."""


@contextmanager
def open_sql(
    catalog: Catalog,
    namespace: str,
    sql: str,
    *,
    as_of: dt.datetime | None = None,
    own_lake: Storage | None = None,
    json_values: bool = False,
) -> Iterator[tuple[list[str], Iterator[list[tuple[Any, ...]]]]]:
    """Run one SQL statement; gives its column names and its rows in chunks (Python values,
    numbers exact), read as they are consumed, while the context is open.

    ``own_lake``: the lake being read (its own ``catalog.db``, or a catalog it shares); each table
    read is checked to be that lake's, or in a shared catalog another lake's that no table of this
    lake clashes with (:func:`ddblake.lake.ownership.check_own_lake`).

    ``json_values`` (``--format json``): the values a result holds of JSON or number text come
    as :class:`JsonText`. The statement runs on the tables as they are (those columns are text, as
    SQL has always seen them: ``mix = 'x'`` is false, not an error); a second connection binds it,
    without running it, on views that type those columns as DuckDB ``JSON``, and the result
    columns it types so (through aliases and expressions) are the ones marked. A statement that is
    not a query, or does not bind so, marks nothing.

    Raises:
        UsageError: no statement.
        TerminalError: DuckDB rejected the statement or failed while running it (the message says why).
    """
    if not sql.strip():
        raise UsageError('no SQL statement given: pass one, e.g. "SELECT count(*) FROM example_ddb_table"')
    if as_of is not None and as_of.timestamp() > time.time():  # reads as the current state: said
        log.warning("--as-of %s is later than now: the tables are read as they are now", as_of.isoformat())
    with contextlib.ExitStack() as stack:
        con = stack.enter_context(duck())
        typed = stack.enter_context(duck()) if json_values else None
        yield from _run(catalog, namespace, sql, con, typed, as_of, own_lake)


def _run(
    catalog: Catalog,
    namespace: str,
    sql: str,
    con: duckdb.DuckDBPyConnection,
    typed: duckdb.DuckDBPyConnection | None,
    as_of: dt.datetime | None,
    own_lake: Storage | None,
) -> Iterator[tuple[list[str], Iterator[list[tuple[Any, ...]]]]]:
    """:func:`open_sql`'s body, on its connections (``typed``: for the JSON marks)."""
    lowered = sql.lower()
    names = lake_tables(catalog, namespace)
    opened: list[Table] = []
    for name in names:
        if re.search(rf"(?<![a-z0-9_]){re.escape(name)}(?![a-z0-9_])", lowered):
            table = catalog.load_table(f"{namespace}.{name}")
            opened.append(table)
            check_own_lake(table, f"{namespace}.{name}", own_lake, shared_reads=True)
            snapshot = snapshot_for(table, as_of)
            rows = row_source(table, snapshot)
            register(con, name, rows)
            qualified(con, namespace, name)
            if typed is not None:
                schema = (
                    table.scan(snapshot_id=snapshot).projection() if snapshot is not None else table.schema()
                )
                casts = json_casts(schema, json_text_columns(table, schema), rows.stored)
                register(typed, name, rows, casts, warn=False)  # the plain view warned
                qualified(typed, namespace, name)
    try:
        statements = con.extract_statements(sql)
        if len(statements) > 1:  # DuckDB would run them all and show the last
            raise UsageError("give one SQL statement: this text holds several (separated by ';')")
        cursor = con.execute(sql)
    except (duckdb.Error, RuntimeError) as e:
        raise missing_file(e, opened) or _failed(
            e, names, lambda: tables_elsewhere(catalog, namespace, own_lake)
        ) from e
    if cursor is None:  # only comments
        raise UsageError("the SQL holds no statement (only comments or blanks)")
    columns = [d[0] for d in cursor.description or []]
    types = _typed_result(typed, statements[0], len(columns)) if typed is not None else []
    marks = [(i, m) for i, t in enumerate(types) if (m := _json_marks(t)) is not None]

    def chunks() -> Iterator[list[tuple[Any, ...]]]:
        while True:
            try:
                rows = cursor.fetchmany(FETCH_ROWS)
            except (duckdb.Error, RuntimeError) as e:  # a failing cast fails only when reached
                gone = missing_file(e, opened)  # deleted while the statement ran
                raise gone or _failed(e, names, lambda: tables_elsewhere(catalog, namespace, own_lake)) from e
            if not rows:
                return
            yield [_marked(r, marks) for r in rows] if marks else rows

    yield columns, chunks()


def _typed_result(typed: duckdb.DuckDBPyConnection, statement: Any, width: int) -> list[DuckDBPyType]:
    """The result types of a query bound (not run: a relation is lazy) on the JSON-typed views;
    none for another kind of statement (``COPY`` would run again) or one that does not bind so."""
    if statement.type != duckdb.StatementType.SELECT:
        return []
    try:
        types = list(typed.sql(statement.query).types)
    except (duckdb.Error, RuntimeError):
        return []
    return types if len(types) == width else []


HISTORY_MARK: Final = "_ddb_raw_file"
"""A column of every change-history table (ddblake.lake.history) that no current-state table has:
an attribute named so has the column ``attr_ddb_raw_file`` (ddblake.lake.columns)."""


def json_text_columns(table: Table, schema: Schema) -> tuple[str, ...]:
    """The string columns of a ddblake table (one with the ``ddblake.source-table`` property) that
    hold JSON text by their names: the history's ``keys`` and images, the current state's
    ``_ddb_item``. ``_ddb_key`` (the canonical key apply joins on) stays text. None of another
    writer's table: its names mean what that writer says."""
    if SOURCE_PROPERTY not in table.properties:
        return ()
    if any(f.name == HISTORY_MARK for f in schema.fields):
        return ("keys", "new_image", "old_image")
    return ("_ddb_item",)


Mark = Callable[[Any], Any]


def _json(value: Any) -> Any:
    return JsonText(value) if isinstance(value, str) else value


def _json_marks(t: DuckDBPyType) -> Mark | None:
    """What makes the JSON values of a result column of type ``t`` (at any depth) :class:`JsonText`:
    None when it holds none. A UNION is left as it is (a Python value does not say its member)."""
    if t.id == "varchar":
        return _json if str(t) == "JSON" else None
    children = t.children if t.id in ("list", "array", "struct", "map") else []
    if t.id in ("list", "array"):
        child = children[0][1]
        inner = _json_marks(child) if isinstance(child, DuckDBPyType) else None
        if inner is None:
            return None
        return lambda v: v if v is None else [inner(x) for x in v]
    fields: dict[str, Mark] = {}
    for name, child in children:
        mark = _json_marks(child) if isinstance(child, DuckDBPyType) else None
        if mark is not None:
            fields[name] = mark
    if t.id == "struct" and fields:
        return lambda v: (
            v if not isinstance(v, dict) else {k: fields[k](x) if k in fields else x for k, x in v.items()}
        )
    if t.id == "map" and "value" in fields:
        value = fields["value"]
        return lambda v: v if not isinstance(v, dict) else {k: value(x) for k, x in v.items()}
    return None


def _marked(row: tuple[Any, ...], marks: Sequence[tuple[int, Mark]]) -> tuple[Any, ...]:
    values = list(row)
    for i, mark in marks:
        values[i] = mark(values[i])
    return tuple(values)


def qualified(con: duckdb.DuckDBPyConnection, namespace: str, name: str) -> None:
    """Make lake table ``name`` answer to ``<namespace>.<name>`` too, as ``status`` and Athena
    name it (``ddb.example_ddb_table``): a view in a DuckDB schema named after the namespace.

    A namespace that is also a name of DuckDB's own (``temp``, ``system``, ``pg_catalog``) gets
    no view: DuckDB refuses it, and the table still answers to its bare name.
    """
    schema = _ident(namespace)
    try:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        con.execute(f"CREATE VIEW {schema}.{_ident(name)} AS SELECT * FROM temp.main.{_ident(name)}")  # noqa: S608
    except duckdb.Error:
        return


def _ident(name: str) -> str:
    """``name`` as a quoted DuckDB identifier."""
    return '"' + name.replace('"', '""') + '"'


def _failed(
    e: Exception, names: Sequence[str], elsewhere: Callable[[], str | None] = lambda: None
) -> TerminalError:
    """DuckDB's error as ddblake's; raises KeyboardInterrupt for a Ctrl-C DuckDB caught (it turns
    SIGINT during a statement into an error of its own).

    DuckDB's text may quote values of the data ("Could not convert string 'alice@x' to INT32"), and
    it is kept (on one line: :func:`duck_reason`), on purpose: it is the answer of ``ddblake query``
    to the person who ran the statement over their own lake, on their terminal, exactly as the rows
    it prints would be, and without it a failing cast cannot be told from another. It is not
    logging: the error goes only to the command's stderr (``ddblake.cli.main``), never to a logger,
    and nothing here logs the statement, its rows or this text
    (tests/lake/test_logs_without_item_data.py holds that).

    ``elsewhere``: asked, for a missing table when the namespace holds none, what to say of the
    lake's tables in other namespaces (:func:`elsewhere_hint`): a wrong ``--namespace`` is no
    empty lake, and running apply again would not help.
    """
    first = duck_reason(e)
    # DuckDB's own words only: a value quoted in another error ('was interrupted'::INT) is no Ctrl-C.
    if isinstance(e, duckdb.InterruptException) or (
        first.startswith("INTERRUPT Error") if isinstance(e, duckdb.Error) else "interrupted" in first.lower()
    ):
        raise KeyboardInterrupt from e
    if not isinstance(e, duckdb.Error):
        raise e
    if "Table with name" in first and "does not exist" in first:  # name the tables there are
        there = ", ".join(names) or "none yet (run ddblake apply or sync)"
        hint = (None if names else elsewhere()) or f"this lake's tables: {there}"
        first += (
            f" ({hint}; a DynamoDB table's name lower-cased, with '_' for "
            "every character outside a-z, 0-9 and '_'; its history has the suffix _changes)"
        )
    return TerminalError(f"query failed: {first}")


def duck_reason(e: BaseException) -> str:
    """DuckDB's error text as one line: without the context it adds from ``LINE n:`` on (the
    statement quoted, with a caret under the place), and with any other line break, one inside a
    quoted value (``Could not convert string 'a\\nb' to INT32``), and every other control
    character written as an escape (``\\n``, ``\\r``, ``\\x1b``: :func:`~ddblake.lake.output.shown`),
    so that what follows the value (the reason: the type, the column) is kept, and nothing in a value
    acts on the terminal. A value quoted so stays within its quotes, for
    :func:`ddblake.redact.without_values` to mask whole where the text is masked."""
    return shown(str(e).split("\n\nLINE ", 1)[0])


def run_sql(
    catalog: Catalog, namespace: str, sql: str, *, as_of: dt.datetime | None = None
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """:func:`open_sql` with every row at once.

    Raises:
        UsageError: no statement.
        TerminalError: DuckDB rejected the statement (the message says why).
    """
    with open_sql(catalog, namespace, sql, as_of=as_of) as (columns, chunks):
        return columns, [row for chunk in chunks for row in chunk]


def require_table(catalog: Catalog, namespace: str, name: str, table: str) -> Table:
    """Load a lake table, or say which DynamoDB table has not been applied yet.

    Raises:
        NotFoundError: the lake has no such table.
    """
    from pyiceberg.exceptions import NoSuchTableError

    try:
        tbl = catalog.load_table(f"{namespace}.{name}")
    except NoSuchTableError as e:
        there = ", ".join(lake_tables(catalog, namespace))
        hint = None if there else tables_elsewhere(catalog, namespace, None)
        if hint is not None:  # a wrong --namespace, not a table to apply
            raise NotFoundError(
                f"the lake has no table {namespace}.{name} for DynamoDB table {table!r}: {hint}"
            ) from e
        raise NotFoundError(
            f"the lake has no table {namespace}.{name} for DynamoDB table {table!r} "
            f"(its tables: {there or 'none yet'}); check --table, or run "
            f"'ddblake apply --table {table} --lake ...' (or sync) first"
        ) from e
    owner = other_owner(tbl, table)
    if owner is not None:
        raise NotFoundError(collision(f"{namespace}.{name}", owner, table))
    return tbl


def collision(identifier: str, owner: str, table: str) -> str:
    """What to say of lake table ``identifier`` that DynamoDB table ``owner`` holds, asked for ``table``."""
    return (
        f"lake table {identifier} holds DynamoDB table {owner!r}, not {table!r} (both names give the "
        f"identifier {identifier.split('.', 1)[-1]}); apply {table!r} into another --namespace "
        "(or DDBLAKE_NAMESPACE) and read it from there"
    )
