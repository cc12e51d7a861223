"""The full loads ``ddblake reconcile`` can start from, and whether their rows are all applied.

A load is one the lake has a record of: a Scan or full export run by ``ddblake load``
(``state/load/<table>/*.json``), or a Glue job's load: its connector run record
(``state/load/<table>/glue-connector.json``) or its export-files record (``glue-export-<id>.json``).
Reconcile is right only once every raw file that may
hold the load's rows is applied: a key whose load row still waits would look unseen
(``ddblake.reconcile``).
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import shlex
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from ddblake.errors import DdblakeError, TerminalError
from ddblake.lake.catalog import LakeConfig, open_catalog
from ddblake.lake.storage import Storage
from ddblake.names import changes_identifier, table_identifier

if TYPE_CHECKING:
    from ddblake.lake.applied import AppliedLog
    from ddblake.load.state import LoadState

log = logging.getLogger(__name__)

SKEW_US: Final = 60_000_000
"""Clock allowance between the machines that wrote a load's raw files and the one that recorded
its end (a Glue job's executors and driver): a file named up to this much after the end may be
the load's."""
FILE_TAG: Final = "reconcile"
"""In the name of every raw file of REMOVEs reconcile (or a re-bootstrap) writes, after its time
stamp (``…-<µs>-reconcile-<uuid>.gz``, :class:`~ddblake.lake.rawlog.RawLogWriter`'s ``tag``): they
hold REMOVEs only, never load rows."""
_OWN_FILE: Final = re.compile(rf"-[0-9]{{6}}-{FILE_TAG}-[0-9a-f]{{32}}\.gz$")
"""Reconcile's own raw files, by the end of their names: the table's name starts every raw file's
name, so a table named ``orders-reconcile-v2`` must not make its load's files look like these."""


@dataclass(frozen=True)
class LakeLoad:
    """A load of the table the lake holds a record of.

    Attributes:
        load_id: the ID in its rows' event IDs (``load-<id>-…``, ``export-<id>-…``).
        kind: ``scan``, ``export`` (``ddblake load``), ``glue-connector`` or ``glue-export`` (the
            Glue job's two sources).
        started_us: its start (Scan, connector) or the export's time.
        version_time_us: its rows' event time.
        finished_us: when it ended; None while unfinished.
        incremental: an incremental export (not a full load).
        record: the record's path in the lake.
    """

    load_id: str
    kind: str
    started_us: int
    version_time_us: int
    finished_us: int | None
    incremental: bool
    record: str

    @property
    def source(self) -> str:
        """The raw-log source of its rows: ``export`` or ``scan``."""
        return "export" if self.kind in ("export", "glue-export") else "scan"

    def describe(self) -> str:
        """``scan load 2026…-ab12 (finished 2026-12-07T01:02:03Z)``."""
        from ddblake.load.state import utc_text

        kind = {"glue-connector": "Glue connector", "glue-export": "Glue export-files"}.get(
            self.kind, self.kind
        )
        when = (
            f"finished {utc_text(self.finished_us)}"
            if self.finished_us is not None
            else f"started {utc_text(self.started_us)}, unfinished"
        )
        return f"{kind} load {self.load_id} ({when})"


def _from_state(storage: Storage, state: LoadState) -> LakeLoad:
    from ddblake.load.state import state_path

    return LakeLoad(
        load_id=state.load_id,
        kind=state.kind,
        started_us=state.started_us,
        version_time_us=state.version_time_us,
        finished_us=state.finished_us,
        incremental=bool(state.options.get("incremental")),
        record=storage.shown(state_path(state.table, state.name)),
    )


def _connector_record(storage: Storage, table: str) -> LakeLoad | None:
    """The Glue connector's run record (``ddblake.gluejob.job.connector_run``), if readable."""
    from ddblake.load.rows import version_time_from_us
    from ddblake.load.state import GLUE_CONNECTOR, state_path

    path = state_path(table, GLUE_CONNECTOR)
    data = storage.read(path)
    if data is None:
        return None
    try:
        doc = json.loads(data)
        load_id, started = doc["load_id"], doc["started_us"]
        finished = doc.get("finished_us")
        if not isinstance(load_id, str) or not isinstance(started, int):
            raise ValueError("no load_id or started_us")
        if finished is not None and not isinstance(finished, int):
            raise ValueError("finished_us is not a number")
    except (ValueError, TypeError, KeyError) as e:
        log.warning(
            "reconcile %s: Glue connector run record %s is unreadable (%s)", table, storage.shown(path), e
        )
        return None
    return LakeLoad(
        load_id=load_id,
        kind="glue-connector",
        started_us=started,
        version_time_us=version_time_from_us(started),  # the job's rules.version_time_from_us
        finished_us=finished or None,
        incremental=False,
        record=storage.shown(path),
    )


def _glue_export_records(storage: Storage, table: str) -> list[LakeLoad]:
    """The Glue job's records of its export-files loads (``ddblake.gluejob.job.export_record``);
    one that cannot be read is left out, with a warning."""
    from ddblake.load.state import GLUE_EXPORT, state_prefix

    loads = []
    for path in storage.list_files(state_prefix(table)):
        if not path.rsplit("/", 1)[-1].startswith(GLUE_EXPORT) or not path.endswith(".json"):
            continue
        try:
            doc = json.loads(storage.read(path) or b"")
            fields = (doc["load_id"], doc["version_us"], doc["started_us"], doc["finished_us"])
            if not isinstance(fields[0], str) or not all(isinstance(x, int) for x in fields[1:]):
                raise ValueError("a field of the wrong type")
            incremental = doc.get("incremental") is True
        except (ValueError, TypeError, KeyError) as e:
            log.warning(
                "reconcile %s: Glue export record %s is unreadable (%s)", table, storage.shown(path), e
            )
            continue
        loads.append(
            LakeLoad(
                load_id=fields[0],
                kind="glue-export",
                started_us=fields[2],
                version_time_us=fields[1],
                finished_us=fields[3],
                incremental=incremental,
                record=storage.shown(path),
            )
        )
    return loads


def lake_loads(storage: Storage, table: str) -> list[LakeLoad]:
    """Every load of ``table`` the lake has a record of (``ddblake load``'s and the Glue connector's),
    oldest start first; an unreadable record is left out (with a warning for the connector's)."""
    from ddblake.load.state import list_loads

    loads = [_from_state(storage, s) for s in list_loads(storage, table, skip_unreadable=True)]
    connector = _connector_record(storage, table)
    if connector is not None:
        loads.append(connector)
    loads.extend(_glue_export_records(storage, table))
    return sorted(loads, key=lambda x: (x.started_us, x.load_id))


def head_of(table: str, storage: Storage) -> str:
    """How reconcile's messages start: the table and the lake."""
    return f"reconcile of table {table!r} in lake {storage.shown()}"


def pick_load(storage: Storage, table: str, load_id: str | None = None) -> LakeLoad:
    """The load to reconcile against: ``load_id``'s, else the newest finished full load.

    Raises:
        TerminalError: no such load, or it is unfinished or incremental; without ``load_id``, also
            when a load started after the newest finished full load is unfinished. One line naming
            the table, the lake and the load, and what to do.
    """
    loads = lake_loads(storage, table)
    head = head_of(table, storage)
    lake = shlex.quote(storage.shown())
    if load_id is not None:
        named = [x for x in loads if x.load_id == load_id]
        if not named:
            known = ", ".join(x.load_id for x in loads[-5:]) or "none"
            raise TerminalError(
                f"{head}: no load {load_id!r} in the lake's load records (state/load/{table}/; the newest: "
                f"{known}); a Glue job run by an older ddblake left no record of an export-files load: "
                "reload with 'ddblake load' or the Glue job, apply, then reconcile"
            )
        chosen = named[-1]
        _check_whole(head, chosen, table, lake)
        return chosen
    full = [x for x in loads if x.finished_us is not None and not x.incremental]
    if not full:
        unfinished = [x for x in loads if x.finished_us is None]
        more = f" (the {unfinished[-1].describe()} has not finished)" if unfinished else ""
        raise TerminalError(
            f"{head}: no finished full load in the lake{more}; run a full load first ('ddblake load --table "
            f"{table} --lake {lake}', or the Glue load job with --SOURCE connector), then 'ddblake apply "
            f"--table {table} --lake {lake} --once', then reconcile"
        )
    chosen = max(full, key=lambda x: (x.finished_us or 0, x.started_us))
    later = [x for x in loads if x.finished_us is None and x.started_us > chosen.started_us]
    if later:
        raise TerminalError(
            f"{head}: the {later[-1].describe()} started after the newest finished full load "
            f"{chosen.load_id}; finish it (run the same load again), let apply run, then reconcile, or "
            f"reconcile against {chosen.load_id} with --load {chosen.load_id}"
        )
    return chosen


def _check_whole(head: str, load: LakeLoad, table: str, lake: str) -> None:
    if load.incremental:
        raise TerminalError(
            f"{head}: load {load.load_id} is an incremental export: it holds only the items changed in its "
            "window, so every other item would look deleted; reconcile against a full load (a Scan or a "
            "full export)"
        )
    if load.finished_us is None:
        raise TerminalError(
            f"{head}: the {load.describe()} has not finished (record {load.record}); run the same load "
            f"again to finish it, then 'ddblake apply --table {table} --lake {lake} --once', then reconcile"
        )


# --- is the load applied -----------------------------------------------------------------------------

_NAME_TIME = re.compile(
    r"-(\d{4})-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)(?:-(\d{6}))?-[0-9a-fA-F-]{32,36}(?:\.\w+)*$"
)


def _written_us(path: str) -> int | None:
    """When a raw file was written, from its name (ddblake's, the Glue job's, Firehose's); None
    when the name does not say."""
    import calendar

    m = _NAME_TIME.search(path)
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    try:
        seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    except (ValueError, OverflowError):
        return None
    return seconds * 1_000_000 + int(m.group(7) or 0)


def _hour_start_us(path: str) -> int | None:
    import calendar

    from ddblake.lake.applied import hour_of

    try:
        year, month, day, hour = (int(p) for p in hour_of(path).split("/"))
        return calendar.timegm((year, month, day, hour, 0, 0, 0, 0, 0)) * 1_000_000
    except (ValueError, OverflowError):
        return None


def _written_at(path: str) -> int | None:
    """When a raw file was written: by its name, else the start of its hour folder (None: neither
    can be read, so the file may be of any time)."""
    written = _written_us(path)
    return _hour_start_us(path) if written is None else written


def may_hold_load_rows(path: str, finished_us: int) -> bool:
    """Whether a raw file may hold rows of a load that finished at ``finished_us``: written (by its
    name, else by the start of its hour folder) no later than that, give or take :data:`SKEW_US`.
    Reconcile's own files hold REMOVEs only."""
    if _OWN_FILE.search(path.rsplit("/", 1)[-1]):
        return False
    written = _written_at(path)
    return written is None or written <= finished_us + SKEW_US


def unapplied_load_files(lake: LakeConfig, storage: Storage, table: str, load: LakeLoad) -> list[str]:
    """The raw files not yet in both lake tables' applied-file records (what ``status`` counts as
    pending) that may hold the load's rows (:func:`may_hold_load_rows`)."""
    from pyiceberg.exceptions import NoSuchTableError

    from ddblake.lake.applied import PROPERTY, checked_log
    from ddblake.lake.rawlog import list_raw_files

    listing = list_raw_files(storage, table)
    if not listing:
        return []
    catalog = open_catalog(lake, storage, create=False)
    logs: list[AppliedLog | None] = []
    for name in (table_identifier(table), changes_identifier(table)):
        try:
            tbl = catalog.load_table(f"{lake.namespace}.{name}")
        except NoSuchTableError:
            logs.append(None)
            continue
        logs.append(
            checked_log(storage, table, tbl.properties.get(PROPERTY), listing, namespace=lake.namespace)
        )
    finished = load.finished_us or 0
    return [
        p
        for p in listing
        if not all(x is not None and x.contains(p) for x in logs) and may_hold_load_rows(p, finished)
    ]


# --- the run -----------------------------------------------------------------------------------------


def load_row_id(load_id: str) -> re.Pattern[str]:
    """The event IDs of the rows of load ``load_id`` (``load-<id>-<sha1>``, ``export-<id>-<sha1>``),
    matched whole: a prefix test would take ``reload-2``'s rows for ``reload``'s."""
    return re.compile(rf"(?:load|export)-{re.escape(load_id)}-[0-9a-f]{{40}}")


def _in_window(raw_path: str, load: LakeLoad) -> bool:
    """Whether a raw file was written while ``load`` ran (by its name, else its hour folder), give
    or take :data:`SKEW_US`: only such a file can hold the load's rows."""
    written = _written_at(raw_path)
    finished = load.finished_us or 0
    return written is None or load.started_us - SKEW_US <= written <= finished + SKEW_US


def held_keys(storage: Storage, table: str, load: LakeLoad, *, command: str = "reconcile") -> set[str]:
    """Canonical keys whose row of ``load`` apply set aside (its quarantine, ``errors/<table>/apply/``):
    such a key is in the lake without the load's row, so it would look unseen, yet it exists.
    Reconcile leaves these keys alone (a delete may be missed, an item is never removed wrongly).

    Raises:
        TerminalError: a raw file that may hold the load's rows was moved aside unread
            (``errors/<table>/unreadable/``), or a record set aside in the load's time cannot be told
            apart from one of its rows (not a raw-log line, or a whole file's content): which keys
            it held cannot be known; or such a quarantine file is damaged. ``command`` names
            what to run again in the message (``reconcile``, or ``sync --rebootstrap``).
    """
    from ddblake.changes.resolve import key_string
    from ddblake.lake.rawlog import ERRORS_ROOT, RAW_PREFIX, quarantine_prefix, table_prefix
    from ddblake.lake.recovery import UNREADABLE

    head = head_of(table, storage) if command == "reconcile" else f"{command} of table {table!r}"
    raw = table_prefix(table, RAW_PREFIX)
    aside = f"{table_prefix(table, ERRORS_ROOT)}/{UNREADABLE}"
    moved = [p for p in storage.list_files(aside) if _in_window(f"{raw}/{p[len(aside) + 1 :]}", load)]
    if moved:
        raise TerminalError(
            f"{head}: raw file {storage.shown(moved[0])} (and {len(moved) - 1} more) was moved aside "
            f"unread while load {load.load_id} ran; it may hold rows of the load, whose items would look "
            f"deleted. Move it back under raw/ and apply it, then run {command} again"
        )
    mine = load_row_id(load.load_id)
    held: set[str] = set()
    where = quarantine_prefix(table)
    for path in storage.list_files(where):
        if not _in_window(f"{raw}/{path[len(where) + 1 :].removesuffix('.jsonl.gz')}", load):
            continue
        try:
            texts = gzip.decompress(storage.read(path) or b"").decode().splitlines()
        except (OSError, EOFError, ValueError, zlib.error) as e:  # cut or damaged by hand
            raise TerminalError(
                f"{head}: quarantine file {storage.shown(path)}, of the time load {load.load_id} ran, "
                f"cannot be read ({type(e).__name__}): which items it set aside cannot be known. Restore "
                f"or delete it, then run {command} again"
            ) from e
        for text in texts:
            if not text.strip():
                continue
            try:
                record = json.loads(text)
                line = json.loads(record["raw"])
                event_id = line["event_id"]
                if not isinstance(event_id, str):
                    raise TypeError(event_id)
                if mine.fullmatch(event_id):
                    held.add(key_string(line["keys"]))
            except (KeyError, TypeError, ValueError, DdblakeError) as e:
                raise TerminalError(
                    f"{head}: {storage.shown(path)} holds a record apply set aside while load "
                    f"{load.load_id} ran that may be one of its rows, with no key to read "
                    f"({type(e).__name__}); its item would look deleted. Reload (a new full load, "
                    "applied), or delete that quarantine file once you know it holds no row of the "
                    f"load (docs/lake.md, Recovering), then run {command} again"
                ) from e
    return held
