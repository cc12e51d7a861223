"""``status`` says how many snapshots the lake tables keep and from when ``--as-of`` is exact, so an
operator sees maintenance working (the count held near its limits) or not (the count only grows)."""

from __future__ import annotations

import json

import pytest
from lake_helpers import TABLE, Lake, insert

from ddblake.cli.main import main


def _status(lake: Lake, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    capsys.readouterr()
    assert main(["status", "--lake", str(lake.root), "--format", "json"]) == 0
    (table,) = json.loads(capsys.readouterr().out)["tables"]
    assert table["table"] == TABLE
    return dict(table)


def _apply(lake: Lake, i: int) -> None:
    lake.write([insert(f"k{i}", i + 1, {"n": {"N": str(i)}})])
    assert main(["apply", "--table", TABLE, "--lake", str(lake.root), "--once"]) == 0


def test_status_counts_kept_snapshots_and_shows_expiry_moving_the_oldest(
    lake: Lake, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _apply(lake, 0)
    first = _status(lake, capsys)
    assert first["snapshots"] >= 2  # type: ignore[operator]  # one commit in each table at least
    assert first["oldest_snapshot"] is not None and first["oldest_snapshot"] <= first["last_commit"]  # type: ignore[operator]

    for i in range(1, 20):
        _apply(lake, i)
    grown = _status(lake, capsys)
    assert grown["snapshots"] >= first["snapshots"] + 38  # type: ignore[operator]  # 19 batches, 2 tables
    assert grown["oldest_snapshot"] == first["oldest_snapshot"]  # nothing expired under the defaults

    monkeypatch.setenv("DDBLAKE_KEEP_SNAPSHOTS", "2")
    monkeypatch.setenv("DDBLAKE_KEEP_MIN_SNAPSHOTS", "1")
    monkeypatch.setenv("DDBLAKE_KEEP_REPLACED_MINUTES", "0")
    _apply(lake, 20)
    expired = _status(lake, capsys)
    assert expired["snapshots"] < grown["snapshots"]  # type: ignore[operator]
    assert expired["oldest_snapshot"] > grown["oldest_snapshot"]  # type: ignore[operator]

    capsys.readouterr()
    assert main(["status", "--lake", str(lake.root)]) == 0
    text = capsys.readouterr().out
    assert f"snapshots            {expired['snapshots']}" in text and "oldest_snapshot" in text
