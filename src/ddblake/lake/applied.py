"""The record of which raw files a lake table has absorbed.

Exactly-once rests on this record being committed *with* the data it describes: apply writes the
new record to a fresh, uniquely named file first, then makes the Iceberg commit whose table property
(and snapshot summary) points at it. A crash before the commit leaves an orphan file nobody points
at; a crash after leaves a consistent table. Either way a rerun sees exactly what was committed.

Raw files live in hour folders (``raw/<table>/YYYY/MM/DD/HH/``), so old hours can be folded into a
watermark, "every file in an hour before H is applied", and the record stays small. Hours are folded
only once they are older than a grace period, since Firehose may deliver into an hour for a while.

A file can still land in a folded hour later: Firehose retrying S3 or KMS failures for up to a day,
a backlog delivered into event-time folders (dynamic partitioning), records re-driven from
``errors/``, a backfill copied in by hand. So the record also keeps, for each folded day, a digest of
the names its folded hours held when they were folded (:func:`day_digests`). Each apply compares it
with the listing (:meth:`AppliedLog.checked`); a day whose names changed is *reopened*: its files count
as applied only when named. The names a day held when it was folded are kept beside the record, in
an immutable file per day and digest (:func:`save_log`, :func:`day_names_path`), so that only the
files the day did not hold then are read; once every file of the day is applied, the day is folded
again under its new digest. A raw file deleted from a folded day (a lifecycle rule) reopens its day
too and finds nothing new to read; it is folded again under its new digest at the table's next
commit (until then each check reads its names file once). A day whose names file is missing (a
record written before they were kept) has all its files read again: their known events are dropped
as duplicates by apply, as any repeated event is — a cost, not a loss.
"""

from __future__ import annotations

import bisect
import gzip
import hashlib
import json
import re
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ddblake.errors import TerminalError
from ddblake.lake.storage import Storage

PROPERTY = "ddblake.applied-log"


def hour_of(raw_path: str) -> str:
    """``YYYY/MM/DD/HH`` of a raw file path ``raw/<table>/YYYY/MM/DD/HH/<name>``.

    Every apply takes the hour of every raw file several times, so the usual shape is cut out
    directly; any other path gets the same answer the long way.
    """
    end = raw_path.rfind("/")
    hour = raw_path[end - 13 : end]
    if (
        end >= 14
        and raw_path[end - 14] == "/"
        and hour.count("/") == 3
        and hour[4] == hour[7] == hour[10] == "/"
    ):
        return hour
    parts = raw_path.split("/")
    return "/".join(parts[-5:-1])


class _Listing:
    """A listing's hours and days, worked out once: apply asks of one listing a dozen times per
    batch (two records checked, pending files, two folds, two saves), and at 100,000 raw files
    taking each file's hour every time cost 0.7 s a batch.

    ``ordered``: names sorted and hours non-decreasing along them, as a table's listing is
    (``raw/<table>/YYYY/MM/DD/HH/<name>``, listed in order); then each hour and each day is one
    slice, found by bisection, and names within a day are already sorted. Otherwise every question
    takes the long way, file by file.
    """

    def __init__(self, paths: list[str]) -> None:
        self.paths = paths
        self.hours = [hour_of(p) for p in paths]
        self.days = [h[:10] for h in self.hours]
        self.ordered = paths == sorted(paths) and self.hours == sorted(self.hours)
        self._digests: dict[tuple[str, int, int], str] = {}

    def before(self, hour: str) -> int:
        """How many files lie in hours before ``hour`` (ordered listings only)."""
        return bisect.bisect_left(self.hours, hour)

    def day_slices(self, until: int) -> Iterator[tuple[str, int, int]]:
        """``(day, start, end)`` of each day among the first ``until`` files (ordered listings only)."""
        start = 0
        while start < until:
            day = self.days[start]
            end = bisect.bisect_right(self.days, day, start, until)
            yield day, start, end
            start = end

    def digest(self, day: str, start: int, end: int) -> str:
        key = (day, start, end)
        found = self._digests.get(key)
        if found is None:
            found = self._digests[key] = names_digest(self.paths[start:end])
        return found


_last: tuple[list[str], _Listing] | None = None


