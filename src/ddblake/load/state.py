"""Load state, kept in the lake beside the raw files it describes (``state/load/<table>/``).

One JSON document per load source::

    state/load/<table>/scan.json               the table's Scan load (at most one unfinished at a time)
    state/load/<table>/export-<export id>.json  a load from one export
    state/load/<table>/export-request.json      an export ``--export-to`` started and is waiting for

A load document lists the load's *parts* — Scan segments (``"0"`` .. ``"N-1"``) or export data
files — with, for each, whether it is done, how many items it wrote, and (Scan) the
``LastEvaluatedKey`` after which reading resumes. A Scan segment has an entry only once it has
started (none: not started), and a finished one leaves ``parts`` for ``done_segments``, ranges of
segment numbers with their total items and pages, so the document grows with the segments in
progress, not with ``--segments``. Documents that list every segment (older ddblake) still load:
their unstarted entries are dropped and their finished ones compacted as they are read. It is
rewritten whole with :meth:`Storage.write_atomic` only *after* the raw files it covers are written,
so the lake never holds state ahead of its data, at most once a second while the load runs
(:class:`StateSaver`) and as soon as a Scan segment finishes: a crash costs at most the rows
written since the last state write, which a rerun writes again with the same event IDs (``apply``
drops the repeats), and never a finished segment.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from ddblake.errors import TerminalError
from ddblake.lake.storage import Storage

log = logging.getLogger(__name__)

STATE_VERSION: Final = 1
STATE_WRITE_SECONDS: Final = 1.0
"""Least time between two state writes of a running load (see :class:`StateSaver`)."""
SCAN_STATE: Final = "scan"
EXPORT_REQUEST: Final = "export-request"
GLUE_CONNECTOR: Final = "glue-connector"
GLUE_EXPORT: Final = "glue-export-"
"""The Glue job's record of an export-files load: ``state/load/<table>/glue-export-<export id>.json``."""
"""The Glue job's connector run record (``ddblake.gluejob.job.connector_run``): not a load state."""


def state_prefix(table: str) -> str:
    """``state/load/<table>``, relative to the lake root."""
    return f"state/load/{table}"


def state_path(table: str, name: str) -> str:
    """``state/load/<table>/<name>.json``."""
    return f"{state_prefix(table)}/{name}.json"


def export_state_name(export_id: str) -> str:
    """The state document name of a load from one export."""
    return f"export-{export_id}"


@dataclass
class PartState:
    """Progress of one Scan segment or export data file.

    Attributes:
        done: every item of the part is in a raw file.
        items: rows written to raw files so far.
        pages: Scan pages read (0 for export files).
        last_key: Scan ``LastEvaluatedKey`` (DynamoDB JSON) whose items are all written; None
            before the first page or once done.
    """

    done: bool = False
    items: int = 0
    pages: int = 0
    last_key: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {"done": self.done, "items": self.items, "pages": self.pages, "last_key": self.last_key}


def _range_text(ranges: list[list[int]]) -> str:
    return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in ranges)


def _parse_ranges(text: str) -> list[list[int]]:
    ranges: list[list[int]] = []
    for piece in filter(None, (t.strip() for t in text.split(","))):
        low, _, high = piece.partition("-")
        a, b = int(low), int(high or low)
        if a < 0 or b < a or (ranges and a <= ranges[-1][1]):
            raise ValueError(f"done_segments range {piece!r} is out of order")
        ranges.append([a, b])
    return ranges


