"""What ``apply`` works on and what it reports: its configuration, its counts, and the table
properties it keeps (read back by ``status`` and ``rebootstrap``).

Apart from :mod:`ddblake.lake.apply` so that the readers of these names need not import the
applier and its dependencies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ddblake import settings
from ddblake.errors import ConfigError
from ddblake.lake import current
from ddblake.lake.catalog import LakeConfig
from ddblake.names import glue_name_problem

if TYPE_CHECKING:
    from pyiceberg.table import Table

QUARANTINE_PROPERTY = "ddblake.quarantined-total"
SOURCE_PROPERTY = "ddblake.source-table"
LAKE_PROPERTY = "ddblake.lake"
NEWEST_EVENT_PROPERTY = "ddblake.newest-event-us"
FOLD_GRACE_HOURS = 6
# Appends merge the history's small manifests (one per commit) once this many pile up, so a scan
# plan reads a few manifests rather than one per batch ever applied. Iceberg table properties:
# every engine honours them.
HISTORY_MANIFEST_MERGE = {"commit.manifest-merge.enabled": "true", "commit.manifest.min-count-to-merge": "8"}
# A lost commit race is retried by run_apply from the top (applied-file records re-read, events
# deduplicated again); pyiceberg's own retry would re-commit the same append on top of the winner's.
NO_CATALOG_RETRY = {"commit.retry.num-retries": "0"}

MAX_BUCKETS = 65_536
"""The most key buckets a new current-state table may have (``--buckets``). Each bucket is a
partition of its own, with a data file of its own at least, which a whole-table rewrite writes one
by one: past some tens of thousands, a table's files are tiny and its every scan plan long. (The
``_ddb_bucket`` column is an int32, which a count past 2**31 would overflow.)"""

MAINTENANCE_MOST = {"keep_hours": 1e6, "keep_replaced_minutes": 1e7}
"""The largest maintenance settings taken (some 114 and 19 years); the counts' is 1e9."""


def other_owner(tbl: Table, table: str) -> str | None:
    """The DynamoDB table that wrote ``tbl`` when it is not ``table``: two DynamoDB names that
    share one identifier (``ab-c`` and ``ab.c`` are both ``ab_c``), told apart by the table property
    ``ddblake.source-table``. None when ``table`` owns it, or when the property is absent (a table
    an older ddblake created counts as the table's own, as apply takes it)."""
    source = tbl.properties.get(SOURCE_PROPERTY)
    return source if source and source != table else None


