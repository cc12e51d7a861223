"""``ddblake reconcile`` after a Glue connector load (the AWS path: Kinesis + Firehose capture, the
Glue job reloads): the job's own rows and run record, written to a file lake as its ``_put_files``
writes them to S3 (as tests/lake/test_glue_rerun.py does), then ddblake's apply and reconcile.

Stream changes are synthetic events with the times a Kinesis capture would give them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from lake_helpers import BASE_US, TABLE, Lake, event
from lake_helpers import lake as lake  # noqa: F401  (fixture)

from ddblake.cli.main import main
from ddblake.errors import TerminalError
from ddblake.gluejob import job
from ddblake.gluejob import rules as glue_rules
from ddblake.lake.rawlog import list_raw_files
from ddblake.reconcile import reconcile

HOUR_US = 3_600_000_000
LOAD_START = BASE_US + 2 * HOUR_US  # two hours after the first changes (a gap in between)


def _item(i: int, n: int | None = None) -> dict[str, Any]:
    return {"pk": {"S": f"k{i:03d}"}, "n": {"N": str(i if n is None else n)}}


def _glue_load(lake: Lake, items: dict[int, int], *, finish: bool = True) -> dict[str, Any]:
    """A connector run of the Glue job over ``items`` (pk number -> n), its record in the lake."""
    record = job.connector_run(None, None, "jr_reload", LOAD_START)
    lake.storage.write_atomic(job.connector_state_key("", TABLE), json.dumps(record).encode())
    rules = glue_rules.Rules(
        TABLE, record["load_id"], ("pk",), glue_rules.version_time_from_us(record["started_us"]), export=False
    )
    written = LOAD_START + 60_000_000
    lines = [glue_rules.row_line(_item(i, n), rules, written) for i, n in items.items()]
    for k, batch in enumerate(glue_rules.chunks(lines, max_bytes=300)):
        key = glue_rules.raw_file_key("", TABLE, written + k)
        lake.storage.write_atomic(key, glue_rules.gzip_lines(batch))
    if finish:
        record["finished_us"] = written + 10 * 60_000_000
        lake.storage.write_atomic(job.connector_state_key("", TABLE), json.dumps(record).encode())
    return record


def _stream(lake: Lake, *events: Any) -> None:
    lake.write(events)


def test_after_a_glue_connector_reload_reconcile_removes_what_the_gap_deleted(
    lake: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before the gap: k000..k009 inserted through the stream.
    _stream(lake, *(event("INSERT", f"k{i:03d}", i, image={"n": {"N": str(i)}}) for i in range(10)))
    lake.apply()
    # The gap (nothing reaches the lake): k007, k008, k009 deleted, k001 changed, k010 created.
    # The Glue job reloads: it sees k000..k006 (k001 changed) and k010.
    seen = {**{i: i for i in range(7)}, 1: 100, 10: 10}
    record = _glue_load(lake, seen)
    # After the load's start the stream works again: k008 is created anew.
    after = (LOAD_START - BASE_US) // 1_000_000 + 120
    _stream(lake, event("INSERT", "k008", after, image={"n": {"N": "808"}}))

    tl = ["--table", TABLE, "--lake", str(lake.root)]
    capsys.readouterr()
    assert main(["reconcile", *tl]) == 1  # the load's files are not applied
    err = capsys.readouterr().err
    assert "not applied" in err and "jr_reload" in err and len(err.strip().splitlines()) == 1, err

    lake.apply()
    assert sorted(lake.dump()) == [f"k{i:03d}" for i in range(11)]  # the load deleted nothing
    capsys.readouterr()
    assert main(["reconcile", *tl, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "Glue connector load jr_reload" in out and "2 item(s)" in out, out

    done = reconcile(TABLE, lake.config)
    assert (done.load.load_id, done.load.kind, done.stale) == ("jr_reload", "glue-connector", 2)
    assert done.load.version_time_us == glue_rules.version_time_from_us(record["started_us"])
    items = lake.dump()
    assert sorted(items) == [f"k{i:03d}" for i in (0, 1, 2, 3, 4, 5, 6, 8, 10)]
    assert items["k001"]["n"] == {"N": "100"} and items["k008"]["n"] == {"N": "808"}
    removes = [r for r in lake.history() if r["event_id"].startswith("absent-")]
    assert sorted(r["event_id"].split("-")[1] for r in removes) == ["jr_reload", "jr_reload"]
    assert all(r["op"] == "REMOVE" and r["source"] == "scan" for r in removes)

    # A late stream change older than the load (delivered after the fact) resurrects nothing.
    _stream(lake, event("MODIFY", "k009", 50, image={"n": {"N": "9"}}))
    lake.apply()
    assert "k009" not in lake.dump()
    # The rerun finds nothing.
    files = list_raw_files(lake.storage, TABLE)
    assert reconcile(TABLE, lake.config).stale == 0
    assert list_raw_files(lake.storage, TABLE) == files


def test_a_change_after_the_load_outranks_its_remove_whenever_it_is_applied(lake: Lake) -> None:
    """A key the load did not see, re-created after the load's start in a file apply has not read
    yet (written after the load ended, so not one of the load's): its REMOVE is written, and loses."""
    _stream(lake, *(event("INSERT", f"k{i:03d}", i, image={"n": {"N": str(i)}}) for i in range(3)))
    lake.apply()
    _glue_load(lake, {0: 0, 1: 1})  # k002 deleted in the gap
    lake.apply()
    after = (LOAD_START - BASE_US) // 1_000_000 + 3 * 3600  # an hour after the load ended
    _stream(lake, event("INSERT", "k002", after, image={"n": {"N": "222"}}))
    done = reconcile(TABLE, lake.config)
    assert done.stale == 1 and done.applied is not None
    assert lake.dump()["k002"]["n"] == {"N": "222"}


def test_an_unfinished_glue_connector_load_is_refused(lake: Lake) -> None:
    _stream(lake, event("INSERT", "k000", 0, image={"n": {"N": "0"}}))
    lake.apply()
    _glue_load(lake, {0: 0}, finish=False)
    with pytest.raises(TerminalError, match=r"no finished full load.*Glue connector load jr_reload"):
        reconcile(TABLE, lake.config)
    with pytest.raises(TerminalError, match=r"jr_reload .*has not finished.*glue-connector.json"):
        reconcile(TABLE, lake.config, load_id="jr_reload")


def test_after_a_glue_export_files_reload_reconcile_names_it_by_its_record(
    lake: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    from ddblake.load.state import list_loads

    _stream(lake, *(event("INSERT", f"k{i:03d}", i, image={"n": {"N": str(i)}}) for i in range(5)))
    lake.apply()
    # The gap deleted k003 and k004; an export taken after it holds k000..k002, and the Glue job
    # (--SOURCE export-files) writes its rows, then its record, as job.main does.
    export_id = "01733500000000-abcdef12"
    exported_us = LOAD_START
    seq = f"{exported_us:040d}"
    rules = glue_rules.Rules(
        TABLE, export_id, ("pk",), glue_rules.export_version_from_us(exported_us), seq=seq
    )
    written = LOAD_START + 60_000_000
    lines = [glue_rules.export_line(json.dumps({"Item": _item(i)}), rules, written) for i in range(3)]
    lake.storage.write_atomic(glue_rules.raw_file_key("", TABLE, written), glue_rules.gzip_lines(lines))
    record = job.export_record(rules, LOAD_START + 30_000_000, written + 60_000_000)
    lake.storage.write_atomic(job.export_state_key("", TABLE, export_id), json.dumps(record).encode())
    assert list_loads(lake.storage, TABLE) == []  # the job's record is not a ddblake load state
    lake.apply()

    done = reconcile(TABLE, lake.config)
    assert (done.load.kind, done.load.load_id, done.stale) == ("glue-export", export_id, 2)
    assert sorted(lake.dump()) == ["k000", "k001", "k002"]
    removes = [r for r in lake.history() if r["event_id"].startswith(f"absent-{export_id}-")]
    assert len(removes) == 2 and {r["source"] for r in removes} == {"export"}
    capsys.readouterr()
    assert main(["status", "--lake", str(lake.root), "--format", "json"]) == 0  # the record reads as no load
