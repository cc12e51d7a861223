"""The raw change log: gzip JSON Lines under ``raw/<table>/YYYY/MM/DD/HH/``, as Firehose writes it.

The writer buffers lines like a Firehose delivery stream: a file is cut when the buffered bytes reach
a size or the oldest buffered line reaches an age, whichever comes first. Firehose's 5 MB / 60 s
suit a service; a local tool wants to see changes land promptly, so the defaults here are 5 MB / 1 s.

The hour folder is the *write* time (Firehose's ``!{timestamp}``), not the event time: files only
ever land in the current hour, and ``apply`` orders changes by their own versions, never by folder.
File names are ``<table>-<yyyy-MM-dd-HH-mm-ss>-<microseconds>-<uuid>.gz``: Firehose's shape with
microseconds added, so names are unique and sort in write order within a folder (the writer also
never reuses or goes back in time, even if the clock does). A table name longer than
:data:`NAME_TABLE_CHARS` is cut and given a hash in the name (:func:`name_label`), the folder keeps it.

Each file is written whole through :meth:`Storage.write_atomic`: a reader (or a crash) sees a complete
file or none. The reader still reports a truncated or corrupt gzip (a file copied in by hand, a
Firehose object cut short) as an error value instead of raising, so ``apply`` can quarantine it and go on.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Final

from ddblake.errors import ConfigError
from ddblake.lake.storage import Storage
from ddblake.names import cut_with_hash

RAW_PREFIX: Final = "raw"
ERRORS_ROOT: Final = "errors"
"""``errors/<table>/``: what capture, Firehose and apply set aside."""
APPLY_QUARANTINE: Final = "apply"
"""``errors/<table>/apply/``: raw-log lines apply set aside, one file per raw file, with reasons."""
REDRIVEN: Final = "redriven"
"""``errors/<table>/redriven/``: Firehose error objects ``ddblake redrive`` is done with."""
DEFAULT_BUFFER_BYTES: Final = 5 * 1024 * 1024
DEFAULT_BUFFER_SECONDS: Final = 1.0
GZIP_LEVEL: Final = 3
"""zlib level of raw files: twice level 6's speed (about 140 against 67 MB/s here) for files about 12 %
larger; loads and capture spent more CPU compressing than building lines at level 6."""


def table_prefix(table: str, root: str = RAW_PREFIX) -> str:
    """``raw/<table>``: where a table's raw files live, relative to the lake root."""
    if not table or "/" in table:
        raise ConfigError(f"table name {table!r} cannot be used as a lake folder")
    return f"{root}/{table}"


def quarantine_prefix(table: str) -> str:
    """``errors/<table>/apply``: where apply sets bad raw-log lines aside (writer, log and CLI)."""
    return f"{table_prefix(table, ERRORS_ROOT)}/{APPLY_QUARANTINE}"


NAME_TABLE_CHARS: Final = 120
"""The most of a table's name a raw file's name holds. DynamoDB names run to 255 characters and a
file name on a local disk to 255 bytes: with the time stamp, the unique part (a redriven file's is 40
characters) and apply's quarantine file named after it (``.jsonl.gz`` added), a whole long name
would not fit. 120 leaves those 200 bytes at most."""


def name_label(table: str) -> str:
    """The table's part of its raw files' names: the name itself, or for a name longer than
    :data:`NAME_TABLE_CHARS` its start and a hash of the whole, so that two long names sharing a
    start still name their files apart (the folder ``raw/<table>/`` already keeps them apart; the
    name is what a file copied out of it still says)."""
    return table if len(table) <= NAME_TABLE_CHARS else cut_with_hash(table, NAME_TABLE_CHARS - 17)


