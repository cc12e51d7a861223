"""Review 28 of the CLI wrapper and settings: a ``file://`` lake URI with a host, output into a
closed pipe or a full disk without PYTHONUNBUFFERED, a catalog URI's missing driver or missing
SQLite file, a ``~user`` settings file, an endpoint URL the URL parser refuses, maintenance limits
too large for maintenance's milliseconds. Each ends as one line and an exit code, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ddblake.cli.main import main
from ddblake.errors import ConfigError
from ddblake.lake.catalog import LakeConfig
from ddblake.lake.options import ApplyConfig
from ddblake.lake.storage import Storage, local_lake_path

REPO = Path(__file__).resolve().parents[2]


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ddblake: error: "), err
    return lines[0]


# -- 1. file://<host>/... ---------------------------------------------------------------------------


@pytest.mark.parametrize("uri", ["file://mylake", "file://./mylake", "file://host/x/lake"])
def test_a_file_uri_with_a_host_is_refused_not_taken_for_another_folder(uri: str) -> None:
    for call in (local_lake_path, Storage.from_uri):
        with pytest.raises(ConfigError, match=r"file:///absolute/path"):
            call(uri)


def test_a_file_uri_without_host_or_with_localhost_is_a_local_path(tmp_path: Path) -> None:
    assert local_lake_path(f"file://{tmp_path}/lake") == tmp_path / "lake"
    assert local_lake_path(f"file://localhost{tmp_path}/lake") == tmp_path / "lake"
    assert Storage.from_uri(f"file://localhost{tmp_path}/lake").root == f"{tmp_path}/lake"


COMMANDS = [
    ["status"],
    ["query", "select 1"],
    ["dump", "--table", "orders"],
    ["apply", "--table", "orders", "--once"],
    ["capture", "--table", "orders", "--once", "--endpoint-url", "http://127.0.0.1:1"],
    ["load", "--table", "orders", "--endpoint-url", "http://127.0.0.1:1"],
    ["sync", "--table", "orders", "--once", "--endpoint-url", "http://127.0.0.1:1"],
    ["redrive", "--table", "orders"],
    ["reconcile", "--table", "orders"],
]


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: a[0])
def test_every_command_refuses_a_file_uri_with_a_host_and_writes_nothing(
    argv: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    (tmp_path / "mylake").mkdir()
    assert main([argv[0], "--lake", "file://mylake", *argv[1:]]) == 2
    line = _one_line(capsys)
    assert "'file://mylake'" in line and "file:///absolute/path" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mylake"]
    assert list((tmp_path / "mylake").iterdir()) == []


# -- 2. a closed pipe, a full disk, without PYTHONUNBUFFERED ---------------------------------------


def _buffered_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    env.pop("PYTHONIOENCODING", None)
    return env


def _status_into(stdout: int, lake: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ddblake.cli.main", "status", "--lake", str(lake)],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        env=_buffered_env(),
        cwd=REPO,
        timeout=120,
        check=False,
    )


def test_output_into_a_closed_pipe_ends_quietly_without_pythonunbuffered(tmp_path: Path) -> None:
    (tmp_path / "lake" / "raw").mkdir(parents=True)  # a lake with no tables: status prints a line
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first write (| true)
    try:
        done = _status_into(write, tmp_path / "lake")
    finally:
        os.close(write)
    assert done.stderr == ""
    assert done.returncode == 0


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
def test_output_onto_a_full_disk_is_one_line_without_pythonunbuffered(tmp_path: Path) -> None:
    (tmp_path / "lake" / "raw").mkdir(parents=True)
    with Path("/dev/full").open("w") as full:
        done = _status_into(full.fileno(), tmp_path / "lake")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1, done.stderr
    assert len(lines) == 1 and lines[0].startswith("ddblake: error: cannot write the output"), done.stderr


# -- 5b. a reading command and a SQLite catalog file that is not there ------------------------------


@pytest.mark.parametrize("argv", [["query", "select 1"], ["dump", "--table", "orders"]])
def test_a_reading_command_does_not_create_a_missing_sqlite_catalog(
    argv: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "lake" / "raw").mkdir(parents=True)
    typo = tmp_path / "typo-catalog.db"
    monkeypatch.setenv("DDBLAKE_CATALOG_URI", f"sqlite:///{typo}")
    assert main([argv[0], "--lake", str(tmp_path / "lake"), *argv[1:]]) == 2
    line = _one_line(capsys)
    assert "DDBLAKE_CATALOG_URI" in line and str(typo) in line
    assert not typo.exists()


def test_status_reads_a_catalog_apply_has_not_created_yet_as_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A lake captured but never applied shows its backlog, whichever catalog it is set up with."""
    raw = tmp_path / "lake" / "raw" / "orders" / "2024" / "01" / "01" / "00"
    raw.mkdir(parents=True)
    (raw / "orders-20240101T000000Z-a.gz").write_bytes(b"")
    catalog = tmp_path / "catalog.db"
    monkeypatch.setenv("DDBLAKE_CATALOG_URI", f"sqlite:///{catalog}")
    assert main(["status", "--lake", str(tmp_path / "lake"), "--format", "json"]) == 0
    (shown,) = json.loads(capsys.readouterr().out)["tables"]
    assert shown["table"] == "orders" and shown["pending_files"] == 1
    assert not catalog.exists()


