"""Edges of the settings and their file: malformed URIs, spaces, misspelt and dotted section headers,
section names in other letter case, a file's Scan settings under an export load, and the upper
bounds of ``buckets`` and of every wait (docs/settings.md)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from ddblake import settings
from ddblake.capture.config import CaptureConfig
from ddblake.cli.main import main
from ddblake.cli.settingsfile import section_note, settings_file
from ddblake.configfile import read_settings_file
from ddblake.errors import ConfigError, UsageError
from ddblake.lake.catalog import LakeConfig
from ddblake.lake.options import MAX_BUCKETS, ApplyConfig
from ddblake.load import LoadConfig


@pytest.fixture(autouse=True)
def _own_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB Local's state of this test alone (tests/conftest.py clears DDBLAKE_* and AWS_*)."""
    monkeypatch.setenv("DDBLAKE_STATE_DIR", str(tmp_path / "state"))


def _file(tmp_path: Path, text: str) -> Path:
    conf = tmp_path / "conf"
    conf.mkdir(exist_ok=True)
    path = conf / "lake.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _kw(name: str, value: float) -> dict[str, Any]:
    return {name: value}


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# 1. a value that starts with a URI scheme is a URI, not a folder beside the file


@pytest.mark.parametrize("uri", ["s3:/bucket/x", "s3:bucket/x", "S3:/bucket/x", "gs:/b/x", "file:/tmp/lake"])
def test_a_malformed_uri_in_the_file_is_left_as_it_is(tmp_path: Path, uri: str) -> None:
    file = read_settings_file(_file(tmp_path, f'lake = "{uri}"\nfrom_export = "{uri}"\n'))
    assert file.top["lake"] == uri and file.top["from_export"] == uri


def test_relative_paths_are_still_the_files_folders(tmp_path: Path) -> None:
    file = read_settings_file(_file(tmp_path, 'lake = "lake"\nfrom_export = "./exports/e1"\n'))
    assert file.top["lake"] == str(tmp_path / "conf" / "lake")
    assert file.top["from_export"] == str(tmp_path / "conf" / "exports" / "e1")


def test_a_malformed_lake_uri_from_the_file_is_refused_not_made_a_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _file(tmp_path, 'lake = "s3:/bucket/x"\n')
    monkeypatch.chdir(tmp_path)
    code = main(["--config", str(path), "status"])
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and "'s3:/bucket/x'" in line and "s3://bucket/prefix" in line
    assert not (tmp_path / "conf" / "s3:").exists()


# 3. a section named like the table but in other letter case


@pytest.mark.parametrize(("section", "table"), [("MyTable", "mytable"), ("ABC", "abc"), ("orders", "Orders")])
def test_a_section_differing_only_in_case_is_warned_about(tmp_path: Path, section: str, table: str) -> None:
    file = read_settings_file(_file(tmp_path, f'[tables."{section}"]\nsegments = 4\n'))
    note = section_note(file, table)
    assert note is not None
    assert f'[tables."{section}"]' in note and f"table {table!r}" in note
    assert "case-sensitive" in note and "not applied" in note


def test_no_warning_for_the_tables_own_section_or_an_unrelated_one(tmp_path: Path) -> None:
    file = read_settings_file(_file(tmp_path, '[tables."MyTable"]\nsegments = 4\n'))
    assert section_note(file, "MyTable") is None
    assert section_note(file, "customers") is None


# 4. an export load and the Scan settings of the settings file


_EXAMPLE = """
lake = "./lake"
[tables."orders-table"]
segments = 16
[tables."customers"]
read_percent = 25
consistent = true
"""


@pytest.mark.parametrize("table", ["orders-table", "customers"])
@pytest.mark.parametrize("source", [{"from_export": "/exports/e1"}, {"export_to": "s3://b/exports"}])
def test_an_export_load_ignores_the_files_scan_settings(
    tmp_path: Path, table: str, source: dict[str, Any]
) -> None:
    file = read_settings_file(_file(tmp_path, _EXAMPLE))
    with settings.using_file(file, table):
        config = LoadConfig.build(table=table, **source)
        scan = LoadConfig.build(table=table)
    assert config.kind != "scan"
    assert (config.segments, config.read_percent, config.consistent) == (None, 50.0, False)
    assert (scan.segments or 0, scan.read_percent, scan.consistent) in ((16, 50.0, False), (0, 25.0, True))


