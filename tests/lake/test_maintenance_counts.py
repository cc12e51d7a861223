"""A ``--once`` apply says whether its maintenance failed or was left out for lack of time, so the
apply Lambda can report it (``MaintenanceFailures``, ``MaintenanceSkipped``): otherwise snapshots
and small files grow with nothing but a WARNING line to show it."""

from __future__ import annotations

import time

import pytest
from lake_helpers import TABLE, Lake, insert

from ddblake.lake import maintain
from ddblake.lake.apply import ApplyConfig
from ddblake.lake.service import run_apply


def _once(lake: Lake, **kwargs: float) -> tuple[int, int]:
    lake.write([insert(f"k{time.monotonic_ns()}", 1, {"n": {"N": "1"}})])
    result = run_apply(ApplyConfig.build(table=TABLE, lake=lake.config, once=True), **kwargs)  # type: ignore[arg-type]
    assert result.files == 1
    return result.maintenance_failures, result.maintenance_skipped


def test_a_once_run_counts_maintenance_that_failed_or_was_left_out(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _once(lake) == (0, 0)  # maintained, nothing failed

    def broken(*args: object, **kwargs: object) -> maintain.Report:
        raise OSError("catalog unreachable")

    monkeypatch.setattr(maintain, "maintain", broken)
    assert _once(lake) == (2, 0)  # the whole pass failed: both tables unmaintained
    assert _once(lake, deadline=time.monotonic() + 30) == (0, 1)  # under a minute left: left out
