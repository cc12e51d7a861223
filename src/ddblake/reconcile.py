"""``ddblake reconcile``: remove from the lake every item a finished full load did not see.

After a stream gap (changes lost before capture: the Kinesis destination disabled for a while,
``FailedToReplicateRecordCount``, a stream trimmed) a new full load brings back every item that
exists, but it writes no ``REMOVE``: an item *deleted* during the gap would stay in the
current-state table for good. Once that load is applied, reconcile finds those items and removes
them, on either capture path (DynamoDB Streams, or Kinesis + Firehose on AWS):

1. **The load.** ``--load ID``, else the newest finished full load of the table that the lake has
   a record of: a Scan or full export run by ``ddblake load`` (``state/load/<table>/*.json``), or a
   Glue ``--SOURCE connector`` load (its run record ``state/load/<table>/glue-connector.json``;
   rows ``load-<id>-<sha1>``, versioned by the Scan rule on the job's start), or a Glue
   ``--SOURCE export-files`` load (its record ``glue-export-<export id>.json``). Refused:
   no such load, an unfinished one (or, without ``--load``, an unfinished load started after the
   newest finished one: the reload still running or crashed), an incremental export (it holds only
   the items changed in its window, so every other item would look deleted), and a load whose raw
   files are not all applied yet (a key whose load row is still waiting would look unseen).
2. **Stale keys** (:func:`stale_keys`, the rule ``sync --rebootstrap`` uses too): current rows
   whose version is older than the load's version time (``ddblake.load.rows``) and that this load
   did not write. The load did not see them and no change since its version time touched them.
3. **REMOVE lines**, one per stale key (:func:`removal_event`): event ID
   ``absent-<load id>-<sha1 of the key>``, event time = the load's version time, source the
   load's (``scan`` or ``export``), in raw files named ``…-reconcile-<uuid>.gz``; then apply runs
   once (``--no-apply``: left to the scheduled apply). The event ID is deterministic per (load,
   key), so a rerun after a crash writes the very same events and apply drops the repeats: the
   history holds each REMOVE once; and its own prefix tells these deletes apart in the history
   from a re-bootstrap's (``rebootstrap-…``) and from stream deletes. ``absent`` sorts below
   ``export`` and ``load``: at the load's version time a row of the load itself wins the tie, so an
   item whose load row reaches the tables late comes back. Keys whose row of the load is in apply's
   quarantine are left alone, and a raw file of the load's time moved aside unread is refused
   (:func:`~ddblake.reconcile_loads.held_keys`): their items exist though they look unseen.

**The invariant that makes it right:** the stream must have reached the raw log without a gap from
before the load's version time (a minute or two before the load started, ``ddblake.load.rows``)
until now. Then a key the load did not see either did not exist when the load passed it (its
REMOVE is the goal), or it was written after the load's version time, and that change is in the
lake and outranks the REMOVE (whose version is the load's), whether it is applied before or after.
Do not use reconcile after an incremental export (refused), with a load older than a gap that is
still unrepaired (a delete lost after the load's version time is not found: reload after the last
gap), or against a load taken before the stream was delivering. It never deletes an item that the
load saw or that changed after it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shlex
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, cast

from ddblake.changes.model import ChangeEvent
from ddblake.changes.resolve import key_string
from ddblake.errors import TerminalError
from ddblake.lake.catalog import LakeConfig, open_catalog
from ddblake.lake.storage import Storage
from ddblake.names import table_identifier
from ddblake.reconcile_loads import FILE_TAG as FILE_TAG
from ddblake.reconcile_loads import SKEW_US as SKEW_US
from ddblake.reconcile_loads import LakeLoad as LakeLoad
from ddblake.reconcile_loads import head_of, held_keys, load_row_id
from ddblake.reconcile_loads import lake_loads as lake_loads
from ddblake.reconcile_loads import may_hold_load_rows as may_hold_load_rows
from ddblake.reconcile_loads import pick_load as pick_load
from ddblake.reconcile_loads import unapplied_load_files as unapplied_load_files

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog

    from ddblake.lake.options import ApplyConfig

log = logging.getLogger(__name__)

REMOVE_PREFIX: Final = "absent"
"""The first part of a reconcile REMOVE's event ID (``absent-<load id>-<sha1 of key>``). It sorts
below ``export`` and ``load``, so at the load's version time (where the REMOVE sits) a row of the
load itself wins the tie: a key whose load row reaches the tables late (a quarantined line fixed and
replayed, a raw file moved aside and back) comes back instead of staying removed."""
LINES_PER_FILE: Final = 100_000


def removal_event(
    table: str,
    keys: dict[str, Any],
    load_id: str,
    version_time_us: int,
    *,
    prefix: str = "rebootstrap",
    source: str = "scan",
) -> ChangeEvent:
    """The REMOVE of a key that the full load ``load_id`` did not find, at the load's version time.

    Event ID ``<prefix>-<load id>-<sha1 of the canonical key>``: deterministic, so writing it again
    (a rerun) repeats the event and apply keeps it once. ``prefix``: ``rebootstrap`` (``sync
    --rebootstrap``) or :data:`REMOVE_PREFIX` (``ddblake reconcile``).
    """
    digest = hashlib.sha1(key_string(keys).encode(), usedforsecurity=False).hexdigest()
    return ChangeEvent(
        op="REMOVE",
        table=table,
        keys=keys,
        new_image=None,
        old_image=None,
        event_id=f"{prefix}-{load_id}-{digest}",
        event_time_us=version_time_us,
        sequence=None,
        source="export" if source == "export" else "scan",
        ttl=False,
        ingested_us=time.time_ns() // 1000,
    )


def stale_keys(
    lake: LakeConfig,
    storage: Storage,
    table: str,
    load_id: str,
    version_time_us: int,
    *,
    catalog: Catalog | None = None,
) -> list[str]:
    """Canonical keys of current rows the load did not see: older than its version time, and not
    its own rows (matched whole, :func:`~ddblake.reconcile_loads.load_row_id`, whatever their time).

    A row at exactly the load's version time is left alone: it is the load's own, or another
    load's of the same instant (which saw the item, and whose row a REMOVE at that time could not
    outrank anyway: :data:`REMOVE_PREFIX` sorts below ``export`` and ``load``). Only rows below the
    version time are read (a filter on ``_ddb_version``, whose text order is version order), a
    record batch at a time, so a table far larger than memory holds only its stale keys there.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    from pyiceberg import expressions as ex
    from pyiceberg.exceptions import NoSuchTableError

    catalog = catalog or open_catalog(lake, storage)
    try:
        current = catalog.load_table(f"{lake.namespace}.{table_identifier(table)}")
    except NoSuchTableError:
        return []
    if current.current_snapshot() is None:
        return []
    tie = f"{version_time_us:020d}:"  # every version below the load's sorts below this
    below = cast(ex.BooleanExpression, cast(Any, ex.LessThan)("_ddb_version", tie))
    scan = current.scan(row_filter=below, selected_fields=("_ddb_key", "_ddb_version"))
    own = f":{load_row_id(load_id).pattern}$"  # the event ID ends the version
    stale: list[str] = []
    for batch in scan.to_arrow_batch_reader():
        versions = batch.column("_ddb_version")
        older = pc.less(versions, pa.scalar(tie, type=versions.type))
        unseen = pc.and_(older, pc.invert(pc.match_substring_regex(versions, own)))
        stale.extend(batch.column("_ddb_key").filter(unseen).to_pylist())
    return stale


