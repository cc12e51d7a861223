"""The first capture's window: while a shard's trimmed start is skipped rather than a gap.

A first capture (no checkpoint) reads from ``TRIM_HORIZON`` and so skips what the stream trimmed
before it: records more than 24 hours old. That is safe only because they predate the lake's load:
:func:`ddblake.load.handoff.check_first_capture` (and ``settle_first_load`` for a load that follows)
accepts a load at most ``STREAM_SAFE_AGE_US`` (23 h) older than the first capture's start. A trim
seen at time *t* drops records made before *t* − 24 h, so one seen less than an hour after that
start drops only records made before the load; one seen later may drop changes made after it, which
the lake owes. Hence the window, ``horizon_until_us`` in the checkpoint: while it lasts, a shard with
no record read yet is opened at ``TRIM_HORIZON`` (or reopened there when the stream answers that its
start is trimmed); once it has passed, such a shard is known from its start, and a trim is a gap.
Gating on time rather than on "no record of its line read yet" keeps a quiet table's shards, and
their children, from being taken for a first capture's for ever.

Clock: the window's start and every later reading come from this machine's clock, the one the load
check measures the load's age by; AWS trims by its own. Five minutes of the hour are left for AWS's
clock running ahead of this one: a machine *s* more than that behind could skip changes made up to
*s* − 5 minutes after the load. A clock stepped forward ends the window early (a gap reported that
was none: the safe side); a rerun on a clock *d* behind the first capture's sees it end *d* later.
A reading up to ``HORIZON_CLOCK_STEP_US`` earlier than the first capture's start (an NTP step back
just after it began) is still within the window: were it not, the first capture of a stream older
than 24 hours would report its own trimmed start as a gap. A reading earlier still (the window ending
implausibly far after "now": a clock stepped back further, or an edited file) ends the window for
good, as a reading past its end does: kept, it came back when the clock reached it again, hours or
days later, and skipped the trims of changes made long after the load.
"""

from __future__ import annotations

import logging
from typing import Final

from ddblake.capture.checkpoint import Checkpoint, ShardPosition
from ddblake.load.handoff import STREAM_RETENTION_US, STREAM_SAFE_AGE_US

log = logging.getLogger(__name__)

HORIZON_CLOCK_ALLOWANCE_US: Final = 5 * 60_000_000
"""The part of the load check's hour kept for AWS's clock running ahead of this machine's."""
HORIZON_WINDOW_US: Final = STREAM_RETENTION_US - STREAM_SAFE_AGE_US - HORIZON_CLOCK_ALLOWANCE_US
"""How long after a first capture's start a trimmed shard start is skipped, not a gap (55 minutes)."""
HORIZON_CLOCK_STEP_US: Final = 5 * 60_000_000
"""How far a clock reading may fall behind the first capture's start and still count as within its
window (a clock stepped back a little). It lengthens the window by at most as much, as any step back
does: the load check's hour covers it only because AWS's clock rarely runs that far ahead too."""


def horizon_window_end(first_capture_us: int) -> int:
    """``horizon_until_us`` for a first capture that began at ``first_capture_us`` (this clock)."""
    return first_capture_us + HORIZON_WINDOW_US


def open_horizon_window(checkpoint: Checkpoint, now_us: int) -> None:
    """Start a first capture's window at ``now_us``, and record that start for good.

    ``first_capture_us`` outlives the window: what the stream trimmed before the first capture read it
    is older than this start minus 24 hours, so a load older than the start minus 23 hours (the load
    check's bound) could leave changes in neither; the load side needs the start to tell, long after.
    """
    checkpoint.first_capture_us = now_us
    checkpoint.horizon_until_us = horizon_window_end(now_us)


def in_horizon_window(checkpoint: Checkpoint, now_us: int) -> bool:
    """Whether a trimmed start of a shard with no record read is, at ``now_us``, not owed.

    False without ``horizon_until_us`` (a checkpoint from before the window, or one whose window
    ended): every shard the checkpoint lists is then known from its start. False too when the window
    ends implausibly far after ``now_us`` (more than its length plus ``HORIZON_CLOCK_STEP_US``):
    this clock reading cannot be placed in it, and skipping a trim on a doubt could lose changes.
    """
    until = checkpoint.horizon_until_us
    return until is not None and now_us < until <= now_us + HORIZON_WINDOW_US + HORIZON_CLOCK_STEP_US


def opens_at_horizon(checkpoint: Checkpoint, pos: ShardPosition, overtaken: str | None, now_us: int) -> bool:
    """Whether a shard is (re)opened at ``TRIM_HORIZON`` rather than at its start or after ``seq``.

    Only within the window: a shard with no record read yet if marked ``horizon``; one read up to
    ``seq`` if the stream answered that its records after ``seq`` are trimmed (``overtaken``, the
    ``seq`` it answered so for, kept by the consumer for the run only: the first record read moves
    ``seq`` past it). Anything trimmed within the window predates the lake's load, whether or not a
    record of the shard was read before it (a first capture stopped and rerun minutes later, or the
    trim overtaking it on a busy table), and ``TRIM_HORIZON`` then lies past ``seq``.
    """
    if not in_horizon_window(checkpoint, now_us):
        return False
    return pos.horizon if pos.seq is None else overtaken == pos.seq


def starts_at_horizon(checkpoint: Checkpoint, parent_id: str | None, now_us: int) -> bool:
    """Whether a shard first seen now, child of ``parent_id``, is opened at ``TRIM_HORIZON``.

    Only within the window, and only when the checkpoint does not know its parent (none, or one
    trimmed before the lake knew it): a known parent's child is opened at its start, so that if the
    window ends before it is read, nothing trimmed of it is skipped. (Within the window a trim there
    reopens it at ``TRIM_HORIZON`` all the same.)
    """
    return in_horizon_window(checkpoint, now_us) and (parent_id or "") not in checkpoint.shards


def end_horizon_window(checkpoint: Checkpoint, now_us: int) -> bool:
    """Once the window is not honoured, drop it and every shard's ``horizon`` mark; True if changed.

    That is a clock reading at or after its end, or one it cannot place (the window ending
    implausibly far ahead, see :func:`in_horizon_window`: the clock stepped back by more than
    :data:`HORIZON_CLOCK_STEP_US`). Kept in that case, the window came back when the clock reached it
    again, hours or days later, and skipped trims of changes made long after the load. Ending it is
    the safe side: at worst a trimmed start then met is reported as a gap.

    The checkpoint then reads as one from before the window existed, by this version and by an older
    ddblake alike (one that honours the marks would otherwise open those shards at ``TRIM_HORIZON``
    for ever). Marks without a window (written by a version that had no window) are dropped too: when
    they were set is unknown, so the shards are taken as known from their start.
    """
    until = checkpoint.horizon_until_us
    if until is not None and in_horizon_window(checkpoint, now_us):
        return False
    marked = [pos for pos in checkpoint.shards.values() if pos.horizon]
    if checkpoint.horizon_until_us is None and not marked:
        return False
    checkpoint.horizon_until_us = None
    for pos in marked:
        pos.horizon = False
    log.info(
        "capture %s: the first capture's window has ended: a shard not read yet is known from its start "
        "(a trim there is a gap)",
        checkpoint.table,
    )
    return True
