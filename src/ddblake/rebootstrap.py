"""``ddblake sync --rebootstrap``: start a table over from a full load after a stream gap.

A :class:`~ddblake.errors.StreamGapError` means changes left the stream before capture read them; no
rerun can bring them back. A re-bootstrap makes the lake equal to the table again:

1. **Fresh stream positions.** The capture checkpoint is set aside (kept beside it as
   ``checkpoint-replaced-<µs>.json``), what was captured before the gap is applied, and capture
   reads the table's *current* stream once from its oldest record, pinning a position in every
   shard. A time ``t0`` is taken before that read — late enough that the load's rows outrank every
   change the lake holds (those may be older than changes the gap swallowed, which the load sees):
   load rows sit a little below their start (``ddblake.load.rows``), so this can mean waiting a
   minute or two for the clock (:func:`wait_until_loads_rank_above`).
2. **Full load** (``ddblake.load.run_load``) started at ``t0``: its rows rank below every change
   made after ``t0``, and every such change is in the stream after the pinned positions. Capture
   reads on from those positions in a thread while the load runs (as ``sync``'s first load does),
   so a load longer than the stream's 24 hours leaves no gap behind it.
3. **Apply**, so the load's rows are in the current-state table.
4. **Deletes the gap hid.** A key still in the current state with a version older than the load's
   (``floor(t0) - 1 µs``, see ``ddblake.load.rows``) was not seen by the Scan and no change after
   ``t0`` touched it: it did not exist when the Scan passed. For each, a ``REMOVE`` line (``source``
   ``scan``, event ID ``rebootstrap-<load id>-<sha1 of key>``, event time = the load's version time)
   goes into the raw log, and apply runs again. A change after ``t0`` still wins over that REMOVE.
   The rule and the REMOVE are ``ddblake.reconcile``'s (:func:`~ddblake.reconcile.stale_keys`,
   :func:`~ddblake.reconcile.removal_event`), which ``ddblake reconcile`` applies after any full load.

Crash safety: a marker ``state/rebootstrap/<table>.json`` is written first and removed last;
``ddblake sync`` refuses to run while it exists (a half-done re-bootstrap could leave items the gap
deleted), and running ``--rebootstrap`` again continues it (its load resumed), which is always
safe — every step either writes deterministic event IDs or rewrites state atomically. A rerun whose
pinned positions were trimmed meanwhile (the first run died more than a day before) starts over
with new positions and a new load.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from ddblake.capture.checkpoint import checkpoint_path
from ddblake.capture.config import CaptureConfig
from ddblake.capture.service import CaptureThread, run_capture
from ddblake.errors import StoppedError, StreamGapError, TerminalError, UnknownTableError
from ddblake.lake.apply import ApplyConfig
from ddblake.lake.catalog import LakeConfig, open_catalog
from ddblake.lake.options import NEWEST_EVENT_PROPERTY
from ddblake.lake.service import run_apply
from ddblake.lake.storage import Storage
from ddblake.names import changes_identifier
from ddblake.reconcile import stale_keys, write_removals
from ddblake.reconcile_loads import LakeLoad, held_keys

if TYPE_CHECKING:
    from ddblake.aws.clients import DynamoClients
    from ddblake.aws.roles import Identity
    from ddblake.load import LoadConfig
    from ddblake.load.state import LoadState

log = logging.getLogger(__name__)

MARKER_VERSION: Final = 1


def marker_path(table: str) -> str:
    """``state/rebootstrap/<table>.json``: present while a re-bootstrap of the table is unfinished."""
    return f"state/rebootstrap/{table}.json"


def unfinished_rebootstrap(storage: Storage, table: str) -> str | None:
    """A message naming the interrupted re-bootstrap of ``table``, or None when there is none."""
    data = storage.read(marker_path(table))
    if data is None:
        return None
    try:
        started = int(json.loads(data).get("started_us", 0))
    except (ValueError, TypeError, AttributeError):
        started = 0
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started / 1e6)) if started else "an unknown time"
    lake = shlex.quote(storage.shown())
    return (
        f"a re-bootstrap of table {table!r} started at {when} did not finish, so the lake may still hold "
        f"items the stream gap deleted; run 'ddblake sync --table {table} --lake {lake} "
        f"--rebootstrap' again (marker {storage.shown(marker_path(table))})"
    )


@dataclass
class RebootstrapResult:
    """What a re-bootstrap did (counts, no item data)."""

    table: str
    load_id: str = ""
    loaded: int = 0
    captured: int = 0
    removed: int = 0
    replaced_checkpoint: str | None = None
    abandoned_load: str | None = None

    def summary(self) -> str:
        """One line for stderr."""
        old = f", old checkpoint kept as {self.replaced_checkpoint}" if self.replaced_checkpoint else ""
        return (
            f"re-bootstrapped table {self.table}: full load {self.load_id} of {self.loaded:,} item(s), "
            f"{self.captured:,} stream record(s) from fresh positions, {self.removed:,} item(s) that the "
            f"stream gap had deleted removed{old}"
        )


def _now_us() -> int:
    return time.time_ns() // 1000


def _set_aside_checkpoint(storage: Storage, table: str) -> str | None:
    data = storage.read(checkpoint_path(table))
    if data is None:
        return None
    kept = checkpoint_path(table).replace("checkpoint.json", f"checkpoint-replaced-{_now_us()}.json")
    storage.write_atomic(kept, data)
    storage.delete(checkpoint_path(table))
    return kept


def _set_aside_unfinished_load(storage: Storage, table: str) -> str | None:
    from ddblake.load.state import SCAN_STATE, read_state, state_path, write_state

    state = read_state(storage, table, SCAN_STATE)
    if state is None or state.finished_us is not None:
        return None  # a finished load is kept by the load itself when the new one starts
    write_state(storage, dataclasses.replace(state, name=f"scan-{state.load_id}"))
    storage.delete(state_path(table, SCAN_STATE))
    return state.load_id


def wait_until_loads_rank_above(
    newest_us: int | None,
    version_of_start: Callable[[int], int],
    *,
    clock: Callable[[], int] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """A load start ``t0`` whose rows' version is above ``newest_us``; waits for the clock if needed.

    The changes the lake holds may be older than changes the gap swallowed, which the load sees, so
    the load's rows must outrank them all. Load rows sit a little below their start (streams stamp
    change times coarsely: to the second on AWS, the minute on DynamoDB Local; see
    ``ddblake.load.rows``), so right after a gap that can mean waiting a minute or two.
    """
    now = clock or _now_us
    t0 = now()
    if newest_us is None or version_of_start(t0) > newest_us:
        return t0
    ready = _first_start_above(t0, newest_us, version_of_start)
    until = time.strftime("%H:%M:%S", time.gmtime(ready / 1e6))
    log.info(
        "re-bootstrap: waiting about %.0f s (until %s UTC) for the clock, so that the load ranks above "
        "every change the lake holds",
        (ready - t0) / 1e6,
        until,
    )
    while version_of_start(t0) <= newest_us:
        sleep((1_000_000 - t0 % 1_000_000) / 1e6 + 0.001)  # to the next second, then look again
        t0 = now()
    return t0


def _first_start_above(t0: int, newest_us: int, version_of_start: Callable[[int], int]) -> int:
    """The first whole second from ``t0`` on whose load rows would outrank ``newest_us`` (at most
    an hour ahead: beyond that, the hour), for saying how long the wait will be."""
    t = t0 - t0 % 1_000_000 + 1_000_000
    for _ in range(3600):
        if version_of_start(t) > newest_us:
            return t
        t += 1_000_000
    return t


def _newest_event_us(lake: LakeConfig, storage: Storage, table: str) -> int | None:
    from pyiceberg.exceptions import NoSuchTableError

    catalog = open_catalog(lake, storage)
    try:
        history = catalog.load_table(f"{lake.namespace}.{changes_identifier(table)}")
    except NoSuchTableError:
        return None
    newest = history.properties.get(NEWEST_EVENT_PROPERTY)
    return int(newest) if newest else None


def _read_marker(storage: Storage, table: str) -> dict[str, Any] | None:
    data = storage.read(marker_path(table))
    if data is None:
        return None
    try:
        doc = json.loads(data)
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _write_marker(storage: Storage, table: str, **fields: Any) -> None:
    doc = {"v": MARKER_VERSION, "table": table, **fields}
    storage.write_atomic(marker_path(table), json.dumps(doc).encode())


def _fresh_positions(
    table: str,
    lake_config: LakeConfig,
    storage: Storage,
    capture: CaptureConfig,
    clients: DynamoClients | None,
    apply: ApplyConfig,
    result: RebootstrapResult,
    identity: Callable[[], Identity] | None = None,
) -> int:
    """Steps 1: set the old positions aside, pin new ones; returns the load's start (µs)."""
    result.replaced_checkpoint = _set_aside_checkpoint(storage, table)
    result.abandoned_load = _set_aside_unfinished_load(storage, table)
    if result.abandoned_load:
        log.info(
            "re-bootstrap %s: unfinished load %s set aside (older than the gap)", table, result.abandoned_load
        )
    from ddblake.load.rows import version_time_from_us

    with contextlib.suppress(UnknownTableError):  # nothing was captured before the gap
        run_apply(apply)  # what was captured before the gap, so that its newest change is known
    # On a clock ahead of AWS's the Scan takes its start back by the lead (ddblake.load.scan): the
    # wait counts that in, so the rows it gives still outrank the lake's newest change.
    shift = _load_start_shift_us(_clock_lead_us(table, clients, identity))
    t0 = wait_until_loads_rank_above(
        _newest_event_us(lake_config, storage, table), lambda start: version_time_from_us(start - shift)
    )
    # t0 comes before the positions: every later change is in the stream after them
    capture = dataclasses.replace(
        capture, once=True, check_reach=False
    )  # this re-bootstrap's own load follows
    stats = run_capture(capture, clients=clients, storage=storage, identity=identity)
    if stats.stopped_by is not None:
        # Stopped is not caught up: the positions may not be pinned in every shard, so no load may
        # start from them. The marker stays without a load start: a rerun begins this step again.
        lake = shlex.quote(storage.shown())
        raise StoppedError(
            f"re-bootstrap of table {table!r} stopped by {stats.stopped_by} before its load (what capture "
            f"read is saved); run 'ddblake sync --table {table} --lake {lake} --rebootstrap' again "
            "to go on"
        )
    result.captured = stats.records
    return t0