@dataclass(frozen=True)
class ApplyConfig:
    """What ``apply`` works on and how."""

    table: str
    lake: LakeConfig
    once: bool = True
    poll_seconds: float = 1.0
    buckets: int = current.DEFAULT_BUCKETS
    max_files: int = 500
    # A batch also stops at the file that brings it to this many events or bytes of raw lines:
    # a batch's memory grows with its events (some 7 KB each, images included), and a full load
    # cuts thousands of raw files that would otherwise come as one batch.
    max_events: int = 200_000
    max_bytes: int = 256 << 20
    # Table maintenance (ddblake.lake.maintain); None: the table's property, else maintain's default.
    keep_hours: float | None = None
    keep_snapshots: int | None = None
    keep_min_snapshots: int | None = None
    compact_files: int | None = None
    keep_replaced_minutes: float | None = None

    @classmethod
    def build(
        cls,
        *,
        table: str | None,
        lake: LakeConfig,
        once: bool = True,
        poll_seconds: float | None = None,
        buckets: int | None = None,
        max_files: int | None = None,
        max_events: int | None = None,
        max_bytes: int | None = None,
        keep_hours: float | None = None,
        keep_snapshots: int | None = None,
        keep_min_snapshots: int | None = None,
        compact_files: int | None = None,
        keep_replaced_minutes: float | None = None,
    ) -> ApplyConfig:
        """Argument, then ``DDBLAKE_*`` environment, then default.

        The maintenance settings left unset here fall back to table properties, then to
        ``ddblake.lake.maintain``'s defaults (docs/lake.md, Maintenance); zero turns a limit off.

        Raises:
            ConfigError: a value is missing or out of range.
        """

        maintenance: dict[str, Any] = {
            "keep_hours": settings.optional("keep_hours", None, keep_hours, float),
            "keep_snapshots": settings.optional("keep_snapshots", None, keep_snapshots, int),
            "keep_min_snapshots": settings.optional("keep_min_snapshots", None, keep_min_snapshots, int),
            "compact_files": settings.optional("compact_files", None, compact_files, int),
            "keep_replaced_minutes": settings.optional(
                "keep_replaced_minutes", None, keep_replaced_minutes, float
            ),
        }
        for name, number in maintenance.items():
            if number is None:
                continue
            where, shown = settings.elsewhere(name), str(number) if len(str(number)) < 24 else "more"
            if not ((isinstance(number, int) or math.isfinite(number)) and number >= 0):
                raise ConfigError(f"{where} must be zero (no limit) or a finite number above, got {number}")
            if number > (most := MAINTENANCE_MOST.get(name, 1e9)):
                # a larger one overflows maintenance's milliseconds, and every pass would fail
                raise ConfigError(f"{where} must be at most {most:g} (or 0: no limit), got {shown}")
        table = settings.required_table(table)
        if lake.catalog == "glue" and (problem := glue_name_problem(table)) is not None:
            raise ConfigError(f"DynamoDB table {table!r} {problem} (--catalog glue)")
        poll = settings.value("poll_seconds", "--poll-seconds", poll_seconds, float, cls.poll_seconds)
        nb = settings.value("buckets", "--buckets", buckets, int, cls.buckets)
        mf = settings.value("apply_max_files", None, max_files, int, cls.max_files)
        me = settings.value("apply_max_events", None, max_events, int, cls.max_events)
        mb = settings.value("apply_max_bytes", None, max_bytes, int, cls.max_bytes)
        checks: tuple[tuple[str, float, float | None], ...] = (
            (f"--poll-seconds (or {settings.elsewhere('poll_seconds')})", poll, settings.MAX_WAIT_SECONDS),
            (f"--buckets (or {settings.elsewhere('buckets')})", nb, MAX_BUCKETS),
            (settings.elsewhere("apply_max_files"), mf, None),
            (settings.elsewhere("apply_max_events"), me, None),
            (settings.elsewhere("apply_max_bytes"), mb, None),
        )
        for where, number, limit in checks:
            if not math.isfinite(number):  # nan passes `<= 0` (a busy loop), inf breaks sleep()
                raise ConfigError(f"{where} must be a finite positive number, got {number:g}")
            if number <= 0:
                raise ConfigError(f"{where} must be positive, got {number:g}")
            if limit is not None and number > limit:  # a longer wait overflows; see MAX_BUCKETS
                unit = " seconds (a day)" if limit == settings.MAX_WAIT_SECONDS else ""
                shown = f"{number:g}" if isinstance(number, float) else str(number)
                raise ConfigError(f"{where} must be at most {limit:g}{unit}, got {shown}")
        return cls(
            table=table,
            lake=lake,
            once=once,
            poll_seconds=poll,
            buckets=nb,
            max_files=mf,
            max_events=me,
            max_bytes=mb,
            **maintenance,
        )


@dataclass
class ApplyResult:
    """Counts of one apply run (no item data)."""

    files: int = 0
    events: int = 0
    duplicates: int = 0
    quarantined: int = 0
    history_rows: int = 0
    upserts: int = 0
    deletes: int = 0
    stale: int = 0
    buckets_rewritten: int = 0
    files_rewritten: int = 0
    # Maintenance at the end of a --once run: tables whose pass failed (the whole pass counts one per
    # table), and runs that left it out for lack of time before their deadline (the apply Lambda).
    maintenance_failures: int = 0
    maintenance_skipped: int = 0

    def summary(self) -> str:
        """One line of counts for people."""
        return (
            f"applied {self.files} file(s): {self.events} event(s), {self.history_rows} new in history, "
            f"{self.upserts} upsert(s), {self.deletes} delete(s), {self.duplicates} duplicate(s), "
            f"{self.stale} stale, {self.quarantined} quarantined"
        )

    def step(self, name: str) -> str:
        """The counts of one step of a batch (``history`` or ``current``), for apply's DEBUG log."""
        if name == "history":
            return f"history: {self.history_rows} new row(s), {self.duplicates} duplicate(s)"
        return (
            f"current state: {self.upserts} upsert(s), {self.deletes} delete(s), {self.stale} stale; "
            f"{self.files_rewritten} file(s) of {self.buckets_rewritten} bucket(s) rewritten"
        )

    def add(self, other: ApplyResult) -> None:
        """Accumulate another run's counts."""
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))
