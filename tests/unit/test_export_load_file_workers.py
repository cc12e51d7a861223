"""A settings file's ``workers`` is the Scan's threads (up to 256): an export load, whose workers
are processes of some 80 MB each (at most 8 unless asked), does not take it; ``--workers`` and
``DDBLAKE_WORKERS`` still set an export's processes (docs/load.md, docs/settings.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ddblake import settings
from ddblake.configfile import SettingsFile, read_settings_file
from ddblake.errors import ConfigError
from ddblake.load import LoadConfig

_FILE = """
lake = "./lake"
workers = 32
[tables."orders"]
segments = 64
workers = 64
"""
EXPORTS = [{"from_export": "/exports/e1"}, {"export_to": "s3://b/exports"}]


def _file(tmp_path: Path, text: str = _FILE) -> SettingsFile:
    path = tmp_path / "lake.toml"
    path.write_text(text, encoding="utf-8")
    return read_settings_file(path)


@pytest.mark.parametrize("table", ["orders", "customers"])  # the section's, and the top-level key
@pytest.mark.parametrize("source", EXPORTS)
def test_an_export_load_does_not_take_the_files_workers(
    tmp_path: Path, table: str, source: dict[str, Any]
) -> None:
    with settings.using_file(_file(tmp_path), table):
        export = LoadConfig.build(table=table, **source)
        scan = LoadConfig.build(table=table)
    assert export.kind != "scan" and export.workers is None  # the export's own default: per CPU, at most 8
    assert scan.workers == (64 if table == "orders" else 32)


def test_an_export_named_by_the_file_does_not_take_its_workers(tmp_path: Path) -> None:
    with settings.using_file(_file(tmp_path, 'from_export = "./exports/e1"\n' + _FILE), "orders"):
        config = LoadConfig.build(table="orders")
    assert config.kind == "export" and config.workers is None


@pytest.mark.parametrize("source", EXPORTS)
def test_workers_given_for_the_run_still_set_an_exports_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: dict[str, Any]
) -> None:
    with settings.using_file(_file(tmp_path), "orders"):
        assert LoadConfig.build(table="orders", workers=12, **source).workers == 12
        monkeypatch.setenv("DDBLAKE_WORKERS", "3")
        assert LoadConfig.build(table="orders", **source).workers == 3


def test_a_malformed_file_workers_is_still_said_for_an_export_load(tmp_path: Path) -> None:
    with (
        settings.using_file(_file(tmp_path, 'workers = "many"\n'), "orders"),
        pytest.raises(ConfigError, match="^workers: 'many'"),
    ):
        LoadConfig.build(table="orders", lake="/l", from_export="/exports/e1")
