"""What the change history already holds of a batch: its events (so none is appended twice) and
the newer REMOVEs that keep deleted items deleted (tombstones).

The plain way reads the event IDs of every history row in the batch's event-time range
(:func:`event_ids`). For stream changes that range is a few seconds or minutes of history. Load
rows, though, all carry their load's one event time, so each batch of a load read the IDs of every
earlier row of that load: applying a load of N rows read on the order of N² IDs in all.

Most events can be cleared without reading any ID (:class:`Screen`). An event E of key K and
version V is in the history only if the raw file it came in, F, was applied to the history. Then
either:

* F is not yet applied to the current state (a crash fell between the two commits): F is then
  pending for the current state, so it is in this batch and its events are at hand; or
* F is applied to the current state too. Applying E (or a newer change that beat it) left K at a
  version at least V, and the current state's versions only grow, so the current state holds K
  now, unless a REMOVE of version at least V deleted it, and that REMOVE is in the history
  (apply appends every change to the history before the current state sees it).

So only events whose key the current state holds, or whose key has a REMOVE at or above their
version in the history, need the ID scan. The REMOVE scan (:func:`absent_removes`) skips, by the
``op`` column's bounds, every file without a REMOVE, such as all of a load's. A batch of new keys
reads no event IDs at all.

The first case needs every such F at hand. When the history's record of applied files holds one
that is neither applied to the current state nor in this batch (say, the current-state table was
dropped), the screen is not used (:func:`screen`).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.expressions import And
from pyiceberg.table import Table

from ddblake.changes.model import ChangeEvent
from ddblake.changes.resolve import Keyed
from ddblake.lake.applied import AppliedLog
from ddblake.lake.filters import at_least, between, equals, is_in


def _iso(us: int) -> str:
    return str(pa.scalar(us, pa.timestamp("us", tz="UTC")).as_py().isoformat())


def event_ids(hist: Table, changes: Sequence[Keyed]) -> set[str]:
    """Event IDs of ``changes`` already in the history, by reading those in their time range."""
    if not changes or hist.current_snapshot() is None:
        return set()
    times = [c.event.event_time_us for c in changes]
    scan = hist.scan(
        row_filter=between("event_time", _iso(min(times)), _iso(max(times))),
        selected_fields=("event_id",),
    )
    ids = scan.to_arrow().column("event_id")
    wanted = pa.array([c.event.event_id for c in changes], pa.string())
    return set(pc.filter(ids, pc.is_in(ids, value_set=wanted)).to_pylist())


def newest_removes(hist: Table, keys: Collection[str], since_us: int) -> dict[str, str]:
    """For each of ``keys`` with a REMOVE in the history at or after ``since_us``: its newest version.

    Only REMOVE rows are read, keys and versions: the scan skips unread every file whose ``op``
    bounds hold no REMOVE (a load's, an insert-only stretch's).
    """
    if not keys or hist.current_snapshot() is None:
        return {}
    since = And(at_least("event_time", _iso(since_us)), equals("op", "REMOVE"))
    rows = hist.scan(row_filter=since, selected_fields=("_ddb_key", "_ddb_version")).to_arrow()
    if rows.num_rows == 0:
        return {}
    rows = rows.filter(pc.is_in(rows.column("_ddb_key"), value_set=pa.array(list(keys), pa.string())))
    newest: dict[str, str] = {}
    for key, version in zip(
        rows.column("_ddb_key").to_pylist(), rows.column("_ddb_version").to_pylist(), strict=True
    ):
        if version > newest.get(key, ""):
            newest[key] = version
    return newest


def absent_removes(hist: Table, events: Iterable[Keyed], present: Collection[str]) -> dict[str, str]:
    """:func:`newest_removes` of the keys of ``events`` that are not ``present``, since their oldest event.

    One scan serves a batch twice: the duplicate screen (:func:`known_ids`) and the tombstones
    (:func:`newer_removes`). Both look only at keys the current state lacks, at or after their
    events; the REMOVEs the history commit appends in between never outrank the batch's own
    newest change of a key, so reading before that commit misses nothing either needs.
    """
    keys: set[str] = set()
    since: int | None = None
    for change in events:
        if change.key not in present:
            keys.add(change.key)
            t = change.event.event_time_us
            since = t if since is None or t < since else since
    return newest_removes(hist, keys, since) if since is not None else {}


def newer_removes(
    hist: Table, candidates: Mapping[str, Keyed], table: str, newest: Mapping[str, str]
) -> dict[str, Keyed]:
    """For keys absent from the current state: their newest REMOVE in the history, if newer than theirs.

    The history is the tombstone store: a REMOVE found here that is newer than a late change
    keeps the item deleted. Only REMOVE rows can matter for a key the current state lacks (a
    newer upsert not yet in the current state comes from files still to apply, which bring it
    themselves), so the scan is pruned by event time and by ``op``: the files of a load or of
    an insert-only stretch hold no REMOVE, and their column bounds let the scan skip them
    unread, however many rows the history holds since the batch's oldest change.

    ``newest`` is :func:`absent_removes` of the batch (keys and versions only: usually no
    candidate has a newer change, and the rest of those rows is then never read).
    """
    newest_version = {
        key: version
        for key, version in newest.items()
        if key in candidates and version > candidates[key].version
    }
    if not newest_version or hist.current_snapshot() is None:
        return {}
    lo = min(candidates[key].event.event_time_us for key in newest_version)
    since = And(at_least("event_time", _iso(lo)), equals("op", "REMOVE"))
    cols = (
        "_ddb_key",
        "_ddb_version",
        "op",
        "keys",
        "event_id",
        "event_time",
        "source",
        "ttl",
    )
    found = hist.scan(
        row_filter=And(since, is_in("_ddb_version", newest_version.values())), selected_fields=cols
    ).to_arrow()
    chosen = pa.array(list(newest_version.values()), pa.string())
    found = found.filter(pc.is_in(found.column("_ddb_version"), value_set=chosen))
    rows: dict[str, dict[str, Any]] = {}
    for row in found.to_pylist():
        key = row["_ddb_key"]
        if newest_version.get(key) == row["_ddb_version"]:
            rows[key] = row
    out: dict[str, Keyed] = {}
    for key, row in rows.items():
        ev = ChangeEvent(
            op=row["op"],
            table=table,
            keys=json.loads(row["keys"]),
            new_image=None,  # a REMOVE: only its version and key matter here
            old_image=None,
            event_id=row["event_id"],
            event_time_us=int(row["_ddb_version"].split(":", 1)[0]),
            sequence=None,
            source=row["source"],
            ttl=bool(row["ttl"]),
            ingested_us=0,
        )
        out[key] = Keyed(key, row["_ddb_version"], ev)
    return out


@dataclass(frozen=True)
class Screen:
    """What clears events without an ID scan (see the module's docstring).

    Attributes:
        looked_up: the keys whose presence in the current state is known (``present``'s domain).
        present: of those, the keys the current state holds (their version).
        pending_ids: event IDs of this batch's events that came in files the history has applied
            and the current state has not.
        removes: :func:`absent_removes` of the batch's events: the newest REMOVE of each key
            ``present`` lacks.
    """

    looked_up: Collection[str]
    present: Mapping[str, str]
    pending_ids: frozenset[str]
    removes: Mapping[str, str] = field(default_factory=dict)


def screen(
    hist_log: AppliedLog,
    cur_log: AppliedLog,
    cur_files: Collection[str],
    batch: Iterable[tuple[Keyed, str]],
    looked_up: Collection[str],
    present: Mapping[str, str],
    removes: Mapping[str, str] | None = None,
    listing: Iterable[str] = (),
) -> Screen | None:
    """The screen for a batch, or None when a file the history applied is out of reach.

    Args:
        hist_log, cur_log: the two tables' records of applied files.
        cur_files: the batch's files still to apply to the current state.
        batch: the batch's events pending for the current state, with their files.
        looked_up, present, removes: as :class:`Screen`.
        listing: the table's raw files: one the history holds by a folded hour (not by name) may be
            pending for the current state too, after a crash between the commits.
    """
    if hist_log.before_hour > cur_log.before_hour:
        return None  # hours folded in the history only: their files cannot be listed
    pending = set(cur_files)
    if any(not cur_log.contains(p) and p not in pending for p in hist_log.files):
        return None
    if any(hist_log.contains(p) and not cur_log.contains(p) and p not in pending for p in listing):
        return None
    ids = frozenset(c.event.event_id for c, source in batch if hist_log.contains(source))
    return Screen(looked_up, present, ids, removes or {})


def known_ids(hist: Table, changes: Sequence[Keyed], screen: Screen | None = None) -> set[str]:
    """Event IDs of ``changes`` already in the history; with ``screen``, reading as few as it allows."""
    if not changes or hist.current_snapshot() is None:
        return set()
    if screen is None:
        return event_ids(hist, changes)
    known: set[str] = set()
    maybe: list[Keyed] = []  # their key is in the current state: look for them
    absent: list[Keyed] = []  # not: look for them only under a REMOVE at or above them
    pending, present, looked_up = screen.pending_ids, screen.present, screen.looked_up
    for change in changes:  # one pass: a load's batch holds hundreds of thousands
        event_id, key = change.event.event_id, change.key
        if event_id in pending:
            known.add(event_id)
        elif key not in looked_up:
            return event_ids(hist, changes)  # a key the screen knows nothing of
        elif key in present:
            maybe.append(change)
        else:
            absent.append(change)
    removes = screen.removes
    if removes:
        maybe += [c for c in absent if removes.get(c.key, "") >= c.version]
    return known | event_ids(hist, maybe)
