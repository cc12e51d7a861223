"""Capture settings: one typed, frozen value built from arguments, environment, settings file and
defaults.

Precedence is argument, then ``DDBLAKE_*`` environment variable, then the settings file, then
default, so the CLI, a container's environment and tests all configure the same thing the same way.
A missing or malformed value is a :class:`ConfigError` that names the setting and where it came
from (a value out of range in the settings file names that file and key).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeVar

from ddblake import settings
from ddblake.aws.role_checks import check_external_id, check_role_arn, role_settings
from ddblake.errors import ConfigError
from ddblake.lake.rawlog import DEFAULT_BUFFER_BYTES, DEFAULT_BUFFER_SECONDS
from ddblake.settings import boolean as _bool
from ddblake.settings import optional as _optional
from ddblake.settings import required as _required
from ddblake.settings import required_table
from ddblake.settings import value as _value

T = TypeVar("T", int, float)

DEFAULT_POLL_SECONDS: Final = 0.5
DEFAULT_REFRESH_SECONDS: Final = 10.0
DEFAULT_HEARTBEAT_SECONDS: Final = 300.0
"""An idle continuous capture rewrites its checkpoint this often: ``status`` tells it from a dead one."""
MAX_RECORDS_PER_CALL: Final = 1000


def _where(name: str) -> str:
    """Where a checked setting can come from, for its error (as ddblake.lake.options names its own;
    the settings file too when one is in use): capture has no --poll-seconds, sync's sets both its
    capture's poll and its apply's. A value from the settings file is refused earlier, by
    :func:`checked_setting`, which can still name the file's key."""
    if name == "poll_seconds":
        return f"{settings.elsewhere(name)} (or sync's --poll-seconds)"
    flag = {"buffer_bytes": "--buffer-bytes", "buffer_seconds": "--buffer-seconds"}.get(name)
    return f"{flag} (or {settings.elsewhere(name)})" if flag else name


# What else sets a checked setting, for the error of a value the settings file gave.
_OTHERS: Final = {
    "buffer_bytes": "pass --buffer-bytes or set DDBLAKE_BUFFER_BYTES",
    "buffer_seconds": "pass --buffer-seconds or set DDBLAKE_BUFFER_SECONDS",
    "poll_seconds": "set DDBLAKE_POLL_SECONDS (or sync's --poll-seconds)",
}


def _problem(name: str, value: float) -> str | None:
    """What is wrong with an interval or size that must be a finite positive number, if anything;
    an interval (``*_seconds``) also at most a day (:data:`~ddblake.settings.MAX_WAIT_SECONDS`)."""
    if not math.isfinite(value):  # nan passes `<= 0` (a busy loop), inf breaks sleep()
        return f"must be a finite positive number, got {value}"
    if value <= 0:
        return f"must be positive, got {value}"
    if name.endswith("_seconds") and value > settings.MAX_WAIT_SECONDS:  # a wait past it overflows
        return f"must be at most {settings.MAX_WAIT_SECONDS:g} seconds (a day), got {value:g}"
    return None


def checked_setting(name: str, flag: str | None, given: T | None, convert: Callable[[str], T]) -> T | None:
    """:func:`ddblake.settings.optional`, refusing here a value out of range that the settings file
    gave, so that the error names the file and key to correct rather than a flag and variable the
    operator did not set (the checks in ``__post_init__`` can no longer tell where it came from).
    Sync resolves its buffer and poll settings with this before passing them on as arguments."""
    found, where = settings.sourced(name, flag, given, convert)
    if found is not None and where is not None and where not in (flag, settings.env_name(name)):
        problem = _problem(name, found)
        if problem:
            raise ConfigError(f"{where} {problem}; correct it there, or {_OTHERS[name]}")
    return found


def _checked_value(
    name: str, flag: str | None, given: T | None, convert: Callable[[str], T], default: T
) -> T:
    found = checked_setting(name, flag, given, convert)
    return default if found is None else found


