"""What a ddblake says on meeting what a newer ddblake wrote (docs/upgrades.md): upgrade, not restore."""

from __future__ import annotations

import pytest

from ddblake.changes.model import ChangeEvent
from ddblake.errors import BadRecordError, TerminalError
from ddblake.lake.applied import AppliedLog


def test_a_newer_applied_file_log_says_to_upgrade_not_to_restore() -> None:
    with pytest.raises(TerminalError, match="version 2, written by a newer ddblake") as caught:
        AppliedLog.from_json({"version": 2, "files": [], "shape": "new"}, "state/x.json")
    assert "restore" not in str(caught.value) and "docs/upgrades.md" in str(caught.value)


def test_a_damaged_applied_file_log_still_says_restore() -> None:
    for damaged in ({"version": 1}, {"version": "1", "files": []}, [], {"version": 0, "files": []}):
        with pytest.raises(TerminalError, match="restore it from a backup"):
            AppliedLog.from_json(damaged, "state/x.json")


def test_a_raw_line_of_a_newer_format_is_refused_naming_the_upgrade() -> None:
    with pytest.raises(BadRecordError, match="format version 2, expected 1; a newer ddblake wrote it"):
        ChangeEvent.from_dict({"v": 2, "op": "INSERT"})
    with pytest.raises(BadRecordError) as caught:
        ChangeEvent.from_dict({"v": 0, "op": "INSERT"})
    assert "newer" not in str(caught.value)
