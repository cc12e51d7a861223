"""The history's duplicate check (ddblake.lake.seen): a load's batches read no event IDs, and no
event lands twice whatever brought it back (a redelivery, a rewritten load row, a crash between
the two commits, a dropped current-state table)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from lake_helpers import Lake, event

from ddblake.changes.model import ChangeEvent
from ddblake.changes.resolve import Keyed, key_string, version_of
from ddblake.lake import seen
from ddblake.lake.applied import AppliedLog
from ddblake.lake.apply import Applier

ORIGINAL_COMMIT_CURRENT = Applier._commit_current


def _s(v: str) -> dict[str, str]:
    return {"S": v}


def _load(pk: str, load: str = "L1") -> ChangeEvent:
    """A load row: every row of one load shares the load's event time."""
    return event("LOAD", pk, 0, image={"v": _s(pk)}, event_id=f"load-{load}-{pk}", source="scan")


def _ids(lake: Lake) -> Counter[str]:
    return Counter(row["event_id"] for row in lake.history())


@pytest.fixture
def scanned(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many changes each event-ID scan of the history was asked about."""
    calls: list[int] = []
    original = seen.event_ids

    def spy(hist: Any, changes: Any) -> set[str]:
        calls.append(len(changes))
        return original(hist, changes)

    monkeypatch.setattr(seen, "event_ids", spy)
    return calls


def test_a_batch_of_new_keys_reads_no_event_ids(lake: Lake, scanned: list[int]) -> None:
    lake.write([_load(f"a{i}") for i in range(10)])
    lake.apply()
    lake.write([_load(f"b{i}") for i in range(10)])
    lake.apply()
    assert sum(scanned) == 0  # no event had to be looked for
    assert sum(_ids(lake).values()) == 20 and set(_ids(lake).values()) == {1}
    assert len(lake.dump()) == 20


def test_without_the_screen_every_earlier_row_of_the_load_would_be_read(
    lake: Lake, scanned: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(seen, "screen", lambda *args, **kwargs: None)
    lake.write([_load(f"a{i}") for i in range(10)])
    lake.apply()
    lake.write([_load(f"b{i}") for i in range(10)])
    lake.apply()
    assert scanned[-1] == 10  # the spy sees the scan the screen saves


def test_events_whose_key_the_table_holds_are_still_checked(lake: Lake, scanned: list[int]) -> None:
    lake.write([_load("a"), _load("b")])
    lake.apply()
    lake.write([_load("b"), _load("c")])  # load row b written again (a resumed load), c new
    result = lake.apply()
    assert scanned == [1]  # b only: the table holds it; c is new
    assert result.duplicates == 1 and result.history_rows == 1
    assert _ids(lake) == Counter({"load-L1-a": 1, "load-L1-b": 1, "load-L1-c": 1})


def test_a_redelivered_stream_change_lands_once(lake: Lake) -> None:
    first = event("INSERT", "a", 1, image={"v": _s("1")}, event_id="e1")
    lake.write([first])
    lake.apply()
    lake.write([first, event("MODIFY", "a", 2, image={"v": _s("2")}, event_id="e2")])
    result = lake.apply()
    assert result.duplicates == 1
    assert _ids(lake) == Counter({"e1": 1, "e2": 1})
    assert lake.dump()["a"]["v"] == _s("2")


def test_a_redelivered_remove_lands_once(lake: Lake) -> None:
    gone = event("REMOVE", "a", 2, event_id="e2")
    lake.write([event("INSERT", "a", 1, image={"v": _s("1")}, event_id="e1"), gone])
    lake.apply()
    lake.write([gone])  # the key is absent now; its REMOVE is the history's
    assert lake.apply().duplicates == 1
    assert _ids(lake) == Counter({"e1": 1, "e2": 1})
    assert lake.dump() == {}


def test_a_redelivered_change_beaten_by_a_newer_remove_lands_once(lake: Lake) -> None:
    late = event("INSERT", "a", 1, image={"v": _s("1")}, event_id="e1")
    lake.write([late, event("REMOVE", "a", 3, event_id="e3")])
    lake.apply()
    lake.write([late])
    assert lake.apply().duplicates == 1
    assert _ids(lake) == Counter({"e1": 1, "e3": 1})
    assert lake.dump() == {}


def test_a_crash_between_the_commits_then_a_redelivery_lands_once(
    lake: Lake, monkeypatch: pytest.MonkeyPatch, scanned: list[int]
) -> None:
    lake.write([event("INSERT", "z", 0, image={"v": _s("0")}, event_id="e0")])
    lake.apply()  # both tables exist and have applied the same files
    first = event("INSERT", "a", 1, image={"v": _s("1")}, event_id="e1")
    lake.write([first])

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("killed")

    monkeypatch.setattr(Applier, "_commit_current", crash)
    with pytest.raises(RuntimeError):
        lake.apply()
    monkeypatch.setattr(Applier, "_commit_current", ORIGINAL_COMMIT_CURRENT)
    assert _ids(lake)["e1"] == 1 and "a" not in lake.dump()  # in the history only
    lake.write([first])  # the current state lacks the key, yet e1 is in the history
    scanned.clear()
    result = lake.apply()
    assert result.duplicates == 1 and scanned == [0]  # known from the pending file, no ID read
    assert _ids(lake) == Counter({"e0": 1, "e1": 1})
    assert lake.dump()["a"]["v"] == _s("1")


def test_a_dropped_current_state_is_rebuilt_without_doubling_the_history(lake: Lake) -> None:
    first = event("INSERT", "a", 1, image={"v": _s("1")}, event_id="e1")
    lake.write([first])
    lake.apply()
    lake.catalog().purge_table("ddb.orders_table")  # a drop that leaves the files is refused
    lake.write([first, event("INSERT", "b", 2, image={"v": _s("2")}, event_id="e2")])
    lake.apply()
    assert _ids(lake) == Counter({"e1": 1, "e2": 1})
    assert set(lake.dump()) == {"a", "b"}


# -- the screen's own rule -------------------------------------------------------------------------


def _keyed(ev: ChangeEvent) -> Keyed:
    return Keyed(key_string(ev.keys), version_of(ev), ev)


def test_the_screen_is_off_when_a_file_the_history_applied_is_out_of_reach() -> None:
    hist = AppliedLog(files=frozenset({"raw/t/2025/11/28/08/f1.gz"}))
    batch = [(_keyed(event("INSERT", "a", 1, event_id="e1")), "raw/t/2025/11/28/09/f2.gz")]
    # f1 is applied to the history only, and not in this batch: its events are not at hand.
    assert seen.screen(hist, AppliedLog(), ["raw/t/2025/11/28/09/f2.gz"], batch, [], {}) is None
    # Hours folded in the history but not in the current state: their files cannot be listed.
    assert seen.screen(AppliedLog(before_hour="2025/11/28/09"), AppliedLog(), [], [], [], {}) is None
    # A file the history holds by a folded hour, reopened in the current state only (a crash fell
    # between the commits that folded it again), and left out of this batch.
    f0 = "raw/t/2025/11/27/08/f0.gz"
    listing = [f0, "raw/t/2025/11/28/09/f2.gz"]
    folded = AppliedLog(before_hour="2025/11/28/00")
    reopened = AppliedLog(before_hour="2025/11/28/00", reopened=frozenset({"2025/11/27"}))
    assert folded.contains(f0) and not reopened.contains(f0)
    batch2 = [(_keyed(event("INSERT", "b", 2, event_id="e2")), listing[1])]
    assert seen.screen(folded, reopened, [listing[1]], batch2, [], {}) is not None  # without the listing
    assert seen.screen(folded, reopened, [listing[1]], batch2, [], {}, None, listing) is None
    assert seen.screen(folded, reopened, listing, batch2, [], {}, None, listing) is not None  # f0 at hand


def test_the_screen_holds_the_events_of_files_applied_to_the_history_only() -> None:
    f1, f2 = "raw/t/2025/11/28/08/f1.gz", "raw/t/2025/11/28/09/f2.gz"
    hist = AppliedLog(files=frozenset({f1}))
    e1, e2 = _keyed(event("INSERT", "a", 1, event_id="e1")), _keyed(event("INSERT", "b", 2, event_id="e2"))
    screen = seen.screen(hist, AppliedLog(), [f1, f2], [(e1, f1), (e2, f2)], [e1.key, e2.key], {})
    assert screen is not None and screen.pending_ids == {"e1"}
    # Applied to both tables: nothing pending, and the rule rests on the current state's keys.
    both = AppliedLog(files=frozenset({f1}))
    screen = seen.screen(hist, both, [f2], [(e2, f2)], [e2.key], {})
    assert screen is not None and screen.pending_ids == frozenset()


def test_an_event_whose_key_the_screen_never_looked_up_is_looked_for(lake: Lake) -> None:
    first = event("INSERT", "a", 1, image={"v": _s("1")}, event_id="e1")
    lake.write([first])
    lake.apply()
    hist = lake.catalog().load_table("ddb.orders_table_changes")
    blind = seen.Screen(looked_up=frozenset(), present={}, pending_ids=frozenset())
    assert seen.known_ids(hist, [_keyed(first)], blind) == {"e1"}
    # The same event with its key looked up and absent, and no REMOVE: cleared unread.
    looked = seen.Screen(looked_up=frozenset({_keyed(first).key}), present={}, pending_ids=frozenset())
    assert seen.known_ids(hist, [_keyed(first)], looked) == set()