@dataclass(frozen=True)
class CaptureConfig:
    """Everything ``ddblake capture`` needs.

    Attributes:
        table: the DynamoDB table name.
        lake: the lake, a directory or ``s3://bucket/prefix``.
        endpoint_url: DynamoDB endpoint override (DynamoDB Local); None follows boto3's chain.
        once: catch up with the stream, flush, checkpoint and return.
        buffer_bytes: cut a raw file at this many uncompressed bytes.
        buffer_seconds: cut a raw file when its oldest line is this old.
        poll_seconds: pause between polls when every shard is caught up.
        refresh_seconds: how often the shard list is re-read while running.
        heartbeat_seconds: while running and reading the stream, the checkpoint is written at least
            this often, even with nothing new (its ``updated_us`` is ``status``'s
            ``capture_checkpoint``: an old one means capture is down or cannot read the stream).
        max_records: GetRecords ``Limit`` (1..1000).
        assume_role: an IAM role ARN to read the table's stream in another account (the same role
            ``ddblake load`` takes with ``--assume-role``).
        external_id: the ExternalId the role's trust policy requires, if any.
        check_reach: on a first capture (no checkpoint), refuse when the stream no longer reaches
            back to the lake's load (:func:`ddblake.load.handoff.check_first_capture`); a
            re-bootstrap, whose own load follows, turns it off.
    """

    table: str
    lake: str
    endpoint_url: str | None = None
    once: bool = False
    buffer_bytes: int = DEFAULT_BUFFER_BYTES
    buffer_seconds: float = DEFAULT_BUFFER_SECONDS
    poll_seconds: float = DEFAULT_POLL_SECONDS
    refresh_seconds: float = DEFAULT_REFRESH_SECONDS
    heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS
    max_records: int = MAX_RECORDS_PER_CALL
    assume_role: str | None = None
    external_id: str | None = None
    check_reach: bool = True

    def __post_init__(self) -> None:
        for name, value in (
            ("buffer_bytes", self.buffer_bytes),
            ("buffer_seconds", self.buffer_seconds),
            ("poll_seconds", self.poll_seconds),
            ("refresh_seconds", self.refresh_seconds),
            ("heartbeat_seconds", self.heartbeat_seconds),
        ):
            problem = _problem(name, value)
            if problem:
                raise ConfigError(f"{_where(name)} {problem}")
        if not 1 <= self.max_records <= MAX_RECORDS_PER_CALL:
            raise ConfigError(f"max_records must be 1..{MAX_RECORDS_PER_CALL}, got {self.max_records}")
        check_role_arn(self.assume_role)
        check_external_id(self.assume_role, self.external_id)

    @classmethod
    def build(
        cls,
        *,
        table: str | None = None,
        lake: str | None = None,
        endpoint_url: str | None = None,
        once: bool | None = None,
        buffer_bytes: int | None = None,
        buffer_seconds: float | None = None,
        poll_seconds: float | None = None,
        assume_role: str | None = None,
        external_id: str | None = None,
    ) -> CaptureConfig:
        """Resolve each setting: argument, then ``DDBLAKE_<NAME>``, then the default.

        ``once=False`` counts as "not given" (a command-line switch cannot say no), so
        ``DDBLAKE_ONCE=1`` can still turn it on.

        Raises:
            ConfigError: a required setting is missing or a value is malformed.
        """
        return cls(
            table=required_table(table),
            lake=_required("lake", "--lake", lake),
            endpoint_url=_optional("endpoint_url", "--endpoint-url", endpoint_url or None, str),
            once=_value("once", "--once", once or None, _bool, False),
            buffer_bytes=_checked_value(
                "buffer_bytes", "--buffer-bytes", buffer_bytes, int, DEFAULT_BUFFER_BYTES
            ),
            buffer_seconds=_checked_value(
                "buffer_seconds", "--buffer-seconds", buffer_seconds, float, DEFAULT_BUFFER_SECONDS
            ),
            poll_seconds=_checked_value("poll_seconds", None, poll_seconds, float, DEFAULT_POLL_SECONDS),
            # both at once, each checked under the name of where it came from
            assume_role=(role := role_settings(assume_role, external_id))[0],
            external_id=role[1],
        )
