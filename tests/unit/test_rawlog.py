"""Raw change log writer (Firehose-like buffering, layout, names) and reader (broken files reported)."""

from __future__ import annotations

import datetime as dt
import gzip
import random
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ddblake.errors import ConfigError, TransientError
from ddblake.lake.rawlog import (
    RawFileContent,
    RawLogWriter,
    decode_gzip,
    iter_raw_lines,
    list_raw_files,
    raw_file_path,
    read_raw_file,
)
from ddblake.lake.storage import Storage

T0 = dt.datetime(2024, 11, 28, 23, 59, 59, 999_000, tzinfo=dt.UTC).timestamp()
FIREHOSE_LAYOUT = re.compile(
    r"raw/(?P<t>[^/]+)/(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/(?P<h>\d{2})/"
    r"(?P=t)-(?P=y)-(?P=m)-(?P=d)-(?P=h)-\d{2}-\d{2}-\d{6}-[0-9a-f]{32}\.gz"
)


class Clocks:
    """A wall clock and a monotonic clock that tests move by hand."""

    def __init__(self, wall: float = T0) -> None:
        self.wall, self.mono = wall, 1000.0

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    return Storage.from_uri(str(tmp_path / "lake"))


@pytest.fixture
def clocks() -> Clocks:
    return Clocks()


def writer(storage: Storage, clocks: Clocks, **kw: float) -> RawLogWriter:
    return RawLogWriter(
        storage,
        "my.table-1",
        int(kw.get("size", 1000)),
        kw.get("age", 1.0),
        clock=lambda: clocks.wall,
        monotonic=lambda: clocks.mono,
    )


def test_flushes_at_size_or_age_whichever_first(storage: Storage, clocks: Clocks) -> None:
    w = writer(storage, clocks, size=100, age=2.0)
    assert not w.due() and w.seconds_until_due() is None and w.flush() is None
    w.add(b"x" * 40)
    assert not w.due() and w.seconds_until_due() == pytest.approx(2.0)
    clocks.advance(1.5)
    w.add(b"y" * 40)
    assert not w.due()  # age counts from the *oldest* line
    clocks.advance(0.5)
    assert w.due()
    written = w.flush()
    assert written is not None and written.records == 2 and written.raw_bytes == 82
    assert w.buffered_records == 0 and not w.due()
    w.add(b"z" * 120)
    assert w.due(), "size reached: due at once"


def test_layout_names_and_hour_of_write_time(storage: Storage, clocks: Clocks) -> None:
    w = writer(storage, clocks)
    w.add(b'{"a":1}')
    first = w.flush()
    clocks.advance(0.002)  # past midnight: the next file lands in the next day's folder
    w.add(b'{"a":2}\n')
    second = w.flush()
    assert first is not None and second is not None
    assert first.path.startswith("raw/my.table-1/2024/11/28/23/my.table-1-2024-11-28-23-59-59-999000-")
    assert second.path.startswith("raw/my.table-1/2024/11/29/00/my.table-1-2024-11-29-00-00-00-001000-")
    for written in (first, second):
        assert FIREHOSE_LAYOUT.fullmatch(written.path), written.path
    assert list_raw_files(storage, "my.table-1") == [first.path, second.path]
    assert gzip.decompress(storage.read(first.path) or b"") == b'{"a":1}\n'


def test_names_unique_and_sorted_even_when_the_clock_steps_back(storage: Storage, clocks: Clocks) -> None:
    w = writer(storage, clocks)
    paths = []
    for step in (0.0, 0.0, -5.0, 0.0, 3.0):
        clocks.wall += step
        w.add(b"line")
        written = w.flush()
        assert written is not None
        paths.append(written.path)
    assert len(set(paths)) == len(paths) and paths == sorted(paths)
    assert list_raw_files(storage, "my.table-1") == paths


def test_failed_write_keeps_the_buffer(tmp_path: Path, clocks: Clocks) -> None:
    blocker = tmp_path / "lake"
    storage = Storage.from_uri(str(blocker))
    blocker.mkdir()
    (blocker / "raw").write_text("a file where a folder must go")
    w = writer(storage, clocks)
    w.add(b"keep me")
    with pytest.raises(TransientError):
        w.flush()
    assert w.buffered_records == 1
    (blocker / "raw").unlink()
    written = w.flush()
    assert written is not None and read_raw_file(storage, written.path).lines == [b"keep me"]


