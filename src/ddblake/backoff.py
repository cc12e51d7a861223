"""Waits between retries, shared by capture, load and apply."""

from __future__ import annotations

import random
from typing import Final

_JITTER: Final = random.Random()  # noqa: S311 - spreading retries, not secrecy


def backoff_with_jitter(ceiling: float, rng: random.Random | None = None) -> float:
    """A wait of half ``ceiling`` plus a random share of the other half ("equal jitter").

    Many captures (or a capture and a load, or applies) throttled by one table or prefix at the same
    instant then retry spread out instead of together, and none retries sooner than half the backoff.
    """
    return ceiling / 2 + (rng or _JITTER).uniform(0.0, ceiling / 2)
