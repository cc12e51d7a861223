"""The command line's argument and environment checks: one line, exit 2 (or 1), never a traceback.

These run :func:`ddblake.cli.main.main` in-process on cases that fail before any process or AWS
call starts; the process behaviour (signals, JVMs) is in tests/functional/test_cli_robustness.py.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

import boto3
import pytest

from ddblake.aws.clients import build_dynamodb_clients
from ddblake.cli.args import log_level, percent, port_number, positive_int
from ddblake.cli.main import build_parser, main
from ddblake.errors import ConfigError, TerminalError


@pytest.fixture(autouse=True)
def _own_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB Local's state of this test alone (tests/conftest.py clears DDBLAKE_* and AWS_*)."""
    monkeypatch.setenv("DDBLAKE_STATE_DIR", str(tmp_path / "state"))


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err
    return code, err


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr: {err!r}"
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("text", ["70000", "-1", "0", "65536", "abc"])
def test_port_outside_1_to_65535_is_a_usage_error(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(capsys, "local", "start", f"--port={text}")
    assert code == 2
    line = _one_line(err)
    assert "--port" in line and "1-65535" in line and text in line


def test_port_number_accepts_the_range() -> None:
    assert port_number("1") == 1 and port_number("65535") == 65535
    with pytest.raises(argparse.ArgumentTypeError):
        port_number("65536")


def test_in_memory_with_a_data_dir_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _run(capsys, "local", "start", "--in-memory", "--data-dir", str(tmp_path / "d"))
    assert code == 2
    line = _one_line(err)
    assert "--data-dir" in line and "--in-memory" in line
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize(
    ("option", "value"), [("--segments", "abc"), ("--workers", "0"), ("--read-percent", "x")]
)
def test_load_numbers_name_the_option_and_the_rule(
    option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _run(capsys, "load", "--table", "tbl", "--lake", "/nowhere", option, value)
    assert code == 2
    line = _one_line(err)
    assert option in line and value in line
    assert "_positive_int" not in line and "_percent" not in line


def test_positive_int_and_percent() -> None:
    assert positive_int("3") == 3 and percent("150") == 150.0
    for bad in ("0", "-2", "1.5", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="at least 1"):
            positive_int(bad)


def test_bad_log_level_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DDBLAKE_LOG_LEVEL", "bogus")
    code, err = _run(capsys, "local", "stop")
    assert code == 2
    line = _one_line(err)
    assert "DDBLAKE_LOG_LEVEL" in line and "bogus" in line


def test_log_level_any_case() -> None:
    assert log_level("debug") == logging.DEBUG
    assert log_level(None) == log_level("") == logging.INFO
    with pytest.raises(ConfigError):
        log_level("loud")


def test_unusable_state_dir_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DDBLAKE_STATE_DIR", "/proc/nope")
    code, err = _run(capsys, "local", "stop")
    assert code == 2
    line = _one_line(err)
    assert "/proc/nope" in line and "DDBLAKE_STATE_DIR" in line


def test_unusable_data_dir_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(capsys, "local", "start", "--data-dir", "/proc/nope/x")
    assert code == 2
    line = _one_line(err)
    assert "/proc/nope/x" in line and "--data-dir" in line


def test_lake_that_is_a_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    for lake in (afile, afile / "sub"):
        code, err = _run(capsys, "status", "--lake", str(lake))
        assert code == 2
        assert str(lake) in _one_line(err)
        code, err = _run(capsys, "apply", "--table", "tbl", "--once", "--lake", str(lake))
        assert code == 2
        assert f"{afile} is a file, not a directory" in _one_line(err)  # names the file in the way


def test_other_os_errors_are_one_line_naming_the_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(capsys, "apply", "--table", "tbl", "--lake", "/proc/nope", "--once")
    assert code == 2  # apply creates no lake: refused before anything tries to write there
    line = _one_line(err)
    assert "no lake at /proc/nope" in line


def test_demo_refuses_a_lake_an_earlier_demo_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = tmp_path / "lake"
    (lake / "raw").mkdir(parents=True)
    code, err = _run(capsys, "demo", "--lake", str(lake))
    assert code == 2
    line = _one_line(err)
    assert str(lake) in line and "empty" in line


class _Result:
    quarantined = 0

    def summary(self) -> str:
        return "done"


@pytest.fixture
def sync_configs(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Replace run_sync: record the SyncConfig the command built."""
    import ddblake.sync

    seen: list[Any] = []

    def fake(config: Any) -> _Result:
        seen.append(config)
        return _Result()

    monkeypatch.setattr(ddblake.sync, "run_sync", fake)
    return seen


def _sync(capsys: pytest.CaptureFixture[str], tmp_path: Path, *extra: str) -> tuple[int, str]:
    return _run(capsys, "sync", "--table", "tbl", "--lake", str(tmp_path / "lake"), "--no-load", *extra)


def test_sync_poll_and_buffer_precedence(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sync_configs: list[Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _sync(capsys, tmp_path)[0] == 0  # defaults of sync
    config = sync_configs.pop()
    assert (config.capture.poll_seconds, config.capture.buffer_seconds, config.apply.poll_seconds) == (
        0.2,
        0.2,
        1.0,
    )

    monkeypatch.setenv("DDBLAKE_POLL_SECONDS", "3")
    monkeypatch.setenv("DDBLAKE_BUFFER_SECONDS", "4")
    assert _sync(capsys, tmp_path)[0] == 0  # environment over defaults
    config = sync_configs.pop()
    assert (config.capture.poll_seconds, config.capture.buffer_seconds, config.apply.poll_seconds) == (
        3.0,
        4.0,
        3.0,
    )

    assert (
        _sync(capsys, tmp_path, "--poll-seconds", "0.5", "--buffer-seconds", "0.7")[0] == 0
    )  # argument first
    config = sync_configs.pop()
    assert (config.capture.poll_seconds, config.capture.buffer_seconds, config.apply.poll_seconds) == (
        0.5,
        0.7,
        0.5,
    )


def test_sync_first_load_takes_the_load_source_and_scan_options(
    tmp_path: Path, sync_configs: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    lake = str(tmp_path / "lake")
    folder = str(tmp_path / "export")
    argv = ("sync", "--table", "tbl", "--lake", lake, "--once")
    assert _run(capsys, *argv, "--from-export", folder)[0] == 0
    load = sync_configs.pop().load
    assert (load.kind, load.from_export) == ("export", folder)
    assert _run(capsys, *argv, "--export-to", "s3://b/p")[0] == 0
    load = sync_configs.pop().load
    assert (load.kind, load.export_to) == ("export-to", "s3://b/p")
    assert _run(capsys, *argv, "--segments", "4", "--read-percent", "20")[0] == 0
    load = sync_configs.pop().load
    assert (load.kind, load.segments, load.read_percent) == ("scan", 4, 20.0)
    code, err = _run(capsys, *argv, "--export-to", "s3://b/p", "--segments", "4")
    assert code == 2 and "--segments set the Scan of table 'tbl'" in _one_line(err) and not sync_configs

    code, err = _run(capsys, *argv, "--from-export", folder, "--export-to", "s3://b/p")
    assert code == 2 and "not allowed with" in err and not sync_configs
    code, err = _run(capsys, *argv, "--rebootstrap", "--from-export", folder)
    assert code == 2 and "reloads the table with a Scan" in _one_line(err) and not sync_configs


@pytest.mark.parametrize(
    "extra", [["--from-export", "/x"], ["--export-to", "s3://b/p"], ["--segments", "4"], ["--rebootstrap"]]
)
def test_sync_no_load_refuses_load_options_it_would_ignore(
    extra: list[str], tmp_path: Path, sync_configs: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _sync(capsys, tmp_path, "--no-load", *extra)
    assert code == 2 and not sync_configs
    assert f"drop {extra[0]} or --no-load" in _one_line(err)


def test_a_rebootstrap_refuses_an_export_named_as_its_load(tmp_path: Path) -> None:
    from ddblake.lake.catalog import LakeConfig
    from ddblake.load import LoadConfig
    from ddblake.rebootstrap import marker_path, rebootstrap

    lake = str(tmp_path / "lake")
    load = LoadConfig.build(table="tbl", lake=lake, from_export=str(tmp_path / "export"))
    with pytest.raises(TerminalError, match=r"'tbl' reloads it with a Scan.*DDBLAKE_FROM_EXPORT"):
        rebootstrap("tbl", LakeConfig.build(lake=lake), load_config=load)
    assert not (tmp_path / "lake" / marker_path("tbl")).exists()  # refused before it began


def test_sync_poll_seconds_zero_is_refused_not_replaced(
    tmp_path: Path, sync_configs: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _sync(capsys, tmp_path, "--poll-seconds", "0")
    assert code == 2 and not sync_configs
    assert "--poll-seconds" in _one_line(err) and "DDBLAKE_POLL_SECONDS" in _one_line(err)


def test_sync_bad_environment_value_is_a_usage_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sync_configs: list[Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DDBLAKE_POLL_SECONDS", "soon")
    code, err = _sync(capsys, tmp_path)
    assert code == 2 and not sync_configs
    assert "DDBLAKE_POLL_SECONDS" in _one_line(err)


def test_clients_use_aws_region_when_botocore_does_not(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    assert boto3.session.Session().region_name is None  # botocore reads AWS_DEFAULT_REGION only
    clients = build_dynamodb_clients()
    assert clients.dynamodb.meta.region_name == "eu-west-3"
    assert clients.streams.meta.region_name == "eu-west-3"
    local = build_dynamodb_clients("http://127.0.0.1:1")
    assert local.dynamodb.meta.region_name == "eu-west-3"


def test_clients_prefer_aws_default_region_and_explain_a_missing_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    assert build_dynamodb_clients().dynamodb.meta.region_name == "ap-south-1"
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION")
    with pytest.raises(ConfigError, match="AWS_REGION or AWS_DEFAULT_REGION"):
        build_dynamodb_clients()


def test_apply_takes_once_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import ddblake.lake.service

    seen: list[Any] = []

    def fake(config: Any, progress: Any = None) -> _Result:
        seen.append(config)
        return _Result()

    monkeypatch.setattr(ddblake.lake.service, "run_apply", fake)
    (tmp_path / "lake").mkdir()
    argv = ("apply", "--table", "tbl", "--lake", str(tmp_path / "lake"))
    assert _run(capsys, *argv)[0] == 0
    assert seen.pop().once is False  # default: keep polling
    monkeypatch.setenv("DDBLAKE_ONCE", "1")
    assert _run(capsys, *argv)[0] == 0
    assert seen.pop().once is True


def test_verbose_logs_ddblake_only_never_botocore_wire_data(tmp_path: Path) -> None:
    # botocore's DEBUG lines carry request bodies (key values), response bodies (item images,
    # AssumeRole credentials) and headers (session tokens): -v must not turn them on.
    import subprocess
    import sys

    probe = (
        "import logging, sys\n"
        "from ddblake.cli.main import main\n"
        "code = main(sys.argv[1:])\n"
        "print(code, *(logging.getLogger(n).isEnabledFor(logging.DEBUG) "
        "for n in ('ddblake.capture', 'botocore.endpoint', 'urllib3', 'pyiceberg')))\n"
    )
    lake = str(tmp_path / "lake")
    (tmp_path / "lake").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DDBLAKE_")}
    for argv, expected in (
        (["-v", "status", "--lake", lake], "0 True False False False"),
        (["status", "--lake", lake], "0 False False False False"),
    ):
        done = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
            [sys.executable, "-c", probe, *argv], capture_output=True, text=True, env=env, check=False
        )
        assert done.stdout.strip().splitlines()[-1] == expected, done.stderr


def test_a_damaged_sqlite_catalog_is_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = tmp_path / "lake"
    lake.mkdir()
    (lake / "catalog.db").write_bytes(b"not a database, whatever it once was " * 4)
    code, err = _run(capsys, "status", "--lake", str(lake))
    line = _one_line(err)
    assert code == 1 and "catalog.db" in line and "restore it from a backup" in line


def test_a_glue_catalog_without_credentials_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The region comes from AWS_REGION alone (botocore ignores it): the error is about credentials.
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    code, err = _run(capsys, "status", "--lake", "s3://bucket/lake", "--catalog", "glue")
    line = _one_line(err)
    assert code == 2 and "no AWS credentials" in line and "s3://bucket/lake" in line


@pytest.mark.parametrize("text", ["99999999999999999999", "123456789012345678901234567890"])
def test_as_of_out_of_range_is_a_usage_error(
    text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "lake").mkdir()
    code, err = _run(capsys, "query", "--lake", str(tmp_path / "lake"), "--as-of", text, "select 1")
    assert code == 2 and "--as-of" in _one_line(err)


def test_a_local_lake_needs_no_usable_aws_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    (tmp_path / "lake").mkdir()
    code, err = _run(capsys, "status", "--lake", str(tmp_path / "lake"))
    assert code == 0, err
    code, err = _run(capsys, "status", "--lake", "s3://bucket/lake", "--catalog", "glue")
    assert code == 2 and "no-such-profile" in _one_line(err) and "AWS_PROFILE" in err


def test_reading_commands_refuse_a_lake_that_is_not_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    typo = tmp_path / "typo-lake"
    for argv in (("status",), ("dump", "--table", "tbl"), ("query", "select 1")):
        code, err = _run(capsys, argv[0], "--lake", str(typo), *argv[1:])
        assert code == 2 and f"no lake at {typo}" in _one_line(err)
    assert not typo.exists()  # nothing created


@pytest.mark.parametrize(
    ("sql", "message"), [(" ", "no SQL statement given"), ("-- a comment", "holds no statement")]
)
def test_a_query_without_a_statement_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sql: str, message: str
) -> None:
    (tmp_path / "lake").mkdir()
    code, err = _run(capsys, "query", "--lake", str(tmp_path / "lake"), sql)
    assert code == 2 and message in _one_line(err)


def test_a_query_on_a_missing_table_says_how_tables_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "lake").mkdir()
    code, err = _run(capsys, "query", "--lake", str(tmp_path / "lake"), 'select * from "example-ddb-table"')
    line = _one_line(err)
    assert code == 1 and "this lake's tables: none yet" in line and "_changes" in line


def test_an_unknown_argument_points_at_the_commands_help_and_v_goes_anywhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _run(capsys, "load", "--table", "tbl", "--lake", str(tmp_path / "l"), "--once")
    assert code == 2 and _one_line(err) == (
        "ddblake: error: unrecognized arguments: --once (see 'ddblake load --help')"
    )
    code, err = _run(capsys, "local", "start", "--bogus")
    assert code == 2 and "(see 'ddblake local start --help')" in _one_line(err)
    args = build_parser().parse_args(["status", "-v", "--lake", "x"])
    assert args.verbose is True
    assert build_parser().parse_args(["status", "--lake", "x"]).verbose is False


def test_dump_takes_the_table_from_the_environment_and_names_it_when_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = tmp_path / "lake"
    lake.mkdir()
    code, err = _run(capsys, "dump", "--lake", str(lake))
    assert code == 2 and "missing table: pass --table or set DDBLAKE_TABLE" in _one_line(err)
    flag = _run(capsys, "dump", "--lake", str(lake), "--table", "orders")
    monkeypatch.setenv("DDBLAKE_TABLE", "orders")
    from_env = _run(capsys, "dump", "--lake", str(lake))
    assert from_env == flag and "orders" in _one_line(flag[1])


def test_reading_commands_create_no_catalog_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """query, dump and status only read: a role that may read the Glue Data Catalog but not create
    databases in it can run them, and a database that is not there holds no tables."""
    from ddblake.lake.catalog import LakeConfig, open_catalog
    from ddblake.lake.storage import Storage

    lake = tmp_path / "lake"
    lake.mkdir()
    open_catalog(LakeConfig.build(lake=str(lake)), Storage.from_uri(str(lake)))  # the lake's own 'ddb'
    monkeypatch.setenv("DDBLAKE_NAMESPACE", "analytics")
    code = main(["status", "--lake", str(lake)])
    assert code == 0 and "holds no tables" in capsys.readouterr().out
    assert main(["query", "--lake", str(lake), "--format", "csv", "select 42 as answer"]) == 0
    assert capsys.readouterr().out.split() == ["answer", "42"]
    code, err = _run(capsys, "dump", "--lake", str(lake), "--table", "orders")
    assert code == 1 and "orders" in _one_line(err)
    catalog = open_catalog(LakeConfig.build(lake=str(lake), namespace="ddb"), Storage.from_uri(str(lake)))
    assert catalog.list_namespaces() == [("ddb",)], "no 'analytics' database created"
