"""``ddblake reconcile`` through the CLI after a real stream gap on DynamoDB Local: the items the gap
deleted leave the lake, so ``dump`` equals a Scan again; a rerun adds nothing; ``--dry-run`` writes
nothing; and the loads it must not use are refused with one line.

The gap: the table's stream is disabled while items are deleted, changed and created (those changes
reach no stream), then enabled again. The reload is ``ddblake load`` (a Scan) taken "a few minutes
later": its clock is moved three minutes ahead, as if the operator had noticed the gap after a
while, so that its rows' version (``floor(start, 1 min) - 1 min - 1 µs``) lies above the minute
DynamoDB Local stamps the synced changes with. Nothing sleeps.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from workload import dump_to_items, scan_items

from ddblake.aws.clients import DynamoClients
from ddblake.cli.main import main
from ddblake.lake.catalog import LakeConfig, open_catalog
from ddblake.lake.rawlog import list_raw_files
from ddblake.lake.storage import Storage
from ddblake.load.state import LoadState, write_state
from ddblake.names import changes_identifier

pytestmark = pytest.mark.functional

MINUTES_LATER_US = 3 * 60_000_000


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _ok(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[str, str]:
    code, out, err = _cli(capsys, *argv)
    assert code == 0, f"ddblake {argv[0]} exited {code}: {err[-3000:]}"
    return out, err


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ddblake: error: "), err
    return lines[0]


def _item(pk: str, sk: str, n: int) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}, "n": {"N": str(n)}, "tags": {"SS": ["a", f"t{n}"]}}


def _history(lake: str, table: str) -> tuple[list[str], int | None]:
    """The history's event IDs and its snapshot ID."""
    config = LakeConfig.build(lake=lake)
    history = open_catalog(config, config.storage()).load_table(f"ddb.{changes_identifier(table)}")
    snapshot = history.current_snapshot()
    ids = history.scan(selected_fields=("event_id",)).to_arrow().column("event_id").to_pylist()
    return ids, snapshot.snapshot_id if snapshot is not None else None


