"""What a first-time user meets reading a lake: a wrong namespace, a copied lake, ``--as-of`` out of
the tables' time, ``status`` as text.

Each answer must say what is going on and what to do, rather than look like an empty lake or a
wrong fix.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
from pathlib import Path

import pytest
from lake_helpers import TABLE, Lake, insert

from ddblake.cli.main import main
from ddblake.errors import TerminalError
from ddblake.lake.report import TableStatus, lake_status, status_json, status_text


def _applied(lake: Lake) -> Lake:
    lake.write([insert("a", 1, {"n": {"N": "1"}})])
    lake.apply()
    return lake


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


# -- 1. a wrong namespace is not an empty lake -------------------------------------------------------


def test_query_in_a_namespace_without_tables_names_the_namespace_holding_them(
    lake: Lake, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _applied(lake)
    capsys.readouterr()
    root = str(lake.root)

    sql = "select count(*) from orders_table"
    assert main(["query", "--lake", root, "--namespace", "other", sql]) == 1
    line = _one_line(capsys.readouterr().err)
    assert "namespace 'other' holds no tables" in line
    assert "has tables in: ddb (pass --namespace ddb)" in line
    assert "none yet" not in line and "run ddblake apply" not in line

    monkeypatch.setenv("DDBLAKE_NAMESPACE", "other")  # the variable chose it: say so
    assert main(["query", "--lake", root, sql]) == 1
    assert "(pass --namespace ddb or unset DDBLAKE_NAMESPACE)" in _one_line(capsys.readouterr().err)
    assert main(["dump", "--table", TABLE, "--lake", root]) == 1
    line = _one_line(capsys.readouterr().err)
    assert "namespace 'other' holds no tables" in line and "unset DDBLAKE_NAMESPACE" in line


def test_status_in_a_namespace_without_tables_notes_where_they_are(
    lake: Lake, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    _applied(lake)
    (right,) = lake_status(lake.catalog(), "ddb", lake.storage)
    assert right.note is None and right.pending_files == 0  # no note where the tables are

    with caplog.at_level(logging.WARNING, logger="ddblake"):
        (wrong,) = lake_status(lake.catalog(), "other", lake.storage)
    assert wrong.pending_files == 1  # true of namespace 'other', which the note explains
    assert wrong.note is not None and "namespace 'other' holds no tables" in wrong.note
    assert "tables in: ddb" in wrong.note
    assert any("tables in: ddb" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)

    capsys.readouterr()
    assert main(["status", "--lake", str(lake.root), "--namespace", "other", "--format", "json"]) == 0
    (shown,) = json.loads(capsys.readouterr().out)["tables"]
    assert "--namespace ddb" in shown["note"]


# -- 2. a copied lake: apply says what query says ------------------------------------------------


def test_apply_on_a_copied_lake_gives_querys_advice_not_another_namespace(
    lake: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    _applied(lake)
    copy = lake.root.parent / "copy"
    shutil.copytree(lake.root, copy)
    capsys.readouterr()

    assert main(["apply", "--table", TABLE, "--lake", str(copy), "--once"]) == 1
    applied = _one_line(capsys.readouterr().err)
    assert main(["query", "--lake", str(copy), "select count(*) from orders_table"]) == 1
    queried = _one_line(capsys.readouterr().err)

    assert "--namespace" not in applied
    assert "copied or moved" in applied and "raw/" in applied and lake.storage.uri() in applied
    advice = queried[queried.index(": this lake directory") :]  # the same words, whichever command
    assert applied.endswith(advice)


def test_apply_still_tells_a_shared_catalog_to_use_another_namespace(lake: Lake, tmp_path: Path) -> None:
    """Not a copy: a catalog of its own (DDBLAKE_CATALOG_URI) shared by two lakes."""
    from ddblake.lake.apply import Applier, ApplyConfig
    from ddblake.lake.catalog import LakeConfig
    from ddblake.lake.storage import Storage

    uri = f"sqlite:///{tmp_path / 'shared.db'}"
    for name, refused in (("one", False), ("two", True)):
        config = LakeConfig.build(lake=str(tmp_path / name), catalog_uri=uri)
        storage = Storage.from_uri(config.lake)
        Lake(tmp_path / name).write([insert("a", 1, {})])
        applier = Applier(ApplyConfig.build(table=TABLE, lake=config, once=True), storage=storage)
        if refused:
            with pytest.raises(TerminalError, match="use another --namespace"):
                applier.run_once()
        else:
            applier.run_once()


# -- 3. --as-of before the first commit, or later than now ---------------------------------------


def test_as_of_before_the_first_commit_warns_naming_table_and_first_commit(
    lake: Lake, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    _applied(lake)
    first_ms = min(s.timestamp_ms for s in lake.catalog().load_table("ddb.orders_table").snapshots())
    first = dt.datetime.fromtimestamp(first_ms / 1000, tz=dt.UTC).isoformat()
    root = str(lake.root)
    sql = "select count(*) as n from orders_table"
    capsys.readouterr()

    with caplog.at_level(logging.WARNING, logger="ddblake"):
        assert main(["query", "--lake", root, "--format", "csv", "--as-of", "2020-01-01", sql]) == 0
    assert capsys.readouterr().out == "n\n0\n"  # the answer itself is unchanged
    (note,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "ddb.orders_table" in note and "2020-01-01T00:00:00+00:00" in note
    assert f"first commit ({first})" in note

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ddblake"):
        assert main(["query", "--lake", root, "--format", "csv", "--as-of", "2999-01-01", sql]) == 0
        assert capsys.readouterr().out == "n\n1\n"
        (future,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert "2999-01-01" in future and "later than now" in future

        caplog.clear()
        now = dt.datetime.now(dt.UTC).isoformat()
        assert main(["query", "--lake", root, "--format", "csv", "--as-of", now, sql]) == 0
        assert capsys.readouterr().out == "n\n1\n"
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []  # a time in range: silent


# -- 4. status as text is for people ------------------------------------------------------------------


def test_status_text_shows_none_and_truth_values_as_words_and_json_keeps_its_own() -> None:
    status = TableStatus(
        table=TABLE,
        current_table=None,
        history_table=None,
        last_commit=None,
        rows=0,
        history_rows=0,
        applied_files=0,
        applied_before_hour=None,
        pending_files=1,
        newest_event=None,
        lag_seconds=None,
        apply_lag_seconds=0.0,
        quarantined=0,
        last_load="scan L1 finished",
        load_finished=True,
    )
    text = status_text([status])
    assert "None" not in text and "True" not in text and "False" not in text
    assert "  current_table        -\n" in text and "  load_finished        yes\n" in text
    assert "  rows                 0\n" in text  # a zero is a number, not a missing value
    assert "  load_finished        no\n" in status_text(
        [TableStatus(**{**vars(status), "load_finished": False})]
    )
    (shown,) = json.loads(status_json([status]))["tables"]
    assert shown["current_table"] is None and shown["load_finished"] is True