def test_bad_settings_are_config_errors(storage: Storage) -> None:
    with pytest.raises(ConfigError):
        RawLogWriter(storage, "t1", 0, 1.0)
    with pytest.raises(ConfigError):
        RawLogWriter(storage, "t1", 10, 0)
    with pytest.raises(ConfigError):
        raw_file_path("a/b", 0)


def _put(storage: Storage, path: str, data: bytes) -> None:
    storage.write_atomic(path, data)


def test_reader_reports_broken_files_and_keeps_their_complete_lines(storage: Storage) -> None:
    good = gzip.compress(b"one\ntwo\n")
    two_members = gzip.compress(b"three\n") + gzip.compress(b"four")  # no final newline: still a line
    noise = b"".join(random.Random(7).randbytes(32).hex().encode() + b"\n" for _ in range(4000))
    whole = gzip.compress(b"five\nsix\n" + noise)
    truncated = whole[: len(whole) // 2]
    corrupt = bytearray(gzip.compress(b"eight\n" * 100))
    corrupt[20:30] = b"\xff" * 10
    files = {
        "raw/t1/2024/01/01/00/a.gz": good,
        "raw/t1/2024/01/01/00/b.gz": two_members,
        "raw/t1/2024/01/01/01/c.gz": truncated,
        "raw/t1/2024/01/01/01/d.gz": bytes(corrupt),
        "raw/t1/2024/01/01/02/e.gz": b"plain text, not gzip\n",
        "raw/t10/2024/01/01/00/other-table.gz": good,
    }
    for path, data in files.items():
        _put(storage, path, data)

    assert list_raw_files(storage, "t1") == sorted(p for p in files if p.startswith("raw/t1/"))
    assert read_raw_file(storage, "raw/t1/2024/01/01/00/b.gz") == RawFileContent(
        "raw/t1/2024/01/01/00/b.gz", [b"three", b"four"], None
    )
    cut = read_raw_file(storage, "raw/t1/2024/01/01/01/c.gz")
    assert cut.error is not None and "truncated" in cut.error
    assert cut.lines[:2] == [b"five", b"six"] and len(cut.lines) > 100
    assert all(len(line) == 64 for line in cut.lines[2:]), "a line cut by the truncation is left out"
    bad = read_raw_file(storage, "raw/t1/2024/01/01/01/d.gz")
    assert bad.error is not None and "corrupt" in bad.error
    plain = read_raw_file(storage, "raw/t1/2024/01/01/02/e.gz")
    assert plain.error is not None and "not gzip" in plain.error and plain.lines == []
    missing = read_raw_file(storage, "raw/t1/none.gz")
    assert missing.error is not None and "missing" in missing.error

    broken: list[str] = []
    lines = list(iter_raw_lines(storage, "t1", on_error=lambda c: broken.append(c.path)))
    assert [line for _, line in lines][:4] == [b"one", b"two", b"three", b"four"]
    assert broken == ["raw/t1/2024/01/01/01/c.gz", "raw/t1/2024/01/01/01/d.gz", "raw/t1/2024/01/01/02/e.gz"]
    after = list(iter_raw_lines(storage, "t1", after="raw/t1/2024/01/01/00/b.gz"))
    assert all(path > "raw/t1/2024/01/01/00/b.gz" for path, _ in after)


def test_truncated_gzip_drops_a_cut_last_line() -> None:
    data = gzip.compress(b"complete\n" + b"x" * 100_000)
    payload, error = decode_gzip(data[: len(data) // 2])
    assert error is not None and payload.startswith(b"complete\n")
    content = RawFileContent("p", [], error)
    assert not content.ok
    assert decode_gzip(b"") == (b"", "empty file (not gzip)")
    assert decode_gzip(gzip.compress(b"a\n") + b"\0\0\0") == (b"a\n", None)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(max_size=200).map(lambda b: b.replace(b"\n", b"").strip() or b"{}"), max_size=50))
def test_lines_round_trip(tmp_path_factory: pytest.TempPathFactory, lines: list[bytes]) -> None:
    storage = Storage.from_uri(str(tmp_path_factory.mktemp("lake")))
    w = RawLogWriter(storage, "prop", 300, 60.0)
    for line in lines:
        w.add(line)
        if w.due():
            w.flush()
    w.flush()
    got = [line for _, line in iter_raw_lines(storage, "prop", on_error=lambda c: pytest.fail(str(c.error)))]
    assert got == [line.rstrip(b"\r") for line in lines]
