"""Load from an export folder: check it whole, then write its rows to the raw log, resumably.

State (``state/load/<table>/export-<export id>.json``) lists the export's data files as parts;
for each, how many of its lines are in raw files. Data files never change, so a rerun skips done
files and the written lines of a file it was in the middle of. The rows keep their event IDs
whatever run writes them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ddblake.errors import ConfigError, DdblakeError, StoppedError, TerminalError, TransientError
from ddblake.lake.storage import Storage
from ddblake.load.export import ExportFolder, ExportManifest, read_manifest, verify_export
from ddblake.load.export_parts import (
    Flushed,
    ParallelUnavailable,
    PartJob,
    plan_workers,
    run_parallel,
    write_part,
)
from ddblake.load.handoff import check_export_follows_capture
from ddblake.load.rows import EXPORT_VERSIONS, export_version_from_us, now_us
from ddblake.load.scan import LoadResult
from ddblake.load.state import (
    STATE_WRITE_SECONDS,
    LoadState,
    StateSaver,
    export_state_name,
    note_new_full_load,
    read_state,
    state_path,
    utc_text,
    write_state,
)
from ddblake.progress import Progress

log = logging.getLogger(__name__)


class ExportLoad:
    """One load from one export folder.

    Args:
        table: the DynamoDB table (the raw-log folder).
        folder_uri: the export folder (local path or ``s3://``).
        storage: the lake.
        key_names: gives the table's key attributes; asked only for a full export, whose lines do
            not carry keys apart from the items (an incremental export needs no DescribeTable).
        buffer_bytes: raw file size (and state write interval).
        progress: progress display.
        stop: set to stop after the current raw file.
        workers: processes turning data files into raw files; None: one per CPU for an export of
            :data:`~ddblake.load.export_parts.PARALLEL_MIN_ITEMS` items or more, else this process.
        versions: how the rows are versioned (``ddblake.load.rows.export_version_from_us``):
            ``second``, or ``minute`` when the lake captures DynamoDB Local's minute-stamped stream.
            Recorded in the state: a resumed load keeps the rule it began with (a state without one
            was written by an older ddblake, which versioned every export row to the minute).
    """

    def __init__(
        self,
        table: str,
        folder_uri: str,
        storage: Storage,
        *,
        key_names: Callable[[], tuple[str, ...]],
        buffer_bytes: int,
        progress: Progress,
        stop: threading.Event | None = None,
        workers: int | None = None,
        state_seconds: float = STATE_WRITE_SECONDS,
        versions: str = "second",
        keys: tuple[str, ...] | None = None,
        reload_level: int | None = logging.WARNING,
    ) -> None:
        """Open the folder; nothing is read until :meth:`run`.

        ``state_seconds`` is the least time between two state writes (0: after every raw file).
        ``keys``: the key attributes the user gave (``--keys``), if any; checked against the ones a
        load of this export recorded, even one that finished (nothing is loaded then), so different
        keys are refused rather than ignored. ``reload_level``: the log level of the line saying a
        new full load starts although another finished (None: the caller said it already).
        """
        self.table = table
        self.folder = ExportFolder(folder_uri)
        self.storage = storage
        self.key_names = key_names
        self.buffer_bytes = buffer_bytes
        self.progress = progress
        self.stop = stop or threading.Event()
        self.workers = workers
        self.state_seconds = state_seconds
        if versions not in EXPORT_VERSIONS:
            raise ValueError(f"export versions {versions!r}: expected one of {', '.join(EXPORT_VERSIONS)}")
        self.versions = versions
        self.keys = keys
        self.reload_level = reload_level

    def check(self) -> ExportManifest:
        """Read and verify the manifests and every data file (writes nothing).

        Raises:
            CorruptExportError, NotFoundError, ConfigError: see :func:`verify_export`.
        """
        manifest = read_manifest(self.folder)
        self._verify(manifest)
        return manifest

    def _verify(self, manifest: ExportManifest) -> None:
        self.progress.status(f"checking {len(manifest.files)} data file(s) of export {manifest.export_id}")
        verify_export(self.folder, manifest, table=self.table, stop=self.stop, keys=self.keys)

    def _check_keys(
        self, state: LoadState, manifest: ExportManifest, keys: tuple[str, ...] | None, source: str
    ) -> None:
        """Refuse keys other than the ones the load of this export recorded.

        A full export's rows take their keys (and so their event IDs) from the key attributes: an
        unfinished load continued with others would write half its rows under each, and a finished
        one would quietly keep its own. A state written before keys were recorded is not checked.

        Raises:
            ConfigError: the keys differ; names both, where each came from, and how to start over.
        """
        recorded = state.options.get("keys")
        if manifest.incremental or keys is None or not isinstance(recorded, list):
            return
        if tuple(str(k) for k in recorded) == keys:
            return
        where = self.storage.shown(state_path(self.table, state.name))
        was, now = ",".join(str(k) for k in recorded), ",".join(keys)
        done = state.finished_us is not None
        loaded, fix = (
            ("loaded", "it is already loaded; ")
            if done
            else ("partly loaded", f"pass --keys {was} to continue it, or ")
        )
        raise ConfigError(
            f"export {manifest.export_id} of table {self.table!r} was {loaded} with keys {was} (recorded "
            f"in {where}), but this run's keys are {now} ({source}): {fix}"
            f"to load it again with keys {now}, delete {where} and rerun (the rows written with keys "
            f"{was} stay in the raw log under their own event IDs, so apply keeps both)"
        )

    def _already_loaded(self, manifest: ExportManifest, state: LoadState, began: float) -> LoadResult:
        """The result of loading an export whose load finished: nothing is read or written."""
        self._check_keys(state, manifest, self.keys, f"--keys {','.join(self.keys or ())}")
        log.info(
            "load %s: export %s was already loaded (finished %s, %d item(s)): nothing to do",
            self.table,
            manifest.export_id,
            utc_text(state.finished_us or 0),
            state.items,
        )
        return LoadResult(
            kind="export",
            table=self.table,
            load_id=state.load_id,
            started_us=state.started_us,
            version_time_us=state.version_time_us,
            parts_total=state.total_parts,
            parts_skipped=state.total_parts,
            already_loaded=True,
            seconds=time.monotonic() - began,
            export_arn=manifest.export_arn or None,
        )

    def run(self) -> LoadResult:
        """Check the export, then load every data file not yet loaded.

        Raises:
            CorruptExportError: the export is incomplete or damaged (nothing is written).
            TerminalError: a line is not an export line (names file and line), or DescribeTable
                failed for good when the key attributes were needed.
            TransientError: the lake or the export could not be read or written, or DescribeTable
                failed transiently (throttled, unreachable); rerun to resume.
        """
        clock = time.monotonic()
        manifest = read_manifest(self.folder)
        name = export_state_name(manifest.export_id)
        state = read_state(self.storage, self.table, name)
        if state is not None and state.finished_us is not None:  # no need to check what is not read
            return self._already_loaded(manifest, state, clock)
        if not manifest.incremental and manifest.export_time_us is not None:
            check_export_follows_capture(
                self.storage, self.table, manifest.export_id, manifest.export_time_us
            )
        self._verify(manifest)
        key_names: tuple[str, ...] | None = None
        if not manifest.incremental:
            try:
                key_names = self.key_names()
            except DdblakeError as e:
                # The kind is kept: a throttled or unreachable DescribeTable is worth a retry (continuous
                # sync retries transient errors), a denied or missing table is not.
                kind = TransientError if e.transient else TerminalError
                retry = "run again, or " if e.transient else ""
                raise kind(
                    f"cannot load full export {manifest.uri}: the key attributes of table {self.table!r} are "
                    f"needed and DescribeTable failed ({e}); {retry}pass --keys <hash key>[,<range key>]"
                ) from e
        resumed = state is not None
        if state is not None:
            given = f"--keys {','.join(self.keys)}" if self.keys else "DescribeTable's key schema"
            self._check_keys(state, manifest, key_names, given)
        else:
            if not manifest.incremental and self.reload_level is not None:
                note_new_full_load(self.storage, self.table, level=self.reload_level)
            state = LoadState(
                table=self.table,
                name=name,
                kind="export",
                load_id=manifest.export_id,
                started_us=manifest.export_time_us or now_us(),
                version_time_us=export_version_from_us(manifest.export_time_us or 0, self.versions)
                if not manifest.incremental
                else 0,
                total_parts=len(manifest.files),
                source=manifest.uri,
                options={
                    "export_arn": manifest.export_arn,
                    "incremental": manifest.incremental,
                    "format": manifest.output_format,
                    "versions": self.versions,
                    **({"keys": list(key_names)} if key_names else {}),
                    **({"covers_until_us": manifest.export_to_time_us} if manifest.export_to_time_us else {}),
                    **(
                        {"covers_from_us": manifest.export_from_time_us}
                        if manifest.export_from_time_us
                        else {}
                    ),
                },
                updated_us=now_us(),
            )
        # The rule the load began with; an older ddblake recorded none and versioned to the minute.
        versions = state.options.get("versions", "minute")
        if versions not in EXPORT_VERSIONS:
            raise TerminalError(
                f"load state {self.storage.shown(state_path(self.table, name))} of table {self.table!r} is "
                f"damaged: its versions option is {versions!r}, not one of {', '.join(EXPORT_VERSIONS)}; "
                "restore the file, or delete it to load the export again from the start"
            )
        pending = [f for f in manifest.files if not state.part(f.rel).done]
        result = LoadResult(
            kind="export",
            table=self.table,
            load_id=state.load_id,
            started_us=state.started_us,
            version_time_us=state.version_time_us,
            parts_total=len(manifest.files),
            parts_skipped=len(manifest.files) - len(pending),
            resumed=resumed,
            export_arn=manifest.export_arn or None,
        )
        self.progress.total = manifest.item_count
        self.progress.set_parts(len(manifest.files))
        self.progress.resume_from(state.items, result.parts_skipped)
        self.progress.status(f"loading export {manifest.export_id}")
        log.info(
            "load %s: %s export %s (%s, %s, %d item(s), %d of %d file(s) to load)",
            self.table,
            "continuing" if resumed else "loading",
            manifest.export_id,
            "incremental" if manifest.incremental else "full",
            manifest.output_format,
            manifest.item_count,
            len(pending),
            len(manifest.files),
        )

        saver = StateSaver(
            self.storage,
            state,
            threading.Lock(),  # record runs on this thread only
            interval=self.state_seconds,
            write=lambda storage, st: write_state(storage, st),  # late-bound: tests replace it
            stored=resumed,
        )

        def record(flushed: Flushed) -> None:
            part = state.part(flushed.rel)
            part.items += flushed.items
            part.done = flushed.done
            state.updated_us = now_us()
            saver.changed()
            saver.save()
            result.files += flushed.files
            result.items += flushed.items
            self.progress.add(flushed.items, part_done=flushed.done)

        jobs = [
            PartJob(
                table=self.table,
                folder=self.folder,
                storage=self.storage,
                manifest=manifest,
                key_names=key_names,
                entry=entry,
                skip=state.part(entry.rel).items,
                buffer_bytes=self.buffer_bytes,
                versions=versions,
            )
            for entry in pending
        ]
        result.parts_read.extend(entry.rel for entry in pending)
        try:
            self._write_parts(jobs, record, manifest.export_id)
        except Exception:
            if resumed or result.files:  # what was written, so that a rerun does not write it again
                saver.save(force=True)  # (nothing written: no state, as for a refused export)
            raise
        if not all(state.part(job.entry.rel).done for job in jobs):  # stopped before the end
            saver.save(force=True)
            raise StoppedError(f"load {self.table}: stopped; run the same command again to resume")
        state.finished_us = state.updated_us = now_us()
        write_state(self.storage, state)
        result.seconds = time.monotonic() - clock
        self.progress.finish(complete=True)
        return result

    def _write_parts(self, jobs: list[PartJob], record: Callable[[Flushed], None], export_id: str) -> None:
        """Turn the data files into raw files, in worker processes where they can run."""
        workers = plan_workers([job.entry for job in jobs], self.workers)
        if workers > 1:
            self.progress.status(f"loading export {export_id} ({workers} processes)")
            try:
                run_parallel(jobs, workers, record, self.stop)
            except ParallelUnavailable as e:
                log.warning("load %s: loading in one process (no worker processes here: %s)", self.table, e)
                workers = 1
        if workers <= 1:
            for job in jobs:
                if self.stop.is_set() or not write_part(job, record, self.stop.is_set):
                    break
