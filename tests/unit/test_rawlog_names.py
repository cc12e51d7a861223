"""Raw file names stay within a local disk's 255 bytes for every DynamoDB table name."""

from __future__ import annotations

from ddblake.lake.batch import quarantine
from ddblake.lake.rawlog import NAME_TABLE_CHARS, name_label, raw_file_path
from ddblake.lake.storage import Storage

WHEN_US = 1_795_852_800_123_456


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def test_short_names_are_unchanged() -> None:
    assert name_label("orders") == "orders"
    assert name_label("t" * NAME_TABLE_CHARS) == "t" * NAME_TABLE_CHARS
    assert _name(raw_file_path("orders", WHEN_US, "u")) == "orders-2026-11-28-08-00-00-123456-u.gz"


def test_long_names_are_cut_and_kept_apart() -> None:
    a, b = "a" * 200 + "x", "a" * 200 + "y"
    assert len(name_label(a)) == NAME_TABLE_CHARS
    assert name_label(a) != name_label(b)
    assert name_label(a).startswith("a" * 100)
    assert raw_file_path(a, WHEN_US).startswith(f"raw/{a}/2026/11/28/08/")  # the folder keeps the name


def test_the_longest_names_fit_a_file_name_with_their_quarantine(tmp_path) -> None:  # type: ignore[no-untyped-def]
    table = "T.-_" * 63 + "abc"  # 255 characters, DynamoDB's longest
    redriven = raw_file_path(table, WHEN_US, unique="redrive-" + "0" * 32)
    assert len(_name(redriven).encode()) + len(".jsonl.gz") <= 255
    storage = Storage.from_uri(str(tmp_path / "lake"))
    storage.write_atomic(redriven, b"x")  # the disk takes it
    quarantine(storage, table, [{"file": redriven, "line": 1, "reason": "bad"}])
    assert storage.list_files(f"errors/{table}/apply/")
