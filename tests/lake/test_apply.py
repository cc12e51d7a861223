"""apply: exactly-once history and current state under duplicates, reorders, late changes, crashes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import gzip
import io
import json
import random
import time
from typing import Any

import pytest
from lake_helpers import TABLE, Lake, event

from ddblake.lake import apply as apply_module
from ddblake.lake.report import lake_status
from ddblake.progress import Progress


def _s(v: str) -> dict[str, Any]:
    return {"S": v}


def test_changes_become_current_state_and_history(lake: Lake) -> None:
    lake.write(
        [
            event("INSERT", "a", 1, image={"v": _s("1")}),
            event("MODIFY", "a", 2, image={"v": _s("2")}),
            event("INSERT", "b", 3, image={"v": _s("x")}),
            event("REMOVE", "b", 4),
        ]
    )
    result = lake.apply()
    assert (result.files, result.events, result.history_rows) == (1, 4, 4)
    assert lake.dump() == {"a": {"pk": _s("a"), "v": _s("2")}}
    ops = sorted((r["op"], r["pk"]) for r in lake.history())
    assert ops == [("INSERT", "a"), ("INSERT", "b"), ("MODIFY", "a"), ("REMOVE", "b")]


def test_second_apply_with_nothing_new_changes_nothing(lake: Lake) -> None:
    lake.write([event("INSERT", "a", 1, image={"v": _s("1")})])
    lake.apply()
    tables = [lake.catalog().load_table(f"ddb.{n}") for n in ("orders_table", "orders_table_changes")]
    before = [t.current_snapshot().snapshot_id for t in tables]
    result = lake.apply()
    assert result.files == 0
    tables = [lake.catalog().load_table(f"ddb.{n}") for n in ("orders_table", "orders_table_changes")]
    assert [t.current_snapshot().snapshot_id for t in tables] == before


def test_duplicated_events_across_files_land_once(lake: Lake) -> None:
    evs = [event("INSERT", "a", 1, image={"v": _s("1")}), event("MODIFY", "a", 2, image={"v": _s("2")})]
    lake.write(evs)
    lake.apply()
    lake.write(evs + [event("MODIFY", "a", 3, image={"v": _s("3")})])  # a redelivered batch plus one new
    result = lake.apply()
    assert result.duplicates == 2
    assert lake.dump()["a"]["v"] == _s("3")
    ids = [r["event_id"] for r in lake.history()]
    assert len(ids) == 3 == len(set(ids))


@pytest.mark.parametrize("limit", [{"max_events": 5}, {"max_bytes": 1}])
def test_a_large_backlog_is_applied_in_bounded_batches_with_the_same_result(
    lake: Lake, tmp_path_factory: pytest.TempPathFactory, limit: dict[str, int]
) -> None:
    files = [
        [event("MODIFY", f"k{(f * 3 + i) % 7}", f * 10 + i, image={"v": _s(f"{f}.{i}")}) for i in range(3)]
        + ([event("REMOVE", f"k{f % 7}", f * 10 + 5)] if f % 2 else [])
        for f in range(6)
    ]
    for evs in files:
        lake.write(evs)
    reference = Lake(tmp_path_factory.mktemp("one-batch"))
    for evs in files:
        reference.write(evs)
    assert reference.apply().files == 6

    result = lake.apply(**limit)
    assert result.files == 6 and result.events == sum(map(len, files))
    hist = lake.catalog().load_table("ddb.orders_table_changes")
    appended = [int(s.summary["ddblake.files"]) for s in hist.snapshots() if "ddblake.files" in s.summary]
    # max_events=5: each batch stops at the file that reaches 5 events (two files of 3 or 4);
    # max_bytes=1: every file is a batch of its own.
    assert appended == ([2, 2, 2] if "max_events" in limit else [1] * 6)
    assert lake.dump() == reference.dump()
    assert sorted(r["event_id"] for r in lake.history()) == sorted(r["event_id"] for r in reference.history())


def test_a_backlog_of_several_batches_shows_progress_and_one_batch_shows_none(lake: Lake) -> None:
    for f in range(5):
        lake.write([event("INSERT", f"k{f}.{i}", f, image={"v": _s("x")}) for i in range(2)])
    config = apply_module.ApplyConfig.build(table=TABLE, lake=lake.config, once=True, max_files=2)
    ticks = iter(range(0, 1000, 10))  # each clock reading 10 s later: every batch is drawn
    shown = io.StringIO()
    progress = Progress(
        "apply t", stream=shown, tty=False, interval=0, clock=lambda: next(ticks), unit="raw files"
    )
    result = apply_module.Applier(config, storage=lake.storage).run_once(progress)
    assert result.files == 5
    lines = shown.getvalue().splitlines()
    assert lines[0].startswith("apply t: 4 events, 2 / ~5 raw files (40%)")
    assert "ETA" in lines[0] and "raw files/s" in lines[0]
    assert lines[-1].startswith("apply t: 10 events, 5 / ~5 raw files (100%)") and "ETA 0:00" in lines[-1]

    lake.write([event("INSERT", "late", 9, image={"v": _s("x")})])
    quiet = io.StringIO()
    progress = Progress("apply t", stream=quiet, tty=False, interval=0, unit="raw files")
    assert apply_module.Applier(config, storage=lake.storage).run_once(progress).files == 1
    assert quiet.getvalue() == ""  # one batch: nothing to show


def test_order_of_delivery_does_not_matter(lake: Lake, tmp_path_factory: pytest.TempPathFactory) -> None:
    rng = random.Random(7)
    evs = []
    for t in range(60):
        pk = f"k{rng.randrange(8)}"
        if rng.random() < 0.25:
            evs.append(event("REMOVE", pk, t, seq=t))
        else:
            evs.append(event("MODIFY", pk, t, image={"n": {"N": str(t)}}, seq=t))
    expected: dict[str, Any] = {}
    for ev in evs:
        pk = ev.keys["pk"]["S"]
        if ev.op == "REMOVE":
            expected.pop(pk, None)
        else:
            expected[pk] = ev.new_image
    shuffled = evs + rng.sample(evs, 10)  # duplicates too
    rng.shuffle(shuffled)
    for start in range(0, len(shuffled), 7):
        lake.write(shuffled[start : start + 7])
        if rng.random() < 0.5:
            lake.apply()
    lake.apply()
    assert lake.dump() == expected
    assert len(lake.history()) == len(evs)


def test_late_change_never_resurrects_a_deleted_item(lake: Lake) -> None:
    lake.write([event("INSERT", "a", 1, image={"v": _s("1")}), event("REMOVE", "a", 5)])
    lake.apply()
    assert lake.dump() == {}
    lake.write([event("MODIFY", "a", 3, image={"v": _s("late")})])  # older than the delete
    result = lake.apply()
    assert lake.dump() == {}
    assert result.upserts == 0
    # a genuinely newer write brings it back
    lake.write([event("INSERT", "a", 9, image={"v": _s("new")})])
    lake.apply()
    assert lake.dump()["a"]["v"] == _s("new")


def test_older_change_never_overwrites_a_newer_one(lake: Lake) -> None:
    lake.write([event("MODIFY", "a", 10, image={"v": _s("new")})])
    lake.apply()
    lake.write([event("MODIFY", "a", 5, image={"v": _s("old")})])
    result = lake.apply()
    assert result.stale == 1
    assert lake.dump()["a"]["v"] == _s("new")


def test_sequence_number_orders_changes_within_one_second(lake: Lake) -> None:
    lake.write(
        [
            event("MODIFY", "a", 1, image={"v": _s("second")}, seq=200),
            event("MODIFY", "a", 1, image={"v": _s("first")}, seq=100),
        ]
    )
    lake.apply()
    assert lake.dump()["a"]["v"] == _s("second")


def test_ttl_expiry_is_distinguishable_in_history(lake: Lake) -> None:
    lake.write(
        [
            event("INSERT", "a", 1, image={"v": _s("1")}),
            event("INSERT", "b", 1, image={"v": _s("1")}),
            event("REMOVE", "a", 2, ttl=True),
            event("REMOVE", "b", 2),
        ]
    )
    lake.apply()
    removes = {r["pk"]: r["ttl"] for r in lake.history() if r["op"] == "REMOVE"}
    assert removes == {"a": True, "b": False}


def test_bad_lines_are_quarantined_and_good_ones_applied(lake: Lake) -> None:
    good = event("INSERT", "a", 1, image={"v": _s("1")})
    bad_lines = [b"not json", b'{"v": 1, "op": "UPSERT"}', b"[1,2,3]"]
    path = lake.write([good], lines=bad_lines)
    result = lake.apply()
    assert result.quarantined == 3
    assert lake.dump() == {"a": {"pk": _s("a"), "v": _s("1")}}
    errors = lake.storage.list_files(f"errors/{TABLE}/apply/")
    assert len(errors) == 1
    records = [json.loads(x) for x in gzip.decompress(lake.storage.read(errors[0]) or b"").splitlines()]
    assert {r["file"] for r in records} == {path}
    assert all(r["reason"] for r in records)
    (status,) = lake_status(lake.catalog(), "ddb", lake.storage)
    assert status.quarantined == 3


def test_a_key_that_cannot_be_keyed_is_quarantined_not_fatal(lake: Lake) -> None:
    """A number key with an exponent no decimal holds passes the syntax checks; only its line fails."""
    good = event("INSERT", "a", 1, image={"v": _s("1")})
    poison = dataclasses.replace(good, keys={"pk": {"N": "1E+99999999999999999999"}}, event_id="p")
    poison = dataclasses.replace(poison, new_image=poison.keys)
    lake.write([good, poison])
    result = lake.apply()
    assert result.quarantined == 1
    assert lake.dump() == {"a": {"pk": _s("a"), "v": _s("1")}}


def test_truncated_gzip_keeps_its_complete_lines(lake: Lake) -> None:
    path = lake.write([event("INSERT", k, 1, image={"v": _s(k * 50)}) for k in "abcdefgh"])
    data = lake.storage.read(path) or b""
    lake.storage.write_atomic(path, data[: len(data) * 2 // 3])
    result = lake.apply()
    assert result.quarantined == 1
    assert 0 < len(lake.dump()) < 8


@pytest.mark.parametrize("crash_at", ["history", "current"])
def test_crash_between_commits_then_rerun_gives_same_tables(
    lake: Lake, monkeypatch: pytest.MonkeyPatch, crash_at: str
) -> None:
    lake.write([event("INSERT", "a", 1, image={"v": _s("1")}), event("INSERT", "b", 1, image={"v": _s("1")})])
    lake.apply()
    lake.write([event("REMOVE", "a", 2), event("MODIFY", "b", 3, image={"v": _s("2")})])

    class Crash(Exception):
        pass

    original = getattr(apply_module.Applier, f"_commit_{crash_at}")

    def crash(*args: Any, **kwargs: Any) -> None:
        if crash_at == "current":
            raise Crash
        # history: write its applied log (an orphan) and die before the commit
        raise Crash

    monkeypatch.setattr(apply_module.Applier, f"_commit_{crash_at}", crash)
    with pytest.raises(Crash):
        lake.apply()
    monkeypatch.setattr(apply_module.Applier, f"_commit_{crash_at}", original)
    lake.apply()
    assert lake.dump() == {"b": {"pk": _s("b"), "v": _s("2")}}
    ids = [r["event_id"] for r in lake.history()]
    assert len(ids) == 4 == len(set(ids))


def test_status_reports_rows_files_and_lag(lake: Lake) -> None:
    lake.write([event("INSERT", "a", 1, image={"v": _s("1")})])
    lake.write([event("INSERT", "b", 2, image={"v": _s("1")})])
    lake.apply()
    (status,) = lake_status(lake.catalog(), "ddb", lake.storage)
    assert status.table == TABLE
    assert (status.rows, status.history_rows) == (2, 2)
    assert status.applied_files == 2
    assert status.apply_lag_seconds == 0.0  # nothing pending: not late (the LagSeconds alarm's rule)
    # lag: now minus the newest applied event's time (the tables' staleness)
    assert status.newest_event is not None and status.lag_seconds is not None
    newest = dt.datetime.fromisoformat(status.newest_event).timestamp()
    assert abs(status.lag_seconds - (time.time() - newest)) < 60
    assert status.quarantined == 0
    assert status.pending_files == 0
    lake.write([event("INSERT", "c", 3, image={"v": _s("1")})])
    lake.write([event("INSERT", "d", 4, image={"v": _s("1")})])
    (status,) = lake_status(lake.catalog(), "ddb", lake.storage)
    assert status.pending_files == 2 and status.rows == 2  # written, not yet applied
    assert status.applied_files == 2
    # the oldest pending file's age: seconds, though the events are days old (a quiet table's first
    # change is not days late)
    assert status.apply_lag_seconds is not None and 0 <= status.apply_lag_seconds < 60
    assert status.lag_seconds is not None and status.lag_seconds > 86_400, "the tables are still stale"


def test_apply_settings_come_from_argument_then_environment_then_default_and_bad_ones_are_named(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ddblake.errors import ConfigError
    from ddblake.lake.apply import ApplyConfig

    default = ApplyConfig.build(table=TABLE, lake=lake.config)
    assert (default.max_files, default.max_events, default.max_bytes, default.buckets) == (
        500,
        200_000,
        256 << 20,
        16,
    )
    monkeypatch.setenv("DDBLAKE_APPLY_MAX_EVENTS", "10")
    monkeypatch.setenv("DDBLAKE_BUCKETS", "4")
    from_env = ApplyConfig.build(table=TABLE, lake=lake.config)
    assert (from_env.max_events, from_env.buckets) == (10, 4)
    assert ApplyConfig.build(table=TABLE, lake=lake.config, max_events=7).max_events == 7
    monkeypatch.setenv("DDBLAKE_APPLY_MAX_BYTES", "lots")
    with pytest.raises(ConfigError, match="DDBLAKE_APPLY_MAX_BYTES='lots' is not valid"):
        ApplyConfig.build(table=TABLE, lake=lake.config)
    monkeypatch.setenv("DDBLAKE_APPLY_MAX_BYTES", "0")
    with pytest.raises(ConfigError, match="DDBLAKE_APPLY_MAX_BYTES must be positive, got 0"):
        ApplyConfig.build(table=TABLE, lake=lake.config)
    monkeypatch.setenv("DDBLAKE_APPLY_MAX_BYTES", "1")
    with pytest.raises(ConfigError, match=r"--buckets \(or DDBLAKE_BUCKETS\) must be positive, got -2"):
        ApplyConfig.build(table=TABLE, lake=lake.config, buckets=-2)
    with pytest.raises(ConfigError, match="missing table: pass --table or set DDBLAKE_TABLE"):
        ApplyConfig.build(table=None, lake=lake.config)


def test_the_cyclic_collector_is_off_while_a_batch_is_applied_and_back_on_after(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Full collections walk a batch's hundreds of thousands of objects again and again (docs/lake.md)."""
    lake.write([event("INSERT", "k1", 1, image={"v": _s("x")})])
    config = apply_module.ApplyConfig.build(table=TABLE, lake=lake.config, once=True)
    seen_inside: list[bool] = []
    original = apply_module.Applier._run_batch

    def spy(self: apply_module.Applier) -> tuple[apply_module.ApplyResult, bool]:
        seen_inside.append(gc.isenabled())
        return original(self)

    monkeypatch.setattr(apply_module.Applier, "_run_batch", spy)
    assert gc.isenabled()
    assert apply_module.Applier(config, storage=lake.storage).run_once().files == 1
    assert seen_inside == [False] and gc.isenabled()

    # A batch that fails leaves the collector as it found it; a collector someone turned off stays off.
    def boom(self: apply_module.Applier) -> tuple[apply_module.ApplyResult, bool]:
        raise RuntimeError("crash")

    monkeypatch.setattr(apply_module.Applier, "_run_batch", boom)
    with pytest.raises(RuntimeError):
        apply_module.Applier(config, storage=lake.storage).run_once()
    assert gc.isenabled()
    gc.disable()
    try:
        monkeypatch.setattr(apply_module.Applier, "_run_batch", spy)
        apply_module.Applier(config, storage=lake.storage).run_once()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_overlapping_batches_resume_the_collector_only_when_the_last_ends() -> None:
    from ddblake.lake.batch import collector_paused

    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():  # another thread's batch, say
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_the_batch_events_are_freed_before_the_touched_files_are_rewritten(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ddblake.changes.model import ChangeEvent

    lake.write([event("INSERT", f"k{i}", i, image={"v": _s("x" * 100)}) for i in range(200)])
    lake.write([event("MODIFY", f"k{i}", 500 + i, image={"v": _s("y")}) for i in range(0, 200, 2)])
    alive: list[int] = []
    real = apply_module.rewrite_buckets

    def spy(*args: Any, **kwargs: Any) -> Any:
        alive.append(sum(isinstance(o, ChangeEvent) and o.table == TABLE for o in gc.get_objects()))
        return real(*args, **kwargs)

    monkeypatch.setattr(apply_module, "rewrite_buckets", spy)
    config = apply_module.ApplyConfig.build(table=TABLE, lake=lake.config, once=True)
    result = apply_module.Applier(config, storage=lake.storage).run_once()
    assert (result.events, result.upserts) == (300, 200)
    assert alive == [0]  # the typed rows are all the rewrite needs
    assert lake.dump()["k0"]["v"] == {"S": "y"}


def test_arrow_memory_freed_by_each_batch_goes_back_to_the_system(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    for f in range(3):
        lake.write([event("INSERT", f"k{f}", f, image={"v": _s("x")})])
    steps: list[str] = []
    monkeypatch.setattr(apply_module, "release_arrow_memory", lambda: steps.append("release"))
    for name in ("_commit_history", "_commit_current"):
        real = getattr(apply_module.Applier, name)

        def spy(self: Any, *args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            steps.append(_name)
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(apply_module.Applier, name, spy)
    config = apply_module.ApplyConfig.build(table=TABLE, lake=lake.config, once=True, max_files=1)
    assert apply_module.Applier(config, storage=lake.storage).run_once().files == 3
    # Between the two commits (the history's rows freed before the current state's are typed)
    # and after each of the three one-file batches.
    assert steps == ["_commit_history", "release", "_commit_current", "release"] * 3
    from ddblake.lake.batch import release_arrow_memory

    release_arrow_memory()  # the real one runs (pyarrow's pool has release_unused)


def test_key_attributes_named_like_a_fixed_column_and_its_prefixed_form_get_a_column_each(lake: Lake) -> None:
    # Keys "op" (a fixed history column, so "key_op") and "key_op" used to share one column, and
    # every apply of the table failed on its length.
    keys = {"op": {"S": "o1"}, "key_op": {"S": "k1"}}
    ev = dataclasses.replace(event("INSERT", "x", 1), keys=keys, new_image={**keys, "v": {"N": "1"}})
    lake.write([ev])
    lake.apply()
    (row,) = lake.history()
    assert (row["op"], row["key_op"], row["key_key_op"]) == ("INSERT", "o1", "k1")