def test_an_export_named_by_the_file_ignores_its_scan_settings(tmp_path: Path) -> None:
    file = read_settings_file(_file(tmp_path, 'from_export = "./exports/e1"\n' + _EXAMPLE))
    with settings.using_file(file, "orders-table"):
        config = LoadConfig.build(table="orders-table")
    assert config.kind == "export" and config.segments is None


@pytest.mark.parametrize(
    ("variable", "raw"),
    [("DDBLAKE_SEGMENTS", "8"), ("DDBLAKE_READ_PERCENT", "20"), ("DDBLAKE_CONSISTENT", "true")],
)
def test_an_export_load_refuses_a_scan_variable_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, raw: str
) -> None:
    monkeypatch.setenv(variable, raw)
    file = read_settings_file(_file(tmp_path, _EXAMPLE))
    with (
        settings.using_file(file, "orders-table"),
        pytest.raises(
            ConfigError, match=rf"^{variable} set the Scan of table 'orders-table'.*unset {variable}$"
        ),
    ):
        LoadConfig.build(table="orders-table", from_export="/exports/e1")


def test_an_export_load_names_the_export_setting_it_came_from(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DDBLAKE_EXPORT_TO", "s3://b/exports")
    with pytest.raises(
        ConfigError, match="--segments set the Scan.*but DDBLAKE_EXPORT_TO loads it.*drop --segments"
    ):
        LoadConfig.build(table="tbl", lake="/l", segments=8)


def test_a_variable_set_to_the_scan_default_or_off_is_no_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DDBLAKE_CONSISTENT", "false")
    monkeypatch.setenv("DDBLAKE_READ_PERCENT", "50")
    config = LoadConfig.build(table="tbl", lake="/l", from_export="/exports/e1")
    assert config.kind == "export" and not config.consistent


# 6. buckets has an upper bound


def test_buckets_above_the_maximum_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lake = LakeConfig.build(lake=str(tmp_path / "lake"))
    assert ApplyConfig.build(table="tbl", lake=lake, buckets=MAX_BUCKETS).buckets == MAX_BUCKETS
    with pytest.raises(
        ConfigError, match=r"--buckets \(or DDBLAKE_BUCKETS\) must be at most 65536, got 99999999999"
    ):
        ApplyConfig.build(table="tbl", lake=lake, buckets=99_999_999_999)
    monkeypatch.setenv("DDBLAKE_BUCKETS", str(MAX_BUCKETS + 1))
    with pytest.raises(ConfigError, match="at most 65536, got 65537"):
        ApplyConfig.build(table="tbl", lake=lake)


def test_buckets_past_int32_exits_2_before_a_table_is_made(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = tmp_path / "lake"
    (lake / "raw" / "tbl").mkdir(parents=True)
    code = main(["apply", "--table", "tbl", "--lake", str(lake), "--once", "--buckets", "99999999999"])
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and "--buckets" in line and "65536" in line
    assert not (lake / "warehouse").exists() and not (lake / "catalog.db").exists()


# 7. waits are at most a day


def test_apply_poll_seconds_past_a_day_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lake = LakeConfig.build(lake=str(tmp_path / "lake"))
    assert ApplyConfig.build(table="tbl", lake=lake, poll_seconds=86_400).poll_seconds == 86_400
    with pytest.raises(
        ConfigError, match=r"--poll-seconds .* must be at most 86400 seconds \(a day\), got 1e\+10"
    ):
        ApplyConfig.build(table="tbl", lake=lake, poll_seconds=1e10)
    monkeypatch.setenv("DDBLAKE_POLL_SECONDS", "1e10")
    with pytest.raises(ConfigError, match="DDBLAKE_POLL_SECONDS.*at most 86400"):
        ApplyConfig.build(table="tbl", lake=lake)


@pytest.mark.parametrize(("name", "flag"), [("poll_seconds", None), ("buffer_seconds", "--buffer-seconds")])
def test_capture_waits_past_a_day_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, flag: str | None
) -> None:
    assert getattr(CaptureConfig.build(table="tbl", lake="/l", **_kw(name, 86_400.0)), name) == 86_400.0
    with pytest.raises(ConfigError, match=r"at most 86400 seconds \(a day\), got 1e\+10"):
        CaptureConfig.build(table="tbl", lake="/l", **_kw(name, 1e10))
    monkeypatch.setenv(f"DDBLAKE_{name.upper()}", "1e10")
    with pytest.raises(ConfigError, match=f"DDBLAKE_{name.upper()}.*at most 86400"):
        CaptureConfig.build(table="tbl", lake="/l")
    monkeypatch.delenv(f"DDBLAKE_{name.upper()}")
    file = read_settings_file(_file(tmp_path, f'[tables."tbl"]\n{name} = 1e10\n'))
    with (
        settings.using_file(file, "tbl"),
        pytest.raises(
            ConfigError, match=rf'^{name} in \[tables\."tbl"\] of .*lake\.toml must be at most 86400'
        ),
    ):
        CaptureConfig.build(table="tbl", lake="/l")


def test_export_poll_seconds_past_a_day_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"export_poll_seconds must be at most 86400 seconds \(a day\)"):
        LoadConfig(table="tbl", lake="/l", export_poll_seconds=1e10)
    monkeypatch.setenv("DDBLAKE_EXPORT_POLL_SECONDS", "1e10")
    with pytest.raises(
        ConfigError, match=r"DDBLAKE_EXPORT_POLL_SECONDS='1e10' is not valid \(must be at most 86400"
    ):
        LoadConfig.build(table="tbl", lake="/l")
    monkeypatch.setenv("DDBLAKE_EXPORT_POLL_SECONDS", "86400")
    assert LoadConfig.build(table="tbl", lake="/l").export_poll_seconds == 86_400


