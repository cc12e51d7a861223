"""Recovering a lake (docs/lake.md, Recovering): a restore from an older backup while the catalog
names newer metadata, a table dropped from the catalog by hand, a raw file apply cannot read."""

from __future__ import annotations

import dataclasses
import errno
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from lake_helpers import TABLE, Lake, event

from ddblake.cli.main import main
from ddblake.errors import TerminalError
from ddblake.lake.apply import Applier, ApplyConfig
from ddblake.lake.rawlog import RawLogWriter
from ddblake.lake.report import lake_status
from ddblake.lake.service import run_apply
from ddblake.lake.storage import Storage

HIST, CUR = "ddb.orders_table_changes", "ddb.orders_table"
OTHER = "other-table"


def _s(v: str) -> dict[str, Any]:
    return {"S": v}


def _newest_metadata(lake: Lake, identifier: str) -> Path:
    folder = lake.root / "warehouse" / identifier.replace(".", "/") / "metadata"
    return max(folder.glob("*.metadata.json"), key=lambda p: int(p.name.split("-", 1)[0]))


def _reference(tmp_path: Path, lake: Lake) -> Lake:
    """A lake rebuilt from ``lake``'s raw log alone: what every recovery must end at."""
    ref = Lake(tmp_path / "reference")
    shutil.copytree(lake.root / "raw", ref.root / "raw")
    ref.apply()
    return ref


def _history_ids(lake: Lake) -> list[str]:
    return sorted(row["event_id"] for row in lake.history())


def _other_table(lake: Lake) -> None:
    """A second DynamoDB table in the lake, applied."""
    writer = RawLogWriter(lake.storage, OTHER, buffer_bytes=1 << 30, buffer_seconds=3600)
    writer.add(dataclasses.replace(event("INSERT", "o1", 1, image={"v": _s("o")}), table=OTHER).to_line())
    assert writer.flush() is not None
    Applier(ApplyConfig.build(table=OTHER, lake=lake.config, once=True), storage=lake.storage).run_once()


def test_a_lake_restored_from_an_older_backup_says_what_to_register_and_then_recovers_exactly_once(
    lake: Lake, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _other_table(lake)
    lake.write([event("INSERT", f"k{i}", 1, image={"v": _s(f"a{i}")}) for i in range(6)])
    lake.apply()
    backup = tmp_path / "backup"
    for folder in ("warehouse", "state"):
        shutil.copytree(lake.root / folder, backup / folder)
    lake.write([event("MODIFY", f"k{i}", 2, image={"v": _s(f"b{i}")}) for i in range(3)])
    lake.write([event("REMOVE", "k5", 3)])
    lake.apply()
    # The bucket (or folder) restored from the backup; the catalog still names the newer metadata.
    for folder in ("warehouse", "state"):
        shutil.rmtree(lake.root / folder)
        shutil.copytree(backup / folder, lake.root / folder)

    with pytest.raises(TerminalError) as failed:
        lake.apply()
    text = str(failed.value)
    newest = _newest_metadata(lake, CUR)  # apply reads the current state first
    assert f"table {CUR} cannot be read" in text and "which is not there" in text
    assert f"{newest.name}" in text and "register_table" in text
    assert "permissions" not in text  # not the storage advice of before

    # status reports the failing tables, and still lists the other DynamoDB table.
    statuses = {s.table: s for s in lake_status(lake.catalog(), "ddb", lake.storage)}
    assert set(statuses) == {TABLE, OTHER}
    assert statuses[OTHER].error is None and statuses[OTHER].rows == 1
    error = statuses[TABLE].error or ""
    assert f"table {HIST} cannot be read" in error and f"table {CUR} cannot be read" in error
    capsys.readouterr()
    assert main(["status", "--lake", str(lake.root), "--format", "json"]) == 1
    out, err = capsys.readouterr()
    shown = {t["table"]: t for t in json.loads(out)["tables"]}
    assert shown[OTHER]["rows"] == 1 and f"table {CUR} cannot be read" in shown[TABLE]["error"]
    assert "cannot be read" in err
    assert main(["dump", "--lake", str(lake.root), "--table", TABLE]) == 1
    assert f"table {CUR} cannot be read" in capsys.readouterr().err

    # The recovery the message gives: the newest metadata file there registered in the catalog.
    catalog = lake.catalog()
    for ident in (HIST, CUR):
        catalog.drop_table(ident)
        catalog.register_table(ident, _newest_metadata(lake, ident).as_uri())
    result = lake.apply()
    assert result.files == 2  # the files applied after the backup, applied again
    assert lake.apply().files == 0
    ref = _reference(tmp_path, lake)
    assert lake.dump() == ref.dump()
    assert _history_ids(lake) == _history_ids(ref)  # every event once
    assert len(_history_ids(lake)) == 10
    assert all(s.error is None for s in lake_status(lake.catalog(), "ddb", lake.storage))


def test_a_table_dropped_from_the_catalog_by_hand_is_brought_back_by_registering_its_metadata(
    lake: Lake, tmp_path: Path
) -> None:
    lake.write([event("INSERT", f"k{i}", 1, image={"v": _s(f"a{i}")}) for i in range(4)])
    lake.apply()
    lake.write([event("MODIFY", "k1", 2, image={"v": _s("b")})])
    lake.apply()
    newest = _newest_metadata(lake, CUR)
    lake.catalog().drop_table(CUR)

    with pytest.raises(TerminalError) as refused:
        lake.apply()
    text = str(refused.value)
    assert f"catalog.register_table('{CUR}', '{newest.as_uri()}')" in text
    assert text.index("register_table") < text.index("dropped on purpose")

    lake.catalog().register_table(CUR, newest.as_uri())
    lake.write([event("INSERT", "k9", 3, image={"v": _s("c")})])
    assert lake.apply().files == 1
    assert lake.dump() == _reference(tmp_path, lake).dump()


class _Denying:
    """A file system denying reads of one file, as S3 or a local disk does without permission."""

    def __init__(self, fs: Any, denied: str) -> None:
        self._fs, self.denied = fs, denied

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fs, name)

    def open_input_stream(self, path: str, *args: Any, **kwargs: Any) -> Any:
        if path == self.denied:
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return self._fs.open_input_stream(path, *args, **kwargs)