def _listing(paths: Iterable[str]) -> _Listing:
    """The :class:`_Listing` of ``paths``, kept for the last list asked about: the same list object
    holding the same names (compared whole: a millisecond at 100,000, against the dozen questions
    a batch asks of one listing), so that a list changed in place is worked out again."""
    global _last
    last = _last
    if last is not None and last[0] is paths and last[1].paths == paths:
        return last[1]
    made = _Listing(list(paths))  # its own copy: the caller's list may change
    if isinstance(paths, list):
        _last = (paths, made)
    return made


def day_names(paths: Iterable[str], before_hour: str) -> dict[str, list[str]]:
    """``YYYY/MM/DD`` -> the sorted names of that day's files in hours before ``before_hour``."""
    return _day_names(_listing(paths), before_hour)


def _day_names(listing: _Listing, before_hour: str) -> dict[str, list[str]]:
    if listing.ordered:
        until = listing.before(before_hour)
        return {day: listing.paths[a:b] for day, a, b in listing.day_slices(until)}
    by_day: dict[str, list[str]] = {}
    for path, hour in zip(listing.paths, listing.hours, strict=True):
        if hour < before_hour:
            by_day.setdefault(hour[:10], []).append(path)
    return {day: sorted(names) for day, names in by_day.items()}


def names_digest(names: list[str]) -> str:
    """The digest of a day's sorted names."""
    return hashlib.blake2b("\n".join(names).encode(), digest_size=8).hexdigest()


def day_digests(paths: Iterable[str], before_hour: str) -> dict[str, str]:
    """``YYYY/MM/DD`` -> a digest of the names of that day's files in hours before ``before_hour``."""
    listing = _listing(paths)
    if listing.ordered:
        until = listing.before(before_hour)
        return {day: listing.digest(day, a, b) for day, a, b in listing.day_slices(until)}
    return {day: names_digest(names) for day, names in _day_names(listing, before_hour).items()}


def pending(listing: list[str], *logs: AppliedLog) -> list[str]:
    """The files of ``listing`` that one of ``logs`` has not applied, in listing order."""
    index = _listing(listing)
    positions: set[int] = set()
    for log in logs:
        positions.update(log.unapplied(index))
    return [index.paths[k] for k in sorted(positions)]


def day_names_path(table: str, day: str, digest: str, namespace: str | None = None) -> str:
    """Where the names a folded day held are kept: one immutable file per day and digest.

    In the namespace's folder beside its records (:func:`records_prefix`), so that the sweep of one
    namespace (:func:`ddblake.lake.cleanup.sweep_day_names`) never deletes a file only another
    namespace's records name. ``namespace=None``: the folder shared by every namespace that apply
    wrote before, still read (:func:`stored_names`) but no longer written or swept.
    """
    name = f"{day.replace('/', '-')}-{digest}.txt.gz"
    if namespace is None:
        return f"state/apply/{table}/days/{name}"
    return f"{records_prefix(table, namespace)}days/{name}"


NamesOf = Callable[[str, str], frozenset[str] | None]
"""``(day, digest) -> the names that day held when folded under that digest``, or None if unknown."""


