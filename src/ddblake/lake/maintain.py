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
(:func:`ddblake.lake.cleanup.delete_unreachable`; pyiceberg 0.12 deletes none, and apply's
copy-on-write rewrites would otherwise leave a copy of every touched file behind at each commit).
Once a day a sweep deletes old files that nothing references at all (:mod:`ddblake.lake.cleanup`).
Compaction itself is :mod:`ddblake.lake.compact`; this module decides when each chore runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot
from pyiceberg.table.update import AssertRefSnapshotId, RemoveSchemasUpdate
from pyiceberg.table.update.snapshot import ExpireSnapshots

from ddblake.lake.applied import PROPERTY
from ddblake.lake.apply import Applier, ApplyConfig
from ddblake.lake.cleanup import (
    Cleanup,
    delete_all,
    delete_unreachable,
    named_records,
    sweep_day_names,
    sweep_orphans,
    sweep_pointers,
    sweep_temp_files,
)
from ddblake.lake.commits import CachedTransaction, missing_properties
from ddblake.lake.compact import SMALL_FILE_BYTES, Compaction, compact_small_files
from ddblake.lake.files import open_file_bytes
from ddblake.lake.query import (  # newest expired commit time: --as-of stops there; first commit
    EXPIRED_PROPERTY,
    FIRST_COMMIT_PROPERTY,
    first_commit_ms,
)
from ddblake.lake.storage import Storage
from ddblake.redact import first_line

log = logging.getLogger(__name__)

DEFAULT_KEEP_HOURS = 24
DEFAULT_KEEP_SNAPSHOTS = 100  # ≈0.45 ms of CPU per kept snapshot per one-row cycle (docs/benchmarks.md)
DEFAULT_KEEP_MIN_SNAPSHOTS = 10
DEFAULT_COMPACT_FILES = 32
# A snapshot replaced less than this long ago stays, with its files: a reader (query, Athena, Spark,
# a concurrent apply) that planned its files while it was current must still find them.
DEFAULT_KEEP_REPLACED_MINUTES = 5
# Iceberg's own property names where it has one (Spark's expire_snapshots procedure reads them).
AGE_PROPERTY = "history.expire.max-snapshot-age-ms"
MIN_PROPERTY = "history.expire.min-snapshots-to-keep"
MAX_PROPERTY = "ddblake.expire.max-snapshots"
COMPACT_PROPERTY = "ddblake.compact.min-files"
REPLACED_PROPERTY = "ddblake.expire.keep-replaced-ms"
# Each metadata file copies every kept snapshot: keep the 20 newest files, delete older ones.
METADATA_PROPERTIES = {
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "20",
}
SWEEP_EVERY_MS = 24 * 3_600_000  # the orphan sweep lists the table's folder: once a day
SWEPT_PROPERTY = "ddblake.orphans-swept-ms"
EXPIRE_BATCH = 16  # expire once this many are due: one commit per batch, not one per cycle
EVERY_COMMITS = 50  # the polling loop maintains after this many cycles that committed ...
EVERY_SECONDS = 300.0  # ... or this long after its last pass, when something was committed since


@dataclass(frozen=True)
class Policy:
    """What one table keeps. Zero turns a limit off; with both age and count off nothing expires."""

    keep_ms: int = DEFAULT_KEEP_HOURS * 3_600_000
    keep_snapshots: int = DEFAULT_KEEP_SNAPSHOTS
    keep_min: int = DEFAULT_KEEP_MIN_SNAPSHOTS
    compact_files: int = DEFAULT_COMPACT_FILES
    keep_replaced_ms: int = DEFAULT_KEEP_REPLACED_MINUTES * 60_000

    @classmethod
    def for_table(cls, table: Table, config: ApplyConfig) -> Policy:
        """The config's value (argument, environment) wins, then the table's property, then the default.

        Table properties let one table keep more than the others without a redeploy.
        """

        def pick(given: float | None, name: str, default: int, scale: int = 1) -> int:
            if given is not None:  # a positive age below a millisecond stays a limit, not 0 (off)
                return max(1, int(given * scale)) if given > 0 else 0
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
            pick(config.keep_replaced_minutes, REPLACED_PROPERTY, cls.keep_replaced_ms, 60_000),
        )


