"""``ddblake apply``: the raw change log into the history and current-state Iceberg tables.

Exactly-once, in two independent steps that each commit their own record of applied files with
their data (see :mod:`ddblake.lake.applied`):

1. history — new files' events, minus events already in the table (same event ID), appended;
2. current state — the newest change per key wins against the table's row and against any newer
   change the history holds (a late or repeated change never resurrects a deleted item: the
   history's REMOVE rows are the tombstones); only the touched key buckets are rewritten.

History commits first, so when a crash falls between the two commits the rerun finds the newer
REMOVEs it needs in the history and completes the current state from the same files.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog
from pyiceberg.table import Table

from ddblake.changes.resolve import Keyed, bucket_of, decide, version_of, winners
from ddblake.errors import BadRecordError, TerminalError, UnknownTableError
from ddblake.lake import applied, current, datafiles, history, nulllists, seen
from ddblake.lake.applied import PROPERTY, AppliedLog, checked_log, save_log
from ddblake.lake.batch import (
    FileBatch,
    ImageTexts,
    collector_paused,
    distinct,
    quarantine,
    read_batch,
    release_arrow_memory,
)
from ddblake.lake.catalog import CATALOG_FILE, open_catalog
from ddblake.lake.commits import (
    CachedTransaction,
    locate,
    missing_properties,
    plan_buckets,
    rewrite_buckets,
)
from ddblake.lake.files import FileRange
from ddblake.lake.filters import is_in
from ddblake.lake.layout import partitioned
from ddblake.lake.listing import RawListing
from ddblake.lake.options import (
    FOLD_GRACE_HOURS,
    HISTORY_MANIFEST_MERGE,
    NEWEST_EVENT_PROPERTY,
    NO_CATALOG_RETRY,
    QUARANTINE_PROPERTY,
)
from ddblake.lake.options import ApplyConfig as ApplyConfig  # the public names stay importable here
from ddblake.lake.options import ApplyResult as ApplyResult
from ddblake.lake.recovery import loaded, unreadable_raw
from ddblake.lake.retyping import retype_table
from ddblake.lake.storage import Storage
from ddblake.lake.tables import TableOwnership
from ddblake.names import changes_identifier, table_identifier
from ddblake.progress import Progress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Lookup:
    """What the lake holds of a batch's keys (:meth:`Applier._lookup`): current versions, tombstones."""

    present: dict[str, str]  # key -> version, for the keys the table holds
    plan: dict[int, list[FileRange]] | None = None  # the touched buckets' files, when apply's layout
    located: dict[str, tuple[int, str]] | None = None  # key -> (file index in plan, version)
    removes: dict[str, str] = field(default_factory=dict)  # the history's newest REMOVE of keys absent