@dataclass(frozen=True)
class AppliedLog:
    """Files applied: everything in hours before ``before_hour`` plus the ``files`` listed.

    ``days`` holds the digest of each folded day that held files (:func:`day_digests`): a folded day
    without one held none, unless it was folded before digests were kept (up to ``legacy_until``,
    the watermark of a record written before them). ``reopened`` (never stored: :meth:`checked`
    finds it in each listing) holds the folded days whose names changed since, whose files are
    applied only when listed in ``files`` or in ``known``: the names each of them held when it
    was folded, where they were kept.
    """

    before_hour: str = ""
    files: frozenset[str] = field(default_factory=frozenset)
    days: Mapping[str, str] = field(default_factory=dict)
    reopened: frozenset[str] = field(default_factory=frozenset)
    legacy_until: str = ""
    known: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def contains(self, raw_path: str) -> bool:
        """Whether a raw file is already applied."""
        if raw_path in self.files:
            return True
        hour = hour_of(raw_path)
        if not self.before_hour or hour >= self.before_hour:
            return False
        return hour[:10] not in self.reopened or raw_path in self.known.get(hour[:10], ())

    def unapplied(self, listing: _Listing) -> Iterator[int]:
        """Positions in ``listing`` of the files not applied (:meth:`contains`); in an ordered
        listing, the files in folded hours of days not reopened are skipped without a look."""
        if not listing.ordered or not self.before_hour:
            for k, path in enumerate(listing.paths):
                if not self.contains(path):
                    yield k
            return
        until = listing.before(self.before_hour)
        for day in sorted(self.reopened):
            start = bisect.bisect_left(listing.days, day, 0, until)
            end = bisect.bisect_right(listing.days, day, start, until)
            known = self.known.get(day, frozenset())
            for k in range(start, end):
                path = listing.paths[k]
                if path not in self.files and path not in known:
                    yield k
        for k in range(until, len(listing.paths)):
            if listing.paths[k] not in self.files:
                yield k

    def with_files(self, new: set[str] | frozenset[str]) -> AppliedLog:
        """A new log with more files applied."""
        return AppliedLog(
            self.before_hour,
            self.files | frozenset(new),
            self.days,
            self.reopened,
            self.legacy_until,
            self.known,
        )

    def checked(self, listing: list[str], names_of: NamesOf | None = None) -> AppliedLog:
        """This log against a listing of the raw files: folded days whose names changed are reopened.

        A folded day with no digest held no files when it was folded, so any file listed in it now
        is late; only a day folded before digests were kept (up to ``legacy_until``) is taken as it
        is listed, and gets its digest at the next commit: files that landed in it before cannot be
        told apart any more. ``names_of`` gives the names a reopened day held when it was folded
        (:func:`stored_names`): those stay applied, and only the others are read.
        """
        if not self.before_hour:
            return self
        now = day_digests(listing, self.before_hour)
        legacy = self.legacy_until[:10]
        reopened = frozenset(
            d for d, digest in now.items() if self.days.get(d, digest if d <= legacy else "") != digest
        )
        if not reopened:
            return self
        known: dict[str, frozenset[str]] = {}
        for day in reopened:
            names = names_of(day, self.days[day]) if names_of is not None and day in self.days else None
            if names is not None:
                known[day] = names
        return AppliedLog(self.before_hour, self.files, self.days, reopened, self.legacy_until, known)

    def folded(self, listing: list[str], fold_before_hour: str) -> AppliedLog:
        """Fold the hours before ``fold_before_hour`` whose every listed file is applied.

        Folding stops at the first hour holding an unapplied file, so the watermark never hides one.
        A reopened day is folded again once every listed file of it is applied; until then it keeps
        its old digest, so the next check reopens it again, and its applied files stay listed.
        """
        index = _listing(listing)
        unapplied = {index.hours[k] for k in self.unapplied(index)}
        limit = min([fold_before_hour, *unapplied])
        limit = max(limit, self.before_hour)
        still_open = frozenset(h[:10] for h in unapplied if h < self.before_hour) & self.reopened
        digests = day_digests(listing, limit)
        # A day still open keeps its old digest (none if it held no files when folded), so that
        # the next check reopens it again.
        days = {
            d: (self.days[d] if d in still_open else digest)
            for d, digest in digests.items()
            if d not in still_open or d in self.days
        }
        files = frozenset(p for p in self.files if hour_of(p) >= limit or hour_of(p)[:10] in still_open)
        known = {d: names for d, names in self.known.items() if d in still_open}
        # Every listed day before ``limit`` now has its digest (a legacy day is never reopened, so
        # none is still open), so a day without one held no files: the legacy mark ends here. Kept,
        # it took a file landing later in such a day (a redrive) as applied, forever.
        return AppliedLog(limit, files, days, still_open, "", known)

    def to_json(self) -> dict[str, Any]:
        """Serializable form, with the files sorted for stable output."""
        return {
            "version": 1,
            "before_hour": self.before_hour,
            "files": sorted(self.files),
            "days": dict(sorted(self.days.items())),
            "legacy_until": self.legacy_until,
        }

    @classmethod
    def from_json(cls, obj: Any, where: str) -> AppliedLog:
        """Parse the stored form (a record written before digests were kept has no ``days``).

        Raises:
            TerminalError: the file is not an applied-log (someone edited or truncated it), or a
                newer ddblake wrote it (a later record version: upgrade, docs/upgrades.md).
        """
        if isinstance(obj, dict) and isinstance(obj.get("version"), int) and obj["version"] > 1:
            raise TerminalError(
                f"{where} is an applied-file log of version {obj['version']}, written by a newer ddblake "
                "than this one (which reads version 1); upgrade ddblake here too: a lake is not read by "
                "an older ddblake than the newest that wrote it (docs/upgrades.md)"
            )
        if (
            not isinstance(obj, dict)
            or obj.get("version") != 1
            or not isinstance(obj.get("files"), list)
            or not isinstance(obj.get("days", {}), dict)
        ):
            raise TerminalError(f"{where} is not a ddblake applied-file log; restore it from a backup")
        before = str(obj.get("before_hour") or "")
        days = {str(d): str(digest) for d, digest in obj.get("days", {}).items()}
        # A record written before digests were kept: every day it folded is taken as listed.
        legacy = str(obj.get("legacy_until") or "") if "days" in obj else before
        return cls(before, frozenset(str(f) for f in obj["files"]), days, legacy_until=legacy)


