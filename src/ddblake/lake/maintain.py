"""Table maintenance: keeps a long-running ``apply`` as fast as a new one.

Every apply cycle adds a snapshot to each table and a small data file to the history. pyiceberg
parses and copies the whole table metadata (every snapshot in it) several times per commit, so
commits slow down as snapshots pile up, and history scans plan ever more files. Two chores undo
that without changing a row the tables hold:

* **expiry** drops old snapshots from the metadata, keeping the newest and the young ones (what
  ``query --as-of`` reads), the current one and any a branch or tag points at;
* **compaction** rewrites a partition's small files into one, in one ``replace`` commit that
  deletes exactly those files and adds files holding exactly their rows: a history day's files
  (one per cycle), and a current-state bucket's files left small by deletes (under the open-file
  size of :mod:`ddblake.lake.files`).

Neither touches the table properties apply reads (the applied-file record ``ddblake.applied-log``,
the counts ``status`` shows). Each chore is one optimistic commit that asserts the table's main
branch has not moved: a concurrent apply makes it fail, and it is tried again later.

After an expiry commit lands, the files only the expired snapshots could reach — their manifest
lists, manifests and data files, and the applied-file records they named — are deleted
(:func:`delete_unreachable`; pyiceberg 0.12 deletes none, and apply's copy-on-write rewrites would
otherwise leave a copy of every touched file behind at each commit). Once a day a sweep deletes
old files that nothing references at all (:func:`sweep_orphans`, :func:`sweep_pointers`).
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.io import FileIO
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Operation, Snapshot, Summary
from pyiceberg.table.update import AssertRefSnapshotId
from pyiceberg.table.update.snapshot import ExpireSnapshots

from ddblake.errors import TransientError
from ddblake.lake.applied import PROPERTY
from ddblake.lake.apply import Applier, ApplyConfig
from ddblake.lake.commits import CachedTransaction, missing_properties, replace_files
from ddblake.lake.files import HASH_COLUMN, open_file_bytes
from ddblake.lake.query import EXPIRED_PROPERTY  # newest expired commit time: --as-of stops there
from ddblake.lake.storage import Storage

log = logging.getLogger(__name__)

DEFAULT_KEEP_HOURS = 24
DEFAULT_KEEP_SNAPSHOTS = 100  # ≈0.45 ms of CPU per kept snapshot per one-row cycle (docs/benchmarks.md)
DEFAULT_KEEP_MIN_SNAPSHOTS = 10
DEFAULT_COMPACT_FILES = 32
# Iceberg's own property names where it has one (Spark's expire_snapshots procedure reads them).
AGE_PROPERTY = "history.expire.max-snapshot-age-ms"
MIN_PROPERTY = "history.expire.min-snapshots-to-keep"
MAX_PROPERTY = "ddblake.expire.max-snapshots"
COMPACT_PROPERTY = "ddblake.compact.min-files"
# Each metadata file copies every kept snapshot: keep the 20 newest files, delete older ones.
METADATA_PROPERTIES = {
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "20",
}
DELETE_THREADS = 8  # object stores delete one request per file: a few in flight
# Unreferenced files younger than these may belong to a commit still in flight (Spark's default age
# for orphan files is three days); an applied-file record is written just before its commit.
ORPHAN_AGE_MS = 72 * 3_600_000
POINTER_AGE_MS = 6 * 3_600_000
SWEEP_EVERY_MS = 24 * 3_600_000  # the orphan sweep lists the table's folder: once a day
SWEPT_PROPERTY = "ddblake.orphans-swept-ms"
EXPIRE_BATCH = 16  # expire once this many are due: one commit per batch, not one per cycle
SMALL_FILE_BYTES = 16 << 20  # history files below this size are compacted
COMPACT_BUDGET_BYTES = 128 << 20  # at most this much Parquet is rewritten (and held) per commit
EVERY_COMMITS = 50  # the polling loop maintains after this many cycles that committed ...
EVERY_SECONDS = 300.0  # ... or this long after its last pass, when something was committed since


@dataclass(frozen=True)
class Policy:
    """What one table keeps. Zero turns a limit off; with both age and count off nothing expires."""

    keep_ms: int = DEFAULT_KEEP_HOURS * 3_600_000
    keep_snapshots: int = DEFAULT_KEEP_SNAPSHOTS
    keep_min: int = DEFAULT_KEEP_MIN_SNAPSHOTS
    compact_files: int = DEFAULT_COMPACT_FILES

    @classmethod
    def for_table(cls, table: Table, config: ApplyConfig) -> Policy:
        """The config's value (argument, environment) wins, then the table's property, then the default.

        Table properties let one table keep more than the others without a redeploy.
        """

        def pick(given: float | None, name: str, default: int, scale: int = 1) -> int:
            if given is not None:
                return int(given * scale)
            try:
                return max(0, int(table.properties.get(name, default)))
            except ValueError:
                log.warning("table %s: property %s is not a whole number", ".".join(table.name()), name)
                return default

        return cls(
            pick(config.keep_hours, AGE_PROPERTY, cls.keep_ms, 3_600_000),
            pick(config.keep_snapshots, MAX_PROPERTY, cls.keep_snapshots),
            pick(config.keep_min_snapshots, MIN_PROPERTY, cls.keep_min),
            pick(config.compact_files, COMPACT_PROPERTY, cls.compact_files),
        )


def expirable(table: Table, policy: Policy, now_ms: int) -> list[Snapshot]:
    """The snapshots the policy lets go, oldest first (a pure decision on the loaded metadata).

    Ranked newest first by commit time, a snapshot stays when it is among the ``keep_min`` newest,
    or when it is both younger than ``keep_ms`` and among the ``keep_snapshots`` newest. Both rules
    keep a run of the newest snapshots, so ``--as-of`` is exact from the oldest kept one onwards.
    Snapshots a branch or a tag points at (the current one is main's) always stay.
    """
    if policy.keep_ms <= 0 and policy.keep_snapshots <= 0:
        return []
    protected = {ref.snapshot_id for ref in table.metadata.refs.values()}
    newest_first = sorted(table.snapshots(), key=lambda s: (s.timestamp_ms, s.sequence_number), reverse=True)
    out: list[Snapshot] = []
    for rank, snap in enumerate(newest_first):
        young = policy.keep_ms <= 0 or now_ms - snap.timestamp_ms < policy.keep_ms
        few = policy.keep_snapshots <= 0 or rank < policy.keep_snapshots
        if not (rank < policy.keep_min or (young and few) or snap.snapshot_id in protected):
            out.append(snap)
    return out[::-1]


def expire_snapshots(
    table: Table,
    policy: Policy,
    *,
    now_ms: int | None = None,
    batch: int = EXPIRE_BATCH,
    cleanup: Cleanup | None = None,
    storage: Storage | None = None,
) -> list[Snapshot]:
    """Expire what :func:`expirable` names once at least ``batch`` are due; returns what went.

    pyiceberg's ``ExpireSnapshots`` (what ``table.maintenance.expire_snapshots()`` builds) staged in
    our own transaction, so that the same commit asserts main has not moved (a concurrent commit,
    or a rollback onto a snapshot being expired, makes it fail instead of dropping the current
    snapshot) and records :data:`EXPIRED_PROPERTY` for ``query --as-of``. Once the commit has
    landed, the files no kept snapshot reaches are deleted (counted in ``cleanup``), and, given the
    lake's ``storage``, the applied-file records only expired snapshots named.
    """
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    gone = expirable(table, policy, now_ms)
    current = table.current_snapshot()
    if len(gone) < max(1, batch) or current is None:
        return []
    through = max(int(table.properties.get(EXPIRED_PROPERTY, "0")), *(s.timestamp_ms for s in gone))
    with CachedTransaction(table) as tx:
        tx._apply(
            (), (AssertRefSnapshotId.model_validate({"ref": "main", "snapshot-id": current.snapshot_id}),)
        )
        ExpireSnapshots(tx).by_ids([s.snapshot_id for s in gone]).commit()
        tx.set_properties({EXPIRED_PROPERTY: str(through), **missing_properties(table, METADATA_PROPERTIES)})
    # The commit refreshed ``table``: its snapshots are the kept ones. Files a later commit adds are
    # new or carried over from the current snapshot, which is kept, so none of them is deleted here.
    done = delete_unreachable(table.io, gone, table.snapshots())
    if storage is not None:  # committed records, so none is in flight: no age needed
        dead = {s.summary[PROPERTY] for s in gone if s.summary is not None} - _named_records(table) - {None}
        done.add(_delete_all(storage.delete, {str(p): 0 for p in dead}))
    if cleanup is not None:
        cleanup.add(done)
    return gone


@dataclass
class Cleanup:
    """Files deleted after expiry (counts only)."""

    files: int = 0
    data_bytes: int = 0
    failed: int = 0

    def add(self, other: Cleanup) -> None:
        """Accumulate another table's counts."""
        self.files += other.files
        self.data_bytes += other.data_bytes
        self.failed += other.failed


def _live_files(io: FileIO, manifest: Any) -> dict[str, int]:
    """Path → size of the data and delete files a manifest holds live (added or existing)."""
    return {
        e.data_file.file_path: e.data_file.file_size_in_bytes
        for e in manifest.fetch_manifest_entry(io, discard_deleted=True)
    }


@dataclass
class _Reach:
    """What some snapshots reach: manifest lists, manifests, and live files with their sizes."""

    lists: set[str] = field(default_factory=set)
    manifests: set[str] = field(default_factory=set)
    files: dict[str, int] = field(default_factory=dict)

    def paths(self) -> set[str]:
        return self.lists | self.manifests | set(self.files)


def _reach(
    io: FileIO, snapshots: Iterable[Snapshot], skip: frozenset[str] | set[str] = frozenset()
) -> _Reach:
    """Every file ``snapshots`` reach; manifests in ``skip`` are left unread (and out)."""
    out = _Reach()
    for snap in snapshots:
        out.lists.add(snap.manifest_list)
        for manifest in snap.manifests(io):
            path = manifest.manifest_path
            if path in out.manifests or path in skip:
                continue
            out.manifests.add(path)
            out.files.update(_live_files(io, manifest))
    return out


def _delete_all(delete: Callable[[str], None], doomed: dict[str, int]) -> Cleanup:
    """Delete ``doomed`` (path -> data bytes) a few at a time; a file already gone counts as deleted."""

    def one(path: str) -> bool:
        try:
            delete(path)
        except FileNotFoundError:
            pass
        except (OSError, TransientError) as e:
            log.warning("could not delete %s (left for an orphan-file sweep): %s", path, type(e).__name__)
            return False
        return True

    out = Cleanup()
    with ThreadPoolExecutor(max_workers=DELETE_THREADS) as pool:
        for size, ok in zip(doomed.values(), pool.map(one, doomed), strict=True):
            if ok:
                out.files += 1
                out.data_bytes += size
            else:
                out.failed += 1
    return out


def delete_unreachable(io: FileIO, gone: Iterable[Snapshot], kept: Iterable[Snapshot]) -> Cleanup:
    """Delete every file the ``gone`` snapshots reach and no ``kept`` snapshot does.

    Reachable means: a snapshot's manifest list, the manifests it lists, and the files those
    manifests hold live — what Iceberg's own snapshot expiry removes. A manifest that a kept
    snapshot also lists is skipped unread (every file in it is kept). A file already gone (another
    maintainer, a crash between delete and commit of an earlier pass) counts as deleted; any other
    failure to delete is counted and logged, and leaves the file for :func:`sweep_orphans`.
    """
    keep = _reach(io, kept)
    dead = _reach(io, gone, skip=keep.manifests)
    doomed = dict.fromkeys(dead.lists - keep.lists | dead.manifests, 0)
    doomed.update({f: size for f, size in dead.files.items() if f not in keep.files})
    return _delete_all(io.delete, doomed)


def sweep_orphans(table: Table, storage: Storage, *, now_ms: int, min_age_ms: int = ORPHAN_AGE_MS) -> Cleanup:
    """Delete files in the table's folder that nothing references and that are older than ``min_age_ms``.

    What Spark's ``remove_orphan_files`` does, for files left by an apply killed before its commit,
    by the loser of a commit race, or by a delete that failed. Referenced: the files every snapshot
    reaches, the current metadata file and those in the metadata log, statistics files. The age
    keeps a writer's files that its commit has yet to reference. When a referenced file under the
    folder is not among the files listed (paths spelled differently, say), nothing is deleted.
    """
    location = table.location().rstrip("/")
    root = storage.uri_root.rstrip("/")
    if not location.startswith(root + "/"):
        return Cleanup()  # a table outside the lake (a catalog shared by hand): not ours to sweep
    referenced = _reach(table.io, table.snapshots()).paths()
    referenced.add(table.metadata_location)
    referenced.update(entry.metadata_file for entry in table.metadata.metadata_log)
    referenced.update(f.statistics_path for f in table.metadata.statistics)
    referenced.update(f.statistics_path for f in table.metadata.partition_statistics)
    listed = {storage.uri(rel): mtime for rel, mtime in storage.list_with_times(location[len(root) + 1 :])}
    missing = [p for p in referenced if p.startswith(location + "/") and p not in listed]
    if missing:
        log.warning(
            "table %s: orphan sweep skipped: %d referenced file(s) not found under %s (e.g. %s)",
            ".".join(table.name()), len(missing), location, missing[0],
        )  # fmt: skip
        return Cleanup()
    cutoff = (now_ms - min_age_ms) / 1000
    doomed = {p: 0 for p, mtime in listed.items() if p not in referenced and mtime < cutoff}
    return _delete_all(lambda p: storage.delete(p[len(root) + 1 :]), doomed)


def _named_records(table: Table) -> set[str | None]:
    """The applied-file records the table's property and its snapshots' summaries name."""
    named = {s.summary[PROPERTY] for s in table.snapshots() if s.summary is not None}
    named.add(table.properties.get(PROPERTY))
    return named


def sweep_pointers(
    storage: Storage,
    table: Table,
    source_table: str,
    which: str,
    *,
    now_ms: int,
    min_age_ms: int = POINTER_AGE_MS,
) -> Cleanup:
    """Delete the applied-file records (``state/apply/<table>/<which>-*``) nothing points at any more.

    Apply writes a new record for every commit and points the table's property (and the commit's
    snapshot summary) at it; the one before is then dead. Kept: the property's record, the records
    kept snapshots name, and any younger than ``min_age_ms`` — a record an apply has written but
    not yet committed.
    """
    keep = _named_records(table)
    cutoff = (now_ms - min_age_ms) / 1000
    doomed = {
        rel: 0
        for rel, mtime in storage.list_with_times(f"state/apply/{source_table}/")
        if rel.rsplit("/", 1)[-1].startswith(f"{which}-") and rel not in keep and mtime < cutoff
    }
    return _delete_all(storage.delete, doomed)


@dataclass
class Compaction:
    """What one compaction commit did (counts only)."""

    partitions: int = 0
    files_removed: int = 0
    files_added: int = 0
    rows: int = 0


def compact_small_files(
    table: Table,
    min_files: int,
    *,
    small_bytes: int = SMALL_FILE_BYTES,
    budget_bytes: int = COMPACT_BUDGET_BYTES,
) -> Compaction | None:
    """Rewrite each partition holding more than ``min_files`` small files into one file.

    The history's partitions are event days (files under :data:`SMALL_FILE_BYTES`); the current
    state's are key buckets (files under :func:`ddblake.lake.files.open_file_bytes`, whose rows are
    written sorted by key hash, so each file written records a tight hash range).

    One ``replace`` snapshot deletes exactly the files read and adds files written from exactly
    their rows (sorted by event time; counts checked before the commit). It asserts main is still
    the snapshot read, so a concurrent apply makes it fail rather than race it. None when nothing
    was due; never touches a table with delete files.
    """
    snap = table.current_snapshot()
    if min_files <= 0 or snap is None or snap.summary is None:
        return None
    if int(snap.summary.get("total-data-files") or 0) <= min_files:
        return None  # cheap: no partition can be over the threshold
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for task in table.scan(snapshot_id=snap.snapshot_id).plan_files():
        if task.delete_files:
            return None
        if task.file.spec_id == table.spec().spec_id and task.file.file_size_in_bytes < small_bytes:
            groups.setdefault(_values(task.file.partition), []).append(task)
    tasks: list[Any] = []
    spent = 0
    for group in sorted(groups.values(), key=len, reverse=True):
        for task in sorted(group, key=lambda t: t.file.file_path) if len(group) > min_files else ():
            if spent >= budget_bytes:
                break
            tasks.append(task)
            spent += task.file.file_size_in_bytes
    return _rewrite(table, tasks) if len(tasks) > 1 else None


def _rewrite(table: Table, tasks: list[Any]) -> Compaction:
    from pyiceberg.io.pyarrow import ArrowScan, _dataframe_to_data_files

    rows = ArrowScan(table.metadata, table.io, table.schema(), AlwaysTrue()).to_table(tasks)
    by = ("_ddb_bucket", HASH_COLUMN) if HASH_COLUMN in rows.column_names else ("event_time", "_ddb_version")
    order = [(c, "ascending") for c in by if c in rows.column_names]
    rows = rows.sort_by(order) if order else rows  # tight row-group statistics for time filters
    write_uuid = uuid.uuid4()
    added = list(
        _dataframe_to_data_files(table_metadata=table.metadata, df=rows, io=table.io, write_uuid=write_uuid)
    )
    expected = sum(t.file.record_count for t in tasks)
    partitions = {_values(t.file.partition) for t in tasks}
    if rows.num_rows != expected or sum(f.record_count for f in added) != expected:
        raise RuntimeError(f"compaction read {rows.num_rows} rows, wrote other counts; expected {expected}")
    if {_values(f.partition) for f in added} - partitions:
        raise RuntimeError("compaction would move rows to another partition")
    props = {"ddblake.maintenance": "compact", "ddblake.compacted-files": str(len(tasks))}
    with CachedTransaction(table) as tx:
        producer = replace_files(tx, table, write_uuid, props)  # apply's: drops dead manifests
        producer.__class__ = _replace_operation(producer.__class__)
        with producer as rewrite:
            for task in tasks:
                rewrite.delete_data_file(task.file)
            for data_file in added:
                rewrite.append_data_file(data_file)
    return Compaction(len(partitions), len(tasks), len(added), expected)


def _values(record: Any) -> tuple[Any, ...]:
    return tuple(record[i] for i in range(len(record)))


@functools.cache
def _replace_operation(base: Any) -> type:
    """``base`` (an overwrite producer) committing as Iceberg's ``replace``: files moved, no data changed.

    Incremental readers (Spark or Flink streaming the history) skip ``replace`` snapshots, where an
    ``overwrite`` looks like changed data. pyiceberg 0.12 only sums up overwrites, so the summary
    is computed as one and relabelled.
    """

    def _summary(self: Any, snapshot_properties: dict[str, str] = {}) -> Summary:  # noqa: B006 - read only
        summary: Summary = base._summary(self, snapshot_properties)
        return Summary(Operation.REPLACE, **summary.additional_properties)

    return type(f"_Replace{base.__name__}", (base,), {"_summary": _summary})


@dataclass
class Report:
    """What one maintenance pass did (counts only)."""

    expired: dict[str, int] = field(default_factory=dict)
    cleanup: Cleanup = field(default_factory=Cleanup)
    swept: Cleanup = field(default_factory=Cleanup)
    compaction: Compaction | None = None
    compaction_current: Compaction | None = None
    failures: list[str] = field(default_factory=list)


def maintain(applier: Applier, *, now_ms: int | None = None, batch: int | None = None) -> Report:
    """Compact the history, then expire both tables' snapshots, each only where thresholds are exceeded.

    Each chore commits on its own. A failure (a lost commit race, a transient storage error) ends
    that table's pass: it is logged at warning and recorded, and the next pass tries again.
    """
    report = Report()
    for ident in (applier.history_id, applier.current_id):
        try:
            table = applier.catalog.load_table(ident)
            policy = Policy.for_table(table, applier.config)
            if policy.compact_files:
                history = ident == applier.history_id
                small = SMALL_FILE_BYTES if history else open_file_bytes()
                c = compact_small_files(table, policy.compact_files, small_bytes=small)
                if history:
                    report.compaction = c
                else:
                    report.compaction_current = c
                if c is not None:  # the commit refreshed ``table``: expiry sees the new snapshot
                    log.info(
                        "table %s: compacted %d small file(s) of %d partition(s) into %d (%d rows)",
                        ident, c.files_removed, c.partitions, c.files_added, c.rows,
                    )  # fmt: skip
            cleanup = Cleanup()
            gone = expire_snapshots(
                table,
                policy,
                now_ms=now_ms,
                batch=EXPIRE_BATCH if batch is None else batch,
                cleanup=cleanup,
                storage=applier.storage,
            )
            report.expired[ident] = len(gone)
            report.cleanup.add(cleanup)
            if gone:
                log.info(
                    "table %s: expired %d snapshot(s) committed %s to %s; %d kept; deleted %d file(s) "
                    "no kept snapshot uses (%.1f MB of data)%s",
                    ident, len(gone), _iso(gone[0].timestamp_ms), _iso(gone[-1].timestamp_ms),
                    len(table.snapshots()), cleanup.files, cleanup.data_bytes / 1e6,
                    f", {cleanup.failed} could not be deleted" if cleanup.failed else "",
                )  # fmt: skip
            elif missing := missing_properties(table, METADATA_PROPERTIES):  # once per table
                with CachedTransaction(table) as tx:
                    tx.set_properties(missing)
            report.swept.add(_sweep_when_due(applier, table, ident, now_ms))
        except NoSuchTableError:
            continue
        except Exception as e:  # noqa: BLE001 - maintenance must never fail an apply
            log.warning(
                "table %s: maintenance skipped, tried again later: %s: %s", ident, type(e).__name__, e
            )
            report.failures.append(f"{ident}: {type(e).__name__}")
    return report


def _sweep_when_due(applier: Applier, table: Table, ident: str, now_ms: int | None) -> Cleanup:
    """The daily sweep of one table: orphan files in its folder, dead applied-file records.

    Due when the table's ``ddblake.orphans-swept-ms`` is a day old; recorded after the sweep, so a
    pass that fails sweeps again next time (deleting what is dead is idempotent).
    """
    now = int(time.time() * 1000) if now_ms is None else now_ms
    if now - int(table.properties.get(SWEPT_PROPERTY, "0")) < SWEEP_EVERY_MS:
        return Cleanup()
    which = "history" if ident == applier.history_id else "current"
    swept = sweep_orphans(table, applier.storage, now_ms=now)
    swept.add(sweep_pointers(applier.storage, table, applier.config.table, which, now_ms=now))
    with CachedTransaction(table) as tx:
        tx.set_properties({SWEPT_PROPERTY: str(now)})
    if swept.files or swept.failed:
        log.info(
            "table %s: deleted %d orphan file(s) and dead applied-file record(s)%s",
            ident, swept.files, f", {swept.failed} could not be deleted" if swept.failed else "",
        )  # fmt: skip
    return swept


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


@dataclass
class Maintainer:
    """Decides when ``run_apply`` maintains, so that maintenance costs a polling loop next to nothing.

    Every ``every_commits`` cycles that committed, or ``every_seconds`` after the last pass when
    something was committed since; ``run_apply`` also calls :meth:`run` at the end of a ``--once``
    run that applied files. Between passes it only counts.
    """

    applier: Applier
    every_commits: int = EVERY_COMMITS
    every_seconds: float = EVERY_SECONDS
    clock: Callable[[], float] = time.monotonic
    commits: int = 0
    last: float = field(init=False)

    def __post_init__(self) -> None:
        self.last = self.clock()

    def after_cycle(self, committed: bool) -> Report | None:
        """Count a cycle; maintain when due. Never raises."""
        self.commits += bool(committed)
        if not self.commits:
            return None
        if self.commits < self.every_commits and self.clock() - self.last < self.every_seconds:
            return None
        return self.run()

    def run(self) -> Report | None:
        """One maintenance pass now (each step checks its own thresholds). Never raises."""
        self.commits, self.last = 0, self.clock()
        try:
            return maintain(self.applier)
        except Exception as e:  # noqa: BLE001 - e.g. an unreachable catalog: apply goes on
            log.warning("table %s: maintenance skipped: %s", self.applier.config.table, type(e).__name__)
            return None