# --- which load --------------------------------------------------------------------------------------


@dataclass
class ReconcileResult:
    """What a reconcile did (counts and IDs, never item data)."""

    table: str
    load: LakeLoad
    stale: int = 0
    held: int = 0  # unseen keys left alone: their load row is in apply's quarantine (held_keys)
    written_files: list[str] = dataclasses.field(default_factory=list)
    applied: str | None = None
    dry_run: bool = False
    keys: list[str] = dataclasses.field(default_factory=list)

    def summary(self) -> str:
        """One line for stderr (no item data)."""
        kept = (
            f"; {self.held:,} more left alone: their rows of the load are in apply's quarantine "
            "(errors/<table>/apply/)"
            if self.held
            else ""
        )
        if self.dry_run:
            return (
                f"table {self.table}: dry run against the {self.load.describe()}: {self.stale:,} item(s) the "
                f"load did not see would be removed{kept}; nothing written"
            )
        head = f"table {self.table}: reconciled against the {self.load.describe()}"
        if not self.stale:
            return f"{head}: every current item was seen by the load or changed since; nothing removed{kept}"
        done = f"{self.stale:,} item(s) the load did not see removed{kept}"
        if self.applied is None:
            return (
                f"{head}: {self.stale:,} REMOVE line(s) for items the load did not see written to the raw "
                f"log in {len(self.written_files)} file(s), not applied (--no-apply): the scheduled apply, "
                f"or 'ddblake apply --once', applies them{kept}"
            )
        return f"{head}: {done} ({self.applied})"


