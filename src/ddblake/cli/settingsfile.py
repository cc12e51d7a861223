"""The settings file of a command line: which file (``--config``, ``DDBLAKE_CONFIG``) and which of
its table sections applies (:mod:`ddblake.configfile`, docs/settings.md)."""

from __future__ import annotations

import argparse
import difflib
import os
from typing import Final

from ddblake.configfile import CONFIG_ENV, SettingsFile, read_settings_file
from ddblake.errors import UsageError

WITHOUT_SETTINGS: Final = ("demo", "local")
"""Commands that read no settings file (nor offer ``--config``): their own table on DynamoDB Local."""


def settings_file(args: argparse.Namespace) -> SettingsFile | None:
    """The settings file of ``--config`` or ``DDBLAKE_CONFIG``, read and checked; None without one.

    Raises:
        UsageError: ``--config`` given before a command that reads no file (``ddblake --config
            x.toml local stop``), refused as it is after the command's name, rather than ignored.
        ConfigError: the file is missing, not TOML, or holds an unknown key (names file and key).
    """
    if args.command in WITHOUT_SETTINGS:
        if getattr(args, "config", None):
            where = getattr(args, "_prog", f"ddblake {args.command}")
            raise UsageError(
                f"{where} reads no settings file (demo and local run their own table on DynamoDB "
                f"Local): drop --config {args.config} (see '{where} --help')"
            )
        return None
    path = getattr(args, "config", None) or os.environ.get(CONFIG_ENV, "").strip()
    return read_settings_file(path) if path else None


def file_table(args: argparse.Namespace, file: SettingsFile | None) -> str | None:
    """The table whose ``[tables."<name>"]`` section applies: the command's, as it will resolve it
    (argument, environment, the file's top level).

    The rule is :func:`ddblake.settings.lookup`'s: ``DDBLAKE_TABLE`` set but empty means no table
    and hides the file's ``table``, so no section applies (the command then names that variable),
    rather than applying the section of a table the command itself will not take.
    """
    if file is None:
        return None
    given = getattr(args, "table", None)  # an empty --table counts as not given, as in settings
    if given:
        return str(given)
    raw = os.environ.get("DDBLAKE_TABLE")
    if raw is not None:
        return raw.strip() or None
    top = file.get("table", None)
    return top[0] if top is not None else None


def section_note(file: SettingsFile | None, table: str | None) -> str | None:
    """A warning when the table has no section of its own in the settings file but one is named
    almost like it (``[tables."ordres"]``), or only in other letter case (``[tables."MyTable"]`` for
    ``mytable``): a misspelt section is never applied, silently."""
    if file is None or table is None or not file.tables or table in file.tables:
        return None
    cased = next((name for name in file.tables if name.casefold() == table.casefold()), None)
    if cased is not None:  # DynamoDB table names are case-sensitive: another table's section
        return (
            f'settings file {file.path}: no section [tables."{table}"] for table {table!r}; '
            f'[tables."{cased}"] is for the table {cased!r} (DynamoDB table names are case-sensitive), '
            "so its settings are not applied: if it is meant for this table, write its name as "
            "DynamoDB has it"
        )
    near = difflib.get_close_matches(table, list(file.tables), n=1, cutoff=0.8)
    if not near:
        return None
    return (
        f'settings file {file.path}: no section [tables."{table}"] for table {table!r}, but there is '
        f'[tables."{near[0]}"]: if it is meant for this table, correct its name (its settings are not used)'
    )
