"""A table's raw-log listing at every poll of a continuous apply, at a cost that does not grow with
the log.

``sync`` and continuous ``apply`` list the raw log every second or so, and the log only grows
(ddblake deletes no raw file; a lifecycle rule on the bucket may): a day of busy capture is
hundreds of thousands of files, and listing them all at every poll kept a core busy on an idle
table. Writers land files in the hour folder of their write time — capture, loads, redrive and
the Glue job at once, Firehose within its buffer (at most 15 minutes) — so a poll lists only the
last few hour folders and keeps the older part of its last full listing. The whole log is listed
again every few minutes, which picks up a file that landed in an older folder (``ddblake redrive``
writes into the hour of the records' first arrival; a Firehose delivery retried for hours): it is
applied then, not lost. Small logs are listed whole every time.
"""

from __future__ import annotations

import bisect
import datetime as dt
import time
from collections.abc import Callable, Iterator
from typing import Final

from ddblake.lake.rawlog import list_raw_files, table_prefix
from ddblake.lake.storage import Storage

RECENT_HOURS: Final = 3
"""Hour folders before the current one that every poll lists."""
FULL_EVERY_SECONDS: Final = 300.0
"""How often the whole log is listed again: the longest a file landing late in an older hour
folder waits."""
INCREMENTAL_FROM: Final = 5_000
"""Below this many raw files the whole log is listed at every poll (one listing is cheaper than
one per recent hour folder, and on S3 one LIST request returns 1,000 names)."""


def hour_folder(table: str, epoch_s: float) -> str:
    """``raw/<table>/YYYY/MM/DD/HH``: the folder raw files written at ``epoch_s`` go to."""
    when = dt.datetime.fromtimestamp(epoch_s, tz=dt.UTC)
    return f"{table_prefix(table)}/{when.strftime('%Y/%m/%d/%H')}"


def hour_folders(table: str, from_s: float, until_s: float) -> Iterator[str]:
    """Every hour folder from the one of ``from_s`` to the one of ``until_s``, in order."""
    hour = int(from_s // 3600)
    while hour <= int(until_s // 3600):
        yield hour_folder(table, hour * 3600)
        hour += 1


class RawListing:
    """The raw files of one table, listed again at each :meth:`files` call (one per poll).

    Args:
        storage: the lake.
        table: the DynamoDB table name.
        full_every: seconds between listings of the whole log.
        incremental_from: raw files from which only recent hour folders are listed between them.
        clock: monotonic seconds (tests pass their own).
        wall: epoch seconds, for the hour folders (tests pass their own).
    """

    def __init__(
        self,
        storage: Storage,
        table: str,
        *,
        full_every: float = FULL_EVERY_SECONDS,
        incremental_from: int = INCREMENTAL_FROM,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.storage, self.table = storage, table
        self.full_every, self.incremental_from = full_every, incremental_from
        self.clock, self.wall = clock, wall
        self._older: list[str] | None = None  # files in hour folders before _from_s, as last listed
        self._kept: set[str] = set()  # the rest of the last full listing (recent, or not in hours)
        self._from_s = 0.0
        self._full_at = 0.0
        self.full_listings = 0

    def files(self) -> list[str]:
        """The table's raw files in write order, as :func:`ddblake.lake.rawlog.list_raw_files`
        gives them; between full listings, files that land in an older hour folder are missing."""
        now = self.clock()
        if self._older is None or now - self._full_at >= self.full_every:
            return self._list_all(now)
        fresh = set(self._kept)
        for folder in hour_folders(self.table, self._from_s, self.wall() + 3600):  # + an hour of skew
            fresh.update(self.storage.list_files(folder))
        return self._older + sorted(fresh)

    def _list_all(self, now: float) -> list[str]:
        files = list_raw_files(self.storage, self.table)
        self.full_listings += 1
        self._full_at = now
        if len(files) < self.incremental_from:
            self._older = None
            return files
        self._from_s = self.wall() - RECENT_HOURS * 3600
        cut = bisect.bisect_left(files, hour_folder(self.table, self._from_s))
        self._older, self._kept = files[:cut], set(files[cut:])
        return files
