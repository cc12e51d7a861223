"""Identifiers of lake tables, derived from DynamoDB table names (ARCHITECTURE.md contract)."""

from __future__ import annotations

import hashlib
import re

_NOT_IDENT = re.compile(r"[^a-z0-9_]")

DEFAULT_NAMESPACE = "ddb"

GLUE_TABLE_NAME_CHARS = 255
"""The longest table name the Glue Data Catalog holds: a DynamoDB name of up to 255 characters has a
change history (``<identifier>_changes``) of up to 263, so a lake in Glue takes names of at most 247."""


def table_identifier(table_name: str) -> str:
    """Current-state table identifier: lower-cased, every char outside ``[a-z0-9_]`` becomes ``_``."""
    return _NOT_IDENT.sub("_", table_name.lower())


def cut_with_hash(name: str, keep: int) -> str:
    """``name``'s first ``keep`` characters, ``-`` and 16 hex digits of its SHA-256: a name cut to fit
    a file name that still tells two long names sharing a start apart."""
    return f"{name[:keep]}-{hashlib.sha256(name.encode()).hexdigest()[:16]}"


def changes_identifier(table_name: str) -> str:
    """Change-history table identifier: the current-state identifier plus ``_changes``."""
    return table_identifier(table_name) + "_changes"


def glue_name_problem(table_name: str) -> str | None:
    """Why the Glue Data Catalog cannot hold this DynamoDB table's lake tables, or ``None``.

    Glue refuses a table name over 255 characters, so apply's first commit of the change history
    would fail on every run; said before anything is written instead.
    """
    history = changes_identifier(table_name)
    if len(history) <= GLUE_TABLE_NAME_CHARS:
        return None
    return (
        f"is {len(table_name)} characters: its change history's Glue table ({history[:20]}…) would be "
        f"{len(history)}, over Glue's {GLUE_TABLE_NAME_CHARS}; the lake takes table names of at most "
        f"{GLUE_TABLE_NAME_CHARS - len('_changes')} characters"
    )
