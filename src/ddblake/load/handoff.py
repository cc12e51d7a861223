"""The hand-off between a table's load and its stream: checks that nothing falls between them.

The lake holds a table as of its newest finished load; every later change has to come from the
stream, which DynamoDB keeps 24 hours and which holds only changes made after it was enabled. These
checks refuse a first capture, or a ``sync``, that would leave changes in neither (a load too old for
the stream's reach, a stream enabled after the load), and keep ``sync``'s first-load marker
(``state/sync/<table>/first-load.json``: how far back the stream has been read while a first load
is not finished). docs/load.md, *Hand-off to capture*, describes the whole.
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
from typing import Final

from ddblake.errors import TerminalError
from ddblake.lake.storage import Storage
from ddblake.load.state import LoadState, is_finished_full_load, list_loads


def has_finished_load(storage: Storage, table: str) -> bool:
    """Whether any load of the whole table ran to its end (``sync`` loads a table only when not).

    An incremental export holds only the items written in its window, so it does not count.
    """
    return any(is_finished_full_load(s) for s in list_loads(storage, table))


STREAM_RETENTION_US: Final = 24 * 3_600_000_000
"""How long DynamoDB Streams keeps a record: older ones may be trimmed at any moment."""
STREAM_SAFE_AGE_US: Final = STREAM_RETENTION_US - 3_600_000_000
"""The oldest time a first capture can still count on reading from: an hour inside the retention,
for clock skew and for the time a first read of every shard takes."""


def covered_until_us(state: LoadState) -> int | None:
    """The time up to which a finished load holds the table (None: not known)."""
    if state.options.get("incremental"):
        return _option_us(state, "covers_until_us")
    return state.started_us


def covered_from_us(state: LoadState) -> int | None:
    """Where an incremental export's window starts (None: not known, or not an incremental export)."""
    return _option_us(state, "covers_from_us") if state.options.get("incremental") else None


def _option_us(state: LoadState, name: str) -> int | None:
    value = state.options.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def stream_needed_from(
    states: list[LoadState], *, full_load_follows: str | None = None
) -> tuple[LoadState, int] | None:
    """The load whose time the stream must still reach back to, and that time (None: no load).

    The lake holds the table as of its newest finished full load; an incremental export carries it
    on to its window's end only when its window starts at or before the time reached so far (its
    ``exportFromTime``; one starting later leaves the changes in between in neither, and one that
    recorded no start, loaded by an older ddblake, is not counted). Changes after the time reached
    can only come from the stream. With no finished full load, the newest finished incremental
    export's end counts, as before; with none finished at all, an unfinished load resumes, and the
    changes after its start must come from the stream too.

    ``full_load_follows``: the kind of full load (``LoadConfig.kind``: sync's first) about to
    run. With no full load finished, incremental exports do not count then (one alone does not hold
    the table), nor do unfinished loads the run does not resume: a Scan resumes the unfinished
    Scan; an export run resumes only its own export, whose time sync checks itself
    (``ddblake.sync.check_export_source``).
    """
    finished = [s for s in states if s.finished_us is not None]
    full = [(s, s.started_us) for s in finished if not s.options.get("incremental")]
    if full:
        reached = max(full, key=lambda st: st[1])
        windows = sorted(
            (
                (start, end, s)
                for s in finished
                if (start := covered_from_us(s)) is not None and (end := covered_until_us(s)) is not None
            ),
            key=lambda w: (w[0], w[1]),  # never the states: one window exported twice ties
        )
        for start, end, s in windows:  # by start: each one that joins on carries the time forward
            if start <= reached[1] < end:
                reached = (s, end)
        return reached
    ends = [(s, t) for s in finished if (t := covered_until_us(s)) is not None]
    if ends and not full_load_follows:
        return max(ends, key=lambda st: st[1])
    unfinished = [
        (s, s.started_us)
        for s in states
        if s.finished_us is None and (full_load_follows is None or (full_load_follows == "scan" == s.kind))
    ]
    return min(unfinished, key=lambda st: st[1]) if unfinished else None


def unjoined_exports(states: list[LoadState], reached_us: int) -> list[LoadState]:
    """Finished incremental exports that do not join on at ``reached_us`` (their window starts after
    it, or its start is not known): the refusals name them, as loading them did not close the gap."""
    return [
        s
        for s in states
        if s.finished_us is not None
        and s.options.get("incremental")
        and (covered_until_us(s) or 0) > reached_us
        and ((start := covered_from_us(s)) is None or start > reached_us)
    ]