def raw_file_path(table: str, written_us: int, unique: str | None = None, root: str = RAW_PREFIX) -> str:
    """The path of a raw file written at ``written_us`` (epoch microseconds, UTC)."""
    when = dt.datetime.fromtimestamp(written_us / 1_000_000, tz=dt.UTC)
    folder = when.strftime("%Y/%m/%d/%H")
    stamp = f"{when.strftime('%Y-%m-%d-%H-%M-%S')}-{written_us % 1_000_000:06d}"
    name = f"{name_label(table)}-{stamp}-{unique or uuid.uuid4().hex}"
    return f"{table_prefix(table, root)}/{folder}/{name}.gz"


@dataclass(frozen=True)
class RawFile:
    """One file the writer wrote."""

    path: str
    records: int
    raw_bytes: int
    written_us: int


@dataclass
class RawLogWriter:
    """Buffers raw-log lines and writes them as gzip files, Firehose style.

    The writer never flushes on its own: the caller asks :meth:`due` and calls :meth:`flush`, so it
    knows exactly which lines a file holds (capture checkpoints right after each flush).

    Attributes:
        storage: the lake.
        table: the DynamoDB table name (folder and file name prefix).
        buffer_bytes: cut a file when this many uncompressed bytes are buffered.
        buffer_seconds: cut a file when the oldest buffered line is this old.
        root: ``raw`` for the change log; ``errors`` for quarantined records.
        tag: a word in the files' names after their time stamp (``…-<µs>-<tag>-<uuid>.gz``), for
            files a reader must tell apart by name (reconcile's, holding REMOVEs only).
        clock: wall clock in seconds (file names and folders); injectable for tests.
        monotonic: monotonic clock in seconds (buffer age); injectable for tests.
    """

    storage: Storage
    table: str
    buffer_bytes: int = DEFAULT_BUFFER_BYTES
    buffer_seconds: float = DEFAULT_BUFFER_SECONDS
    root: str = RAW_PREFIX
    tag: str | None = None
    clock: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    _lines: list[bytes] = field(default_factory=list, init=False, repr=False)
    _bytes: int = field(default=0, init=False)
    _oldest: float | None = field(default=None, init=False)
    _last_us: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.buffer_bytes <= 0:
            raise ConfigError(f"buffer size must be positive, got {self.buffer_bytes} bytes")
        if self.buffer_seconds <= 0:
            raise ConfigError(f"buffer interval must be positive, got {self.buffer_seconds} s")
        table_prefix(self.table, self.root)

    @property
    def buffered_records(self) -> int:
        """Lines waiting to be written."""
        return len(self._lines)

    @property
    def buffered_bytes(self) -> int:
        """Uncompressed bytes waiting to be written."""
        return self._bytes

    def add(self, line: bytes) -> None:
        """Buffer one line (it must end with a newline; one is added if not)."""
        if not line.endswith(b"\n"):
            line += b"\n"
        if self._oldest is None:
            self._oldest = self.monotonic()
        self._lines.append(line)
        self._bytes += len(line)

    def seconds_until_due(self) -> float | None:
        """Seconds until the age limit cuts a file; None when nothing is buffered."""
        if self._oldest is None:
            return None
        if self._bytes >= self.buffer_bytes:
            return 0.0
        return max(0.0, self.buffer_seconds - (self.monotonic() - self._oldest))

    def due(self) -> bool:
        """Whether the buffer has reached its size or its oldest line its age."""
        remaining = self.seconds_until_due()
        return remaining is not None and remaining <= 0.0

    def _next_written_us(self) -> int:
        now = int(self.clock() * 1_000_000)
        self._last_us = max(now, self._last_us + 1)  # strictly increasing names, even if the clock steps back
        return self._last_us

    def flush(self) -> RawFile | None:
        """Write everything buffered as one gzip file; None when the buffer is empty.

        The buffer is cleared only after the write succeeded, so a failed write can be retried.

        Raises:
            TransientError: the storage write failed.
        """
        if not self._lines:
            return None
        written_us = self._next_written_us()
        unique = f"{self.tag}-{uuid.uuid4().hex}" if self.tag else None
        path = raw_file_path(self.table, written_us, unique, root=self.root)
        payload = b"".join(self._lines)
        data = gzip.compress(payload, compresslevel=GZIP_LEVEL, mtime=0)
        self.storage.write_atomic(path, data)
        result = RawFile(path=path, records=len(self._lines), raw_bytes=len(payload), written_us=written_us)
        self._lines, self._bytes, self._oldest = [], 0, None
        return result


