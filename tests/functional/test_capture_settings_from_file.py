"""A capture or sync value out of range that the settings file gave names that file and key, not a
flag and variable the operator never set (apply's own settings already did: ddblake.lake.options)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ddblake.capture.config import CaptureConfig
from ddblake.cli.main import main
from ddblake.configfile import read_settings_file
from ddblake.errors import ConfigError
from ddblake.settings import using_file

VARIABLES = ("DDBLAKE_BUFFER_BYTES", "DDBLAKE_BUFFER_SECONDS", "DDBLAKE_POLL_SECONDS", "DDBLAKE_TABLE")


@pytest.fixture(autouse=True)
def _no_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*VARIABLES, "DDBLAKE_LAKE", "DDBLAKE_CONFIG"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("line", "said"),
    [
        (
            "buffer_bytes = 0",
            "buffer_bytes in {file} must be positive, got 0; correct it there, or pass "
            "--buffer-bytes or set DDBLAKE_BUFFER_BYTES",
        ),
        ("buffer_seconds = -1", "buffer_seconds in {file} must be positive, got -1.0; correct it there"),
        ('poll_seconds = "nan"', "poll_seconds in {file} must be a finite positive number, got nan"),
    ],
)
def test_a_value_out_of_range_in_the_file_names_the_file(tmp_path: Path, line: str, said: str) -> None:
    path = tmp_path / "ddblake.toml"
    path.write_text(f'table = "orders"\n{line}\n')
    with using_file(read_settings_file(path)), pytest.raises(ConfigError) as caught:
        CaptureConfig.build(lake=str(tmp_path))
    assert said.format(file=path) in str(caught.value)


def test_a_tables_section_is_named_with_its_table(tmp_path: Path) -> None:
    path = tmp_path / "ddblake.toml"
    path.write_text('[tables."orders"]\nbuffer_seconds = 0\n')
    with using_file(read_settings_file(path), "orders"), pytest.raises(ConfigError) as caught:
        CaptureConfig.build(table="orders", lake=str(tmp_path))
    assert f'buffer_seconds in [tables."orders"] of {path} must be positive' in str(caught.value)


def test_the_flag_and_the_variable_are_still_named_for_their_own_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ddblake.toml"
    path.write_text('table = "orders"\nbuffer_seconds = 5\n')
    with using_file(read_settings_file(path)):
        with pytest.raises(ConfigError, match=r"^--buffer-seconds \(or DDBLAKE_BUFFER_SECONDS or "):
            CaptureConfig.build(lake=str(tmp_path), buffer_seconds=0)
        monkeypatch.setenv("DDBLAKE_POLL_SECONDS", "0")
        with pytest.raises(
            ConfigError, match=r"^DDBLAKE_POLL_SECONDS or poll_seconds in .* must be positive"
        ):
            CaptureConfig.build(lake=str(tmp_path))


@pytest.mark.parametrize("command", ["capture", "sync"])
def test_the_commands_name_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str) -> None:
    (tmp_path / "lake").mkdir()
    path = tmp_path / "ddblake.toml"
    path.write_text('lake = "./lake"\ntable = "orders"\nbuffer_seconds = 0\n')
    argv = ["--config", str(path), command, "--once", "--endpoint-url", "http://127.0.0.1:1"]
    if command == "sync":
        argv.append("--no-load")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"buffer_seconds in {path}" in err, err


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("buffer_seconds = 0", "buffer_seconds in {file} must be positive, got 0.0; correct it there"),
        ('poll_seconds = "inf"', "poll_seconds in {file} must be a finite positive number, got inf"),
    ],
)
def test_sync_says_the_value_came_from_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, said: str
) -> None:
    """sync resolves its buffer and poll before building capture's settings: the error still says
    the file gave the value, not that the flag or the variable might have."""
    (tmp_path / "lake").mkdir()
    path = tmp_path / "ddblake.toml"
    path.write_text(f'lake = "./lake"\ntable = "orders"\n{line}\n')
    argv = ["--config", str(path), "sync", "--once", "--no-load", "--endpoint-url", "http://127.0.0.1:1"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert said.format(file=path) in err, err