def load_log(storage: Storage, pointer: str | None) -> AppliedLog:
    """Read the log a table property points at (empty for a new table).

    Raises:
        TerminalError: the property points at a file that is gone.
    """
    if not pointer:
        return AppliedLog()
    data = storage.read(pointer)
    if data is None:
        raise TerminalError(
            f"applied-file log {storage.shown(pointer)} named by the table's {PROPERTY} property is missing; "
            "the lake's state/ folder was changed by hand — restore it, or drop the tables and re-apply"
        )
    try:
        raw = json.loads(gzip.decompress(data))
    except (OSError, EOFError, zlib.error, ValueError) as e:  # truncated, not gzip, not JSON
        raise TerminalError(
            f"applied-file log {storage.shown(pointer)} named by the table's {PROPERTY} property is "
            f"damaged ({type(e).__name__}); restore the lake's state/ folder from a backup, or drop the "
            "tables and re-apply"
        ) from e
    return AppliedLog.from_json(raw, storage.shown(pointer))


def stored_names(storage: Storage, table: str, namespace: str) -> NamesOf:
    """:data:`NamesOf` reading the names files :func:`save_log` keeps (the namespace's, else the
    shared folder of older versions); None for one missing or damaged."""

    def names_of(day: str, digest: str) -> frozenset[str] | None:
        data = storage.read(day_names_path(table, day, digest, namespace))
        if data is None:
            data = storage.read(day_names_path(table, day, digest))
        if data is None:
            return None
        try:
            names = sorted(n for n in gzip.decompress(data).decode().split("\n") if n)
        except (OSError, EOFError, UnicodeDecodeError, zlib.error):
            return None  # read the day's files again, as for a day without names
        return frozenset(names) if names_digest(names) == digest else None

    return names_of


def checked_log(
    storage: Storage, table: str, pointer: str | None, listing: list[str], *, namespace: str
) -> AppliedLog:
    """:func:`load_log`, checked against ``listing`` with the kept names of reopened days."""
    return load_log(storage, pointer).checked(listing, stored_names(storage, table, namespace))


def records_prefix(table: str, namespace: str) -> str:
    """Where the applied-file records of ``table``'s lake tables in ``namespace`` go.

    One folder per catalog namespace, so that the sweep of dead records (:mod:`ddblake.lake.cleanup`)
    of one namespace never takes the live record of the same DynamoDB table applied in another.
    Records written before it (``state/apply/<table>/<which>-*``) are still read where a table's
    property names them, and never swept.
    """
    return f"state/apply/{table}/ns/{re.sub(r'[^A-Za-z0-9_.-]', '_', namespace)}/"


def save_log(
    storage: Storage,
    table: str,
    which: str,
    log: AppliedLog,
    listing: list[str] | None = None,
    previous: AppliedLog | None = None,
    *,
    namespace: str,
) -> str:
    """Write a log to a new uniquely named file and return its path (for the table property).

    With ``listing``, the names of each day folded under a digest ``previous`` did not have are
    written first (:func:`day_names_path`; the same names give the same file, so history and
    current state share it and a rewrite after a crash is harmless).
    """
    if listing is not None:
        old = previous.days if previous is not None else {}
        names = day_names(listing, log.before_hour)
        for day, digest in log.days.items():
            if old.get(day) != digest and day in names and names_digest(names[day]) == digest:
                body = "\n".join(names[day]).encode()
                storage.write_atomic(
                    day_names_path(table, day, digest, namespace), gzip.compress(body, mtime=0)
                )
    path = f"{records_prefix(table, namespace)}{which}-{uuid.uuid4().hex}.json.gz"
    payload = json.dumps(log.to_json(), separators=(",", ":")).encode()
    storage.write_atomic(path, gzip.compress(payload, mtime=0))
    return path