class Applier(TableOwnership):
    """Applies one table's raw change log; holds the catalog and tables between runs."""

    def __init__(
        self, config: ApplyConfig, *, storage: Storage | None = None, catalog: Catalog | None = None
    ):
        self.config = config
        self.storage = storage or config.lake.storage()
        self._catalog = catalog  # opened on first use: see catalog
        ns = config.lake.namespace
        self.history_id = f"{ns}.{changes_identifier(config.table)}"
        self.current_id = f"{ns}.{table_identifier(config.table)}"
        self._pending_files = 0  # raw files still to apply when the last batch started
        self.last_listing: list[str] | None = None  # the raw files the last batch listed
        self.listing = RawListing(self.storage, config.table)
        self._idle: tuple[list[str], tuple[str | None, str | None]] | None = None  # listing, records
        self._quarantine_landed = 0  # see run_once
        self._carried = ApplyResult()  # see run_once
        self._said_empty = False  # warned once that the table has no raw files at all

    def relist(self) -> None:
        """List the whole raw log at the next batch, as a fresh applier would: a scheduled run (the
        Lambda, kept warm) may have slept for any time since the last, and a file landing late in
        an older hour folder must not wait for a continuous poll's periodic full listing."""
        self.listing = RawListing(self.storage, self.config.table)
        self._idle = None

    @property
    def catalog(self) -> Catalog:
        """The lake's catalog, opened on first use: a local lake's SQLite catalog is a file made
        when opened, and an apply that finds nothing to apply (a mistyped table) leaves none."""
        if self._catalog is None:
            self._catalog = open_catalog(self.config.lake, self.storage)
        return self._catalog

    def _catalog_may_hold(self, identifier: str) -> bool:
        """Whether the catalog may hold ``identifier``, without creating a local ``catalog.db``."""
        own = self.config.lake.own_catalog and self.storage.is_local
        if own and not Path(self.storage.root, CATALOG_FILE).exists():
            return False
        return bool(self.catalog.table_exists(identifier))

    # -- one run ------------------------------------------------------------------------------
    def run_once(
        self,
        progress: Progress | None = None,
        deadline: float | None = None,
        stop: threading.Event | None = None,
    ) -> ApplyResult:
        """Apply every raw file not yet applied, in batches; returns the counts.

        With ``progress``, a backlog of more than one batch (a load's thousands of raw files take
        hours) is shown on it as it goes: raw files done against those pending, rate, ETA, and the
        events applied. One batch shows nothing. With ``deadline`` (``time.monotonic()`` seconds,
        a Lambda's timeout) no batch starts that might not finish by then: the next run goes on.
        With ``stop`` set (SIGINT/SIGTERM) no further batch starts: a load's backlog of thousands of
        raw files would otherwise hold a stopping ``apply`` for hours.
        """
        # The counts of batches that landed in a run that then raised (a lost race: run_apply
        # runs it again) belong to the run that completes them.
        total, self._carried = self._carried, ApplyResult()
        longest = 0.0
        while True:
            started = time.monotonic()
            try:
                result, more = self.run_batch()
            except BaseException:
                # Records set aside by this batch's history commit, landed before its current-state
                # commit lost: the batch that completes the files counts them (its history has none).
                total.quarantined += self._quarantine_landed
                self._carried = total
                raise
            total.add(result)
            longest = max(longest, time.monotonic() - started)
            if more and deadline is not None and time.monotonic() + 2 * longest + 30 > deadline:
                left = self._pending_files - result.files
                log.info(
                    "table %s: out of time; %d raw file(s) left to the next run", self.config.table, left
                )
                return total
            if more and stop is not None and stop.is_set():
                left = self._pending_files - result.files
                log.info("table %s: stopped; %d raw file(s) left to the next run", self.config.table, left)
                return total
            if progress is not None and (more or progress.done):
                progress.total = progress.done + self._pending_files
                progress.note = f"{total.events:,} events,"
                progress.add(result.files)
            if not more:
                if progress is not None and progress.done:
                    progress.finish()
                return total

    def run_batch(self) -> tuple[ApplyResult, bool]:
        """Apply one batch of the raw files not yet applied; returns its counts and whether more wait.

        The batch runs with the cyclic collector paused, and Arrow's freed memory goes back to the
        system after it (:mod:`ddblake.lake.batch`).
        """
        self._quarantine_landed = 0  # set once its history commit lands (see run_once)
        with collector_paused():
            result, more = self._run_batch()
        release_arrow_memory()
        return result, more

    def _read_batch(self, pending: list[str]) -> tuple[FileBatch, ImageTexts, list[str]]:
        """:func:`read_batch` of ``pending``; a raw file no retry can read is named, with the way on."""
        try:
            return read_batch(self.storage, self.config.table, pending, self.config, self._pending_files)
        except (TerminalError, OSError) as e:
            said = unreadable_raw(self.storage, self.config.table, pending, e)
            if said is e:
                raise
            raise said from e

    def _list_raw(self) -> list[str]:
        return self.listing.files()

    def _run_batch(self) -> tuple[ApplyResult, bool]:
        result = ApplyResult()
        listing = self.last_listing = self._list_raw()
        if not listing and not self._known() and not self._catalog_may_hold(self.history_id):
            # Never captured nor loaded (a mistyped name, most likely): create no empty tables.
            raw = self.storage.shown(f"raw/{self.config.table}/")
            said = (
                f"table {self.config.table}: no raw files under {raw} and no capture or load state: "
                "nothing to apply (is the table name right? capture, load and sync write them)"
            )
            if self.config.once:
                raise UnknownTableError(said)
            if not self._said_empty:  # continuous: it may come (a capture about to start); said once
                self._said_empty = True
                log.warning("%s", said)
            return result, False
        # The current state first: it is only loaded, and refused if another table's (ab_changes'
        # current state is ab's history); the history is created when missing, which must not
        # happen for a table apply then refuses.
        cur = loaded(self.current_id, self._current)
        hist = loaded(self.history_id, self._history)
        table = self.config.table
        ns = self.config.lake.namespace
        records = (hist.properties.get(PROPERTY), cur.properties.get(PROPERTY) if cur else None)
        if self._idle is not None and self._idle[1] == records and self._idle[0] == listing:
            return result, False  # nothing new since the last poll found nothing: skip the O(log) checks
        hist_log = checked_log(self.storage, table, hist.properties.get(PROPERTY), listing, namespace=ns)
        cur_log = (
            checked_log(self.storage, table, cur.properties.get(PROPERTY), listing, namespace=ns)
            if cur
            else AppliedLog()
        )
        pending = applied.pending(listing, hist_log, cur_log)
        if not pending:
            if cur is None:  # a table with no change yet: both tables exist once apply has run
                self._create_current(current.empty_schema())
            else:
                self._idle = (listing, records)
            return result, False
        self._pending_files = len(pending)
        # The current state ahead of the history (the history dropped and rebuilt from raw/, or
        # restored older): the history catches up alone first. Its duplicate check and the
        # tombstones a late change meets read the history, which must hold every change the
        # current state holds before anything new is applied (a late change brought back an item
        # whose REMOVE was still to rebuild).
        behind = [p for p in pending if cur_log.contains(p) and not hist_log.contains(p)]
        more = len(behind) < len(pending) if behind else False
        pending = behind or pending
        more = more or len(pending) > self.config.max_files
        pending = pending[: self.config.max_files]
        count = len(pending)
        batch, texts, pending = self._read_batch(pending)
        more = more or len(pending) < count  # the rest in the next batch
        hist_files = [p for p in pending if not hist_log.contains(p)]
        cur_files = [p for p in pending if not cur_log.contains(p)]
        result.files = len(pending)
        result.events = len(batch.events)
        fold_before = time.strftime("%Y/%m/%d/%H", time.gmtime(time.time() - FOLD_GRACE_HOURS * 3600))

        # Keys and versions once per event, for both tables.
        changes = [Keyed(k, version_of(e), e) for k, e in zip(batch.keys, batch.events, strict=True)]
        in_cur = set(cur_files)
        evs_c = [(c, s) for c, s in zip(changes, batch.sources, strict=True) if s in in_cur]
        # The current state's side of the batch is looked up first: the history's duplicate check
        # uses which keys the current state holds (ddblake.lake.seen).
        best = winners(distinct(evs_c)[0])
        buckets = self._buckets(cur)
        lookup = self._lookup(cur, hist, [c for c, _ in evs_c], best, buckets)

        if hist_files:
            in_hist = set(hist_files)
            bad = [b for b in batch.bad if b["file"] in in_hist]
            if bad:
                quarantine(self.storage, self.config.table, bad)
            result.quarantined = len(bad)
            evs = [(c, s) for c, s in zip(changes, batch.sources, strict=True) if s in in_hist]
            screen = seen.screen(
                hist_log, cur_log, cur_files, evs_c, best.keys(), lookup.present, lookup.removes, listing
            )
            clock = time.monotonic()
            self._commit_history(hist, hist_log, hist_files, evs, listing, fold_before, result, texts, screen)
            self._quarantine_landed = result.quarantined
            log.debug(
                "table %s: %s, committed in %.2f s", table, result.step("history"), time.monotonic() - clock
            )
            del evs
        # Only the winners and their texts are needed from here: the rest of the batch goes, and so
        # does what the history's rows left in Arrow's pool (a 200,000-row load peaked 340 MB higher).
        del changes, evs_c
        batch.clear()
        release_arrow_memory()

        if cur_files:
            clock = time.monotonic()
            self._commit_current(
                cur, cur_log, cur_files, best, buckets, lookup, listing, fold_before, result, texts
            )
            log.debug(
                "table %s: %s, committed in %.2f s", table, result.step("current"), time.monotonic() - clock
            )
        return result, more

    def _commit_history(
        self,
        hist: Table,
        hist_log: AppliedLog,
        files: list[str],
        events: list[tuple[Keyed, str]],
        listing: list[str],
        fold_before: str,
        result: ApplyResult,
        texts: ImageTexts,
        screen: seen.Screen | None = None,
    ) -> None:
        changes, sources = distinct(events)
        result.duplicates += len(events) - len(changes)
        if changes:
            known = seen.known_ids(hist, changes, screen)
            if known:
                pairs = zip(changes, sources, strict=True)
                kept = [(c, s) for c, s in pairs if c.event.event_id not in known]
                result.duplicates += len(changes) - len(kept)
                changes, sources = [c for c, _ in kept], [s for _, s in kept]
        new_log = hist_log.with_files(set(files)).folded(listing, fold_before)
        pointer = save_log(
            self.storage,
            self.config.table,
            "history",
            new_log,
            listing,
            hist_log,
            namespace=self.config.lake.namespace,
        )
        props = {
            PROPERTY: pointer,
            QUARANTINE_PROPERTY: str(int(hist.properties.get(QUARANTINE_PROPERTY, "0")) + result.quarantined),
        }
        props.update(missing_properties(hist, {**HISTORY_MANIFEST_MERGE, **NO_CATALOG_RETRY}))
        if changes:
            newest = max(c.event.event_time_us for c in changes)
            props[NEWEST_EVENT_PROPERTY] = str(
                max(newest, int(hist.properties.get(NEWEST_EVENT_PROPERTY, "0")))
            )
        with CachedTransaction(hist) as tx:
            if changes:
                rows = history.rows(
                    changes,
                    sources,
                    new_images=[texts(c.event) for c in changes],
                    old_images=[texts.old(c.event) for c in changes],
                    schema=hist.schema().as_arrow(),
                )
                self._add_key_columns(tx, rows, hist)
                datafiles.append(tx, hist.io, rows, {PROPERTY: pointer, "ddblake.files": str(len(files))})
            else:
                datafiles.record_only(tx, {PROPERTY: pointer, "ddblake.files": str(len(files))})
            tx.set_properties(props)
        result.history_rows += len(changes)

    @staticmethod
    def _add_key_columns(tx: Any, rows: pa.Table, hist: Table) -> None:
        names = {f.name for f in hist.schema().fields}
        extra = [f for f in rows.schema if f.name not in names]
        if extra:
            with tx.update_schema() as upd:
                upd.union_by_name(pa.schema(extra))

    # -- current state ------------------------------------------------------------------------
    def _history_newer(self, candidates: dict[str, Keyed], newest: dict[str, str]) -> dict[str, Keyed]:
        """For keys absent from the current state: the newest REMOVE in the history, when newer than ours."""
        if not any(key in candidates for key in newest):
            return {}
        hist = self.catalog.load_table(self.history_id)
        return seen.newer_removes(hist, candidates, self.config.table, newest)

    def _buckets(self, cur: Table | None) -> int:
        """The current state's bucket count: the table's own once it exists."""
        if cur is None:
            return self.config.buckets
        return int(cur.properties.get(current.BUCKETS_PROPERTY, self.config.buckets))

    def _lookup(
        self, cur: Table | None, hist: Table, events: list[Keyed], best: dict[str, Keyed], buckets: int
    ) -> Lookup:
        """The version of each of ``best``'s keys the current state holds, the touched buckets'
        files, which file holds each key found (:func:`ddblake.lake.commits.locate`), and the
        history's newest REMOVE of each key of ``events`` the current state lacks.

        Only keys and versions are read, and only from the files whose hash range holds one of
        the batch's keys (:mod:`ddblake.lake.files`); the full rows are read when rewritten.
        """
        found = self._current_versions(cur, best, buckets)
        removes = seen.absent_removes(hist, events, found.present)
        return Lookup(found.present, found.plan, found.located, removes)

    def _current_versions(self, cur: Table | None, best: dict[str, Keyed], buckets: int) -> Lookup:
        if cur is None or cur.current_snapshot() is None or not best:
            return Lookup({})
        touched = sorted({bucket_of(k, buckets) for k in best})
        plan = plan_buckets(cur, touched)
        if plan is not None:
            located = locate(cur, plan, best, buckets)
            return Lookup({k: v for k, (_, v) in located.items()}, plan, located)
        versions = cur.scan(
            row_filter=is_in("_ddb_bucket", touched), selected_fields=("_ddb_key", "_ddb_version")
        ).to_arrow()
        # Only the batch's keys go to Python, not every row read.
        mine = versions.filter(
            pc.is_in(versions.column("_ddb_key"), value_set=pa.array(list(best), pa.string()))
        )
        keys, found = mine.column("_ddb_key").to_pylist(), mine.column("_ddb_version").to_pylist()
        return Lookup(dict(zip(keys, found, strict=True)))

    def _commit_current(
        self,
        cur: Table | None,
        cur_log: AppliedLog,
        files: list[str],
        best: dict[str, Keyed],
        buckets: int,
        lookup: Lookup,
        listing: list[str],
        fold_before: str,
        result: ApplyResult,
        texts: ImageTexts,
    ) -> None:
        present, plan, located = lookup.present, lookup.plan, lookup.located
        newer = self._history_newer({k: c for k, c in best.items() if k not in present}, lookup.removes)
        upserts, deletes, stale = decide(best, newer, present)
        result.stale += stale
        del newer
        new_log = cur_log.with_files(set(files)).folded(listing, fold_before)
        pointer = save_log(
            self.storage,
            self.config.table,
            "current",
            new_log,
            listing,
            cur_log,
            namespace=self.config.lake.namespace,
        )
        props = {PROPERTY: pointer, **NO_CATALOG_RETRY}
        cur = partitioned(cur) if cur is not None else None  # one an older apply left without a spec
        if not upserts and not deletes:
            if cur is None:
                cur = self._create_current(current.empty_schema())
            with CachedTransaction(cur) as tx:
                datafiles.record_only(tx, {PROPERTY: pointer, "ddblake.files": str(len(files))})
                tx.set_properties(props)
            return
        item_texts = [texts(u.event) for u in upserts]
        if None in item_texts:  # cannot happen: every non-REMOVE event has a new image
            raise BadRecordError(f"table {self.config.table}: a change to apply has no new image")
        images = cast(list[str], item_texts)
        schema = cur.schema().as_arrow() if cur is not None else None
        typed = current.typed_rows(upserts, buckets, schema, images, current.untyped_shapes(cur))
        cur = self._create_current(typed.schema) if cur is None else cur
        changed = {u.key for u in upserts} | deletes
        upserted = len(upserts)
        rewrite = sorted({bucket_of(k, buckets) for k in changed})
        with CachedTransaction(cur) as tx:
            # A column the rows written cannot hold as typed (int64 → decimal, a decimal's scale
            # step, a type conflict, a map gaining a key rows held an untyped value at;
            # docs/types.md, Retyping): every row. Other new map keys are added in place.
            # Numbers gaining digits within a decimal(38, S) column do not come here.
            mend = nulllists.mend_needed(cur)
            if mend or current.rewrites_all(cur, typed.schema):
                props = {PROPERTY: pointer}
                if mend:  # what an older ddblake wrote as null in lists of lists: once
                    tx.set_properties({nulllists.MENDED_PROPERTY: "true"})
                result.files_rewritten += retype_table(
                    tx, cur, changed, upserts, buckets, typed.schema, images, props
                )
                result.buckets_rewritten += buckets
            else:
                target = current.evolve(tx, cur, typed.schema)
                # The typed rows hold all that is left to write: the events and their texts go
                # before the touched files are read and rewritten (``best`` and ``texts`` are the
                # caller's, consumed here).
                del upserts, item_texts, images
                best.clear()
                texts.clear()
                result.files_rewritten += rewrite_buckets(
                    tx,
                    cur,
                    current.conform(typed, target.schema),
                    rewrite,
                    pa.array(list(changed), pa.string()),
                    target.schema,
                    {PROPERTY: pointer},
                    buckets,
                    plan,
                    located,
                )
                result.buckets_rewritten += len(rewrite)
            tx.set_properties(props)
        result.upserts += upserted
        result.deletes += len(deletes)
