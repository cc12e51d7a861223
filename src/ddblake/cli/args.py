"""Argument and environment value checks of the command line, each failing with a one-line message.

argparse reports a ``type=`` function's :class:`argparse.ArgumentTypeError` as
``argument --option: <message>``, so the messages here say the rule and the value given.
"""

from __future__ import annotations

import argparse
import logging

from ddblake.errors import ConfigError

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def port_number(text: str) -> int:
    """A TCP port, 1-65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a port number 1-65535, got {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number 1-65535, got {port}")
    return port


def positive_int(text: str) -> int:
    """A whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {value}")
    return value


def percent(text: str) -> float:
    """A share of capacity in percent, more than 0 and at most 150."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 150], got {text!r}") from None
    if not 0 < value <= 150:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 150], got {value}")
    return value


def log_level(raw: str | None, env: str = "DDBLAKE_LOG_LEVEL") -> int:
    """The logging level named by ``DDBLAKE_LOG_LEVEL`` (any case); INFO when unset or empty.

    Raises:
        ConfigError: not a level name; names the variable, the value and the choices.
    """
    name = (raw or "").strip().upper()
    if not name:
        return logging.INFO
    if name not in LOG_LEVELS:
        raise ConfigError(f"{env}={raw!r} is not a log level; set it to one of {', '.join(LOG_LEVELS)}")
    return int(getattr(logging, name))
