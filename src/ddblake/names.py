"""Identifiers of lake tables, derived from DynamoDB table names (ARCHITECTURE.md contract)."""

from __future__ import annotations

import hashlib
import re

_NOT_IDENT = re.compile(r"[^a-z0-9_]")

DEFAULT_NAMESPACE = "ddb"


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
