"""One apply batch read from the raw log: good events (images as text), bad lines with reasons.

Apply reads a batch's lines through :func:`ddblake.changes.rawline.read_line`: each event is kept
without its images, whose text :class:`ImageTexts` holds. Parsed images are the bulk of a batch's
memory (a dict per attribute value: some ten times the text), and the tables only ever need their
text — the history stores it, the current state stores it and types its columns from it.
"""

from __future__ import annotations

import contextlib
import gc
import gzip
import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyarrow as pa

from ddblake.changes import rawline
from ddblake.changes.model import ChangeEvent
from ddblake.changes.resolve import Keyed, key_string
from ddblake.errors import BadRecordError
from ddblake.lake.rawlog import RAW_PREFIX, quarantine_prefix, read_raw_file, table_prefix
from ddblake.lake.storage import Storage

log = logging.getLogger(__name__)

_paused = 0
_paused_lock = threading.Lock()
_was_enabled = False


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while a batch is built and committed.

    A batch holds hundreds of thousands of small containers (events, their key dicts, rows) until it
    ends. Each full pass of the collector walks every one of them, and passes come more often as the
    heap grows: in a 200,000-row load batch they took half the time spent reading the raw files,
    and freed nothing, since a batch makes no reference cycles to speak of. Reference counting
    still frees everything as the batch ends; the collector resumes then, when the last of
    overlapping batches (threads applying other tables) is done, and only if it was on before.
    """
    global _paused, _was_enabled
    with _paused_lock:
        if _paused == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _paused += 1
    try:
        yield
    finally:
        with _paused_lock:
            _paused -= 1
            if _paused == 0 and _was_enabled:
                gc.enable()


def release_arrow_memory() -> None:
    """Give the memory Arrow freed back to the system, between batches.

    Arrow's allocator keeps what a batch freed for later allocations, so an idle ``apply`` or
    ``sync`` held its last batch's peak: 1.2-1.6 GB after 200,000-row load batches, where 0.5 GB
    is what it needs (bench/collector.py). A batch's peak is unchanged.
    """
    pa.default_memory_pool().release_unused()


@dataclass
class FileBatch:
    """The events of some raw files, the file each came from, and the lines quarantined."""

    events: list[ChangeEvent] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)  # each event's canonical key (resolve.key_string)
    sources: list[str] = field(default_factory=list)
    bad: list[dict[str, Any]] = field(default_factory=list)

    def clear(self) -> None:
        """Drop the events, keys and sources (the quarantined lines stay)."""
        self.events.clear()
        self.keys.clear()
        self.sources.clear()


class ImageTexts:
    """Each event's images as compact JSON text, shared by the history and the current state."""

    def __init__(self) -> None:
        # By identity; the event is held too, so that its id cannot be reused while this lives.
        self._texts: dict[int, tuple[ChangeEvent, str | None, str | None]] = {}

    def clear(self) -> None:
        """Drop every text held (the batch's largest part) once nothing will ask for them."""
        self._texts.clear()

    def keep(self, ev: ChangeEvent, new: str | None, old: str | None) -> ChangeEvent:
        """Hold the texts of ``ev``'s images (``ev`` itself may be kept without them)."""
        self._texts[id(ev)] = (ev, new, old)
        return ev

    def slim(self, ev: ChangeEvent) -> ChangeEvent:
        """``ev`` without its images, which this keeps as text."""
        return self.keep(rawline.slim(ev), rawline.render(ev.new_image), rawline.render(ev.old_image))

    def _known(self, ev: ChangeEvent) -> tuple[ChangeEvent, str | None, str | None]:
        known = self._texts.get(id(ev))
        if known is None:  # an event that did not come through here (one rebuilt from the history)
            known = (ev, rawline.render(ev.new_image), rawline.render(ev.old_image))
            self._texts[id(ev)] = known
        return known

    def __call__(self, ev: ChangeEvent) -> str | None:
        """The new image's text (None for none)."""
        return self._known(ev)[1]

    def old(self, ev: ChangeEvent) -> str | None:
        """The old image's text (None for none)."""
        return self._known(ev)[2]