def _denying(lake: Lake, rel: str) -> Storage:
    return dataclasses.replace(lake.storage, fs=_Denying(lake.storage.fs, f"{lake.storage.root}/{rel}"))


@pytest.mark.parametrize("bare", [False, True], ids=["storage-error", "bare-os-error"])
def test_a_raw_file_apply_cannot_read_is_named_with_the_way_on_and_never_skipped(
    lake: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bare: bool
) -> None:
    lake.write([event("INSERT", f"k{i}", 1, image={"v": _s(f"a{i}")}) for i in range(3)])
    denied = lake.write([event("MODIFY", "k1", 2, image={"v": _s("b")}), event("INSERT", "n1", 2)])
    lake.write([event("INSERT", "k9", 3, image={"v": _s("c")})])
    if bare:  # an OSError from the read itself, as the audit's reproducer raised it
        original = Storage.read

        def read(self: Storage, rel: str) -> bytes | None:
            if rel == denied:
                raise PermissionError(errno.EACCES, "Permission denied", rel)
            return original(self, rel)

        monkeypatch.setattr(Storage, "read", read)
        storage = lake.storage
    else:
        storage = _denying(lake, denied)
    config = ApplyConfig.build(table=TABLE, lake=lake.config, once=True)
    for _ in range(2):  # every run, the same: nothing applied, the file named
        with pytest.raises(TerminalError) as failed:
            run_apply(config, applier=Applier(config, storage=storage))
        text = str(failed.value)
        assert f"cannot read raw file {lake.storage.shown(denied)}" in text
        aside = lake.storage.shown(f"errors/{TABLE}/unreadable/{denied.removeprefix(f'raw/{TABLE}/')}")
        assert f"moving it out of raw/ (to {aside})" in text and "missing from both tables" in text
        assert "Permission denied" in text
    assert lake.history() == []  # not silently skipped: nothing applied past it

    # Moved aside, as the message says: apply goes on without its changes.
    moved = lake.root / f"errors/{TABLE}/unreadable" / denied.removeprefix(f"raw/{TABLE}/")
    moved.parent.mkdir(parents=True)
    (lake.root / denied).rename(moved)
    run_apply(config, applier=Applier(config, storage=storage))
    assert set(lake.dump()) == {"k0", "k1", "k2", "k9"} and lake.dump()["k1"]["v"] == _s("a1")
    assert next(s for s in lake_status(lake.catalog(), "ddb", lake.storage)).capture_error_files == 1

    # Readable again and moved back: applied as a late file.
    monkeypatch.undo()
    moved.rename(lake.root / denied)
    assert lake.apply().files == 1
    assert lake.dump() == _reference(tmp_path, lake).dump()
    assert len(lake.history()) == 6


def _drop_history(lake: Lake) -> None:
    """docs/lake.md, Recovering: a table dropped on purpose is rebuilt from raw/ by deleting it."""
    lake.catalog().drop_table(HIST)
    shutil.rmtree(lake.root / "warehouse" / "ddb" / "orders_table_changes")


def test_a_late_change_meeting_a_history_being_rebuilt_never_brings_a_deleted_item_back(lake: Lake) -> None:
    """The current state held the REMOVE; the rebuilt history did not yet, and the late change's
    tombstone check reads the history: the item came back, for good."""
    lake.write([event("INSERT", "k", 1, image={"a": _s("v1")})])
    lake.write([event("REMOVE", "k", 3)])
    lake.apply()
    _drop_history(lake)
    lake.write([event("MODIFY", "k", 2, image={"a": _s("late")})])
    lake.apply()
    assert lake.dump() == {}
    assert sorted(h["op"] for h in lake.history()) == ["INSERT", "MODIFY", "REMOVE"]


def test_a_redelivered_event_meeting_a_history_half_rebuilt_is_kept_once(lake: Lake) -> None:
    """The rebuild stopped after one batch (a deadline, a stop signal, the file limit); the event
    it had rebuilt arrived again, beside the REMOVE still to rebuild: history held it twice and
    the current state brought the item back."""
    insert = event("INSERT", "k", 1, image={"a": _s("v1")}, event_id="A-insert")
    lake.write([insert])
    lake.write([event("REMOVE", "k", 3, event_id="B-remove")])
    lake.apply()
    _drop_history(lake)
    lake.write([insert])  # Kinesis and Firehose deliver at least once
    one = ApplyConfig.build(table=TABLE, lake=lake.config, once=True, max_files=1)
    Applier(one, storage=lake.storage).run_batch()  # the rebuild's first batch, then a stop
    lake.apply(max_files=2)  # the REMOVE still to rebuild and the new file in one batch
    assert sorted(h["event_id"] for h in lake.history()) == ["A-insert", "B-remove"]
    assert lake.dump() == {}
