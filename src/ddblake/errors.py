"""One error hierarchy for ddblake.

Callers decide what to do from the *kind* of error, not from botocore codes: a transient error is
worth retrying with backoff, a terminal one needs a person. Adapters translate botocore errors into
these with ``raise ... from e`` so the original cause stays in tracebacks while the CLI prints one
line that names the table, file, role or account involved.
"""

from __future__ import annotations


class DdblakeError(Exception):
    """Base of every error ddblake raises on purpose."""

    transient: bool = False


class TransientError(DdblakeError):
    """Worth retrying: throttling, 5xx, a connection reset, an expired iterator."""

    transient = True


class StoppedError(TransientError):
    """The user asked a command to stop (Ctrl-C, SIGTERM) before its work was done.

    Transient, since the same command goes on where it stopped; but not a failure, so the CLI says
    ``stopped`` rather than ``error`` (still exit 1: the work is not complete).
    """


class TerminalError(DdblakeError):
    """Retrying will not help: bad configuration, access denied, a missing table, lost data."""


class UsageError(TerminalError):
    """The command line or configuration is wrong; the CLI exits with code 2."""


class ConfigError(UsageError):
    """A configuration value is missing or invalid."""


class BadRecordError(TerminalError):
    """One input record cannot be understood; it is quarantined, the others go on."""


class NotFoundError(TerminalError):
    """A table, stream, file or process that should exist does not."""


class UnknownTableError(NotFoundError):
    """``apply --once`` of a table the lake knows nothing of (no raw file, state or lake table):
    a mistyped name, most likely; a scheduled job must fail, not report nothing applied."""


class StreamGapError(TerminalError):
    """The stream trimmed records that were never read: the lake would miss changes."""


class PrerequisiteError(TerminalError):
    """A tool ddblake needs on this machine (Java, Node, the DynamoDB Local jar) is missing."""
