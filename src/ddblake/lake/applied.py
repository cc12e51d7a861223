"""The record of which raw files a lake table has absorbed.

Exactly-once rests on this record being committed *with* the data it describes: apply writes the
new record to a fresh, uniquely named file first, then makes the Iceberg commit whose table property
(and snapshot summary) points at it. A crash before the commit leaves an orphan file nobody points
at; a crash after leaves a consistent table. Either way a rerun sees exactly what was committed.

Raw files live in hour folders (``raw/<table>/YYYY/MM/DD/HH/``) named by write time, so old hours
can be folded into a watermark: "every file in an hour before H is applied". Hours are folded only
once they are older than a grace period, since Firehose may deliver into an hour for a while.
"""

from __future__ import annotations

import gzip
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from ddblake.errors import TerminalError
from ddblake.lake.storage import Storage

PROPERTY = "ddblake.applied-log"


def hour_of(raw_path: str) -> str:
    """``YYYY/MM/DD/HH`` of a raw file path ``raw/<table>/YYYY/MM/DD/HH/<name>``."""
    parts = raw_path.split("/")
    return "/".join(parts[-5:-1])


@dataclass(frozen=True)
class AppliedLog:
    """Files applied: everything in hours before ``before_hour`` plus the ``files`` listed."""

    before_hour: str = ""
    files: frozenset[str] = field(default_factory=frozenset)

    def contains(self, raw_path: str) -> bool:
        """Whether a raw file is already applied."""
        return (bool(self.before_hour) and hour_of(raw_path) < self.before_hour) or raw_path in self.files

    def count(self) -> int:
        """Files listed explicitly (folded hours are not counted)."""
        return len(self.files)

    def with_files(self, new: set[str] | frozenset[str]) -> AppliedLog:
        """A new log with more files applied."""
        return AppliedLog(self.before_hour, self.files | frozenset(new))

    def folded(self, listing: list[str], fold_before_hour: str) -> AppliedLog:
        """Fold the hours before ``fold_before_hour`` whose every listed file is applied.

        Folding stops at the first hour holding an unapplied file, so the watermark never hides one.
        """
        unapplied_hours = sorted({hour_of(p) for p in listing if not self.contains(p)})
        limit = fold_before_hour
        if unapplied_hours and unapplied_hours[0] < limit:
            limit = unapplied_hours[0]
        if limit <= self.before_hour:
            return self
        return AppliedLog(limit, frozenset(p for p in self.files if hour_of(p) >= limit))

    def to_json(self) -> dict[str, Any]:
        """Serializable form, with the files sorted for stable output."""
        return {"version": 1, "before_hour": self.before_hour, "files": sorted(self.files)}

    @classmethod
    def from_json(cls, obj: Any, where: str) -> AppliedLog:
        """Parse the stored form.

        Raises:
            TerminalError: the file is not an applied-log (someone edited or truncated it).
        """
        if not isinstance(obj, dict) or obj.get("version") != 1 or not isinstance(obj.get("files"), list):
            raise TerminalError(f"{where} is not a ddblake applied-file log; restore it from a backup")
        return cls(str(obj.get("before_hour") or ""), frozenset(str(f) for f in obj["files"]))


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
            f"applied-file log {storage.uri(pointer)} named by the table's {PROPERTY} property is missing; "
            "the lake's state/ folder was changed by hand — restore it, or drop the tables and re-apply"
        )
    return AppliedLog.from_json(json.loads(gzip.decompress(data)), storage.uri(pointer))


def save_log(storage: Storage, table: str, which: str, log: AppliedLog) -> str:
    """Write a log to a new uniquely named file and return its path (for the table property)."""
    path = f"state/apply/{table}/{which}-{uuid.uuid4().hex}.json.gz"
    payload = json.dumps(log.to_json(), separators=(",", ":")).encode()
    storage.write_atomic(path, gzip.compress(payload, mtime=0))
    return path
