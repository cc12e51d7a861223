"""``ddblake reconcile`` never removes an item the load saw (review findings, 2026-12-07).

- A table whose name holds ``-reconcile-``: its load's raw files are not reconcile's own, so the
  "load applied" check still counts them.
- A row of the load that apply set aside (its quarantine): the key looks unseen, but the item
  exists; reconcile leaves it alone, and refuses when a record of the load's time cannot be told
  apart from a load row, or a raw file of that time was moved aside unread.
- A load row reaching the tables after reconcile's ``REMOVE`` wins the tie at the load's version.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
from typing import Any

import lake_helpers
import pytest
from lake_helpers import BASE_US, TABLE, Lake, event

from ddblake.changes.model import ChangeEvent
from ddblake.changes.resolve import version_of
from ddblake.errors import TerminalError
from ddblake.gluejob import job
from ddblake.gluejob import rules as glue_rules
from ddblake.lake.rawlog import quarantine_prefix
from ddblake.load.rows import scan_event_id
from ddblake.reconcile import REMOVE_PREFIX, reconcile, removal_event

HOUR_US = 3_600_000_000
LOAD_START = BASE_US + 2 * HOUR_US
WRITTEN = LOAD_START + 60_000_000


def _loaded(lake: Lake, table: str, rows: list[dict[str, Any]], *, bad: int | None = None) -> list[bytes]:
    """Three items in the lake, then a finished Glue connector load of ``rows`` (row ``bad`` of a
    line format apply cannot read), its raw file written but not applied."""
    lake.write([event("INSERT", f"k{i:03d}", i, image={"n": {"N": str(i)}}) for i in range(3)])
    lake.apply()
    record = job.connector_run(None, None, "jr_reload", LOAD_START)
    rules = glue_rules.Rules(
        table, "jr_reload", ("pk",), glue_rules.version_time_from_us(LOAD_START), export=False
    )
    lines = [glue_rules.row_line(r, rules, WRITTEN) for r in rows]
    if bad is not None:
        broken = json.loads(lines[bad])
        broken["v"] = 2  # a newer ddblake's format: quarantined by apply
        lines[bad] = json.dumps(broken).encode() + b"\n"
    lake.storage.write_atomic(glue_rules.raw_file_key("", table, WRITTEN), glue_rules.gzip_lines(lines))
    record["finished_us"] = WRITTEN + 600_000_000
    lake.storage.write_atomic(job.connector_state_key("", table), json.dumps(record).encode())
    return lines


def _rows(n: int = 3) -> list[dict[str, Any]]:
    return [{"pk": {"S": f"k{i:03d}"}, "n": {"N": str(100 + i)}} for i in range(n)]


def test_a_table_named_with_reconcile_still_waits_for_its_load(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = "orders-reconcile-v2"
    monkeypatch.setattr(lake_helpers, "TABLE", table)
    _loaded(lake, table, _rows())
    with pytest.raises(TerminalError, match="not applied yet"):
        reconcile(table, lake.config)
    assert sorted(lake.dump()) == ["k000", "k001", "k002"]


def test_a_quarantined_load_row_keeps_its_item(lake: Lake) -> None:
    lines = _loaded(lake, TABLE, _rows(), bad=2)
    assert lake.apply().quarantined == 1
    done = reconcile(TABLE, lake.config)
    assert (done.stale, done.held) == (0, 1) and "left alone" in done.summary()
    assert sorted(lake.dump()) == ["k000", "k001", "k002"]
    # The row fixed and put back later applies as the load's newest value.
    fixed = json.loads(lines[2])
    fixed["v"] = 1
    late = glue_rules.raw_file_key("", TABLE, WRITTEN + 2 * HOUR_US)
    lake.storage.write_atomic(late, glue_rules.gzip_lines([json.dumps(fixed).encode() + b"\n"]))
    lake.apply()
    assert lake.dump()["k002"]["n"] == {"N": "102"}


def test_an_unreadable_record_or_file_of_the_loads_time_is_refused(lake: Lake) -> None:
    _loaded(lake, TABLE, _rows())
    lake.apply()
    where = f"{quarantine_prefix(TABLE)}/x.jsonl.gz"
    raw = glue_rules.raw_file_key("", TABLE, WRITTEN)
    garbage = {"table": TABLE, "file": raw, "line": 1, "reason": "not JSON", "raw": "{not json"}
    name = raw.split(f"raw/{TABLE}/", 1)[1]
    lake.storage.write_atomic(
        f"{quarantine_prefix(TABLE)}/{name}.jsonl.gz", gzip.compress(json.dumps(garbage).encode())
    )
    with pytest.raises(TerminalError, match="no key to read"):
        reconcile(TABLE, lake.config)
    lake.storage.delete(f"{quarantine_prefix(TABLE)}/{name}.jsonl.gz")
    # The same record in a file written long before the load is no row of it.
    old = glue_rules.raw_file_key("", TABLE, LOAD_START - 5 * HOUR_US).split(f"raw/{TABLE}/", 1)[1]
    lake.storage.write_atomic(
        f"{quarantine_prefix(TABLE)}/{old}.jsonl.gz", gzip.compress(json.dumps(garbage).encode())
    )
    assert reconcile(TABLE, lake.config).stale == 0
    lake.storage.write_atomic(f"errors/{TABLE}/unreadable/{name}", b"moved aside")
    with pytest.raises(TerminalError, match="moved aside"):
        reconcile(TABLE, lake.config)
    assert where  # the quarantine prefix is the one apply writes to


def test_the_loads_own_row_wins_the_tie_with_the_remove() -> None:
    keys = {"pk": {"S": "k"}}
    version_time = glue_rules.version_time_from_us(LOAD_START)
    remove = removal_event(TABLE, keys, "jr_reload", version_time, prefix=REMOVE_PREFIX)
    row = ChangeEvent(
        op="INSERT",
        table=TABLE,
        keys=keys,
        new_image=keys,
        old_image=None,
        event_id=scan_event_id("jr_reload", keys),
        event_time_us=version_time,
        sequence=None,
        source="scan",
        ttl=False,
        ingested_us=version_time,
    )
    assert version_of(row) > version_of(remove)
    assert remove.event_id.startswith("absent-jr_reload-")


def test_stale_keys_skip_the_loads_own_rows_at_any_time_and_every_row_at_its_instant(lake: Lake) -> None:
    from ddblake.reconcile import stale_keys

    version_time = glue_rules.version_time_from_us(LOAD_START)

    def row(pk: str, offset_us: int, event_id: str) -> ChangeEvent:
        ev = event("INSERT", pk, 0, image={"n": {"N": "1"}}, event_id=event_id)
        return dataclasses.replace(ev, event_time_us=version_time + offset_us)

    lake.write(
        [
            row("own-older", -60_000_000, scan_event_id("jr_reload", {"pk": {"S": "own-older"}})),
            row("other-older", -60_000_000, "stream-1"),
            row(
                "other-load-same-instant",
                0,
                scan_event_id("jr_other", {"pk": {"S": "other-load-same-instant"}}),
            ),
            row("newer", 1_000_000, "stream-2"),
            row("prefix-alike", -60_000_000, scan_event_id("jr_reload-2", {"pk": {"S": "prefix-alike"}})),
        ]
    )
    lake.apply()
    stale = stale_keys(lake.config, lake.storage, TABLE, "jr_reload", version_time)
    assert sorted(json.loads(k)["pk"]["S"] for k in stale) == ["other-older", "prefix-alike"]


def test_a_damaged_quarantine_file_of_the_loads_time_is_one_clear_refusal(lake: Lake) -> None:
    _loaded(lake, TABLE, _rows())
    lake.apply()
    name = glue_rules.raw_file_key("", TABLE, WRITTEN).split(f"raw/{TABLE}/", 1)[1]
    whole = gzip.compress(b'{"raw": "{}"}\n' * 50)
    lake.storage.write_atomic(f"{quarantine_prefix(TABLE)}/{name}.jsonl.gz", whole[: len(whole) // 2])
    with pytest.raises(TerminalError, match="cannot be read .*run reconcile again"):
        reconcile(TABLE, lake.config)
