"""``ddblake dump`` and ``ddblake status``: what the lake holds, read from Iceberg metadata."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import re
import shlex
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
from pyiceberg.catalog import Catalog
from pyiceberg.table import Table

from ddblake.changes.model import compact_json
from ddblake.errors import DdblakeError, TerminalError
from ddblake.lake.advice import tables_elsewhere
from ddblake.lake.applied import PROPERTY, AppliedLog, checked_log
from ddblake.lake.catalog import catalog_shown, metadata_location, table_names
from ddblake.lake.layout import refuse_occupied, table_folder
from ddblake.lake.options import (
    LAKE_PROPERTY,
    NEWEST_EVENT_PROPERTY,
    QUARANTINE_PROPERTY,
    SOURCE_PROPERTY,
    other_owner,
)
from ddblake.lake.query import check_own_lake, collision, duck_reason, require_table
from ddblake.lake.rawlog import (
    APPLY_QUARANTINE,
    ERRORS_ROOT,
    RAW_PREFIX,
    REDRIVEN,
    list_raw_files,
    table_prefix,
)
from ddblake.lake.reading import Rows, duck, missing_file, register, restore_or_rebuild, row_source
from ddblake.lake.recovery import unreadable_table
from ddblake.lake.storage import Storage
from ddblake.names import changes_identifier, table_identifier

log = logging.getLogger(__name__)

DUMP_BATCH_ROWS = 10_000


_SPACED = re.compile(r'": |, "')


def compact_item(text: str) -> str:
    """An item's DynamoDB JSON text, compact: as kept when it is (a stream's, a Scan load's), and
    re-encoded when it has spaces between members (a DynamoDB export's lines are written
    ``{"id": {"S": "1"}, ...}`` and apply keeps their text as read), so one dump has one form.

    Only JSON layout changes: DynamoDB JSON holds numbers as strings, so nothing is re-read as a
    number. A compact item whose string value holds ``": `` is re-encoded too, to the same text
    but for escapes (``\u00e9`` becomes ``é``): the same value.
    """
    return compact_json(json.loads(text)) if _SPACED.search(text) else text


def dump_items(
    catalog: Catalog, namespace: str, table: str, *, own_lake: Storage | None = None
) -> Iterator[str]:
    """Every current item as a line ``{"Item": {...}}`` in DynamoDB JSON, ordered by ``_ddb_key``.

    ``_ddb_key`` is the key as JSON text, so the order is stable from run to run but is not
    DynamoDB's key order (number keys sort as text: ``10`` before ``9``).

    Items come from ``_ddb_item``, the DynamoDB JSON stored with each row, so the output is exactly
    what the stream delivered — numbers, bytes and sets included — in compact JSON
    (:func:`compact_item`). ``own_lake``: as for
    :func:`ddblake.lake.query.open_sql`.
    """
    tbl = require_table(catalog, namespace, table_identifier(table), table)
    check_own_lake(tbl, f"{namespace}.{table_identifier(table)}", own_lake)
    snap = tbl.current_snapshot()
    if snap is None:
        return
    rows = row_source(tbl, snap.snapshot_id).source
    # Only the two columns it reads: no attribute's name (a NUL, names DuckDB would not tell apart)
    # can then stand in dump's way.
    only = pa.schema([rows.schema.field(n) for n in ("_ddb_key", "_ddb_item")])
    source = rows.replace_schema(only) if isinstance(rows, ds.Dataset) else rows.select(only.names)
    with duck() as con:  # sorts out of core where the items outgrow memory
        register(con, "current_rows", Rows(source), warn=False)
        try:
            result = con.sql("SELECT _ddb_item FROM current_rows ORDER BY _ddb_key")
            for batch in result.to_arrow_reader(DUMP_BATCH_ROWS) or ():
                for item in batch.column(0).to_pylist():
                    yield '{"Item":' + compact_item(item) + "}"
        except duckdb.Error as e:
            gone = missing_file(e, [tbl])  # deleted while dump read
            if gone is not None:
                raise gone from e
            raise TerminalError(
                f"dump of table {table!r} failed: {duck_reason(e)}; if that names a data file of its "
                f"current state, the file is damaged: {restore_or_rebuild(tbl)}"
            ) from e


@dataclass
class TableStatus:
    """One DynamoDB table's state in the lake (no item data)."""

    table: str
    current_table: str | None  # None when the lake has no such table (yet), or it is not this table's
    history_table: str | None
    last_commit: str | None
    rows: int
    history_rows: int
    applied_files: int  # raw files in the log applied to both tables
    applied_before_hour: str | None  # the applied-file record's folded-hours watermark
    pending_files: int  # raw files not yet applied to both tables: apply's backlog
    newest_event: str | None
    # The tables' staleness: now minus the newest applied event's time (None before any apply).
    lag_seconds: float | None
    # How long apply has left a landed raw file waiting (see :func:`apply_lag`): 0 when caught up.
    apply_lag_seconds: float | None
    quarantined: int  # records apply set aside (errors/<table>/apply/), from the history's property
    # Files (not records) under errors/<table>/ other than apply's: capture's quarantine and
    # Firehose's error output (processing-failed/, which ``ddblake redrive`` takes back; the
    # objects it is done with, under redriven/, do not count).
    capture_error_files: int = 0
    # Snapshots kept by the two lake tables (current state, history): maintenance keeps them to its
    # limits (docs/lake.md, Maintenance); a count that only grows means maintenance is not running.
    snapshots: int = 0
    # ``query --as-of`` is exact at or after this time (the later of the two tables' oldest kept
    # snapshots); None before the first commit.
    oldest_snapshot: str | None = None
    # The table's newest load (Scan or export): finished or not, how far, and since when; a load
    # left unfinished (a kill, Ctrl-C) shows here until it is rerun.
    last_load: str | None = None
    load_finished: bool | None = None
    # When capture last recorded its stream positions: with each raw file, when a shard closes, and
    # every 5 minutes while a continuous capture reads an idle stream (a heartbeat).
    capture_checkpoint: str | None = None
    # Shards capture has failed to read since the time given (the oldest of them), while it ran on.
    failing_shards: str | None = None
    # Why the table shows no lake tables though the identifiers exist: they hold another DynamoDB
    # table whose name gives the same identifier (ab-c and ab.c), or another lake's table.
    note: str | None = None
    # Why a lake table of it cannot be read (its metadata file missing: a lake restored from an
    # older backup), and what to do; its figures are then left out (see :func:`table_status`).
    error: str | None = None