def expirable(table: Table, policy: Policy, now_ms: int) -> list[Snapshot]:
    """The snapshots the policy lets go, oldest first (a pure decision on the loaded metadata).

    Ranked newest first by commit time, a snapshot stays when it is among the ``keep_min`` newest,
    or when it is both younger than ``keep_ms`` and among the ``keep_snapshots`` newest. Both rules
    keep a run of the newest snapshots, so ``--as-of`` is exact from the oldest kept one onwards.
    Snapshots a branch or a tag points at (the current one is main's) always stay, and so does one
    replaced (by the next newer) less than ``keep_replaced_ms`` ago: expiry deletes the files only
    expired snapshots reach, and a reader that planned its files from it while it was current
    (a query, an outside engine, a concurrent apply) must still find them. Expiry goes by count, and
    a busy sync makes 100 commits in well under a minute.
    """
    if policy.keep_ms <= 0 and policy.keep_snapshots <= 0:
        return []
    protected = {ref.snapshot_id for ref in table.metadata.refs.values()}
    newest_first = sorted(table.snapshots(), key=lambda s: (s.timestamp_ms, s.sequence_number), reverse=True)
    out: list[Snapshot] = []
    for rank, snap in enumerate(newest_first):
        young = policy.keep_ms <= 0 or now_ms - snap.timestamp_ms < policy.keep_ms
        few = policy.keep_snapshots <= 0 or rank < policy.keep_snapshots
        replaced_ms = newest_first[rank - 1].timestamp_ms if rank else now_ms
        recent = now_ms - replaced_ms < policy.keep_replaced_ms
        if not (rank < policy.keep_min or (young and few) or recent or snap.snapshot_id in protected):
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
    props = {EXPIRED_PROPERTY: str(through), **missing_properties(table, METADATA_PROPERTIES)}
    # The first snapshot's time, while the table still has it: --as-of before it is an empty table,
    # not an expired one. Kept by every later expiry (set once, never changed).
    first = None if FIRST_COMMIT_PROPERTY in table.properties else first_commit_ms(table)
    if first is not None:
        props[FIRST_COMMIT_PROPERTY] = str(first)
    unused = unused_schemas(table, {s.snapshot_id for s in gone})
    with CachedTransaction(table) as tx:
        tx._apply(
            (), (AssertRefSnapshotId.model_validate({"ref": "main", "snapshot-id": current.snapshot_id}),)
        )
        ExpireSnapshots(tx).by_ids([s.snapshot_id for s in gone]).commit()
        if unused:
            tx._apply((RemoveSchemasUpdate.model_validate({"schema-ids": unused}),), ())
        tx.set_properties(props)
    # The commit refreshed ``table``: its snapshots are the kept ones. Files a later commit adds are
    # new or carried over from the current snapshot, which is kept, so none of them is deleted here.
    done = delete_unreachable(table.io, gone, table.snapshots())
    if storage is not None:  # committed records, so none is in flight: no age needed
        dead = {s.summary[PROPERTY] for s in gone if s.summary is not None} - named_records(table) - {None}
        done.add(delete_all(storage.delete, {str(p): 0 for p in dead}))
    if cleanup is not None:
        cleanup.add(done)
    return gone


