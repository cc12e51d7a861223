"""``DDBLAKE_TABLE=`` (set but empty) means no table and hides the settings file's ``table``
(docs/settings.md, "Turning a value off for one run"): the error says so, instead of telling the
operator to add to the file a key it already has, and the file's table section is not applied."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from ddblake.cli.main import main
from ddblake.cli.settingsfile import file_table
from ddblake.configfile import read_settings_file
from ddblake.errors import ConfigError
from ddblake.settings import required_table, using_file


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("DDBLAKE_CONFIG", raising=False)
    monkeypatch.delenv("DDBLAKE_LAKE", raising=False)
    (tmp_path / "lake").mkdir()
    path = tmp_path / "ddblake.toml"
    path.write_text('lake = "./lake"\ntable = "orders"\n\n[tables."orders"]\nsegments = 4\n')
    return path


def test_an_empty_variable_that_hides_the_files_table_is_named(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DDBLAKE_TABLE", "")

    assert main(["--config", str(config), "apply", "--once"]) == 2

    err = capsys.readouterr().err.strip()
    assert err == (
        f"ddblake: error: missing table: DDBLAKE_TABLE is set but empty, which hides table in {config}; "
        "unset it or give a value (or pass --table)"
    )


def test_without_the_file_or_the_key_the_message_is_as_before(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DDBLAKE_TABLE", "  ")
    with pytest.raises(
        ConfigError, match=r"^missing table: pass --table or set DDBLAKE_TABLE \(looked at both\)$"
    ):
        required_table(None)
    config.write_text('lake = "./lake"\n')
    with using_file(read_settings_file(config)), pytest.raises(ConfigError, match="looked at all three"):
        required_table(None)
    monkeypatch.delenv("DDBLAKE_TABLE")
    with using_file(read_settings_file(config)), pytest.raises(ConfigError, match="looked at all three"):
        required_table(None)


@pytest.mark.parametrize(
    ("variable", "argument", "section"),
    [
        (None, None, "orders"),
        ("", None, None),
        (" ", None, None),
        ("", "orders", "orders"),
        ("other", None, "other"),
    ],
)
def test_the_section_that_applies_follows_the_same_rule(
    config: Path,
    monkeypatch: pytest.MonkeyPatch,
    variable: str | None,
    argument: str | None,
    section: str | None,
) -> None:
    if variable is None:
        monkeypatch.delenv("DDBLAKE_TABLE", raising=False)
    else:
        monkeypatch.setenv("DDBLAKE_TABLE", variable)
    file = read_settings_file(config)

    assert file_table(argparse.Namespace(table=argument), file) == section
    with using_file(file, section):
        if section is None:
            with pytest.raises(ConfigError, match="set but empty"):
                required_table(argument)
        else:
            assert required_table(argument) == section