LEAD_MARGIN_US = 5_000_000
"""How much more than this run measured the load may find the clock's lead to be: both read
DescribeTable's ``Date``, rounded down to the second, at different times."""


def _clock_lead_us(table: str, clients: DynamoClients | None, identity: Callable[[], Identity] | None) -> int:
    """How far this machine's clock is ahead of AWS's (DescribeTable's ``Date``); 0 when behind or
    not known."""
    if clients is None:
        return 0
    from ddblake.load.table import TableReader

    info = TableReader(table, clients.dynamodb, identity).describe()
    answered = _now_us()
    return max(0, answered - info.server_time_us) if info.server_time_us is not None else 0


def _load_start_shift_us(lead_us: int) -> int:
    """The most a Scan started now may take off its start for a clock ``lead_us`` ahead (it takes
    off its own measure of the lead, when that passes ``CLOCK_AHEAD_ALLOWED_US``)."""
    from ddblake.load.table import CLOCK_AHEAD_ALLOWED_US

    most = lead_us + LEAD_MARGIN_US
    return most if most > CLOCK_AHEAD_ALLOWED_US else 0


def _is_load_from(state: LoadState, load_start: int) -> bool:
    """Whether ``state`` is the load this re-bootstrap started at ``load_start`` (its own start, or
    the one asked for, which a clock ahead of AWS's moved back)."""
    return state.started_us == load_start or state.options.get("asked_start_us") == load_start


