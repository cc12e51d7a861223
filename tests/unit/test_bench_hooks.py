"""bench/apply.py times apply's steps by wrapping functions by name: a rename in src/ must not
break the benchmark unnoticed (session 20 moved ``read_raw`` to ``ddblake.lake.batch`` and the
benchmark's children failed with an AttributeError until the next run)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_the_apply_benchmark_s_phase_timers_wrap_what_apply_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    from ddblake.lake import apply, batch

    monkeypatch.syspath_prepend(str(BENCH))
    # Whatever the timers replace is put back when the test ends.
    for owner, name in (
        (batch, "read_raw"),
        (apply.Applier, "_commit_history"),
        (apply.Applier, "_commit_current"),
        (apply.Applier, "_lookup"),
    ):
        monkeypatch.setattr(owner, name, getattr(owner, name))
    monkeypatch.delitem(sys.modules, "_apply_children", raising=False)
    import _apply_children

    phases = _apply_children._time_phases()
    assert set(phases) == {"read_parse", "history", "current"}
    assert batch.read_raw.__name__ == "wrapper", "apply's raw-file reader is timed"
