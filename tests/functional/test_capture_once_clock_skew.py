"""``--once`` reads every change made before it began although this machine's clock is behind AWS's.

A busy table never gives an empty page, so a ``--once`` run stops at the first page whose last
change is stamped after the run began. The stamp (``ApproximateCreationDateTime``) is AWS's clock,
the run's start this machine's: a machine behind AWS would take changes made before the run for
later ones and stop early. The stamp must be a minute (``ONCE_CLOCK_SKEW_US``) past the start.
DynamoDB Local stamps by this machine's clock, rounded down to the minute, so it cannot show a skew;
the stream is scripted, with stamps set by the test.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from scripted_stream import TABLE, ScriptedStream, record

from ddblake.capture.config import CaptureConfig
from ddblake.capture.consumer import CaptureStats, StreamCapture
from ddblake.lake.storage import Storage

pytestmark = pytest.mark.functional

SHARD = "shardId-00001"


def capture_behind(
    stream: ScriptedStream, lake: Path, monkeypatch: pytest.MonkeyPatch, behind_s: float
) -> CaptureStats:
    real = time.time_ns
    monkeypatch.setattr(time, "time_ns", lambda: real() - int(behind_s * 1e9))
    config = CaptureConfig(table=TABLE, lake=str(lake), once=True, check_reach=False)
    return StreamCapture(config, stream, Storage.from_uri(str(lake))).run()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("behind_s", "made_s_before"),
    [(30, 20), (120, 100)],  # made later than (run start by this clock) but before (that + a minute)
)
def test_once_reads_every_change_made_before_it_began_on_a_clock_behind_aws(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, behind_s: float, made_s_before: float
) -> None:
    aws_now = dt.datetime.now(dt.UTC)
    # ten changes made (by AWS's clock) in the seconds before the run, one a second: a busy shard
    # that never answers an empty page; by this machine's clock each looks made after the run began
    made = [aws_now - dt.timedelta(seconds=made_s_before - n) for n in range(10)]
    stream = ScriptedStream()
    stream.page = 2
    stream.shard_defs[SHARD] = (None, 1, None, [record(n + 1, when) for n, when in enumerate(made)])
    stats = capture_behind(stream, tmp_path, monkeypatch, behind_s)
    assert stats.records == 10, f"--once stopped after {stats.records} of 10 changes made before it began"


def test_once_still_stops_at_changes_made_a_minute_after_it_began(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    aws_now = dt.datetime.now(dt.UTC)
    stream = ScriptedStream()
    stream.page = 2
    later = aws_now + dt.timedelta(seconds=90)  # as if written while the run goes on
    stream.shard_defs[SHARD] = (None, 1, None, [record(n, later) for n in range(1, 11)])
    assert capture_behind(stream, tmp_path, monkeypatch, 0).records == 2  # the first page: caught up