def _load_following(
    table: str,
    load: LoadConfig,
    storage: Storage,
    clients: DynamoClients | None,
    load_start: int,
    result: RebootstrapResult,
    capture: CaptureConfig,
    identity: Callable[[], Identity] | None = None,
) -> int:
    """Step 2: the full load started at ``load_start`` (continued or reused if an earlier run began
    it); returns its rows' version time.

    Capture reads the stream on from the pinned positions all the while, as ``sync``'s first load
    does: a load longer than the stream's 24 hours leaves no gap behind it. A capture that fails (a
    gap: positions trimmed since an earlier run, even one whose load had finished) stops the load,
    and its error is the one raised.

    ``identity``: who ``clients`` act as, when they were built with the capture's role: the load
    reads with them too, unless it names a role of its own (as ``sync``'s first load does).
    """
    from ddblake.load import run_load_beside
    from ddblake.load.state import SCAN_STATE, read_state

    follower = CaptureThread(dataclasses.replace(capture, check_reach=False), clients, storage, identity)
    own_role = load.assume_role is not None and (load.assume_role, load.external_id) != (
        capture.assume_role,
        capture.external_id,
    )
    try:
        state = read_state(storage, table, SCAN_STATE) if load.kind == "scan" else None
        if state is not None and _is_load_from(state, load_start) and state.finished_us is not None:
            log.info("re-bootstrap %s: load %s already finished", table, state.load_id)
            result.load_id, result.loaded = state.load_id, state.items
            version_time = state.version_time_us
        else:
            if state is not None and state.finished_us is None and not _is_load_from(state, load_start):
                result.abandoned_load = _set_aside_unfinished_load(storage, table)  # not this one's
            loaded = run_load_beside(
                load,
                clients,
                storage,
                load_start,
                identity=None if own_role else identity,
                stop=follower.stop,
            )
            result.load_id, result.loaded = loaded.load_id, loaded.items
            version_time = loaded.version_time_us
    except BaseException as e:
        follower.fail_with(e)
        raise
    follower.finish()
    return version_time


