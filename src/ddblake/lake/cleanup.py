"""Deleting what a table no longer references: the files expired snapshots alone reached, orphan
files in the table's folder, and dead applied-file records and folded days' names.

pyiceberg 0.12's snapshot expiry deletes no file, and apply's copy-on-write rewrites leave a copy of
every touched file behind at each commit, so without this a lake grows with every batch ever
applied. :mod:`ddblake.lake.maintain` decides when each of these runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final

from pyiceberg.io import FileIO
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot

from ddblake.errors import DdblakeError
from ddblake.lake.applied import PROPERTY, day_names_path, load_log, records_prefix
from ddblake.lake.storage import Storage
from ddblake.redact import first_line

log = logging.getLogger(__name__)

DELETE_THREADS = 8  # object stores delete one request per file: a few in flight
# Unreferenced files younger than these may belong to a commit still in flight (Spark's default age
# for orphan files is three days); an applied-file record is written just before its commit.
ORPHAN_AGE_MS = 72 * 3_600_000
POINTER_AGE_MS = 6 * 3_600_000


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


def delete_all(delete: Callable[[str], None], doomed: dict[str, int]) -> Cleanup:
    """Delete ``doomed`` (path -> data bytes) a few at a time; a file already gone counts as deleted."""

    def one(path: str) -> bool:
        try:
            delete(path)
        except FileNotFoundError:
            pass
        except (OSError, DdblakeError) as e:  # transient or refused (access denied, Object Lock)
            # The first line only, values masked (ddblake.redact): the error names the file and cause.
            log.warning(
                "could not delete %s (left for an orphan-file sweep): %s: %s",
                path,
                type(e).__name__,
                first_line(e),
            )
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
    return delete_all(io.delete, doomed)


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
    return delete_all(lambda p: storage.delete(p[len(root) + 1 :]), doomed)


def named_records(table: Table) -> set[str | None]:
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
    namespace: str,
    now_ms: int,
    min_age_ms: int = POINTER_AGE_MS,
) -> Cleanup:
    """Delete the applied-file records (:func:`records_prefix` ``<which>-*``) nothing points at any more.

    Apply writes a new record for every commit and points the table's property (and the commit's
    snapshot summary) at it; the one before is then dead. Kept: the property's record, the records
    kept snapshots name, and any younger than ``min_age_ms`` — a record an apply has written but
    not yet committed. Only this namespace's folder is swept: the same DynamoDB table applied in
    another namespace of the lake keeps its records there.
    """
    keep = named_records(table)
    cutoff = (now_ms - min_age_ms) / 1000
    prefix = records_prefix(source_table, namespace)
    doomed = {
        rel: 0
        for rel, mtime in storage.list_with_times(prefix)
        if rel.startswith(f"{prefix}{which}-") and rel not in keep and mtime < cutoff
    }
    return delete_all(storage.delete, doomed)


def sweep_day_names(
    storage: Storage,
    source_table: str,
    tables: Iterable[Table],
    *,
    namespace: str,
    now_ms: int,
    min_age_ms: int = POINTER_AGE_MS,
) -> Cleanup:
    """Delete the folded days' names files of ``namespace`` (:func:`day_names_path`) no live record names.

    Each fold that changes a day's digest writes a names file (:func:`ddblake.lake.applied.save_log`);
    the day's last hours fold one by one, so most are soon dead. Kept: those of the (day, digest)
    pairs the records the ``tables``' properties point at hold (the history's and the current
    state's: they share the files), and any younger than ``min_age_ms``, which an apply may be about
    to commit. Only the namespace's folder is swept: another namespace applying the same DynamoDB
    table keeps its own. The folder older versions shared (``state/apply/<table>/days/``) is left
    as it is, since any namespace's record may name a file there; it no longer grows. A names file
    deleted too eagerly costs a re-read of its day, never a loss.
    """
    live: set[str] = set()
    for table in tables:
        applied = load_log(storage, table.properties.get(PROPERTY))
        live.update(
            day_names_path(source_table, day, digest, namespace) for day, digest in applied.days.items()
        )
    cutoff = (now_ms - min_age_ms) / 1000
    doomed = {
        rel: 0
        for rel, mtime in storage.list_with_times(f"{records_prefix(source_table, namespace)}days/")
        if rel not in live and mtime < cutoff
    }
    return delete_all(storage.delete, doomed)


TEMP_FILE_DAYS: Final = 1
"""A temp file of a local lake this old is a killed write's (a live one is renamed within seconds)."""


def sweep_temp_files(
    storage: Storage, table: str, *, older_than_s: float = TEMP_FILE_DAYS * 86_400
) -> Cleanup:
    """Delete the temp files killed writes left in a local lake's folders of ``table``: its raw log
    and its capture, load and apply state (:meth:`Storage.stale_temp_files`)."""
    done = Cleanup()
    for kind in ("raw", "state/capture", "state/load", "state/apply"):
        prefix = f"{kind}/{table}/"
        for rel in storage.stale_temp_files(prefix, older_than_s):
            try:
                storage.delete(rel)
                done.files += 1
            except DdblakeError:
                done.failed += 1
    return done
