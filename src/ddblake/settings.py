"""Settings from arguments and ``DDBLAKE_*`` environment variables, for every component's config.

Precedence is argument, then environment variable, then default, so the CLI, ``sync``, a
container's environment and tests configure a component the same way. A missing or malformed value
is a :class:`~ddblake.errors.ConfigError` naming the setting and every place that was looked at.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

from ddblake.errors import ConfigError

T = TypeVar("T")


def env_name(name: str) -> str:
    """The environment variable of a setting: ``DDBLAKE_`` and its name in capitals."""
    return f"DDBLAKE_{name.upper()}"


def optional(name: str, flag: str | None, value: T | None, convert: Callable[[str], T]) -> T | None:
    """The argument, else the environment variable converted, else None.

    Raises:
        ConfigError: the environment variable does not convert; names it and the flag.
    """
    if value is not None:
        return value
    env = env_name(name)
    raw = os.environ.get(env, "").strip()
    if not raw:
        return None
    try:
        return convert(raw)
    except ValueError as e:
        where = f"{flag} or " if flag else ""
        raise ConfigError(f"{name}: {env}={raw!r} is not valid ({e}); set {where}{env} correctly") from e


def value(name: str, flag: str | None, given: T | None, convert: Callable[[str], T], default: T) -> T:
    """:func:`optional`, falling back to ``default``."""
    found = optional(name, flag, given, convert)
    return default if found is None else found


def required(name: str, flag: str, given: str | None) -> str:
    """A setting without a default (an empty one counts as missing).

    Raises:
        ConfigError: missing; names the flag and the environment variable looked at.
    """
    found = optional(name, flag, given or None, str)
    if not found:
        raise ConfigError(f"missing {name}: pass {flag} or set {env_name(name)} (looked at both)")
    return found


def required_table(given: str | None) -> str:
    """``--table`` (or ``DDBLAKE_TABLE``), required, and a DynamoDB table name (:func:`table_name`):
    every command's (capture, load, apply, sync, dump) and the apply Lambda's.

    Raises:
        ConfigError: missing, or not a DynamoDB table name; names where it came from.
    """
    found = required("table", "--table", given)
    return table_name(found, "--table" if given else env_name("table"))


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