def _iso_ms(ms: int | None) -> str | None:
    return None if ms is None else dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).isoformat()


def _rows(tbl: Table | None) -> int:
    snap = tbl.current_snapshot() if tbl is not None else None
    if snap is None or snap.summary is None:
        return 0
    return int(snap.summary.additional_properties.get("total-records", 0))


def event_lag(newest_us: int | None, now: float) -> float | None:
    """Now minus the newest applied event's time, in seconds: how old the freshest data in the
    tables is. It grows while the source is quiet, so it measures staleness, not apply's health
    (:func:`apply_lag` does). None before any event is applied; never below 0 (a writer's clock
    ahead of this one's).
    """
    return None if newest_us is None else round(max(0.0, now - newest_us / 1_000_000), 3)


def apply_lag(storage: Storage, pending: list[str], now: float) -> float | None:
    """How far the tables trail the raw log, in seconds: the rule of the deployed alarm's
    ``LagSeconds`` (:func:`ddblake.aws.apply_handler.alarm_lag`), so that both tell one story.

    0 when no raw file waits: a table nobody writes to is not late, however old its newest event.
    With files waiting, the age of the one that landed first, by its write time on storage: what
    has waited longest. It grows while a backlog (or a stopped apply) lasts, and the first change
    after a quiet week is seconds late, not a week (as :func:`event_lag`, the staleness, says).
    The hour folders holding waiting files are listed in order (a late file, a redrive's, sits in
    an older folder than files that landed before it), until one starts after the earliest write
    time found, less an hour of clock skew: writers land files in the hour folder of their write
    time, so no later folder holds an earlier one (a stuck week costs a few listings, not 168).
    None only when the waiting files are all gone.
    """
    if not pending:
        return 0.0
    by_folder: dict[str, list[str]] = {}
    for path in pending:
        by_folder.setdefault(path.rsplit("/", 1)[0], []).append(path)
    earliest: float | None = None
    for folder in sorted(by_folder):
        start = _hour_start(folder)
        if earliest is not None and start is not None and start - 3600 > earliest:
            break
        times = dict(storage.list_with_times(folder))
        landed = [times[p] for p in by_folder[folder] if p in times]
        if landed:
            earliest = min(landed) if earliest is None else min(earliest, *landed)
    return None if earliest is None else round(max(0.0, now - earliest), 3)


