"""The settings file (``--config`` / ``DDBLAKE_CONFIG``): argument, environment, the table's
section, the file's top level, default; every mistake in it named with the file and the key."""

from __future__ import annotations

import ast
import logging
import os
import re
from pathlib import Path

import pytest
from lake_helpers import TABLE, Lake, event

from ddblake import settings
from ddblake.cli.main import main
from ddblake.configfile import KEYS, SHARED_KEYS, read_settings_file
from ddblake.errors import ConfigError
from ddblake.lake.catalog import LakeConfig
from ddblake.lake.options import ApplyConfig
from ddblake.load.config import LoadConfig

SRC = Path(__file__).resolve().parents[2] / "src" / "ddblake"
ROLE_A = "arn:aws:iam::111111111111:role/read-a"
ROLE_B = "arn:aws:iam::222222222222:role/read-b"


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("DDBLAKE_"):
            monkeypatch.delenv(name)


def _file(tmp_path: Path, text: str, name: str = "ddblake.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_file_fills_in_below_arguments_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _file(
        tmp_path,
        f"""
lake = "{tmp_path / "lake"}"
namespace = "from_file"
segments = 8
consistent = true
assume_role = "{ROLE_A}"

[tables."{TABLE}"]
segments = 12
read_percent = 25.5

[tables."other-table"]
assume_role = "{ROLE_B}"
""",
    )
    with settings.using_file(read_settings_file(path), TABLE):
        load = LoadConfig.build(table=TABLE)
        assert (load.lake, load.segments, load.read_percent, load.consistent) == (
            str(tmp_path / "lake"),
            12,  # the table's section wins over the top level
            25.5,
            True,
        )
        assert load.assume_role == ROLE_A, "another table's section does not apply"
        assert LakeConfig.build(lake=None).namespace == "from_file"
        monkeypatch.setenv("DDBLAKE_SEGMENTS", "3")
        assert LoadConfig.build(table=TABLE).segments == 3, "the environment wins over the file"
        assert LoadConfig.build(table=TABLE, segments=5).segments == 5, "an argument wins over both"
    with settings.using_file(read_settings_file(path), "other-table"):
        assert LoadConfig.build(table="other-table").assume_role == ROLE_B
    monkeypatch.delenv("DDBLAKE_SEGMENTS")
    assert settings.settings_file() is None  # only inside the block
    with pytest.raises(ConfigError, match="missing lake"):
        LoadConfig.build(table=TABLE)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('lak = "/x"', r"unknown setting 'lak' \(did you mean 'lake'\?\)"),
        (
            '[tables."orders-table"]\nlake = "/x"',
            r'\[tables\."orders-table"\] lake: a table\'s section cannot set lake',
        ),
        ("tables = 3", r'tables must be sections \[tables\."<table>"\]'),
        ("segments = [1, 2]", "segments must be a string, a number or true/false, not a list"),
        ("lake = ", "is not valid TOML"),
    ],
)
def test_a_mistake_in_the_file_names_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = _file(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as raised:
        read_settings_file(path)
    assert str(path) in str(raised.value)


def test_a_value_that_does_not_convert_and_a_missing_one_name_the_file(tmp_path: Path) -> None:
    path = _file(tmp_path, f'lake = "{tmp_path}"\n[tables."{TABLE}"]\nsegments = "many"\n')
    with settings.using_file(read_settings_file(path), TABLE):
        with pytest.raises(ConfigError) as raised:
            LoadConfig.build(table=TABLE)
        assert str(raised.value) == (
            f"segments: 'many' (segments in [tables.\"{TABLE}\"] of {path}) is not valid "
            "(not a whole number); correct it there, or pass --segments "
            "or set DDBLAKE_SEGMENTS"
        )
        with pytest.raises(ConfigError) as missing:
            LoadConfig.build(lake=str(tmp_path))
        assert str(missing.value) == (
            f"missing table: pass --table, set DDBLAKE_TABLE or add table to {path} (looked at all three)"
        )
        with pytest.raises(
            ConfigError, match=rf"--poll-seconds \(or DDBLAKE_POLL_SECONDS or poll_seconds in {path}\)"
        ):
            ApplyConfig.build(table=TABLE, lake=LakeConfig.build(lake=None), poll_seconds=float("inf"))


def test_the_command_line_reads_the_file_from_config_or_the_environment(
    lake: Lake, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    lake.write([event("INSERT", "a", 1, image={"n": {"N": "1"}})])
    path = _file(tmp_path, f'lake = "{lake.root}"\ntable = "{TABLE}"\nlog_level = "warning"\n')

    assert main(["--config", str(path), "apply", "--once"]) == 0  # lake and table from the file
    assert capsys.readouterr().err == "", "log_level from the file: a good run says nothing"
    assert main(["dump", "--config", str(path)]) == 0  # --config after the command too
    assert capsys.readouterr().out == '{"Item":{"pk":{"S":"a"},"n":{"N":"1"}}}\n'
    monkeypatch.setenv("DDBLAKE_CONFIG", str(path))
    assert main(["status", "--format", "json"]) == 0
    assert f'"{TABLE}"' in capsys.readouterr().out

    monkeypatch.setenv("DDBLAKE_CONFIG", str(tmp_path / "nope.toml"))
    assert main(["status"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"ddblake: error: settings file {tmp_path / 'nope.toml'} does not exist; "
        "check --config (or DDBLAKE_CONFIG)"
    )
    bad = _file(tmp_path, 'lake = "/x"\nnamspace = "n"\n', "bad.toml")
    assert main(["--config", str(bad), "status"]) == 2
    assert "unknown setting 'namspace' (did you mean 'namespace'?)" in capsys.readouterr().err


def _setting_names_in_code() -> set[str]:
    """Every setting name the code looks up: settings.optional/value/required/sourced/... calls."""
    readers = {"optional", "value", "required", "sourced", "places", "elsewhere", "_optional", "_value"}
    readers |= {"_required", "_sourced", "required_sourced", "_checked_value"}
    names: set[str] = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            first = node.args[0]
            if called in readers and isinstance(first, ast.Constant) and isinstance(first.value, str):
                names.add(first.value)
    return names


def test_the_file_takes_every_setting_the_code_reads_and_no_other() -> None:
    in_code = _setting_names_in_code()
    assert in_code == KEYS, (
        f"not in the file: {sorted(in_code - KEYS)}; read by nothing: {sorted(KEYS - in_code)}"
    )
    variables = {
        m.lower().removeprefix("ddblake_")
        for path in SRC.rglob("*.py")
        for m in re.findall(r"DDBLAKE_[A-Z_]+", path.read_text())
    }
    environment_only = {
        "config",
        "dynamodb_local_jar",
        "dynamodb_local_java_opts",
        "state_dir",
        "local_startup_seconds",
    }
    assert variables - environment_only <= KEYS, "a variable the file cannot give"
    assert SHARED_KEYS <= KEYS


def test_the_docs_list_every_setting_the_file_takes() -> None:
    doc = (SRC.parents[1] / "docs" / "settings.md").read_text()
    listed = set(re.findall(r"^\| `([a-z_]+)` \|", doc, flags=re.MULTILINE))
    assert listed == KEYS


def test_an_empty_variable_turns_off_what_the_file_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _file(
        tmp_path,
        f'lake = "{tmp_path}"\n[tables."{TABLE}"]\nassume_role = "{ROLE_A}"\nfrom_export = "./exp"\n',
    )
    with settings.using_file(read_settings_file(path), TABLE):
        assert LoadConfig.build(table=TABLE).assume_role == ROLE_A
        assert LoadConfig.build(table=TABLE).kind == "export"
        # a re-bootstrap reloads with a Scan whatever export the file names for a first load
        assert LoadConfig.build(table=TABLE, scan=True).kind == "scan"
        monkeypatch.setenv("DDBLAKE_ASSUME_ROLE", "")
        assert LoadConfig.build(table=TABLE).assume_role is None


def test_a_section_no_table_can_have_is_refused_and_a_near_miss_is_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = _file(tmp_path, '[tables."orders table"]\nsegments = 2\n', "bad.toml")
    with pytest.raises(
        ConfigError,
        match=r"table 'orders table' \(from \[tables\.\"orders table\"\] of .*is not a DynamoDB table name",
    ):
        read_settings_file(bad)
    near = _file(tmp_path, f'lake = "{tmp_path}"\n[tables."ordres-table"]\nsegments = 2\n', "near.toml")
    assert main(["--config", str(near), "dump", "--table", TABLE]) == 1  # nothing applied: no table
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any('but there is [tables."ordres-table"]' in w for w in warned), warned


def test_demo_and_local_read_no_settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ddblake.cli.main import build_parser
    from ddblake.cli.settingsfile import settings_file

    path = _file(tmp_path, f'table = "{TABLE}"\nassume_role = "{ROLE_A}"\n')
    monkeypatch.setenv("DDBLAKE_CONFIG", str(path))
    parser = build_parser()
    assert settings_file(parser.parse_args(["demo"])) is None
    assert settings_file(parser.parse_args(["local", "stop"])) is None
    assert settings_file(parser.parse_args(["status", "--lake", str(tmp_path)])) is not None
    assert main(["demo", "--config", str(path)]) == 2  # not offered where it would be ignored
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("DDBLAKE_CONFIG", "~/ddblake.toml")  # quoted: no shell expanded it
    found = settings_file(parser.parse_args(["status"]))
    assert found is not None and found.path == path
