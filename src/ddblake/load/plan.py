"""Pure planning for a Scan load: how many segments, how much read capacity, how fast, how to back off.

Nothing here calls AWS; every clock and random source is a parameter, so the rules are unit-tested
exactly.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from ddblake.load.config import DEFAULT_MAX_WORKERS, MAX_SEGMENTS

MIB: Final = 1024 * 1024
SMALL_TABLE_BYTES: Final = 1 * MIB
"""Below this a table is one or two Scan pages: one segment, parallelism would only add calls."""
SEGMENT_TARGET_BYTES: Final = 256 * MIB
"""Data per segment for large tables: enough segments to keep every worker busy, few enough that
the per-segment checkpoint stays small."""
MIN_SEGMENTS: Final = 16
MAX_DEFAULT_SEGMENTS: Final = 1000
PAGE_BYTES: Final = 1 * MIB
"""DynamoDB stops a Scan page at 1 MB of data read."""


def plan_segments(item_count: int, size_bytes: int, requested: int | None = None) -> int:
    """Scan ``TotalSegments`` for a table of this size (DescribeTable figures, up to 6 h stale).

    * an explicit request wins (1..1,000,000);
    * a size of 0 may be stale (a new table), so it gets :data:`MIN_SEGMENTS` (an empty table only
      costs one call per segment);
    * a table under 1 MiB gets one segment;
    * otherwise one segment per 256 MiB, at least 16 (one per default worker), at most 1000.
    """
    if requested is not None:
        return max(1, min(MAX_SEGMENTS, requested))
    if size_bytes <= 0 and item_count <= 0:
        return MIN_SEGMENTS
    if 0 < size_bytes < SMALL_TABLE_BYTES:
        return 1
    return max(MIN_SEGMENTS, min(MAX_DEFAULT_SEGMENTS, math.ceil(size_bytes / SEGMENT_TARGET_BYTES)))


def plan_workers(segments: int, requested: int | None = None) -> int:
    """Threads to scan with: never more than segments; 16 by default (I/O bound, the GIL is released)."""
    return max(1, min(segments, requested or DEFAULT_MAX_WORKERS))


def read_capacity(
    provisioned_rcu: float, on_demand_rcu: float, max_read_units: float = 0.0
) -> tuple[float, str]:
    """The read capacity ``--read-percent`` applies to, and where the figure comes from (for the log).

    Provisioned capacity when the table has it (DescribeTable reports 0 for on-demand). For an
    on-demand table, ``on_demand_rcu`` is assumed, unless the table's own maximum
    (``OnDemandThroughput.MaxReadRequestUnits``; 0 or -1: none) is smaller: then the maximum.
    """
    if provisioned_rcu > 0:
        return provisioned_rcu, "provisioned"
    if 0 < max_read_units < on_demand_rcu:
        return max_read_units, "the table's on-demand maximum, MaxReadRequestUnits"
    return on_demand_rcu, "assumed for on-demand"


def scan_budget(capacity: float, read_percent: float) -> float:
    """Read capacity units per second a load may consume: ``read_percent`` of ``capacity``.

    Fractions stay fractions (10 % of a 5-RCU table is 0.5 unit/s): the token bucket and the page
    ``Limit`` (at least one item a page) carry them, and the load still progresses.
    """
    return capacity * read_percent / 100.0


def page_cost(consistent: bool) -> float:
    """Capacity units of a full 1 MB page: 4 KB per unit, halved for eventually consistent reads."""
    units = PAGE_BYTES / 4096
    return units if consistent else units / 2


def page_limit(budget: float, avg_item_bytes: float, consistent: bool) -> int | None:
    """Scan ``Limit`` keeping one page within a second of budget; None when a full page fits.

    With a small budget a full page would cost many seconds of capacity at once (a burst that can
    throttle the table's other readers); a smaller page spreads the same reads evenly.
    """
    if budget >= page_cost(consistent) or avg_item_bytes <= 0:
        return None
    per_unit = 4096 if consistent else 8192
    return max(1, int(budget * per_unit / avg_item_bytes))


class PageSizer:
    """The Scan ``Limit`` of a load, learned from what its pages cost (thread-safe, shared by workers).

    The first limit comes from DescribeTable's average item size (:func:`page_limit`), which is up
    to 6 h stale: a table filled since shows 0 bytes and is taken at 1 KB an item. When the budget
    is below a full page a second, every page with items corrects it: its ``ConsumedCapacity`` per
    item (smoothed over pages, the first one replacing the guess) gives the items a second of budget
    buys. A limit falls at once and at most doubles a page, so one page of small items does not
    open the way to a burst of large ones. ``cap`` (``DDBLAKE_PAGE_ITEMS``; 1,000 against DynamoDB
    Local) bounds it always.

    Attributes:
        limit: the ``Limit`` for the next page; None: none (a full 1 MB page is within budget).
        unit_cost: capacity units an item is expected to cost.
    """

    SMOOTHING: Final = 0.5
    """Weight of a page's own cost per item against the pages before it."""

    def __init__(
        self, budget: float, avg_item_bytes: float, consistent: bool, cap: int | None = None
    ) -> None:
        """Start from the table's average item size (DescribeTable)."""
        self.budget = budget
        self.consistent = consistent
        self.cap = cap
        self.learns = budget < page_cost(consistent)
        self.unit_cost = max(avg_item_bytes, 1.0) / (4096 if consistent else 8192)
        self.learned = False
        first = page_limit(budget, avg_item_bytes, consistent)
        self.limit = cap if first is None else min(first, cap) if cap is not None else first
        self._lock = threading.Lock()

    def observe(self, items: int, consumed: float) -> int | None:
        """Learn from a page of ``items`` that consumed ``consumed`` units; returns the new limit."""
        if not self.learns or items <= 0 or consumed <= 0:
            return self.limit
        with self._lock:
            cost = consumed / items
            self.unit_cost = (
                self.SMOOTHING * cost + (1 - self.SMOOTHING) * self.unit_cost if self.learned else cost
            )
            self.learned = True
            limit = max(1, int(self.budget / self.unit_cost))
            if self.limit is not None:
                limit = min(limit, 2 * self.limit)
            self.limit = min(limit, self.cap) if self.cap is not None else limit
            return self.limit

    def estimate(self, last: float = 0.0) -> float:
        """Capacity units the next page is expected to cost, reserved before the call: a limited
        page's items at the expected cost each, else the ``last`` page's cost, else a full page's."""
        limit = self.limit
        if limit is not None and (self.learned or last <= 0):
            return max(0.5, limit * self.unit_cost)
        return last if last > 0 else page_cost(self.consistent)


def backoff_delay(
    attempt: int, *, base: float = 0.1, cap: float = 20.0, rng: random.Random | None = None
) -> float:
    """Full-jitter exponential backoff: uniform in ``[0, min(cap, base * 2**attempt)]``.

    Jitter spreads the retries of many workers throttled at the same instant.
    """
    high = min(cap, base * (2 ** max(0, attempt)))
    return (rng or random).uniform(0, high)


@dataclass
class RateLimiter:
    """A token bucket in capacity units, shared by every worker of a load (thread-safe).

    A worker reserves its page's estimated cost before the call (:meth:`acquire`, which waits while
    the bucket is in debt) and settles the difference with the ``ConsumedCapacity`` DynamoDB reports
    (:meth:`settle`). Reserving first keeps many workers from all passing a positive balance at once;
    settling with the real figure keeps the long-run rate at ``rate`` whatever the estimates were.

    Attributes:
        rate: capacity units per second.
        burst: the most the bucket holds (defaults to one second of ``rate``).
        clock: monotonic seconds.
        sleep: waits that many seconds (pass ``stop.wait`` to make waits interruptible); returns
            True to abandon the wait.
    """

    rate: float
    burst: float | None = None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], object] = time.sleep
    _tokens: float = field(default=0.0, init=False)
    _last: float = field(default=0.0, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    waited: float = field(default=0.0, init=False)
    consumed: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ValueError("rate must be positive")
        self.burst = self.burst if self.burst is not None else self.rate
        self._tokens = self.burst
        self._last = self.clock()

    def _refill(self) -> None:
        now = self.clock()
        burst = self.burst if self.burst is not None else self.rate
        self._tokens = min(burst, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def acquire(self, estimate: float) -> bool:
        """Wait until the bucket is out of debt, then reserve ``estimate`` units.

        Returns:
            False when a wait was abandoned (``sleep`` returned True: the load is stopping).
        """
        while True:
            with self._lock:
                self._refill()
                if self._tokens > 0:
                    self._tokens -= estimate
                    return True
                wait = -self._tokens / self.rate + 1e-3
            self.waited += wait
            if self.sleep(wait) is True:
                return False

    def settle(self, estimate: float, actual: float) -> None:
        """Correct a reservation with the capacity actually consumed."""
        with self._lock:
            self._refill()
            self._tokens -= actual - estimate
            self.consumed += actual
