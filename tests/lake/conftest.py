"""Fixtures of the lake tests (helpers live in lake_helpers.py)."""

from lake_helpers import lake, make_event

__all__ = ["lake", "make_event"]