def distinct(items: Iterable[tuple[Keyed, str]]) -> tuple[list[Keyed], list[str]]:
    """Changes without repeated event IDs (first one wins, as ``keyed`` does), with their files."""
    seen: set[str] = set()
    changes: list[Keyed] = []
    files: list[str] = []
    for change, source in items:
        event_id = change.event.event_id
        if event_id in seen:
            continue
        seen.add(event_id)
        changes.append(change)
        files.append(source)
    return changes, files


def read_raw(
    storage: Storage, path: str, table: str, batch: FileBatch, texts: ImageTexts | None = None
) -> int:
    """Parse one raw file; bad lines (and a damaged tail) go to ``batch.bad`` with their reason.

    With ``texts``, events are kept without their images (their text is in ``texts``); without,
    events are whole (for tools and tests). Returns the bytes of the file's lines (uncompressed),
    what apply bounds a batch by.
    """
    content = read_raw_file(storage, path)
    for number, line in enumerate(content.lines, start=1):
        try:
            if texts is None:
                ev = ChangeEvent.from_line(line)
                has_new = ev.new_image is not None
            else:
                ev, new_text, old_text = rawline.read_line(line)
                has_new = new_text is not None
            if ev.table != table:
                raise BadRecordError(f"line belongs to table {ev.table!r}, not {table!r}")
            if ev.op != "REMOVE" and not has_new:
                raise BadRecordError(f"{ev.op} line has no new image (is the stream KEYS_ONLY?)")
            key = key_string(ev.keys)  # here, so a key that cannot be keyed is this line's problem
        except BadRecordError as e:
            batch.bad.append(
                {"file": path, "line": number, "reason": str(e), "raw": line.decode("utf-8", "replace")}
            )
            continue
        batch.events.append(ev if texts is None else texts.keep(ev, new_text, old_text))
        batch.keys.append(key)
        batch.sources.append(path)
    if content.error is not None:
        batch.bad.append({"file": path, "line": None, "reason": f"raw file {content.error}", "raw": None})
    return sum(map(len, content.lines))


class BatchLimits(Protocol):
    """How big a batch may grow (:class:`ddblake.lake.apply.ApplyConfig` has both)."""

    @property
    def max_events(self) -> int:
        """Events a batch stops at, once at least one file is read."""
        ...

    @property
    def max_bytes(self) -> int:
        """Bytes of raw lines a batch stops at."""
        ...


def read_batch(
    storage: Storage, table: str, paths: list[str], limits: BatchLimits, pending: int
) -> tuple[FileBatch, ImageTexts, list[str]]:
    """Read raw files in order until the batch holds ``limits.max_events`` events or
    ``limits.max_bytes`` of lines (at least one file); returns the batch, its image texts and the
    files read. The rest wait for the next batch. ``pending``: the backlog, for the DEBUG line."""
    batch, texts = FileBatch(), ImageTexts()
    line_bytes, clock = 0, time.monotonic()
    for count, path in enumerate(paths, start=1):
        line_bytes += read_raw(storage, path, table, batch, texts)
        if count < len(paths) and (len(batch.events) >= limits.max_events or line_bytes >= limits.max_bytes):
            paths = paths[:count]
            break
    log.debug(
        "table %s: batch of %d raw file(s) (%d pending): %d event(s), %d bad line(s), %.1f MB read in %.2f s",
        table,
        len(paths),
        pending,
        len(batch.events),
        len(batch.bad),
        line_bytes / 1e6,
        time.monotonic() - clock,
    )
    return batch, texts, paths


def quarantine(storage: Storage, table: str, bad: list[dict[str, Any]]) -> None:
    """Write bad records under ``errors/<table>/apply/``, one file per raw file, named after it."""
    by_file: dict[str, list[dict[str, Any]]] = {}
    for rec in bad:
        by_file.setdefault(rec["file"], []).append(rec)
    for path, records in by_file.items():
        tail = path.split(f"{table_prefix(table, RAW_PREFIX)}/", 1)[-1]
        body = "".join(json.dumps({"table": table, **r}, ensure_ascii=False) + "\n" for r in records)
        where = f"{quarantine_prefix(table)}/{tail}.jsonl.gz"
        storage.write_atomic(where, gzip.compress(body.encode(), mtime=0))
