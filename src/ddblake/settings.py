"""Settings from arguments, ``DDBLAKE_*`` environment variables and a settings file, for every
component's config.

Precedence is argument, then environment variable, then the settings file (its table's section,
then its top level: :mod:`ddblake.configfile`), then default, so the CLI, ``sync``, a container's
environment and tests configure a component the same way. A missing or malformed value is a
:class:`~ddblake.errors.ConfigError` naming the setting and every place that was looked at.

The file is the command's (``--config``, ``DDBLAKE_CONFIG``): the CLI reads it once and puts it in
use around the command with :func:`using_file`; library callers and the Lambdas use none unless
they do the same.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Final, TypeVar

from ddblake.configfile import SettingsFile
from ddblake.errors import ConfigError

T = TypeVar("T")

MAX_WAIT_SECONDS: Final = 86_400.0
"""The longest wait a setting may ask for, a day (``poll_seconds``, ``buffer_seconds``,
``export_poll_seconds``): refused above it when the command starts, rather than at its first idle
wait, where a wait past ``threading.TIMEOUT_MAX`` (some 292 years, less on some platforms) raises
OverflowError; no poll or buffer is useful that long."""

_file: SettingsFile | None = None
_file_table: str | None = None  # whose [tables."<name>"] section applies


@contextlib.contextmanager
def using_file(file: SettingsFile | None, table: str | None = None) -> Iterator[None]:
    """Read settings from ``file`` (``table``'s section first) inside the block, then as before."""
    global _file, _file_table
    saved = _file, _file_table
    _file, _file_table = file, table
    try:
        yield
    finally:
        _file, _file_table = saved


def settings_file() -> SettingsFile | None:
    """The settings file in use, if any."""
    return _file


def places(name: str, flag: str | None) -> str:
    """Where a setting can be given, for messages: ``--segments or DDBLAKE_SEGMENTS`` (and ``or
    segments in ./ddblake.toml`` when a settings file is in use)."""
    return f"{flag} or {elsewhere(name)}" if flag else elsewhere(name)


def elsewhere(name: str) -> str:
    """Where a setting can be given other than its flag: ``DDBLAKE_SEGMENTS`` (``or segments in
    ./ddblake.toml`` when a settings file is in use)."""
    return f"{env_name(name)} or {name} in {_file.path}" if _file is not None else env_name(name)


def lookup(name: str) -> tuple[str, str] | None:
    """``(text, where)`` of a setting from the environment, else the settings file; None if neither.

    A variable set but empty (``DDBLAKE_ASSUME_ROLE=``) says "none" and hides the file's value: how
    one run turns off a role, an export or a catalog URI that the settings file gives.
    """
    env = env_name(name)
    raw = os.environ.get(env)
    if raw is not None:
        return (raw.strip(), env) if raw.strip() else None
    if _file is None:
        return None
    return _file.get(name, _file_table)


def env_name(name: str) -> str:
    """The environment variable of a setting: ``DDBLAKE_`` and its name in capitals."""
    return f"DDBLAKE_{name.upper()}"


def optional(name: str, flag: str | None, value: T | None, convert: Callable[[str], T]) -> T | None:
    """The argument, else the environment variable converted, else the settings file's value
    converted, else None.

    Raises:
        ConfigError: the value found does not convert; names where it came from and the flag.
    """
    found, _ = sourced(name, flag, value, convert)
    return found


def sourced(
    name: str, flag: str | None, value: T | None, convert: Callable[[str], T]
) -> tuple[T | None, str | None]:
    """:func:`optional`, and where the value came from (the flag, the variable, the file's key).

    Raises:
        ConfigError: the value found does not convert; names where it came from and the flag.
    """
    if value is not None:
        return value, flag
    found = lookup(name)
    if found is None:
        return None, None
    raw, where = found
    try:
        return convert(raw), where
    except ValueError as error:
        e = _plain(error)
        env = env_name(name)
        if where == env:
            fix = f"set {flag} or {env} correctly" if flag else f"set {env} correctly"
            raise ConfigError(f"{name}: {env}={raw!r} is not valid ({e}); {fix}") from error
        other = f"pass {flag} or set {env}" if flag else f"set {env}"
        raise ConfigError(
            f"{name}: {raw!r} ({where}) is not valid ({e}); correct it there, or {other}"
        ) from error


def _plain(e: ValueError) -> str:
    """A conversion error in words, without Python's own (``invalid literal for int() with base 10``)."""
    text = str(e)
    if text.startswith("invalid literal for int()"):
        return "not a whole number"
    if text.startswith("could not convert string to float"):
        return "not a number"
    return text


def value(name: str, flag: str | None, given: T | None, convert: Callable[[str], T], default: T) -> T:
    """:func:`optional`, falling back to ``default``."""
    found = optional(name, flag, given, convert)
    return default if found is None else found


def required(name: str, flag: str, given: str | None) -> str:
    """A setting without a default (an empty one counts as missing).

    Raises:
        ConfigError: missing; names the flag and the environment variable looked at.
    """
    return required_sourced(name, flag, given)[0]


def required_sourced(name: str, flag: str, given: str | None) -> tuple[str, str]:
    """:func:`required`, and where the value came from (the flag, the variable, the file's key).

    Raises:
        ConfigError: missing; names the flag, the environment variable and the file looked at, or
            the variable set but empty that hides the file's value (the file has it: saying "add
            it to the file" would send the operator to the wrong place).
    """
    found, where = sourced(name, flag, given or None, str)
    if not found or where is None:
        env = env_name(name)
        hidden = _file.get(name, _file_table) if _file is not None else None
        if hidden is not None and os.environ.get(env) is not None:  # set but empty (lookup's "none")
            raise ConfigError(
                f"missing {name}: {env} is set but empty, which hides {hidden[1]}; unset it or give "
                f"a value (or pass {flag})"
            )
        if _file is None:
            raise ConfigError(f"missing {name}: pass {flag} or set {env_name(name)} (looked at both)")
        raise ConfigError(
            f"missing {name}: pass {flag}, set {env_name(name)} or add {name} to {_file.path} "
            "(looked at all three)"
        )
    return found, where


def required_table(given: str | None) -> str:
    """``--table`` (or ``DDBLAKE_TABLE``), required, and a DynamoDB table name (:func:`table_name`):
    every command's (capture, load, apply, sync, dump) and the apply Lambda's.

    Raises:
        ConfigError: missing, or not a DynamoDB table name; names where it came from.
    """
    found, where = required_sourced("table", "--table", given)
    return table_name(found, where)


def table_name(name: str, where: str = "--table") -> str:
    """``name`` if it can be a DynamoDB table name: 3 to 255 of ``A-Z a-z 0-9 _ . -``, the rule
    the Firehose transform applies to every record (``ddblake.changes.parse.check_table_name``).
    Anything else would have every raw line quarantined as another table's, and empty tables made.

    Raises:
        ConfigError: not a DynamoDB table name; names ``where`` it came from.
    """
    from ddblake.changes.parse import check_table_name
    from ddblake.errors import BadRecordError

    try:
        return check_table_name(name)
    except BadRecordError:
        raise ConfigError(
            f"table {name!r} (from {where}) is not a DynamoDB table name: give the table's name as "
            "DynamoDB has it, 3 to 255 characters of A-Z a-z 0-9 _ . -"
        ) from None


def boolean(raw: str) -> bool:
    """An environment variable's truth value.

    Raises:
        ValueError: not one of 1/0, true/false, yes/no, on/off.
    """
    lowered = raw.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected true or false")


def aws_region() -> str | None:
    """The AWS region of every client a command builds, DynamoDB's and the lake's (S3, Glue) alike.

    botocore's own chain first (``AWS_DEFAULT_REGION``, then the profile's region), then
    ``AWS_REGION``, which botocore ignores but Lambda and most containers set; one function, so the
    two sides of a command can never disagree on the region.
    """
    import boto3
    from botocore.exceptions import ProfileNotFound

    try:
        region = boto3.session.Session().region_name
    except ProfileNotFound as e:
        raise ConfigError(f"{e}: set AWS_PROFILE to a profile of your AWS config file, or unset it") from e
    return region or os.environ.get("AWS_REGION", "").strip() or None
