"""The settings file: the ``DDBLAKE_*`` settings written down once, for one lake and its tables.

A TOML file, given by ``--config FILE`` or ``DDBLAKE_CONFIG``. Its keys are the settings' names,
the environment variables' without ``DDBLAKE_`` and in lower case (``lake``, ``assume_role``,
``poll_seconds``); a ``[tables."<name>"]`` section holds one DynamoDB table's own values, which win
over the file's top level for that table::

    lake = "s3://analytics-lake/ddb"
    namespace = "ddb"

    [tables."orders-table"]
    assume_role = "arn:aws:iam::111111111111:role/ddblake-read"
    segments = 16

Precedence (:mod:`ddblake.settings`): argument, environment variable, the table's section, the
file's top level, default. A key the file may not hold is refused with the file's name and the
nearest known key, since a misspelt key that is silently ignored is a setting that is not applied.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from ddblake.errors import ConfigError

CONFIG_ENV: Final = "DDBLAKE_CONFIG"
"""The environment variable naming the settings file (``--config`` wins over it)."""

SECTION: Final = "tables"
"""The table of per-table sections: ``[tables."<DynamoDB table name>"]``."""

KEYS: Final = frozenset(
    {
        # the lake and its catalog
        "lake",
        "catalog",
        "catalog_uri",
        "namespace",
        # the source table and how to reach it
        "table",
        "endpoint_url",
        "assume_role",
        "external_id",
        # capture and sync
        "once",
        "poll_seconds",
        "buffer_bytes",
        "buffer_seconds",
        # load
        "segments",
        "workers",
        "read_percent",
        "consistent",
        "keys",
        "from_export",
        "export_to",
        "export_bucket_owner",
        "on_demand_rcu",
        "load_buffer_bytes",
        "export_poll_seconds",
        "page_items",
        # apply and table maintenance
        "buckets",
        "apply_max_files",
        "apply_max_events",
        "apply_max_bytes",
        "keep_hours",
        "keep_snapshots",
        "keep_min_snapshots",
        "compact_files",
        "keep_replaced_minutes",
        # the command line
        "log_level",
    }
)
"""Every setting a file may hold: those with a ``DDBLAKE_*`` variable (tests/lake/test_settings_file.py
holds this list, the settings the code reads and docs/settings.md's table together). DynamoDB
Local's own variables (its jar, Java options, state folder) stay environment-only: they set up a
process, not a lake."""

SHARED_KEYS: Final = frozenset({"table", "lake", "catalog", "catalog_uri", "namespace", "log_level"})
"""Keys a table's section may not hold: which table it is, and what every table of the lake shares
(a command reading several tables, ``query`` and ``status``, has no one table to take them from)."""


PATH_KEYS: Final = frozenset({"lake", "from_export"})
"""Keys that hold a local path or a URI: a relative path is the file's folder's, not the folder a
command happens to run in (as ``lake = "./lake"`` beside the file is meant)."""

_SCHEME: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:")
"""A URI scheme and its colon (``s3:``, ``file:``, ``gs:``): a value starting with one is a URI,
even a malformed one (``s3:/bucket``), and is left for the lake's own checks to refuse rather than
made a folder beside the file. Two letters at least: ``c:`` is no scheme ddblake knows."""


@dataclass(frozen=True)
class SettingsFile:
    """A read and checked settings file: every value as the text an environment variable would hold."""

    path: Path
    top: Mapping[str, str] = field(default_factory=dict)
    tables: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def get(self, name: str, table: str | None) -> tuple[str, str] | None:
        """``(value, where)`` of a setting, the table's section first; None when the file lacks it.

        ``where`` names the key and the file for messages: ``segments in [tables."orders"] of ./x.toml``.
        """
        section = self.tables.get(table) if table is not None else None
        if section is not None and name in section:
            return section[name], f'{name} in [{SECTION}."{table}"] of {self.path}'
        if name in self.top:
            return self.top[name], f"{name} in {self.path}"
        return None


def read_settings_file(path: str | Path) -> SettingsFile:
    """Read and check a settings file.

    Raises:
        ConfigError: the file cannot be read, is not TOML, or holds a key or value it may not;
            names the file, the key and what to write instead.
    """
    try:
        where = Path(path).expanduser()  # "~/lake.toml" quoted in DDBLAKE_CONFIG, which no shell expanded
    except RuntimeError as e:  # ~someone who is not a user here, or no home directory to expand ~ to
        raise ConfigError(
            f"settings file {str(path)!r}: cannot expand {Path(path).parts[0]!r} ({e}); give the file's "
            f"full path in --config (or {CONFIG_ENV})"
        ) from e
    try:
        data = tomllib.loads(where.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"settings file {where} does not exist; check --config (or {CONFIG_ENV})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"settings file {where} cannot be read: {e}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"settings file {where} is not valid TOML: {e}") from e
    top = {k: v for k, v in data.items() if k != SECTION}
    tables = data.get(SECTION, {})
    if not isinstance(tables, dict):
        raise ConfigError(
            f'settings file {where}: {SECTION} must be sections [{SECTION}."<table>"], one per DynamoDB table'
        )
    sections: dict[str, Mapping[str, str]] = {}
    from ddblake.settings import table_name  # settings reads this module's files: imported here

    for name, section in tables.items():
        _dotted_name(name, section, where)
        try:
            table_name(name, f'[{SECTION}."{name}"] of {where}')
        except ConfigError as e:  # a section no table can have would never apply
            raise ConfigError(f"settings file {where}: {e}") from None
        if not isinstance(section, dict):
            raise ConfigError(
                f'settings file {where}: {SECTION}.{name} must be a section [{SECTION}."{name}"] of settings'
            )
        sections[name] = _values(section, where, f'[{SECTION}."{name}"] ', SHARED_KEYS)
    return SettingsFile(where, _values(top, where, "", frozenset()), sections)


def _dotted_name(name: str, section: object, path: Path) -> None:
    """Refuse ``[tables.orders.v2]``: TOML reads a bare dotted name as nested sections, a section
    ``orders`` holding a section ``v2``, where a table named ``orders.v2`` was meant.

    Raises:
        ConfigError: a table's section holds a section; names the table name it was meant as.
    """
    if not isinstance(section, dict):
        return
    parts = [name]
    inner: Mapping[str, object] = section
    # a known key given a TOML table (segments = {...}) is refused as a value, by _text
    while nested := next(((k, v) for k, v in inner.items() if isinstance(v, dict) and k not in KEYS), None):
        parts.append(nested[0])
        inner = nested[1]
    if len(parts) > 1:
        dotted = ".".join(parts)
        raise ConfigError(
            f'settings file {path}: [{SECTION}.{dotted}] is read as sections inside [{SECTION}."{name}"]; '
            f'a table name with a dot goes in quotes: [{SECTION}."{dotted}"]'
        )


def _misplaced_section(key: str, value: object, path: Path) -> None:
    """Refuse a top-level section whose name is close to ``tables`` (``[Tables."orders"]``,
    ``[tabels."orders"]``, ``[table."orders"]``): a table's settings that would never apply.

    Raises:
        ConfigError: names the section and the ``[tables."<name>"]`` header meant.
    """
    if not isinstance(value, dict) or key == SECTION:
        return
    if not difflib.get_close_matches(key.lower(), [SECTION], n=1, cutoff=0.7):
        return
    inner = next(iter(value), None)
    if inner is not None and isinstance(value[inner], dict):
        given, meant = f'[{key}."{inner}"]', f'[{SECTION}."{inner}"]'
    else:
        given, meant = f"[{key}]", f'[{SECTION}."<table>"]'
    raise ConfigError(
        f"settings file {path}: {given} is not a section ddblake reads (did you mean {meant}?); a "
        f'table\'s own settings go in a section [{SECTION}."<DynamoDB table name>"]'
    )


def _values(raw: Mapping[str, object], path: Path, section: str, excluded: frozenset[str]) -> dict[str, str]:
    """The section's values as environment-variable text, every key checked."""
    values: dict[str, str] = {}
    for key, value in raw.items():
        if not section:
            _misplaced_section(key, value, path)
        if key in excluded:
            raise ConfigError(
                f"settings file {path}: {section}{key}: a table's section cannot set {key}; "
                "put it at the file's top level"
            )
        if key not in KEYS:
            near = difflib.get_close_matches(key, sorted(KEYS), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ConfigError(
                f"settings file {path}: {section}unknown setting {key!r}{hint}; the settings are the "
                "DDBLAKE_* variables' names in lower case, without DDBLAKE_ (docs/settings.md)"
            )
        text = _text(value, path, section, key)
        values[key] = _beside(text, path) if key in PATH_KEYS else text
    return values


def _beside(value: str, path: Path) -> str:
    """A relative local path taken from the settings file's folder; URIs (anything starting with a
    scheme, ``s3:``), absolute and ``~`` paths as they are."""
    if _SCHEME.match(value) or not value or value.startswith("~") or Path(value).is_absolute():
        return value
    return os.path.normpath(path.parent / value)


def _text(value: object, path: Path, section: str, key: str) -> str:
    """A TOML value as the text its environment variable would hold: a string stripped of the
    spaces around it, as :func:`ddblake.settings.lookup` strips a variable's (``lake = "./lake "``
    is ``./lake``, not a second lake in the folder ``lake ``)."""
    if isinstance(value, bool):  # before int: a bool is an int to Python
        return "true" if value else "false"
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int | float):
        return str(value)
    raise ConfigError(
        f"settings file {path}: {section}{key} must be a string, a number or true/false, "
        f"not a {type(value).__name__}"
    )
