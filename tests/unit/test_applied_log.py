"""The applied-file record: folding old hours, and reopening a folded day when its files change."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from ddblake.lake.applied import AppliedLog, day_digests, day_names_path, save_log, stored_names
from ddblake.lake.storage import Storage


def raw(hour: str, name: str) -> str:
    return f"raw/t/{hour}/{name}.gz"


A = raw("2025/11/28/08", "a")
B = raw("2025/11/28/09", "b")
C = raw("2025/11/29/10", "c")


def test_folding_keeps_a_digest_per_day_and_drops_the_names() -> None:
    log = AppliedLog().with_files({A, B, C}).folded([A, B, C], "2025/11/29/00")
    assert log.before_hour == "2025/11/29/00"
    assert log.files == {C}
    assert set(log.days) == {"2025/11/28"}
    assert all(log.contains(p) for p in (A, B, C))


def test_a_file_landing_in_a_folded_day_is_not_taken_as_applied() -> None:
    log = AppliedLog().with_files({A, B}).folded([A, B], "2025/11/29/00")
    late = raw("2025/11/28/08", "late")
    assert log.contains(late)  # what the watermark alone would say: the defect
    checked = log.checked([A, late, B])
    assert checked.reopened == {"2025/11/28"}
    assert not checked.contains(late)
    # The day's other files are read again too: their events are known and dropped by apply.
    assert not checked.contains(A) and not checked.contains(B)


def test_a_reopened_day_stays_open_until_every_file_of_it_is_applied() -> None:
    late = raw("2025/11/28/08", "late")
    listing = [A, late, B, C]
    log = AppliedLog().with_files({A, B}).folded([A, B], "2025/11/29/00").checked(listing)
    partly = log.with_files({A, late}).folded(listing, "2025/11/30/00")
    assert partly.before_hour == "2025/11/29/00"  # B is not applied again yet: nothing folds past it
    assert partly.days == log.days  # the old digest: the next check reopens the day again
    again = partly.checked(listing)
    assert again.reopened == {"2025/11/28"} and again.contains(late) and not again.contains(B)
    done = again.with_files({B, C}).folded(listing, "2025/11/30/00")
    assert done.before_hour == "2025/11/30/00" and done.files == frozenset()
    assert done.days == day_digests(listing, "2025/11/30/00")
    assert done.checked(listing).reopened == frozenset()


def test_days_with_no_file_listed_are_forgotten() -> None:
    log = AppliedLog().with_files({A, B, C}).folded([A, B, C], "2025/11/30/00")
    assert set(log.days) == {"2025/11/28", "2025/11/29"}
    later = log.checked([C]).folded([C], "2025/11/30/00")  # day 28's files expired (a lifecycle rule)
    assert set(later.days) == {"2025/11/29"}


def test_a_record_without_digests_takes_the_listing_as_it_is() -> None:
    legacy = AppliedLog.from_json({"version": 1, "before_hour": "2025/11/29/00", "files": []}, "x")
    assert legacy.days == {}
    checked = legacy.checked([A, B])
    assert checked.reopened == frozenset() and checked.contains(A)
    saved = checked.folded([A, B], "2025/11/29/00")
    assert saved.days == day_digests([A, B], "2025/11/29/00")
    assert saved.checked([A, B, raw("2025/11/28/09", "late")]).reopened == {"2025/11/28"}


def test_a_late_file_in_a_legacy_day_that_held_none_is_read_after_the_first_fold() -> None:
    """A record from before digests takes its days as listed only until its first fold records
    them; a day without files then gets no digest, so a file landing there later (a redrive into
    an hour whose records all failed) is read, not taken as applied for ever."""
    legacy = AppliedLog.from_json({"version": 1, "before_hour": "2025/11/30/00", "files": []}, "x")
    listing = [A, raw("2025/11/29/10", "c")]  # nothing on the 27th
    stored = AppliedLog.from_json(legacy.checked(listing).folded(listing, "2025/11/30/00").to_json(), "x")
    assert stored.legacy_until == ""
    late = raw("2025/11/27/07", "redriven")
    checked = stored.checked(sorted([*listing, late]))
    assert not checked.contains(late) and checked.contains(A)
    assert checked.reopened == {"2025/11/27"}


def test_the_stored_form_round_trips() -> None:
    log = AppliedLog().with_files({A, B, C}).folded([A, B, C], "2025/11/29/00")
    back = AppliedLog.from_json(log.to_json(), "x")
    assert back == log


def test_a_file_landing_in_a_folded_day_that_held_none_is_late() -> None:
    # A quiet day folds with no digest; a file that lands in it later must not count as applied.
    log = AppliedLog().with_files({C}).folded([C], "2025/11/30/00")
    assert "2025/11/28" not in log.days
    late = raw("2025/11/28/08", "late")
    checked = log.checked([late, C])
    assert checked.reopened == {"2025/11/28"} and not checked.contains(late)
    assert AppliedLog.from_json(log.to_json(), "x").checked([late, C]).reopened == {"2025/11/28"}


def test_the_names_a_reopened_day_held_stay_applied() -> None:
    log = AppliedLog().with_files({A, B}).folded([A, B], "2025/11/29/00")
    late = raw("2025/11/28/08", "late")
    asked: list[tuple[str, str]] = []

    def names_of(day: str, digest: str) -> frozenset[str] | None:
        asked.append((day, digest))
        return frozenset({A, B})

    checked = log.checked([A, late, B], names_of)
    assert asked == [("2025/11/28", log.days["2025/11/28"])]
    assert checked.contains(A) and checked.contains(B) and not checked.contains(late)
    refolded = checked.with_files({late}).folded([A, late, B], "2025/11/29/00")
    assert refolded.days == day_digests([A, late, B], "2025/11/29/00") and refolded.reopened == frozenset()


def test_a_day_whose_names_are_unknown_is_read_whole() -> None:
    log = AppliedLog().with_files({A, B}).folded([A, B], "2025/11/29/00")
    late = raw("2025/11/28/08", "late")
    checked = log.checked([A, late, B], lambda day, digest: None)
    assert not checked.contains(A) and not checked.contains(B) and not checked.contains(late)


def test_names_files_are_written_for_new_digests_only_and_checked_on_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = Storage.from_uri(str(tmp_path))
    log = AppliedLog().with_files({A, B, C}).folded([A, B, C], "2025/11/30/00")
    save_log(storage, "t", "history", log, [A, B, C], AppliedLog(), namespace="ddb")
    kept = storage.list_files("state/apply/t/ns/ddb/days/")
    assert kept == sorted(day_names_path("t", d, digest, "ddb") for d, digest in log.days.items())
    assert storage.list_files("state/apply/t/days/") == []  # the folder older versions shared
    names_of = stored_names(storage, "t", "ddb")
    assert names_of("2025/11/28", log.days["2025/11/28"]) == {A, B}
    written: list[str] = []
    write = Storage.write_atomic

    def counted(self: Storage, rel: str, data: bytes) -> None:
        written.append(rel)
        write(self, rel, data)

    monkeypatch.setattr(Storage, "write_atomic", counted)  # Storage is frozen: patched on the class
    save_log(
        storage, "t", "current", log, [A, B, C], log, namespace="ddb"
    )  # same digests: nothing new to write
    assert [w for w in written if "/days/" in w] == []
    assert len(written) == 1  # the record itself
    # A damaged names file is not trusted: the day is read whole instead.
    storage.write_atomic(day_names_path("t", "2025/11/29", log.days["2025/11/29"], "ddb"), b"not gzip")
    assert names_of("2025/11/29", log.days["2025/11/29"]) is None
    body = bytearray(gzip.compress("\n".join(sorted([A, B])).encode(), mtime=0))
    body[10] ^= 0xFF  # the first byte of the deflate stream: zlib.error, not BadGzipFile
    storage.write_atomic(day_names_path("t", "2025/11/28", log.days["2025/11/28"], "ddb"), bytes(body))
    assert names_of("2025/11/28", log.days["2025/11/28"]) is None
    storage.write_atomic(
        day_names_path("t", "2025/11/28", log.days["2025/11/28"], "ddb"), gzip.compress(f"{A}\n".encode())
    )
    assert names_of("2025/11/28", log.days["2025/11/28"]) is None  # names that do not match the digest


def test_names_files_of_older_versions_are_still_read(tmp_path: Path) -> None:
    storage = Storage.from_uri(str(tmp_path))
    log = AppliedLog().with_files({A, B, C}).folded([A, B, C], "2025/11/30/00")
    digest = log.days["2025/11/28"]
    body = gzip.compress("\n".join(sorted([A, B])).encode(), mtime=0)
    storage.write_atomic(day_names_path("t", "2025/11/28", digest), body)  # the shared folder
    assert day_names_path("t", "2025/11/28", digest) == f"state/apply/t/days/2025-11-28-{digest}.txt.gz"
    assert stored_names(storage, "t", "ddb")("2025/11/28", digest) == {A, B}
    assert stored_names(storage, "t", "other")("2025/11/28", digest) == {A, B}


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not gzip at all",
        gzip.compress(b"{not json", mtime=0),
        gzip.compress(b'{"version": 1}', mtime=0)[:-6],
    ],
)
def test_a_damaged_applied_log_is_a_terminal_error_naming_it(tmp_path: Path, data: bytes) -> None:
    from ddblake.errors import TerminalError
    from ddblake.lake.applied import load_log

    storage = Storage.from_uri(str(tmp_path / "lake"))
    storage.write_atomic("state/apply/t/current-x.json.gz", data)
    with pytest.raises(TerminalError, match=r"current-x\.json\.gz.*(damaged|not a ddblake applied-file log)"):
        load_log(storage, "state/apply/t/current-x.json.gz")