def write_removals(
    storage: Storage,
    table: str,
    keys: Iterable[str],
    load: LakeLoad,
    *,
    prefix: str = REMOVE_PREFIX,
    lines_per_file: int = LINES_PER_FILE,
) -> list[str]:
    """One REMOVE line per canonical key into the raw log, at the load's version time (files
    ``…-reconcile-<uuid>.gz``, :data:`FILE_TAG`); returns the files written. ``prefix``: the event
    IDs' (:func:`removal_event`; ``rebootstrap`` for ``sync --rebootstrap``)."""
    from ddblake.lake.rawlog import RawLogWriter

    writer = RawLogWriter(storage, table, buffer_bytes=1 << 62, buffer_seconds=1e9, tag=FILE_TAG)
    written: list[str] = []
    for key in keys:
        event = removal_event(
            table, json.loads(key), load.load_id, load.version_time_us, prefix=prefix, source=load.source
        )
        writer.add(event.to_line())
        if writer.buffered_records >= lines_per_file and (done := writer.flush()) is not None:
            written.append(done.path)
    if (done := writer.flush()) is not None:
        written.append(done.path)
    return written


def reconcile(
    table: str,
    lake_config: LakeConfig,
    *,
    load_id: str | None = None,
    apply_config: ApplyConfig | None = None,
    dry_run: bool = False,
    apply: bool = True,
) -> ReconcileResult:
    """Remove from the lake every item the chosen finished full load did not see (module docstring).

    Args:
        table: the DynamoDB table name.
        lake_config: the lake and its catalog.
        load_id: the load to reconcile against; None: the newest finished full load.
        apply_config: apply's settings; by default ``ApplyConfig.build(table, lake_config)``.
        dry_run: count the items that would be removed and write nothing (``keys`` holds them).
        apply: run apply once after writing the REMOVE lines (else the scheduled apply does).

    Raises:
        TerminalError: no usable load, or its raw files are not all applied (one line, naming the
            table, the lake and the load).
        TransientError: the lake kept failing; run reconcile again.
    """
    from ddblake.lake.options import other_owner

    storage = lake_config.storage()
    head = head_of(table, storage)
    lake = shlex.quote(storage.shown())
    load = pick_load(storage, table, load_id)
    pending = unapplied_load_files(lake_config, storage, table, load)
    if pending:
        raise TerminalError(
            f"{head}: {len(pending):,} raw file(s) written up to the end of load {load.load_id} are not "
            f"applied yet (first: {storage.shown(pending[0])}); run 'ddblake apply --table {table} --lake "
            f"{lake} --once' first (or let the scheduled apply catch up), then reconcile"
        )
    catalog = open_catalog(lake_config, storage, create=False)
    from pyiceberg.exceptions import NoSuchTableError

    try:
        owner = other_owner(catalog.load_table(f"{lake_config.namespace}.{table_identifier(table)}"), table)
    except NoSuchTableError:
        owner = None
    if owner is not None:
        raise TerminalError(
            f"{head}: lake table {lake_config.namespace}.{table_identifier(table)} holds table {owner!r}, "
            "not this one (their names share an identifier); nothing to reconcile here"
        )
    held = held_keys(storage, table, load)
    unseen = stale_keys(lake_config, storage, table, load.load_id, load.version_time_us, catalog=catalog)
    keys = [k for k in unseen if k not in held]
    result = ReconcileResult(
        table=table, load=load, stale=len(keys), held=len(unseen) - len(keys), dry_run=dry_run
    )
    if dry_run:
        result.keys = keys
        return result
    if keys:
        result.written_files = write_removals(storage, table, keys, load)
        log.info(
            "reconcile %s: %d REMOVE line(s) written in %d file(s)",
            table,
            len(keys),
            len(result.written_files),
        )
        if apply:
            from ddblake.lake.apply import ApplyConfig
            from ddblake.lake.service import run_apply

            config = dataclasses.replace(
                apply_config or ApplyConfig.build(table=table, lake=lake_config, once=True), once=True
            )
            result.applied = run_apply(config).summary()
    return result
