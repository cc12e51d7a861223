"""What a new user's first mistakes get from the command line: each a line that says what to do.

Found by walking README's "Try it by hand": a mistyped option, a mistyped lake path given to
``apply``, a mistyped table given to ``dump``, a quarantine that did not say where the records went.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from lake_helpers import TABLE, Lake, event

from ddblake.cli.main import main

pytestmark = pytest.mark.e2e


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err.strip()


def test_a_mistyped_option_is_named_with_the_one_it_may_mean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _run(capsys, "query", "--lake", str(tmp_path), "--fromat", "json", "select 1")
    assert code == 2
    assert err == (
        "ddblake: error: unrecognized arguments: --fromat select 1; did you mean --format? "
        "(see 'ddblake query --help')"
    )
    code, err = _run(capsys, "status", "--lake", str(tmp_path), "--zzz")
    assert code == 2 and "did you mean" not in err, "no guess when nothing is close"
    code, err = _run(capsys, "status", "--lake", str(tmp_path), "--table", "t")
    assert code == 2 and "did you mean" not in err, "--table is no typo of --catalog"


def test_sql_not_in_quotes_is_told_to_be_one_argument(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _run(capsys, "query", "--lake", str(tmp_path), "SELECT", "count(*)", "FROM", "t")
    assert code == 2
    assert err == (
        "ddblake: error: unrecognized arguments: count(*) FROM t; the SQL is one argument: put it in "
        "quotes, \"SELECT ...\" (see 'ddblake query --help')"
    )


def test_an_unknown_local_command_names_the_choices(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(capsys, "local", "strt")
    assert code == 2
    assert "argument {start,stop}: invalid choice: 'strt'" in err and "local_command" not in err


def test_apply_on_a_lake_path_that_is_not_there_refuses_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    typo = tmp_path / "lak"
    code, err = _run(capsys, "apply", "--table", TABLE, "--lake", str(typo), "--once")
    assert code == 2
    assert err == (
        f"ddblake: error: no lake at {typo}: check --lake (or DDBLAKE_LAKE); capture, load and sync "
        "create one"
    )
    assert not typo.exists(), "no catalog.db left behind to hide the typo from the next command"


def test_dump_of_a_mistyped_table_lists_the_lakes_tables(
    lake: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    lake.write([event("INSERT", "a", 1)])
    lake.apply()
    code, err = _run(capsys, "dump", "--table", "orders-tabel", "--lake", str(lake.root))
    assert code == 1
    assert "no table ddb.orders_tabel for DynamoDB table 'orders-tabel'" in err
    assert "(its tables: orders_table, orders_table_changes); check --table" in err


def test_apply_says_where_quarantined_records_went(lake: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    lake.write([event("INSERT", "a", 1)], lines=[b'{"not": "a change"}'])
    code, err = _run(capsys, "apply", "--table", TABLE, "--lake", str(lake.root), "--once")
    assert code == 0
    assert err.splitlines()[-1].endswith(
        f"1 quarantined (under errors/{TABLE}/apply/ in the lake, with reasons)"
    )
    assert lake.storage.list_files(f"errors/{TABLE}/apply"), "and they are there"


@pytest.mark.parametrize(
    "argv", [["status"], ["dump", "--table", TABLE], ["apply", "--table", TABLE, "--once"]]
)
def test_a_missing_lake_is_worded_as_every_missing_setting(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """One wording for a setting given neither as an argument nor in the environment, whichever
    command reads it (capture and sync said it one way, the lake commands another)."""
    code, err = _run(capsys, *argv)
    assert code == 2
    assert err == (
        "ddblake: error: missing lake: pass --lake DIR|s3://bucket/prefix or set DDBLAKE_LAKE "
        "(looked at both)"
    )


def test_a_run_at_warning_level_says_nothing_when_all_is_well_and_the_summary_names_the_table(
    lake: Lake,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """cron mails any output: DDBLAKE_LOG_LEVEL=WARNING keeps a good run silent, not a bad one."""
    lake.write([event("INSERT", "a", 1)])
    monkeypatch.setenv("DDBLAKE_LOG_LEVEL", "WARNING")
    code, err = _run(capsys, "apply", "--table", TABLE, "--lake", str(lake.root), "--once")
    assert (code, err) == (0, "")
    lake.write([event("INSERT", "b", 2)], lines=[b"not a raw line\n"])
    code, err = _run(capsys, "apply", "--table", TABLE, "--lake", str(lake.root), "--once")
    assert (code, err) == (0, ""), "the summary is INFO"
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and warned[0].startswith(f"table {TABLE}: 1 record(s) quarantined under ")
    code, err = _run(capsys, "apply", "--table", TABLE, "--lake", str(lake.root / "nope"), "--once")
    assert code == 2 and err.startswith("ddblake: error: no lake at "), "errors are never quiet"

    monkeypatch.delenv("DDBLAKE_LOG_LEVEL")
    lake.write([event("INSERT", "c", 3)])
    code, err = _run(capsys, "apply", "--table", TABLE, "--lake", str(lake.root), "--once")
    assert code == 0 and err.startswith(f"table {TABLE}: applied 1 file(s): 1 event(s)"), err
    assert sorted(lake.dump()) == ["a", "b", "c"]
