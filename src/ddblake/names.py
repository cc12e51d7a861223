"""Identifiers of lake tables, derived from DynamoDB table names (ARCHITECTURE.md contract)."""

from __future__ import annotations

import re

_NOT_IDENT = re.compile(r"[^a-z0-9_]")

DEFAULT_NAMESPACE = "ddb"


def table_identifier(table_name: str) -> str:
    """Current-state table identifier: lower-cased, every char outside ``[a-z0-9_]`` becomes ``_``."""
    return _NOT_IDENT.sub("_", table_name.lower())


def changes_identifier(table_name: str) -> str:
    """Change-history table identifier: the current-state identifier plus ``_changes``."""
    return table_identifier(table_name) + "_changes"
