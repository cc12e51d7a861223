"""Argument and environment value checks of the command line, each failing with a one-line message.

argparse reports a ``type=`` function's :class:`argparse.ArgumentTypeError` as
``argument --option: <message>``, so the messages here say the rule and the value given.
"""

from __future__ import annotations

import argparse
import difflib
import logging
import sys
from collections.abc import Callable
from typing import TypeVar

from ddblake.errors import ConfigError, UsageError
from ddblake.progress import quiet

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
N = TypeVar("N", int, float)


def _checked(text: str, parse: Callable[[str], N], ok: Callable[[N], bool], rule: str) -> N:
    """``text`` parsed, or an ArgumentTypeError saying ``rule`` and the value given."""
    try:
        value = parse(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {rule}, got {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"must be {rule}, got {value}")
    return value


def port_number(text: str) -> int:
    """A TCP port, 1-65535."""
    return _checked(text, int, lambda p: 1 <= p <= 65535, "a port number 1-65535")


def positive_int(text: str) -> int:
    """A whole number of at least 1."""
    return _checked(text, int, lambda v: v >= 1, "a whole number of at least 1")


def percent(text: str) -> float:
    """A share of capacity in percent, more than 0 and at most 150."""
    return _checked(text, float, lambda v: 0 < v <= 150, "a number in (0, 150]")


def log_level(raw: str | None, where: str = "DDBLAKE_LOG_LEVEL") -> int:
    """The logging level named by ``DDBLAKE_LOG_LEVEL`` or the settings file's ``log_level`` (any
    case); INFO when unset or empty.

    Raises:
        ConfigError: not a level name; names where it came from, the value and the choices.
    """
    name = (raw or "").strip().upper()
    if not name:
        return logging.INFO
    if name not in LOG_LEVELS:
        said = f"{where}={raw!r}" if where.startswith("DDBLAKE_") else f"{raw!r} ({where})"
        raise ConfigError(f"{said} is not a log level; set it to one of {', '.join(LOG_LEVELS)}")
    return int(getattr(logging, name))


def add_role_args(parser: argparse.ArgumentParser) -> None:
    """``--assume-role`` and ``--external-id``: read a table (and its stream) in another account."""
    parser.add_argument(
        "--assume-role",
        default=None,
        help="IAM role ARN to read a table in another account (or DDBLAKE_ASSUME_ROLE)",
    )
    parser.add_argument(
        "--external-id",
        default=None,
        help="ExternalId the role's trust policy requires (or DDBLAKE_EXTERNAL_ID)",
    )


class Parser(argparse.ArgumentParser):
    """argparse's parser, its errors as :class:`UsageError` (one line, exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help')")


def did_you_mean(words: list[str], parser: argparse.ArgumentParser, command: list[str | None]) -> str:
    """``; did you mean --format?`` for the first unrecognised ``--word`` close to an option of
    ``command`` (the subcommand names chosen, ``["local", "start"]``).

    argparse takes a mistyped option's value (``--fromat json``) for the next positional (the SQL)
    and reports the SQL as unrecognised: naming the option it may have meant says what happened.
    """
    for name in command:
        sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        if sub is None or name not in sub.choices:
            break
        parser = sub.choices[name]
    known = sorted(_long_options(parser))
    for word in words:
        if word.startswith("--"):
            given = word.split("=", 1)[0]
            close = difflib.get_close_matches(given, known, n=1, cutoff=0.8)  # a typo, not another option
            if close and close[0] != given:
                return f"; did you mean {close[0]}?"
    if command[:1] == ["query"] and not any(w.startswith("-") for w in words):
        # SELECT count(*) FROM t without quotes: the shell made several arguments of one statement
        return '; the SQL is one argument: put it in quotes, "SELECT ..."'
    return ""


def _long_options(parser: argparse.ArgumentParser) -> set[str]:
    """Every ``--option`` of ``parser``."""
    return {o for action in parser._actions for o in action.option_strings if o.startswith("--")}


def say(summary: str) -> None:
    """A command's closing summary on stderr, unless ddblake's log level is above INFO: with
    ``DDBLAKE_LOG_LEVEL=WARNING`` a successful unattended run (cron mails any output) stays quiet."""
    if not quiet():
        print(summary, file=sys.stderr)