# -- 6. a catalog URI whose database driver is not installed ----------------------------------------


@pytest.mark.parametrize(
    "uri", ["postgresql://user:s3cr3tpw@127.0.0.1:1/db", "mysql://user:s3cr3tpw@127.0.0.1:1/db"]
)
def test_a_catalog_uri_without_its_driver_is_one_line_without_the_password(
    uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    driver = "psycopg" if uri.startswith("postgresql") else "MySQLdb"
    if driver == "psycopg" and importlib.util.find_spec("psycopg2") is not None:
        pytest.skip("a PostgreSQL driver is installed")
    if importlib.util.find_spec(driver) is not None:
        pytest.skip(f"{driver} is installed")
    (tmp_path / "lake" / "raw").mkdir(parents=True)
    monkeypatch.setenv("DDBLAKE_CATALOG_URI", uri)
    assert main(["status", "--lake", str(tmp_path / "lake")]) == 2
    line = _one_line(capsys)
    assert "DDBLAKE_CATALOG_URI" in line and "not installed" in line and "s3cr3tpw" not in line


# -- 7. a settings file under ~someone who is no user here ------------------------------------------


def test_a_settings_file_under_an_unknown_user_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "lake").mkdir()
    argv = ["status", "--lake", str(tmp_path / "lake")]
    assert main(["--config", "~nosuchuser_ddblake/lake.toml", *argv]) == 2
    assert "~nosuchuser_ddblake" in _one_line(capsys)
    monkeypatch.setenv("DDBLAKE_CONFIG", "~nosuchuser_ddblake/lake.toml")
    assert main(argv) == 2
    assert "DDBLAKE_CONFIG" in _one_line(capsys)


# -- 9. an endpoint URL the URL parser refuses --------------------------------------------------------


def test_an_endpoint_url_with_a_broken_ipv6_host_is_the_endpoint_one_liner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    argv = ["capture", "--table", "orders", "--lake", str(tmp_path / "lake"), "--once"]
    assert main([*argv, "--endpoint-url", "http://[::1"]) == 2
    line = _one_line(capsys)
    assert "'http://[::1'" in line and "--endpoint-url" in line and "is not a URL" in line


# -- 10. maintenance limits too large for maintenance's milliseconds --------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("KEEP_REPLACED_MINUTES", "1e306"),
        ("KEEP_HOURS", "1e303"),
        ("KEEP_HOURS", "2e6"),
        ("KEEP_SNAPSHOTS", str(10**400)),
        ("COMPACT_FILES", "2000000000"),
    ],
)
def test_a_huge_maintenance_setting_is_refused_naming_where_it_came_from(
    name: str, value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = LakeConfig.build(lake=str(tmp_path / "lake"))
    monkeypatch.setenv(f"DDBLAKE_{name}", value)
    with pytest.raises(ConfigError, match=f"DDBLAKE_{name} must be at most"):
        ApplyConfig.build(table="orders", lake=lake)


def test_large_but_sane_maintenance_settings_still_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = LakeConfig.build(lake=str(tmp_path / "lake"))
    monkeypatch.setenv("DDBLAKE_KEEP_HOURS", "1e6")
    monkeypatch.setenv("DDBLAKE_KEEP_REPLACED_MINUTES", "1e7")
    monkeypatch.setenv("DDBLAKE_KEEP_SNAPSHOTS", "1000000000")
    config = ApplyConfig.build(table="orders", lake=lake)
    assert (config.keep_hours, config.keep_replaced_minutes, config.keep_snapshots) == (1e6, 1e7, 10**9)