def _hour_start(folder: str) -> float | None:
    """Epoch seconds of a raw hour folder ``raw/<table>/YYYY/MM/DD/HH``; None for another layout."""
    try:
        when = dt.datetime.strptime("/".join(folder.split("/")[-4:]), "%Y/%m/%d/%H")
    except ValueError:
        return None
    return when.replace(tzinfo=dt.UTC).timestamp()


def capture_error_files(storage: Storage, table: str) -> int:
    """Files under ``errors/<table>/`` that still want a look: records capture or Firehose set aside.

    A listing of those folders only (apply's own quarantine, which may hold a file per raw file,
    and the error objects ``ddblake redrive`` is done with are not listed): files, not records,
    since counting records would read every file.
    """
    root = table_prefix(table, ERRORS_ROOT)
    skipped = {APPLY_QUARANTINE, REDRIVEN}
    return sum(len(storage.list_files(f"{root}/{d}")) for d in storage.list_dirs(root) if d not in skipped)


def _us_iso(us: int | None) -> str | None:
    return (
        None if not us else dt.datetime.fromtimestamp(us / 1_000_000, tz=dt.UTC).isoformat(timespec="seconds")
    )


def load_summary(storage: Storage, table: str) -> tuple[str | None, bool | None]:
    """The newest load of ``table`` in one line (no item data), and whether it finished."""
    from ddblake.load.state import list_loads

    try:
        loads = list_loads(storage, table)
    except DdblakeError as e:  # a damaged state file: status still reports the rest
        return f"unreadable: {e}", None
    if not loads:
        return None, None
    s = loads[-1]
    parts = "segment(s)" if s.kind == "scan" else "file(s)"
    if s.finished_us is not None:
        return f"{s.kind} {s.load_id} finished {_us_iso(s.finished_us)}: {s.items:,} item(s)", True
    if s.kind == "scan" and s.name != "scan":  # only a re-bootstrap renames an unfinished Scan
        lake = shlex.quote(storage.shown())
        return (
            f"scan {s.load_id} set aside unfinished by a re-bootstrap ({s.items:,} item(s) read); run "
            f"'ddblake sync --table {table} --lake {lake} --rebootstrap' to finish the "
            "re-bootstrap",
            False,
        )
    return (
        f"{s.kind} {s.load_id} unfinished: {s.done_count} of {s.total_parts} {parts} done, {s.items:,} "
        f"item(s) so far, last progress {_us_iso(s.updated_us or s.started_us)}; run the same load (or "
        "sync) again to finish it",
        False,
    )


def capture_summary(storage: Storage, table: str) -> tuple[str | None, str | None]:
    """When capture last recorded its stream positions for ``table`` (ISO time; None before any),
    and the shards it has failed to read since, as of then (None when every shard reads)."""
    from ddblake.capture.checkpoint import load_checkpoint

    try:
        checkpoint = load_checkpoint(storage, table)
    except DdblakeError as e:
        return f"unreadable: {e}", None
    if checkpoint is None:
        return None, None
    failing = sorted((p.failing_since_us, s) for s, p in checkpoint.shards.items() if p.failing_since_us)
    shards = ", ".join(s for _, s in failing[:3]) + (", …" if len(failing) > 3 else "")
    stuck = (
        f"{len(failing)} shard(s) failing since {_us_iso(failing[0][0])} (the oldest): {shards}"
        if failing
        else None
    )
    return _us_iso(checkpoint.updated_us) or "recorded (no time)", stuck