@pytest.mark.long(20)
def test_after_a_gap_load_apply_and_reconcile_give_dump_equal_to_scan(
    clients: DynamoClients,
    make_table: Callable[..., str],
    table_name: str,
    dynamodb_local_endpoint: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table = make_table(table_name)
    lake = str(tmp_path / "lake")
    ddb = clients.dynamodb
    for i in range(12):
        ddb.put_item(TableName=table, Item=_item(f"p{i % 3}", f"s{i:02d}", i))
    endpoint = ["--endpoint-url", dynamodb_local_endpoint]
    _ok(capsys, "sync", "--table", table, "--lake", lake, *endpoint, "--once")
    for i in range(12, 16):  # through the stream
        ddb.put_item(TableName=table, Item=_item(f"p{i % 3}", f"s{i:02d}", i))
    _ok(capsys, "sync", "--table", table, "--lake", lake, *endpoint, "--once")
    tl = ["--table", table, "--lake", lake]
    assert dump_to_items(_ok(capsys, "dump", *tl)[0].splitlines()) == scan_items(clients, table)

    # The gap: deletes (of loaded and of streamed items), changes and a new item that no stream holds.
    ddb.update_table(TableName=table, StreamSpecification={"StreamEnabled": False})
    gone = [("p0", "s00"), ("p1", "s04"), ("p2", "s08"), ("p1", "s13"), ("p0", "s15")]
    for pk, sk in gone:
        ddb.delete_item(TableName=table, Key={"pk": {"S": pk}, "sk": {"S": sk}})
    ddb.put_item(TableName=table, Item=_item("p1", "s01", 101))
    ddb.put_item(TableName=table, Item=_item("p9", "new", 900))
    spec = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    ddb.update_table(TableName=table, StreamSpecification=spec)

    # The reload, minutes later.
    import ddblake.load.scan as scan_module

    real_now = scan_module.now_us
    monkeypatch.setattr(scan_module, "now_us", lambda: real_now() + MINUTES_LATER_US)
    monkeypatch.setattr(scan_module, "clock_ahead_us", lambda *_: 0)  # later, not a clock ahead of AWS's
    _ok(capsys, "load", *tl, *endpoint)
    monkeypatch.setattr(scan_module, "now_us", real_now)
    storage = Storage.from_uri(lake)
    from ddblake.load.state import last_finished_full_load

    reload = last_finished_full_load(storage, table)
    assert reload is not None

    # Not applied yet: refused, nothing written.
    raw_before = list_raw_files(storage, table)
    code, _, err = _cli(capsys, "reconcile", *tl)
    line = _error_line(err)
    assert code == 1 and "not applied" in line and "apply --table" in line and "--once" in line, line
    assert table in line and lake in line and reload.load_id in line
    assert list_raw_files(storage, table) == raw_before

    _ok(capsys, "apply", *tl, "--once")
    dumped = dump_to_items(_ok(capsys, "dump", *tl)[0].splitlines())
    truth = scan_items(clients, table)
    assert {f"{pk}/{sk}" for pk, sk in gone} <= set(dumped) - set(truth), "the load deletes nothing"
    assert {k: v for k, v in dumped.items() if k in truth} == truth

    # A dry run: the count, no key (keys are item data), nothing written.
    ids_before, snapshot_before = _history(lake, table)
    out, _ = _ok(capsys, "reconcile", *tl, "--dry-run")
    assert "5 item(s)" in out and reload.load_id in out and "nothing written" in out, out
    assert len(out.splitlines()) == 1 and '"sk"' not in out, "a key printed"
    assert list_raw_files(storage, table) == raw_before
    assert _history(lake, table) == (ids_before, snapshot_before)
    out, _ = _ok(capsys, "reconcile", *tl, "--dry-run", "-v")
    keys = [json.loads(x) for x in out.splitlines()[1:]]
    assert sorted((k["pk"]["S"], k["sk"]["S"]) for k in keys) == sorted(gone)
    assert list_raw_files(storage, table) == raw_before

    _, err = _ok(capsys, "reconcile", *tl, "-v")
    assert "5 item(s) the load did not see removed" in err and reload.load_id in err, err
    assert not any(f'"{sk}"' in err for _, sk in gone), "a key in the log"
    assert dump_to_items(_ok(capsys, "dump", *tl)[0].splitlines()) == truth
    ids, _ = _history(lake, table)
    removes = [i for i in ids if i.startswith(f"absent-{reload.load_id}-")]
    assert len(removes) == 5 and len(ids) == len(set(ids)) == len(ids_before) + 5

    # A rerun finds nothing more and adds nothing to the history or the raw log.
    raw_after = list_raw_files(storage, table)
    ids_after, snapshot_after = _history(lake, table)
    _, err = _ok(capsys, "reconcile", *tl, "--load", reload.load_id)
    assert "nothing removed" in err, err
    assert list_raw_files(storage, table) == raw_after
    assert _history(lake, table) == (ids_after, snapshot_after)
    assert dump_to_items(_ok(capsys, "dump", *tl)[0].splitlines()) == truth


@pytest.mark.long(15)
def test_a_crash_after_the_removes_were_written_adds_nothing_twice(
    clients: DynamoClients,
    make_table: Callable[..., str],
    table_name: str,
    dynamodb_local_endpoint: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``--no-apply`` twice (as a run that died after writing its lines, then its rerun): the same
    events twice in the raw log, once in the history."""
    table = make_table(table_name)
    lake = str(tmp_path / "lake")
    ddb = clients.dynamodb
    for i in range(6):
        ddb.put_item(TableName=table, Item=_item("p", f"s{i}", i))
    tl = ["--table", table, "--lake", lake]
    _ok(capsys, "sync", *tl, "--endpoint-url", dynamodb_local_endpoint, "--once")
    for i in (1, 4):
        ddb.delete_item(TableName=table, Key={"pk": {"S": "p"}, "sk": {"S": f"s{i}"}})
    import ddblake.load.scan as scan_module

    real_now = scan_module.now_us
    monkeypatch.setattr(scan_module, "now_us", lambda: real_now() + MINUTES_LATER_US)
    monkeypatch.setattr(scan_module, "clock_ahead_us", lambda *_: 0)  # later, not a clock ahead of AWS's
    _ok(capsys, "load", *tl, "--endpoint-url", dynamodb_local_endpoint)
    monkeypatch.setattr(scan_module, "now_us", real_now)
    _ok(capsys, "apply", *tl, "--once")

    storage = Storage.from_uri(lake)
    before = set(list_raw_files(storage, table))
    _, err = _ok(capsys, "reconcile", *tl, "--no-apply")
    assert "2 REMOVE line(s)" in err and "not applied" in err, err
    _ok(capsys, "reconcile", *tl, "--no-apply")  # the rerun: the rows are still current
    written = set(list_raw_files(storage, table)) - before
    assert len(written) == 2 and all("-reconcile-" in p for p in written)
    _ok(capsys, "apply", *tl, "--once")
    assert dump_to_items(_ok(capsys, "dump", *tl)[0].splitlines()) == scan_items(clients, table)
    ids, _ = _history(lake, table)
    assert len([i for i in ids if i.startswith("absent-")]) == 2 and len(ids) == len(set(ids))
    _, err = _ok(capsys, "reconcile", *tl)
    assert "nothing removed" in err


def _state(table: str, load_id: str, *, finished: bool, incremental: bool = False, at: int = 0) -> LoadState:
    started = 1_764_316_800_000_000 + at
    return LoadState(
        table=table,
        name=f"export-{load_id}" if incremental else "scan",
        kind="export" if incremental else "scan",
        load_id=load_id,
        started_us=started,
        version_time_us=started - 60_000_001,
        total_parts=1,
        finished_us=started + 1_000 if finished else None,
        options={"incremental": True} if incremental else {},
    )


def test_loads_reconcile_must_not_use_are_refused_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = "orders"
    lake = tmp_path / "lake"
    lake.mkdir()
    storage = Storage.from_uri(str(lake))
    tl = ["--table", table, "--lake", str(lake)]

    code, _, err = _cli(capsys, "reconcile", *tl)  # no load at all
    line = _error_line(err)
    assert code == 1 and "no finished full load" in line and "ddblake load" in line and table in line
    assert str(lake) in line

    write_state(storage, _state(table, "scan-1", finished=False))
    code, _, err = _cli(capsys, "reconcile", *tl, "--load", "scan-1")
    line = _error_line(err)
    assert code == 1 and "scan-1" in line and "has not finished" in line and str(lake) in line
    code, _, err = _cli(capsys, "reconcile", *tl)
    assert code == 1 and "no finished full load" in _error_line(err) and "scan-1" in err

    write_state(storage, _state(table, "exp-9", finished=True, incremental=True, at=10))
    code, _, err = _cli(capsys, "reconcile", *tl, "--load", "exp-9")
    line = _error_line(err)
    assert code == 1 and "exp-9" in line and "incremental export" in line and table in line
    code, _, err = _cli(capsys, "reconcile", *tl)  # an incremental export is no full load
    assert code == 1 and "no finished full load" in _error_line(err)

    code, _, err = _cli(capsys, "reconcile", *tl, "--load", "nope")
    line = _error_line(err)
    assert code == 1 and "no load 'nope'" in line and "export-files" in line

    # a finished load, then a newer one that did not finish: the reload is not done yet
    write_state(storage, _state(table, "scan-2", finished=True, at=20))
    storage.write_atomic(
        f"state/load/{table}/glue-connector.json",
        json.dumps(
            {"load_id": "jr_7", "started_us": 1_764_316_800_000_000 + 30, "finished_us": None}
        ).encode(),
    )
    code, _, err = _cli(capsys, "reconcile", *tl)
    line = _error_line(err)
    assert (
        code == 1 and "Glue connector load jr_7" in line and "unfinished" in line and "--load scan-2" in line
    )

    assert main(["reconcile", *tl, "--dry-run", "--no-apply"]) == 2
    assert main(["reconcile", "--table", table, "--lake", str(tmp_path / "typo")]) == 2
    assert not (tmp_path / "typo").exists()