def _unjoined_note(states: list[LoadState], reached_us: int) -> str:
    """The sentence naming the first export :func:`unjoined_exports` finds, or nothing."""
    left = unjoined_exports(states, reached_us)
    if not left:
        return ""
    first = min(left, key=lambda s: covered_from_us(s) or 0)
    start = covered_from_us(first)
    when = f"starts at {utc_text(start)}" if start is not None else "has no recorded start"
    return (
        f" (incremental export {first.load_id} was loaded but its window {when}, so it does not "
        "join on to the load: the changes in between are in neither)"
    )


def utc_text(us: int) -> str:
    """A µs epoch time as ``2026-12-05 08:00:00 UTC`` for messages."""
    return dt.datetime.fromtimestamp(us / 1e6, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def check_first_capture(
    storage: Storage, table: str, now_us: int, *, full_load_follows: str | None = None
) -> None:
    """Refuse a table's first capture when the stream no longer reaches back to its load.

    Capture with no checkpoint starts at each shard's trim horizon, 24 hours back at most. A load
    older than that (a ``ddblake load`` run days before the first ``sync``) leaves the changes made
    between it and the trim horizon in neither the load nor the stream: silently, if nothing
    checked. (``sync``'s own load is safe: capture starts before it; ``full_load_follows`` says one
    is about to run, see :func:`stream_needed_from`.)

    Raises:
        TerminalError: the load is too old; the message says what to run instead.
    """
    states = list_loads(storage, table)
    needed = stream_needed_from(states, full_load_follows=full_load_follows)
    if needed is None or needed[1] >= now_us - STREAM_SAFE_AGE_US:
        return
    state, since = needed
    note = _unjoined_note(states, since)
    raise TerminalError(
        f"table {table!r}: the lake holds the table as of its load {state.load_id} ({utc_text(since)}), more "
        f"than {STREAM_SAFE_AGE_US // 3_600_000_000} hours ago, and has no capture checkpoint; DynamoDB "
        f"Streams keeps 24 hours, so changes made in between would be in neither{note}. Run `ddblake sync "
        f"--table {table} --lake L --rebootstrap` (a new load, then the stream), or load an incremental "
        "export from that time to now with `ddblake load --from-export`, then capture"
    )


EXPORT_AFTER_CAPTURE_SLACK_US: Final = 5 * 60_000_000
"""How much older than :data:`STREAM_SAFE_AGE_US` before a first capture's start an export may be:
the first capture's window (:mod:`ddblake.capture.horizon`) reopens at the trim horizon only what is
older than that, and ``sync`` checks its export against a time taken just before its capture began."""


def check_export_follows_capture(storage: Storage, table: str, export_id: str, export_time_us: int) -> None:
    """Refuse a full export older than the lake's capture of the table can follow on from.

    A capture began (its checkpoint records when): the stream was read from its trim horizon then,
    24 hours back at most. A full export taken more than 23 hours before that (``ddblake capture``
    first, then ``ddblake load --from-export`` of an old export) leaves the changes made between it
    and the stream's reach in neither, and its rows would bring back items deleted meanwhile. sync
    checks its own export against the time its capture starts (:func:`ddblake.sync.check_export_source`);
    this covers a load run by hand. A checkpoint that does not record its start (written by an older
    ddblake) is not checked.

    Raises:
        TerminalError: the export is too old; names both times and what to do.
    """
    from ddblake.capture.checkpoint import first_capture_us

    began = first_capture_us(storage, table)
    if began is None or export_time_us >= began - STREAM_SAFE_AGE_US - EXPORT_AFTER_CAPTURE_SLACK_US:
        return
    lake = shlex.quote(storage.shown())
    raise TerminalError(
        f"table {table!r}: export {export_id} was taken at {utc_text(export_time_us)}, more than "
        f"{STREAM_SAFE_AGE_US // 3_600_000_000} hours before this lake began capturing the table's stream "
        f"({utc_text(began)}), so changes made in between would be in neither and its rows could bring "
        "back items deleted since; load a full export taken after "
        f"{utc_text(began - STREAM_SAFE_AGE_US)}, or run 'ddblake sync --table {table} --lake {lake} "
        "--rebootstrap' (new stream positions, then a new load)"
    )


# --- sync's first load ----------------------------------------------------------------------------


def first_load_path(table: str) -> str:
    """``state/sync/<table>/first-load.json``: sync's first load of the table has begun, not finished.

    It holds ``started_us``: since then capture has been reading the stream (or will, from its trim
    horizon, on its first start), so the stream reaches back to 24 hours before it. Without it, a
    first load that failed before writing a state of its own would leave a capture checkpoint and
    no load, and the next ``sync`` would take the table for loaded.
    """
    return f"state/sync/{table}/first-load.json"


def first_load_started(storage: Storage, table: str) -> int | None:
    """When (epoch µs) the stream reading of an unfinished first load by sync began, or None.

    Raises:
        TerminalError: the marker is damaged (names it and what to do).
    """
    data = storage.read(first_load_path(table))
    if data is None:
        return None
    try:
        started = json.loads(data)["started_us"]
    except (ValueError, TypeError, KeyError):
        started = None
    if not isinstance(started, int) or isinstance(started, bool):
        lake = shlex.quote(storage.shown())
        raise TerminalError(
            f"table {table!r}: {storage.shown(first_load_path(table))} is damaged; delete it and run "
            f"'ddblake sync --table {table} --lake {lake} --rebootstrap' (a new load, then the stream)"
        )
    return started


def mark_first_load(storage: Storage, table: str, started_us: int) -> None:
    """Write (or move forward) the first-load marker: the stream is read from ``started_us`` on."""
    storage.write_atomic(first_load_path(table), json.dumps({"started_us": started_us}).encode())


def restamp_first_load(storage: Storage, table: str, now_us: int) -> None:
    """A first capture (no checkpoint) starts reading at the trim horizon *now*: a marker left by an
    earlier sync that never checkpointed moves forward to now, so no export is checked against a
    reach the stream no longer has."""
    if storage.read(first_load_path(table)) is not None:
        mark_first_load(storage, table, now_us)


def settle_first_load(storage: Storage, table: str, began_us: int) -> None:
    """A load finished since sync's first load began (that one, or a ``ddblake load`` run by hand):
    check that the stream, read since ``began_us``, follows on from it, then drop the marker.

    Raises:
        TerminalError: the finished load holds the table as of a time the stream no longer
            reaches; the changes in between would be in neither.
    """
    states = list_loads(storage, table)
    needed = stream_needed_from(states)
    if needed is not None and needed[1] < began_us - STREAM_SAFE_AGE_US:
        state, since = needed
        lake = shlex.quote(storage.shown())
        raise TerminalError(
            f"table {table!r}: load {state.load_id} holds the table as of {utc_text(since)}, but the "
            f"stream has been read only since {utc_text(began_us)} and keeps 24 hours, so changes in "
            f"between would be in neither{_unjoined_note(states, since)}; run 'ddblake sync --table "
            f"{table} --lake {lake} --rebootstrap' (a new load, then the stream)"
        )
    storage.delete(first_load_path(table))


STREAM_LABEL_SKEW_US: Final = 60_000_000
"""How much later than a Scan load's time a stream's creation may look and still be taken as older:
the two times come from different clocks (this machine's, AWS's); Scan load versions allow a minute
too."""
EXPORT_LABEL_SKEW_US: Final = 0
"""The same allowance for an export's time: none. It and the stream's label both come from AWS's
clock, to the millisecond, so a stream whose label is later than the export's time by any amount
was enabled after it, and the changes made in between are in neither the export nor the stream."""


def label_skew_us(kind: str) -> int:
    """:data:`EXPORT_LABEL_SKEW_US` for a load of kind ``export``, else :data:`STREAM_LABEL_SKEW_US`."""
    return EXPORT_LABEL_SKEW_US if kind == "export" else STREAM_LABEL_SKEW_US


def stream_created_us(stream_arn: str) -> int | None:
    """A stream's creation time, from its label (``.../stream/2026-12-05T08:00:00.123``); None if the
    ARN carries no parsable label."""
    label = stream_arn.rsplit("/stream/", 1)[-1] if "/stream/" in stream_arn else ""
    try:
        when = dt.datetime.fromisoformat(label.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp() * 1_000_000)


def check_stream_follows_load(storage: Storage, table: str, stream_arn: str) -> None:
    """Refuse a first capture from a stream created after the lake's load.

    A stream holds only the changes made after it was enabled: a load taken before that (a table
    whose stream was enabled after ``ddblake load``, or after a ``sync`` that failed on a table
    without one) leaves the changes in between in neither.

    Raises:
        TerminalError: the stream is younger than the load; names both and what to run.
    """
    states = list_loads(storage, table)
    needed = stream_needed_from(states)
    created = stream_created_us(stream_arn)
    if needed is None or created is None or created <= needed[1] + label_skew_us(needed[0].kind):
        return
    state, since = needed
    lake = shlex.quote(storage.shown())
    note = _unjoined_note(states, since)
    raise TerminalError(
        f"table {table!r}: its stream {stream_arn} was enabled at {utc_text(created)}, after the lake's load "
        f"{state.load_id} ({utc_text(since)}), so changes made in between are in neither{note}; run "
        f"'ddblake sync --table {table} --lake {lake} --rebootstrap' (new stream positions, then a new "
        "load), or load an incremental export from the load's time to now with `ddblake load --from-export`, "
        "then capture"
    )