class Parts(dict[str, PartState]):
    """Parts by name, plus the finished Scan segments kept compact as number ranges.

    A compacted segment is not an entry; ``parts[name]`` still answers for it with a done
    :class:`PartState` (its own counts are in :attr:`done_items` and :attr:`done_pages` only).
    """

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.done_ranges: list[list[int]] = []
        self.done_items = 0
        self.done_pages = 0

    def __missing__(self, name: str) -> PartState:
        if self.is_compacted(name):
            return PartState(done=True)
        raise KeyError(name)

    def is_compacted(self, name: str) -> bool:
        """Whether ``name`` is a finished segment kept in the ranges."""
        if not name.isdigit() or not self.done_ranges:
            return False
        n = int(name)
        i = bisect.bisect_right(self.done_ranges, [n, 1 << 62]) - 1
        return i >= 0 and self.done_ranges[i][0] <= n <= self.done_ranges[i][1]

    def compact(self, name: str) -> None:
        """Move a finished segment (numeric name) out of the entries into the ranges."""
        part = self.pop(name, None)
        if part is not None:
            self.done_items += part.items
            self.done_pages += part.pages
        if self.is_compacted(name):
            return
        n, ranges = int(name), self.done_ranges
        i = bisect.bisect_left(ranges, [n, n])
        if i > 0 and ranges[i - 1][1] == n - 1:
            ranges[i - 1][1] = n
            if i < len(ranges) and ranges[i][0] == n + 1:
                ranges[i - 1][1] = ranges.pop(i)[1]
        elif i < len(ranges) and ranges[i][0] == n + 1:
            ranges[i][0] = n
        else:
            ranges.insert(i, [n, n])

    @property
    def compacted_count(self) -> int:
        """How many segments the ranges hold."""
        return sum(b - a + 1 for a, b in self.done_ranges)

    def compacted_names(self) -> Iterator[str]:
        """The names of the compacted segments."""
        for a, b in self.done_ranges:
            yield from (str(n) for n in range(a, b + 1))

    def snapshot(self) -> Parts:
        """A copy whose entries and ranges later changes do not reach (cost: entries + ranges)."""
        copy = Parts({k: dataclasses.replace(p) for k, p in self.items()})
        copy.done_ranges = [list(r) for r in self.done_ranges]
        copy.done_items, copy.done_pages = self.done_items, self.done_pages
        return copy


@dataclass
class LoadState:
    """The state of one load.

    Attributes:
        table: DynamoDB table name.
        name: ``scan`` or ``export-<id>`` (the document name).
        kind: ``scan`` or ``export``.
        load_id: the ID in the load's event IDs (Scan: generated once; export: the export's ID).
        started_us: when the load started (Scan) or the export's time (full export), µs.
        version_time_us: the event time of the load's rows (see ``ddblake.load.rows``).
        total_parts: Scan TotalSegments, or the export's data file count.
        parts: progress per part, by part name (Scan: started segments; finished ones compacted,
            see :class:`Parts`).
        finished_us: when the last part was done; None while running.
        source: where the rows come from (the table's endpoint/region, or the export's URI).
        options: settings the rows depend on (consistent reads, export format and type).
    """

    table: str
    name: str
    kind: str
    load_id: str
    started_us: int
    version_time_us: int
    total_parts: int
    parts: Parts = field(default_factory=Parts)
    finished_us: int | None = None
    source: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    updated_us: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.parts, Parts):
            self.parts = Parts(self.parts)

    @property
    def items(self) -> int:
        """Rows written so far, over all parts."""
        return self.parts.done_items + sum(p.items for p in self.parts.values())

    @property
    def done_parts(self) -> set[str]:
        """Names of the parts that are done (a big Scan's can be many: prefer :attr:`done_count`)."""
        return {k for k, p in self.parts.items() if p.done} | set(self.parts.compacted_names())

    @property
    def done_count(self) -> int:
        """How many parts are done."""
        return sum(1 for p in self.parts.values() if p.done) + self.parts.compacted_count

    def is_done(self, name: str) -> bool:
        """Whether the part is done (without creating an entry for it)."""
        part = self.parts.get(name)
        return part.done if part is not None else self.parts.is_compacted(name)

    def part(self, name: str) -> PartState:
        """The part's state, created on first use (a compacted segment's is a done placeholder)."""
        if self.parts.is_compacted(name):
            return self.parts[name]
        return self.parts.setdefault(name, PartState())

    def finish_segment(self, name: str) -> None:
        """Mark a Scan segment done and keep it compact (its counts join ``done_segments``)."""
        part = self.part(name)
        part.done, part.last_key = True, None
        self.parts.compact(name)

    def pending_segments(self) -> list[int]:
        """The Scan segments not done, in order (without an entry per segment)."""
        out: list[int] = []
        start = 0
        for a, b in [*self.parts.done_ranges, [self.total_parts, self.total_parts]]:
            out.extend(n for n in range(start, min(a, self.total_parts)) if not self.is_done(str(n)))
            start = b + 1
        return out

    def to_json(self) -> bytes:
        """The document; parts sorted so that rewrites of one state are byte-identical."""
        doc = {
            "v": STATE_VERSION,
            "table": self.table,
            "name": self.name,
            "kind": self.kind,
            "load_id": self.load_id,
            "started_us": self.started_us,
            "version_time_us": self.version_time_us,
            "total_parts": self.total_parts,
            "finished_us": self.finished_us,
            "updated_us": self.updated_us,
            "source": self.source,
            "options": self.options,
            "items": self.items,
            "parts": {k: self.parts[k].to_dict() for k in sorted(self.parts, key=_part_order)},
        }
        if self.parts.done_ranges:
            doc["done_segments"] = {
                "ranges": _range_text(self.parts.done_ranges),
                "items": self.parts.done_items,
                "pages": self.parts.done_pages,
            }
        return (json.dumps(doc, indent=1, sort_keys=False) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes, *, table: str, where: str) -> LoadState:
        """Parse a stored document.

        Raises:
            TerminalError: not a load state of this table (names the file and what to do).
        """
        fix = f"; if the file is damaged, delete {where} to start this load over"
        try:
            doc = json.loads(data)
            if not isinstance(doc, dict) or doc.get("v") != STATE_VERSION:
                raise ValueError(f"not a version {STATE_VERSION} load state")
            if doc.get("table") != table:
                raise ValueError(f"it belongs to table {doc.get('table')!r}, not {table!r}")
            parts = Parts()
            compact = doc.get("done_segments")
            if compact is not None:
                parts.done_ranges = _parse_ranges(str(compact["ranges"]))
                parts.done_items = int(compact.get("items") or 0)
                parts.done_pages = int(compact.get("pages") or 0)
            for name, p in dict(doc.get("parts") or {}).items():
                last = p.get("last_key")
                if last is not None and not isinstance(last, dict):
                    raise ValueError(f"part {name} has last_key {type(last).__name__}")
                parts[str(name)] = PartState(
                    done=bool(p.get("done")),
                    items=int(p.get("items") or 0),
                    pages=int(p.get("pages") or 0),
                    last_key=last,
                )
            if doc.get("kind") == "scan":  # older documents list every segment: compact them
                for name in [k for k, p in parts.items() if k.isdigit()]:
                    p = parts[name]
                    if p.done:
                        parts.compact(name)
                    elif not (p.items or p.pages or p.last_key):
                        del parts[name]  # never started
            finished = doc.get("finished_us")
            return cls(
                table=table,
                name=str(doc["name"]),
                kind=str(doc["kind"]),
                load_id=str(doc["load_id"]),
                started_us=int(doc["started_us"]),
                version_time_us=int(doc["version_time_us"]),
                total_parts=int(doc["total_parts"]),
                parts=parts,
                finished_us=int(finished) if finished is not None else None,
                source=str(doc.get("source") or ""),
                options=dict(doc.get("options") or {}),
                updated_us=int(doc.get("updated_us") or 0),
            )
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            raise TerminalError(f"load state {where} is unreadable: {e}{fix}") from e