def unused_schemas(table: Table, gone: set[int]) -> list[int]:
    """The schemas no snapshot but those in ``gone`` reads with, the current one aside.

    Iceberg keeps every schema a table has had, in every metadata file: a table whose batches add
    columns (attribute names that are data) or retype one gains a schema each time, and every
    commit then reads and writes them all (and pyiceberg's Glue catalog lists every column of each
    in Glue). Once the snapshots that read with a schema have expired, it goes with them. None goes
    while a kept snapshot does not say which schema it reads with (an older writer's).
    """
    kept = [s for s in table.snapshots() if s.snapshot_id not in gone]
    if any(s.schema_id is None for s in kept):
        return []
    used = {table.metadata.current_schema_id, *(s.schema_id for s in kept)}
    return [schema.schema_id for schema in table.metadata.schemas if schema.schema_id not in used]


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
    that table's pass: it is logged at warning and recorded, and the next pass tries again. A
    compaction's failure ends only the compaction: expiry and the sweep still run.
    """
    report = Report()
    for ident in (applier.history_id, applier.current_id):
        try:
            table = applier.catalog.load_table(ident)
            policy = Policy.for_table(table, applier.config)
            if policy.compact_files:
                try:
                    _compact(applier, table, ident, policy, report)
                except NoSuchTableError:
                    raise
                except Exception as e:  # noqa: BLE001 - expiry and the sweep must still run
                    # Compaction picks the same files every pass: one that fails for good (a file
                    # pyarrow cannot convert) must not also stop expiry and the sweep for good,
                    # which would slow every later commit.
                    _failed(report, ident, "compaction", e)
                    table = applier.catalog.load_table(ident)
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
            _failed(report, ident, "maintenance", e)
    return report


def _compact(applier: Applier, table: Table, ident: str, policy: Policy, report: Report) -> None:
    """One table's compaction; its commit refreshes ``table``, so expiry sees the new snapshot."""
    history = ident == applier.history_id
    small = SMALL_FILE_BYTES if history else open_file_bytes()
    c = compact_small_files(table, policy.compact_files, small_bytes=small)
    if history:
        report.compaction = c
    else:
        report.compaction_current = c
    if c is not None:
        log.info(
            "table %s: compacted %d small file(s) of %d partition(s) into %d (%d rows)",
            ident, c.files_removed, c.partitions, c.files_added, c.rows,
        )  # fmt: skip


def _failed(report: Report, ident: str, what: str, e: Exception) -> None:
    # The first line only (pyiceberg may list every snapshot in it), quoted values masked (a
    # compaction's pyarrow conversion error quotes the value it failed on).
    log.warning(
        "table %s: %s skipped, tried again later: %s: %s", ident, what, type(e).__name__, first_line(e)
    )
    report.failures.append(f"{ident}: {type(e).__name__}")


def _sweep_when_due(applier: Applier, table: Table, ident: str, now_ms: int | None) -> Cleanup:
    """The daily sweep of one table: orphan files in its folder, dead applied-file records (and,
    with the current state's, dead names files of folded days).

    Due when the table's ``ddblake.orphans-swept-ms`` is a day old; recorded after the sweep, so a
    pass that fails sweeps again next time (deleting what is dead is idempotent).
    """
    now = int(time.time() * 1000) if now_ms is None else now_ms
    if now - int(table.properties.get(SWEPT_PROPERTY, "0")) < SWEEP_EVERY_MS:
        return Cleanup()
    which = "history" if ident == applier.history_id else "current"
    swept = sweep_orphans(table, applier.storage, now_ms=now)
    swept.add(
        sweep_pointers(
            applier.storage,
            table,
            applier.config.table,
            which,
            namespace=applier.config.lake.namespace,
            now_ms=now,
        )
    )
    if which == "history":  # once a day per DynamoDB table: its raw log's and state's temp files
        swept.add(sweep_temp_files(applier.storage, applier.config.table))
    if which == "current":  # the names files are shared: swept with both tables' records in hand
        history = applier.catalog.load_table(applier.history_id)
        swept.add(
            sweep_day_names(
                applier.storage,
                applier.config.table,
                [history, table],
                namespace=applier.config.lake.namespace,
                now_ms=now,
            )
        )
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
            # The first line only, values masked, as for one table's failure in maintain().
            log.warning(
                "table %s: maintenance skipped, tried again later: %s: %s",
                self.applier.config.table,
                type(e).__name__,
                first_line(e),
            )
            return None