def table_status(
    catalog: Catalog,
    namespace: str,
    storage: Storage,
    table: str,
    *,
    listing: list[str] | None = None,
    stages: bool = True,
) -> TableStatus:
    """Status of one DynamoDB table from its lake tables' metadata.

    ``listing``: the table's raw files, when the caller has just listed them (the apply Lambda,
    after its run: one S3 listing per run instead of two); files landed since count from the next.
    ``stages=False`` leaves out the newest load and capture's checkpoint (their reads): the apply
    Lambda's metrics do not use them.

    A lake table that cannot be read (its metadata file missing: :func:`missing_metadata`) is
    reported in ``error``, shown as absent, and its applied-file record left out: the applied and
    pending files count by the records of the tables that can be read. So is a table whose record
    cannot be read, and one the catalog lacks while its folder holds it (apply's advice then).
    """
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.exceptions import NoSuchTableError

    notes: list[str] = []
    errors: list[str] = []
    unreadable: set[str] = set()

    def load(name: str, again: bool = True) -> Table | None:
        """The lake table, when it is this DynamoDB table's (as apply's ``Applier._owned`` decides)."""
        try:
            tbl = catalog.load_table(f"{namespace}.{name}")
        except NoSuchTableError:  # its folder may still hold it (catalog.db lost): apply's advice
            try:
                ident = f"{namespace}.{name}"
                refuse_occupied(storage, table_folder(ident, glue), ident, where)
            except TerminalError as e:
                if again and catalog.table_exists(f"{namespace}.{name}"):
                    return load(name, again=False)  # an apply created it meanwhile
                errors.append(str(e))
            return None
        except (OSError, ValueError) as e:  # a metadata file missing or damaged: the others still show
            errors.append(unreadable_table(e, f"{namespace}.{name}"))
            unreadable.add(name)
            return None
        owner, lake = other_owner(tbl, table), tbl.properties.get(LAKE_PROPERTY)
        if owner is not None:  # ab-c's tables, asked for ab.c: shown as none, and why
            notes.append(collision(f"{namespace}.{name}", owner, table))
            return None
        if lake and not storage.names(lake):  # another lake's, in a shared Glue database
            notes.append(f"lake table {namespace}.{name} belongs to lake {lake}, not to this one")
            return None
        return tbl

    where = catalog_shown(catalog, storage)
    glue = not isinstance(catalog, SqlCatalog)
    cur, hist = load(table_identifier(table)), load(changes_identifier(table))
    snaps = [t.current_snapshot() for t in (cur, hist) if t is not None]
    kept = [t.metadata.snapshots for t in (cur, hist) if t is not None]
    oldest = [min(s.timestamp_ms for s in k) for k in kept if k]
    commits = [s.timestamp_ms for s in snaps if s is not None]
    props = hist.properties if hist is not None else {}
    if listing is None:
        listing = list_raw_files(storage, table)

    def applied(pointer: str | None, name: str) -> AppliedLog:
        """A table's applied-file record; missing or damaged, it is said in ``error`` as above."""
        try:
            return checked_log(storage, table, pointer, listing, namespace=namespace)
        except DdblakeError as e:
            errors.append(str(e))
            unreadable.add(name)
            return AppliedLog()

    log = applied(props.get(PROPERTY), changes_identifier(table))
    cur_log = (
        applied(cur.properties.get(PROPERTY), table_identifier(table))
        if cur is not None
        else AppliedLog()  # no current state: nothing applied to it
    )
    records = [
        record
        for record, name in ((log, changes_identifier(table)), (cur_log, table_identifier(table)))
        if name not in unreadable
    ]
    pending = [p for p in listing if not records or not all(r.contains(p) for r in records)]
    newest = int(props[NEWEST_EVENT_PROPERTY]) if NEWEST_EVENT_PROPERTY in props else None
    now = time.time()
    last_load, load_finished = load_summary(storage, table) if stages else (None, None)
    checkpointed, failing = capture_summary(storage, table) if stages else (None, None)
    return TableStatus(
        table=table,
        current_table=f"{namespace}.{table_identifier(table)}" if cur is not None else None,
        history_table=f"{namespace}.{changes_identifier(table)}" if hist is not None else None,
        last_commit=_iso_ms(max(commits)) if commits else None,
        rows=_rows(cur),
        history_rows=_rows(hist),
        applied_files=len(listing) - len(pending),
        applied_before_hour=log.before_hour or None,
        pending_files=len(pending),
        newest_event=_iso_ms(newest // 1000) if newest is not None else None,
        lag_seconds=event_lag(newest, now),
        apply_lag_seconds=apply_lag(storage, pending, now),
        quarantined=int(props.get(QUARANTINE_PROPERTY, "0")),
        capture_error_files=capture_error_files(storage, table),
        snapshots=sum(len(k) for k in kept),
        oldest_snapshot=_iso_ms(max(oldest)) if oldest else None,
        note=notes[0] if notes else None,
        error="; ".join(errors) or None,
        last_load=last_load,
        load_finished=load_finished,
        capture_checkpoint=checkpointed,
        failing_shards=failing,
    )


def lake_status(catalog: Catalog, namespace: str, storage: Storage) -> list[TableStatus]:
    """Status of every DynamoDB table the lake holds: found by the tables' ``ddblake.source-table``
    (tables another lake wrote into a shared catalog database are left out, unreadable ones too),
    and by the raw log's and capture's and load's folders (a table captured or loaded but not
    applied yet shows its backlog)."""
    sources: set[str] = set(storage.list_dirs(RAW_PREFIX))
    sources.update(storage.list_dirs("state/capture"), storage.list_dirs("state/load"))
    idents = table_names(catalog, namespace)
    unreadable: dict[str, str] = {}  # identifier -> why, for tables that cannot be read
    for ident in idents:
        name = ".".join(ident)
        try:
            tbl = catalog.load_table(ident)
        except (OSError, ValueError) as e:  # its metadata file missing or damaged: the others still show
            location = metadata_location(catalog, ident)
            if location is None or storage.holds(location):  # not another lake's (a shared database)
                unreadable[name] = unreadable_table(e, name)
            continue
        source = tbl.properties.get(SOURCE_PROPERTY)
        lake = tbl.properties.get(LAKE_PROPERTY)
        if source and not (lake and not storage.names(lake)):  # not another lake's (a shared Glue database)
            sources.add(source)
    statuses = [table_status(catalog, namespace, storage, s) for s in sorted(sources)]
    # An unreadable table no DynamoDB table's folders name (its raw/ expired): shown on its own.
    named = {f"{namespace}.{n(s)}" for s in sources for n in (table_identifier, changes_identifier)}
    statuses += [
        _unreadable_status(name, why) for name, why in sorted(unreadable.items()) if name not in named
    ]
    hint = None if idents else tables_elsewhere(catalog, namespace, storage)
    if hint is None:
        return statuses
    # A wrong --namespace: every raw file shows as pending and the apply lag grows, as if nothing
    # had been applied; the note says where the tables are instead.
    log.warning("%s", hint)  # on stderr whatever the --format, and when no table shows at all
    return [dataclasses.replace(s, note=s.note or hint) for s in statuses]


def _unreadable_status(identifier: str, why: str) -> TableStatus:
    """The status of a lake table that cannot be read and that no DynamoDB table's folder names."""
    return TableStatus(
        table=identifier,
        current_table=None,
        history_table=None,
        last_commit=None,
        rows=0,
        history_rows=0,
        applied_files=0,
        applied_before_hour=None,
        pending_files=0,
        newest_event=None,
        lag_seconds=None,
        apply_lag_seconds=None,
        quarantined=0,
        error=why,
    )


def status_json(statuses: list[TableStatus]) -> str:
    """Machine-readable status."""
    return json.dumps({"tables": [asdict(s) for s in statuses]}, indent=2)


def _shown(value: Any) -> str:
    """A status value as people read it: ``-`` for none, ``yes``/``no`` for a truth value (Python's
    ``None`` and ``True`` are no words of the docs; ``--format json`` keeps JSON's own)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def status_text(statuses: list[TableStatus]) -> str:
    """Human-readable status."""
    if not statuses:
        return "the lake holds no tables yet (run ddblake apply or sync)\n"
    out: list[str] = []
    for s in statuses:
        d: dict[str, Any] = asdict(s)
        out.append(f"{s.table}:")
        out.extend(
            f"  {k:<20} {_shown(v)}"
            for k, v in d.items()
            if k != "table" and (k not in ("note", "error") or v)
        )
    return "\n".join(out) + "\n"
