"""Local lake storage: atomic whole-file writes, bytes unchanged, listing without temp files."""

from __future__ import annotations

import dataclasses
import gzip
from pathlib import Path

import pytest

from ddblake.errors import ConfigError, TerminalError, TransientError
from ddblake.lake.storage import Storage


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    return Storage.from_uri(str(tmp_path / "lake"))


def test_write_read_round_trip_creates_folders_and_leaves_no_temp_files(storage: Storage) -> None:
    storage.write_atomic("a/b/c/file.json", b"{}")
    assert storage.read("a/b/c/file.json") == b"{}"
    storage.write_atomic("a/b/c/file.json", b'{"v":2}')  # replaced whole
    assert storage.read("a/b/c/file.json") == b'{"v":2}'
    assert [p.name for p in Path(storage.root).rglob("*") if p.is_file()] == ["file.json"]


def test_gz_files_are_stored_and_read_as_given(storage: Storage) -> None:
    # pyarrow would gunzip/gzip by file extension; the lake must see exactly the bytes written.
    data = gzip.compress(b'{"line":1}\n', mtime=0)
    storage.write_atomic("raw/t1/x.gz", data)
    assert storage.read("raw/t1/x.gz") == data
    assert (Path(storage.root) / "raw/t1/x.gz").read_bytes() == data


def test_missing_files_and_prefixes(storage: Storage) -> None:
    assert storage.read("nope/none.gz") is None
    assert storage.list_files("nope") == []
    storage.delete("nope/none.gz")  # not an error


def test_list_is_recursive_sorted_relative_and_skips_temp_files(storage: Storage) -> None:
    for rel in (
        "raw/t/2024/01/02/00/b.gz",
        "raw/t/2024/01/01/23/z.gz",
        "raw/t/2024/01/02/00/a.gz",
        "other/x",
    ):
        storage.write_atomic(rel, b"x")
    (Path(storage.root) / f"raw/t/2024/01/02/00/.tmp-{'ab' * 16}").write_bytes(b"partial")
    assert storage.list_files("raw/t") == [
        "raw/t/2024/01/01/23/z.gz",
        "raw/t/2024/01/02/00/a.gz",
        "raw/t/2024/01/02/00/b.gz",
    ]
    storage.delete("raw/t/2024/01/02/00/a.gz")
    assert "raw/t/2024/01/02/00/a.gz" not in storage.list_files("")


def test_list_skips_only_write_atomics_temp_names_not_a_table_named_like_one(storage: Storage) -> None:
    # A DynamoDB table may be named ".tmp-orders"; its raw files start with its name.
    raw = ".tmp-orders/2024/01/02/00/.tmp-orders-2024-01-02-00-00-00-000000-" + "c" * 32 + ".gz"
    storage.write_atomic(f"raw/{raw}", b"x")
    storage.write_atomic("raw/.tmp-orders/2024/01/02/00/.tmp-" + "d" * 31, b"x")  # not a temp name either
    (Path(storage.root) / "raw/.tmp-orders/2024/01/02/00" / (".tmp-" + "e" * 32)).write_bytes(b"partial")
    assert storage.list_files("raw/.tmp-orders") == [
        "raw/.tmp-orders/2024/01/02/00/.tmp-" + "d" * 31,
        f"raw/{raw}",
    ]


def test_uris(tmp_path: Path) -> None:
    storage = Storage.from_uri((tmp_path / "l").as_uri())
    assert storage.is_local and storage.uri("raw/x") == (tmp_path / "l" / "raw" / "x").as_uri()
    with pytest.raises(ConfigError, match="not supported"):
        Storage.from_uri("gs://bucket/x")
    with pytest.raises(ConfigError, match="names no bucket"):
        Storage.from_uri("s3:///path")


def test_write_failure_is_transient(tmp_path: Path) -> None:
    storage = Storage.from_uri(str(tmp_path / "lake"))
    (tmp_path / "lake").mkdir()
    (tmp_path / "lake" / "blocked").write_text("a file, not a folder")
    with pytest.raises(TransientError, match="cannot write"):
        storage.write_atomic("blocked/x", b"data")


class _FullDisk:
    """The lake's file system, but the rename fails as on a full disk (ENOSPC)."""

    def __init__(self, fs: object) -> None:
        self._fs = fs

    def __getattr__(self, name: str) -> object:
        return getattr(self._fs, name)

    def move(self, src: str, dest: str) -> None:
        raise OSError(28, "No space left on device")


def test_a_failed_write_leaves_no_temp_file_behind(storage: Storage) -> None:
    storage.write_atomic("state/checkpoint.json", b'{"v":1}')
    failing = dataclasses.replace(storage, fs=_FullDisk(storage.fs))  # type: ignore[arg-type]

    with pytest.raises(TerminalError, match="No space left"):
        failing.write_atomic("state/checkpoint.json", b'{"v":2}')

    assert storage.read("state/checkpoint.json") == b'{"v":1}'  # the old content, whole
    assert [p.name for p in Path(storage.root).rglob("*") if p.is_file()] == ["checkpoint.json"]
