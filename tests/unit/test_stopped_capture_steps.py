"""A capture step stopped by a signal is not a capture step that caught up.

``run_capture`` takes SIGINT/SIGTERM as a stop request: it flushes, checkpoints and returns. The
steps that follow one must not take it for "the stream is read": a re-bootstrap would pin no
positions in the shards it did not reach and start its full load anyway, and ``sync --once`` would
go on to a full apply after the user asked it to stop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ddblake import rebootstrap, sync
from ddblake.capture.consumer import CaptureStats
from ddblake.errors import StoppedError, TransientError
from ddblake.lake.catalog import LakeConfig
from ddblake.lake.storage import Storage

TABLE = "stop-table"


def _stopped(*args: Any, **kwargs: Any) -> CaptureStats:
    return CaptureStats(records=3, stopped_by="SIGTERM")


def test_a_rebootstrap_stopped_while_pinning_positions_starts_no_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads: list[Any] = []
    monkeypatch.setattr(rebootstrap, "run_capture", _stopped)
    monkeypatch.setattr(rebootstrap, "run_apply", lambda *a, **k: None)
    monkeypatch.setattr(rebootstrap, "wait_until_loads_rank_above", lambda *a, **k: 1_000_000)
    monkeypatch.setattr(rebootstrap, "_newest_event_us", lambda *a, **k: None)
    monkeypatch.setattr(rebootstrap, "_clock_lead_us", lambda *a, **k: 0)
    monkeypatch.setattr(rebootstrap, "_load_following", lambda *a, **k: loads.append(a) or 0)
    lake = LakeConfig.build(lake=str(tmp_path / "lake"))
    with pytest.raises(
        TransientError, match=rf"re-bootstrap of table '{TABLE}' stopped by SIGTERM before its load"
    ):
        rebootstrap.rebootstrap(TABLE, lake, "http://127.0.0.1:9")
    assert loads == []
    marker = Storage.from_uri(str(tmp_path / "lake")).read(rebootstrap.marker_path(TABLE))
    assert marker is not None and b"load_start_us" not in marker  # a rerun pins positions again


def test_sync_once_stopped_during_capture_does_not_apply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ddblake.capture.config import CaptureConfig
    from ddblake.lake.apply import ApplyConfig

    applied: list[Any] = []
    monkeypatch.setattr(sync, "run_capture", _stopped)
    monkeypatch.setattr(sync, "run_apply", lambda *a, **k: applied.append(a))
    lake = LakeConfig.build(lake=str(tmp_path / "lake"))
    capture = CaptureConfig.build(table=TABLE, lake=lake.lake, endpoint_url="http://127.0.0.1:9", once=True)
    config = sync.SyncConfig(capture=capture, apply=ApplyConfig.build(table=TABLE, lake=lake, once=True))
    with pytest.raises(
        StoppedError, match=rf"sync {TABLE}: stopped by SIGTERM before applying .* run the same"
    ):
        sync.run_sync(config, clients=object())  # type: ignore[arg-type]
    assert applied == []


@pytest.mark.parametrize("once", [True, False])
def test_capture_once_stopped_before_catching_up_is_not_a_success(
    once: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A --once job killed on its deadline must not look done; a continuous capture's stop is its end."""
    from ddblake.capture import service
    from ddblake.cli.main import main

    monkeypatch.setattr(service, "run_capture", _stopped)
    argv = ["capture", "--table", TABLE, "--lake", str(tmp_path), "--endpoint-url", "http://127.0.0.1:9"]
    code = main(argv + (["--once"] if once else []))
    err = capsys.readouterr().err.strip()
    if once:
        assert code == 1
        assert err == (
            f"ddblake: stopped: capture {TABLE}: stopped by SIGTERM before catching up (what it read is "
            "written and checkpointed); run the same command again to go on"
        )
    else:
        assert (code, err) == (0, "")
