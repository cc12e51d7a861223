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
A clock reading earlier than the first capture's start (the window ending more than its own length
after "now") counts as past it.
"""

from __future__ import annotations

import logging
from typing import Final

from ddblake.capture.checkpoint import Checkpoint
from ddblake.load.handoff import STREAM_RETENTION_US, STREAM_SAFE_AGE_US

log = logging.getLogger(__name__)

HORIZON_CLOCK_ALLOWANCE_US: Final = 5 * 60_000_000
"""The part of the load check's hour kept for AWS's clock running ahead of this machine's."""
HORIZON_WINDOW_US: Final = STREAM_RETENTION_US - STREAM_SAFE_AGE_US - HORIZON_CLOCK_ALLOWANCE_US
"""How long after a first capture's start a trimmed shard start is skipped, not a gap (55 minutes)."""


def horizon_window_end(first_capture_us: int) -> int:
    """``horizon_until_us`` for a first capture that began at ``first_capture_us`` (this clock)."""
    return first_capture_us + HORIZON_WINDOW_US


def in_horizon_window(checkpoint: Checkpoint, now_us: int) -> bool:
    """Whether a trimmed start of a shard with no record read is, at ``now_us``, not owed.

    False without ``horizon_until_us`` (a checkpoint from before the window, or one whose window
    ended): every shard the checkpoint lists is then known from its start.
    """
    until = checkpoint.horizon_until_us
    return until is not None and now_us < until <= now_us + HORIZON_WINDOW_US


def starts_at_horizon(checkpoint: Checkpoint, parent_id: str | None, now_us: int) -> bool:
    """Whether a shard first seen now, child of ``parent_id``, is opened at ``TRIM_HORIZON``.

    Only within the window, and only when the checkpoint does not know its parent (none, or one
    trimmed before the lake knew it): a known parent's child is opened at its start, so that if the
    window ends before it is read, nothing trimmed of it is skipped. (Within the window a trim there
    reopens it at ``TRIM_HORIZON`` all the same.)
    """
    return in_horizon_window(checkpoint, now_us) and (parent_id or "") not in checkpoint.shards


def end_horizon_window(checkpoint: Checkpoint, now_us: int) -> bool:
    """Once the window has passed, drop it and every shard's ``horizon`` mark; True if changed.

    The checkpoint then reads as one from before the window existed, by this version and by an older
    ddblake alike (one that honours the marks would otherwise open those shards at ``TRIM_HORIZON``
    for ever). Marks without a window (written by a version that had no window) are dropped too: when
    they were set is unknown, so the shards are taken as known from their start.
    """
    if in_horizon_window(checkpoint, now_us):
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