# --- reading -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RawFileContent:
    """The lines of one raw file, and why it could not be read to the end, if so.

    Attributes:
        path: relative to the lake root.
        lines: every complete line (with its newline stripped) decoded before any error; a partial
            last line of a broken file is left out, since it may have been cut.
        error: None for a sound file; else what is wrong (truncated, corrupt, not gzip, missing).
    """

    path: str
    lines: list[bytes]
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the whole file was read."""
        return self.error is None


def decode_gzip(data: bytes) -> tuple[bytes, str | None]:
    """Decompress (possibly multi-member) gzip as far as it goes; returns the bytes and an error."""
    out = io.BytesIO()
    rest = data
    members = 0
    while rest:
        if members and not rest.strip(b"\x00"):
            break  # zero padding after the last member, as some tools leave
        decoder = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            out.write(decoder.decompress(rest))
            out.write(decoder.flush())
        except zlib.error as e:
            what = "not gzip" if members == 0 and not rest.startswith(b"\x1f\x8b") else "corrupt gzip"
            return out.getvalue(), f"{what} ({e})"
        if not decoder.eof:
            return out.getvalue(), "truncated gzip (the file ends before the gzip stream does)"
        members += 1
        rest = decoder.unused_data
    if members == 0:
        return b"", "empty file (not gzip)"
    return out.getvalue(), None


def split_lines(payload: bytes, *, complete_only: bool) -> list[bytes]:
    """Split JSON Lines; blank lines are skipped; a last line without newline is kept unless told."""
    parts = payload.split(b"\n")
    last = parts.pop()
    lines = [p.rstrip(b"\r") for p in parts if p.strip()]
    if last.strip() and not complete_only:
        lines.append(last.rstrip(b"\r"))
    return lines


def read_raw_file(storage: Storage, path: str) -> RawFileContent:
    """Read one raw file; problems come back in :attr:`RawFileContent.error`, not as exceptions.

    Raises:
        TransientError: the storage could not be read at all (retrying may help).
    """
    data = storage.read(path)
    if data is None:
        return RawFileContent(path, [], "missing (deleted after listing)")
    payload, error = decode_gzip(data)
    return RawFileContent(path, split_lines(payload, complete_only=error is not None), error)


def list_raw_files(
    storage: Storage, table: str, *, after: str | None = None, root: str = RAW_PREFIX
) -> list[str]:
    """A table's raw files in write order (hour folder, then name); only those after ``after``."""
    files = storage.list_files(table_prefix(table, root))
    return [f for f in files if after is None or f > after]


def iter_raw_files(
    storage: Storage, table: str, *, after: str | None = None, root: str = RAW_PREFIX
) -> Iterator[RawFileContent]:
    """Every raw file of a table in order, each read whole (sound or with its error)."""
    for path in list_raw_files(storage, table, after=after, root=root):
        yield read_raw_file(storage, path)


def iter_raw_lines(
    storage: Storage,
    table: str,
    *,
    on_error: Callable[[RawFileContent], None] | None = None,
    after: str | None = None,
) -> Iterator[tuple[str, bytes]]:
    """Every line of a table's raw log as ``(path, line)``, in file order.

    Args:
        storage: the lake.
        table: the DynamoDB table name.
        on_error: called with a broken file (its readable lines still follow); by default the broken
            file's complete lines are yielded and the error is otherwise ignored, so pass a callback
            to quarantine.
        after: only files whose path sorts after this one.
    """
    for content in iter_raw_files(storage, table, after=after):
        if content.error is not None and on_error is not None:
            on_error(content)
        for line in content.lines:
            yield content.path, line
