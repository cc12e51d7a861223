"""No item data in apply's and query's logs: bad lines keep their data in errors/, not in the log.

Runs the command line (``-v``: ddblake's loggers at DEBUG) over a lake whose raw file holds good
lines and bad ones carrying a planted secret as a map key, a value and a key value.
"""

from __future__ import annotations

import gzip
import json
import logging
from typing import Any

import pytest
from lake_helpers import TABLE, Lake, event

from ddblake.cli.main import main

PLANTED_KEY = "alice@example.com"
PLANTED = "s3cr3t-value-7731"


def _line(ev_json: dict[str, Any]) -> bytes:
    return json.dumps(ev_json, separators=(",", ":")).encode()


def test_apply_quarantines_bad_lines_and_logs_no_item_data(
    lake: Lake, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    good = event("INSERT", "good", 1, image={"v": {"N": "1"}})
    template = json.loads(event("INSERT", "x", 2).to_line())
    bad_map = {**template, "new": {"pk": {"S": "x"}, "profile": {"M": {PLANTED_KEY: {"N": PLANTED}}}}}
    bad_key = {**template, "keys": {"pk": {"N": PLANTED}}, "new": {"pk": {"N": PLANTED}}}
    bad_op = {**template, "op": PLANTED, "event_id": "e-op"}
    lines = [_line(bad_map), _line(bad_key), _line(bad_op), f'{{"v":1,"op":"INSERT","x":"{PLANTED}'.encode()]
    lake.write([good], lines=lines)
    with caplog.at_level(logging.DEBUG, logger="ddblake"):
        assert main(["-v", "apply", "--table", TABLE, "--lake", str(lake.root), "--once"]) == 0
    printed = capsys.readouterr()
    logged = caplog.text + printed.err + printed.out
    assert "4 quarantined" in printed.err
    assert PLANTED not in logged and PLANTED_KEY not in logged
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    # -v says what each step of the batch did and took: counts and times, still no item data
    assert any(
        m.startswith(f"table {TABLE}: batch of 1 raw file(s) (1 pending): 1 event(s), 4 bad line(s)")
        for m in debug
    ), debug
    assert any(
        m.startswith(f"table {TABLE}: history: 1 new row(s), 0 duplicate(s), committed in") for m in debug
    ), debug
    assert any(
        m.startswith(f"table {TABLE}: current state: 1 upsert(s), 0 delete(s), 0 stale;") for m in debug
    ), debug
    assert set(lake.dump()) == {"good"}

    (error_file,) = [p for p in (lake.root / "errors").rglob("*") if p.is_file()]
    records = [json.loads(line) for line in gzip.decompress(error_file.read_bytes()).splitlines()]
    assert [r["line"] for r in records] == [2, 3, 4, 5]
    assert all(r["reason"] and PLANTED not in r["reason"] and PLANTED_KEY not in r["reason"] for r in records)
    assert records[0]["reason"].startswith("new: ")
    assert all(PLANTED in r["raw"] for r in records)  # the lake keeps the record itself


def test_query_errors_go_to_stderr_only_never_to_the_log(
    lake: Lake, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    lake.write([event("INSERT", "a", 1, image={"email": {"S": PLANTED}})])
    lake.apply()
    sql = "select cast(email as integer) from orders_table"
    with caplog.at_level(logging.DEBUG):
        assert main(["-v", "query", "--lake", str(lake.root), sql]) == 1
    err = capsys.readouterr().err
    # The command's own answer to the person who ran it: DuckDB's reason, values and all (a
    # decision, see ddblake.lake.query._failed), on one line of stderr...
    assert err.startswith("ddblake: error: query failed: Conversion Error")
    assert len(err.strip().splitlines()) == 1
    assert PLANTED in err
    # ...and never a log record.
    assert PLANTED not in caplog.text
    assert not any(PLANTED in str(r.args) for r in caplog.records)