def rebootstrap(
    table: str,
    lake_config: LakeConfig,
    endpoint_url: str | None = None,
    *,
    clients: DynamoClients | None = None,
    load_config: LoadConfig | None = None,
    apply_config: ApplyConfig | None = None,
    assume_role: str | None = None,
    external_id: str | None = None,
) -> RebootstrapResult:
    """Make the lake equal to the table again after a stream gap (see the module docstring).

    An interrupted re-bootstrap that had pinned its stream positions is continued (its load resumed
    or reused); one interrupted before that starts over.

    Args:
        table: the DynamoDB table name.
        lake_config: the lake and its catalog.
        endpoint_url: DynamoDB endpoint override (DynamoDB Local); None follows boto3's chain.
        clients: DynamoDB and Streams clients for capture and the load; when None they are built
            once, with the capture's role (one AssumeRole, session ``ddblake-capture``), and the
            load reads with them unless ``load_config`` names a role of its own.
        load_config: the load's settings (segments, role, ...); by default a Scan load of ``table``.
        apply_config: apply's settings; by default ``ApplyConfig.build(table, lake_config)``.
        assume_role: the role to read the table and its stream as (another account's table); else
            ``DDBLAKE_ASSUME_ROLE``. Used for the capture, and for the load unless ``load_config``
            is given.
        external_id: the ExternalId the role's trust policy requires, if any.

    Returns:
        What was loaded, captured and removed.

    Raises:
        TerminalError: the table has no stream, cannot be read, or the lake cannot be written; the
            marker stays, so ``sync`` keeps refusing until a re-bootstrap completes.
        TransientError: AWS or the lake kept failing; run the re-bootstrap again.
    """
    from ddblake.load import LoadConfig

    storage = lake_config.storage()
    result = RebootstrapResult(table=table)
    load = load_config or LoadConfig.build(
        table=table,
        lake=lake_config.lake,
        endpoint_url=endpoint_url,
        assume_role=assume_role,
        external_id=external_id,
        scan=True,
    )
    if load.table != table:
        raise TerminalError(f"re-bootstrap of table {table!r} was given a load of table {load.table!r}")
    if load.kind != "scan":
        raise TerminalError(
            f"re-bootstrap of table {table!r} reloads it with a Scan, but an export was named as the load "
            f"({load.from_export or load.export_to}); unset DDBLAKE_FROM_EXPORT / DDBLAKE_EXPORT_TO"
        )
    apply = dataclasses.replace(
        apply_config or ApplyConfig.build(table=table, lake=lake_config, once=True), once=True
    )
    marker = _read_marker(storage, table) or {}
    started = marker.get("started_us") if isinstance(marker.get("started_us"), int) else _now_us()
    load_start = marker.get("load_start_us")
    capture = CaptureConfig.build(
        table=table,
        lake=lake_config.lake,
        endpoint_url=endpoint_url,
        once=True,
        assume_role=assume_role,
        external_id=external_id,
    )
    identity: Callable[[], Identity] | None = None
    if clients is None:
        # One set of clients (one AssumeRole, session ddblake-capture) for every step, as sync's
        # first load: the stream positions, the capture beside the load, and the load itself.
        from ddblake.capture.service import build_capture_clients

        clients, identity = build_capture_clients(capture)
    version_time: int | None = None
    if isinstance(load_start, int):
        log.info("re-bootstrap %s: continuing the one started at %d µs", table, started)
        try:
            version_time = _load_following(
                table, load, storage, clients, load_start, result, capture, identity
            )
        except StreamGapError as e:
            # Its pinned positions were trimmed before this rerun (the first run died a day ago):
            # this load's start is no longer followed by the stream. Start over, new positions first.
            log.warning("re-bootstrap %s: %s; starting over with new stream positions", table, e)
    if version_time is None:
        _write_marker(storage, table, started_us=started)
        log.info("re-bootstrap %s: new stream positions, then a full load", table)
        load_start = _fresh_positions(table, lake_config, storage, capture, clients, apply, result, identity)
        _write_marker(storage, table, started_us=started, load_start_us=load_start)
        version_time = _load_following(table, load, storage, clients, load_start, result, capture, identity)
    run_apply(apply)
    # A key whose load row apply set aside is in the lake without it, yet exists: left alone, as
    # reconcile leaves it (a record of the load's time that cannot be read stops here, marker kept).
    done = LakeLoad(
        result.load_id, "scan", int(load_start or 0), version_time, _now_us(), False, marker_path(table)
    )
    held = held_keys(storage, table, done, command="sync --rebootstrap")
    stale = [
        k for k in stale_keys(lake_config, storage, table, result.load_id, version_time) if k not in held
    ]
    if stale:
        write_removals(storage, table, stale, done, prefix="rebootstrap")
        run_apply(apply)
    result.removed = len(stale)
    storage.delete(marker_path(table))
    log.info("%s", result.summary())
    return result