def _part_order(name: str) -> tuple[int, str]:
    return (int(name), "") if name.isdigit() else (1 << 62, name)


def read_state(storage: Storage, table: str, name: str) -> LoadState | None:
    """A stored load state, or None.

    Raises:
        TerminalError: the document exists but cannot be understood.
        TransientError: the lake could not be read.
    """
    path = state_path(table, name)
    data = storage.read_rewritten(path)
    if data is None:
        return None
    return LoadState.from_json(data, table=table, where=storage.shown(path))


def write_state(storage: Storage, state: LoadState) -> None:
    """Write a load state atomically (call only after the raw files it covers are written).

    Raises:
        TransientError: the lake could not be written.
    """
    storage.write_atomic(state_path(state.table, state.name), state.to_json())


class StateSaver:
    """Writes a running load's state at most once per interval, from any thread.

    Every raw-file flush used to rewrite the whole document under the loaders' lock: a document
    that grows with the parts (a 1,000-segment Scan's is about 100 KB), written once per 5 MB of
    rows, while every other worker waited for the write — work quadratic in the load's size. Writes
    are safe to skip, since the state only has to trail the raw files: a crash re-reads at most
    the last interval's rows, which get the same event IDs. So a checkpoint records progress in
    memory (:meth:`changed`) and :meth:`save` writes a copy, outside the loaders' lock, when the
    interval has passed or when forced (the load's end, a stop, an error).
    """

    def __init__(
        self,
        storage: Storage,
        state: LoadState,
        lock: threading.Lock,
        *,
        interval: float = STATE_WRITE_SECONDS,
        write: Callable[[Storage, LoadState], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        stored: bool = True,
    ) -> None:
        """Save ``state``, which callers change only while holding ``lock``.

        ``stored=False`` (no document in the lake yet) makes the first save immediate, so that a
        load's record appears with its first raw file, as ``sync``'s checks expect.
        """
        self.storage = storage
        self.state = state
        self.lock = lock
        self.interval = interval
        self.write = write or write_state
        self.clock = clock
        self._save_lock = threading.Lock()
        self._generation = 0
        self._saved_generation = 0
        self._saved_at = clock()
        self._stored = stored

    def changed(self) -> int:
        """Note a change to the state (call while holding ``lock``); returns its generation."""
        self._generation += 1
        return self._generation

    def save(self, *, force: bool = False, covering: int | None = None) -> None:
        """Write the state if it changed and the interval has passed (or ``force``).

        ``covering``: write now unless a write since made already holds that generation (a finished
        segment: callers finishing at once share one write).

        Raises:
            TransientError: the lake could not be written.
        """
        with self._save_lock:
            if covering is not None:
                if self._saved_generation >= covering:
                    return
                force = True
            force = force or not self._stored
            if self._saved_generation == self._generation and not force:
                return
            if not force and self.clock() - self._saved_at < self.interval:
                return
            with self.lock:
                generation = self._generation
                copy = dataclasses.replace(self.state, parts=self.state.parts.snapshot())
            self.write(self.storage, copy)
            self._saved_generation, self._saved_at, self._stored = generation, self.clock(), True


def list_loads(storage: Storage, table: str, *, skip_unreadable: bool = False) -> list[LoadState]:
    """Every load state of a table (finished or not), oldest start first.

    ``skip_unreadable``: leave out a document that cannot be read instead of raising, for callers
    that only inform (:func:`note_new_full_load`); the command that owns the document reports it.
    """
    states = []
    for path in storage.list_files(state_prefix(table)):
        name = path.rsplit("/", 1)[-1].removesuffix(".json")
        if (
            name in (EXPORT_REQUEST, GLUE_CONNECTOR)
            or name.startswith(GLUE_EXPORT)
            or not path.endswith(".json")
        ):
            continue
        try:
            state = read_state(storage, table, name)
        except TerminalError:
            if not skip_unreadable:
                raise
            continue
        if state is not None:
            states.append(state)
    return sorted(states, key=lambda s: (s.started_us, s.name))


def is_finished_full_load(state: LoadState) -> bool:
    """Whether a load covered the whole table and ran to its end: a Scan or a full export (an
    incremental export holds only the items written in its window)."""
    return state.finished_us is not None and not state.options.get("incremental")


def last_finished_full_load(storage: Storage, table: str) -> LoadState | None:
    """The latest finished full load of a table (:func:`is_finished_full_load`), or None; a document
    that cannot be read is skipped (this only informs).

    Raises:
        TransientError: the lake could not be read.
    """
    finished = [s for s in list_loads(storage, table, skip_unreadable=True) if is_finished_full_load(s)]
    return max(finished, key=lambda s: s.finished_us or 0, default=None)


def utc_text(us: int) -> str:
    """Epoch microseconds as ``2026-12-07T01:02:03Z``, as load messages show times."""
    return dt.datetime.fromtimestamp(us / 1e6, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def reload_level(started_at_us: int | None) -> int:
    """The level of :func:`note_new_full_load`'s line: WARNING for a load a person started, INFO for
    one ``sync`` or a re-bootstrap started on purpose (``started_at_us`` given)."""
    return logging.INFO if started_at_us is not None else logging.WARNING


def note_new_full_load(storage: Storage, table: str, *, level: int = logging.WARNING) -> None:
    """Say so when a new full load starts although one already finished in the lake.

    Rerunning ``ddblake load`` resumes an *unfinished* load; after a finished one the same command
    starts a whole new load, and every one of its rows joins the change history beside the first
    load's (other event IDs, so ``apply`` keeps both). That is legitimate (a deliberate reload), but
    it must not happen unnoticed: the line names the finished load, when it finished, and what
    starting another means.
    """
    finished = last_finished_full_load(storage, table)
    if finished is None:
        return
    log.log(
        level,
        "load %s: the lake already holds a finished load of this table (%s load %s, finished %s); this "
        "starts a NEW full load, whose rows all go into the change history again (rerunning load "
        "resumes only an unfinished load)",
        table,
        finished.kind,
        finished.load_id,
        utc_text(finished.finished_us or 0),
    )
