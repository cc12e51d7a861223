"""Full loads: a parallel segmented Scan, or a DynamoDB export, into the raw change log.

A load writes ordinary raw-log lines (op ``LOAD``, source ``scan`` or ``export``) that ``apply``
merges like any change; their versions and event IDs follow ``ddblake.load.rows`` so that a load row
never overwrites a newer change and a rerun repeats, rather than duplicates, what it wrote.
``run_load`` is the entry point (CLI and ``sync``); docs/load.md describes the whole.
"""

from __future__ import annotations

from ddblake.load.config import LoadConfig
from ddblake.load.handoff import has_finished_load
from ddblake.load.scan import LoadResult
from ddblake.load.service import build_load_clients, now_us, run_load, run_load_beside
from ddblake.load.state import list_loads

__all__ = [
    "LoadConfig",
    "LoadResult",
    "build_load_clients",
    "has_finished_load",
    "list_loads",
    "now_us",
    "run_load",
    "run_load_beside",
]