# 8. string values of the file are stripped, as a variable's are


def test_string_values_are_stripped_like_a_variables(tmp_path: Path) -> None:
    file = read_settings_file(
        _file(
            tmp_path,
            'lake = "./lake "\ntable = " orders "\n[tables."orders"]\nendpoint_url = " http://x:1 "\n',
        )
    )
    assert file.top["lake"] == str(tmp_path / "conf" / "lake")
    assert file.top["table"] == "orders" and file.tables["orders"]["endpoint_url"] == "http://x:1"


def test_a_stripped_uri_is_the_lake_a_variable_names(tmp_path: Path) -> None:
    file = read_settings_file(_file(tmp_path, 'lake = "  s3://b/p "\n'))
    with settings.using_file(file):
        assert settings.required("lake", "--lake", None) == "s3://b/p"


# 9. misspelt and dotted section headers


@pytest.mark.parametrize(
    "header", ['Tables."orders"', 'tabels."orders"', 'table."orders"', 'TABLES."orders"']
)
def test_a_misspelt_tables_header_is_told_the_one_meant(tmp_path: Path, header: str) -> None:
    path = _file(tmp_path, f'lake = "./lake"\n[{header}]\nsegments = 4\n')
    with pytest.raises(ConfigError, match=r'did you mean \[tables\."orders"\]\?'):
        read_settings_file(path)


def test_a_dotted_table_name_is_told_to_be_quoted(tmp_path: Path) -> None:
    path = _file(tmp_path, 'lake = "./lake"\n[tables.orders.v2]\nsegments = 4\n')
    with pytest.raises(
        ConfigError, match=r'\[tables\.orders\.v2\].*goes in quotes: \[tables\."orders\.v2"\]'
    ):
        read_settings_file(path)
    quoted = read_settings_file(_file(tmp_path, 'lake = "./lake"\n[tables."orders.v2"]\nsegments = 4\n'))
    assert quoted.tables == {"orders.v2": {"segments": "4"}}


def test_a_known_key_given_a_table_value_is_still_a_value_error(tmp_path: Path) -> None:
    path = _file(tmp_path, '[tables."orders"]\nsegments = {a = 1}\n')
    with pytest.raises(ConfigError, match="segments must be a string, a number or true/false, not a dict"):
        read_settings_file(path)


# 10. --config before a command that reads no settings file


def test_config_before_local_stop_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--config", str(tmp_path / "nonexistent.toml"), "local", "stop"])
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and "--config" in line and "reads no settings file" in line
    assert "ddblake local stop" in line


@pytest.mark.parametrize("command", ["demo", "local"])
def test_config_with_a_command_without_settings_is_a_usage_error(command: str) -> None:
    args = argparse.Namespace(command=command, config="/x.toml")
    with pytest.raises(
        UsageError, match=rf"ddblake {command} reads no settings file.*drop --config /x\.toml"
    ):
        settings_file(args)


def test_the_variable_does_not_stop_a_command_without_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DDBLAKE_CONFIG", "/nonexistent.toml")
    assert settings_file(argparse.Namespace(command="local", config=None)) is None
