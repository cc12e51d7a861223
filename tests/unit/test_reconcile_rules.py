"""The pure rules of ``ddblake reconcile``: its event IDs, which raw files may hold a load's rows,
and which load it picks."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from ddblake.changes.resolve import key_string
from ddblake.errors import TerminalError
from ddblake.gluejob import rules as glue_rules
from ddblake.lake.rawlog import raw_file_path
from ddblake.lake.storage import Storage
from ddblake.load.rows import version_time_from_us
from ddblake.load.state import LoadState, write_state
from ddblake.reconcile import REMOVE_PREFIX, SKEW_US, may_hold_load_rows, pick_load, removal_event

T0 = 1_764_316_800_000_000  # 2025-11-28T08:00:00Z
KEYS = {"pk": {"S": "a"}, "sk": {"N": "1.0"}}


def test_removal_event_ids_are_deterministic_per_load_and_key() -> None:
    digest = hashlib.sha1(key_string(KEYS).encode(), usedforsecurity=False).hexdigest()
    rebootstrap = removal_event("t", KEYS, "L1", 123)  # the re-bootstrap's, unchanged
    assert (rebootstrap.event_id, rebootstrap.source, rebootstrap.op) == (
        f"rebootstrap-L1-{digest}",
        "scan",
        "REMOVE",
    )
    mine = removal_event(
        "t", {"sk": {"N": "1"}, "pk": {"S": "a"}}, "L1", 123, prefix=REMOVE_PREFIX, source="export"
    )
    assert mine.event_id == f"absent-L1-{digest}"  # 1 and 1.0 are one key
    assert (mine.event_time_us, mine.source, mine.new_image, mine.sequence) == (123, "export", None, None)
    again = removal_event("t", KEYS, "L1", 123, prefix=REMOVE_PREFIX)
    assert again.event_id == mine.event_id and again.to_line() != b""


def test_a_raw_file_may_hold_a_loads_rows_when_written_before_it_ended() -> None:
    end = T0 + 30 * 60_000_000
    assert may_hold_load_rows(raw_file_path("t", end - 1), end)
    assert may_hold_load_rows(raw_file_path("t", end + SKEW_US), end)  # a clock a minute off
    assert not may_hold_load_rows(raw_file_path("t", end + SKEW_US + 1), end)
    glue = glue_rules.raw_file_key("", "t", end - 5)  # the Glue job's names
    assert may_hold_load_rows(glue, end) and not may_hold_load_rows(
        glue_rules.raw_file_key("", "t", end + 2 * SKEW_US), end
    )
    assert not may_hold_load_rows(raw_file_path("t", end - 1, unique="reconcile-" + "0" * 32), end)  # ours
    # a name without a time (a redriven file, Firehose's with a custom name): its hour folder decides
    redriven = raw_file_path("t", end - 1, unique="redrive-" + "0" * 32)
    assert may_hold_load_rows(redriven, end)
    later_hour = raw_file_path("t", end + 3_600_000_000, unique="redrive-" + "0" * 32)
    assert not may_hold_load_rows(later_hour, end)
    firehose = "raw/t/2025/11/28/08/ddblake-t-1-2025-11-28-08-10-00-0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f.gz"
    assert may_hold_load_rows(firehose, end) and not may_hold_load_rows(firehose, T0)


def _state(name: str, load_id: str, start: int, finished: int | None, **options: object) -> LoadState:
    return LoadState(
        table="t",
        name=name,
        kind="export" if name.startswith("export") else "scan",
        load_id=load_id,
        started_us=start,
        version_time_us=version_time_from_us(start),
        total_parts=1,
        finished_us=finished,
        options=dict(options),
    )


def test_the_newest_finished_full_load_is_picked_from_both_kinds_of_record(tmp_path: Path) -> None:
    storage = Storage.from_uri(str(tmp_path))
    with pytest.raises(TerminalError, match=r"table 't' in lake .*: no finished full load in the lake;"):
        pick_load(storage, "t")
    write_state(storage, _state("scan-old", "old", T0, T0 + 10))
    write_state(storage, _state("export-e1", "e1", T0 + 100, T0 + 200))
    write_state(storage, _state("export-inc", "inc", T0 + 300, T0 + 400, incremental=True))
    assert pick_load(storage, "t").load_id == "e1"  # an incremental export is no full load
    record = {"load_id": "jr_1", "started_us": T0 + 500, "finished_us": T0 + 900}
    storage.write_atomic("state/load/t/glue-connector.json", json.dumps(record).encode())
    glue = pick_load(storage, "t")
    assert (glue.load_id, glue.kind, glue.source) == ("jr_1", "glue-connector", "scan")
    assert glue.version_time_us == glue_rules.version_time_from_us(T0 + 500)
    assert pick_load(storage, "t", "old").load_id == "old"  # named: any finished full load
    storage.write_atomic("state/load/t/glue-connector.json", b"{damaged")
    assert pick_load(storage, "t").load_id == "e1"
    write_state(storage, _state("scan", "new", T0 + 1000, None))
    with pytest.raises(TerminalError, match=r"scan load new .*unfinished.*--load e1"):
        pick_load(storage, "t")
    assert pick_load(storage, "t", "e1").load_id == "e1"
