"""Two applies on a table whose current state does not exist yet: the one whose batch began before
the other created it (and committed a newer change) starts its batch again, deciding against that
table, instead of stopping with a message that says to delete the live table's folder, or
committing over it as if it were empty."""

from __future__ import annotations

from typing import Any

import pytest
from lake_helpers import TABLE, Lake, event
from lake_helpers import lake as lake  # noqa: F401  (fixture)
from pyiceberg.exceptions import CommitFailedException

from ddblake.lake import layout, service, tables
from ddblake.lake.apply import Applier, ApplyConfig


def _other_apply(lake: Lake, config: ApplyConfig) -> None:
    """A second apply, mid-batch of the first: a newer change of the same item, table created."""
    lake.write([event("MODIFY", "a", 9, image={"v": {"N": "9"}})])
    Applier(config, storage=lake.storage).run_once()
    assert lake.dump()["a"]["v"] == {"N": "9"}


def test_an_apply_whose_table_another_created_meanwhile_starts_its_batch_again(lake: Lake) -> None:
    lake.write([event("INSERT", "a", 1, image={"v": {"N": "1"}})])
    config = ApplyConfig.build(table=TABLE, lake=lake.config, once=True)
    first = Applier(config, storage=lake.storage)
    real = first._commit_current
    raced = []

    def racing(*args: Any, **kwargs: Any) -> Any:
        if not raced:
            raced.append(True)
            _other_apply(lake, config)
        return real(*args, **kwargs)

    first._commit_current = racing  # type: ignore[method-assign]
    result = service._run_once_racing(first, TABLE, None, None)
    assert raced and result is not None
    assert lake.dump()["a"]["v"] == {"N": "9"}  # the newer change stands
    ids = [h["event_id"] for h in lake.history()]
    assert len(ids) == 2 and len(set(ids)) == 2  # each change once in the history


def test_a_table_created_with_data_between_the_check_and_the_create_is_not_written_as_empty(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The narrower window: the folder check passed, then the other apply created the table and
    committed; the create finds it there with data and the batch starts again (it used to load it
    and commit onto it with decisions made for an empty table: a@1 over a@9)."""
    lake.write([event("INSERT", "a", 1, image={"v": {"N": "1"}})])
    config = ApplyConfig.build(table=TABLE, lake=lake.config, once=True)
    real = layout.create_current
    raced = []

    def racing(*args: Any, **kwargs: Any) -> Any:
        if not raced:
            raced.append(True)
            monkeypatch.setattr(tables, "create_current", real)  # the other apply creates as usual
            _other_apply(lake, config)
            monkeypatch.setattr(tables, "create_current", racing)
        return real(*args, **kwargs)

    monkeypatch.setattr(tables, "create_current", racing)
    service._run_once_racing(Applier(config, storage=lake.storage), TABLE, None, None)
    assert raced
    assert lake.dump()["a"]["v"] == {"N": "9"}


def _losing(applier: Applier, call: int) -> list[int]:
    """Make the ``call``-th current-state commit of ``applier`` lose a race (another writer's
    commit landed first); returns the list of calls made so far."""
    real = applier._commit_current
    calls: list[int] = []

    def losing(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == call:
            raise CommitFailedException("another writer committed first")
        return real(*args, **kwargs)

    applier._commit_current = losing  # type: ignore[method-assign]
    return calls


def test_records_set_aside_by_a_batch_that_lost_its_race_are_counted_and_said_once(
    lake: Lake, caplog: pytest.LogCaptureFixture
) -> None:
    """The history commit (which sets the bad lines aside and counts them) landed, the current
    state's lost a race: the batch that completes the files said nothing of them (its history had
    none left), though docs/lake.md says every record set aside is said at WARNING."""
    lake.write([event("INSERT", "a", 1, image={"v": {"N": "1"}})], lines=[b"not json\n", b"{}\n"])
    config = ApplyConfig.build(table=TABLE, lake=lake.config, once=True)
    applier = Applier(config, storage=lake.storage)
    calls = _losing(applier, 1)
    result = service._run_once_racing(applier, TABLE, None, None)
    assert len(calls) == 2 and result.quarantined == 2
    service.warn_quarantined(applier, result)
    assert "2 record(s) quarantined" in caplog.text
    assert (
        lake.catalog().load_table("ddb.orders_table_changes").properties["ddblake.quarantined-total"] == "2"
    )


def test_counts_of_earlier_batches_of_a_run_whose_later_batch_lost_a_race_are_kept(lake: Lake) -> None:
    """Batch one sets two records aside and commits; batch two loses its race, and run_apply runs
    again: the counts of batch one belong to the run that completes."""
    lake.write([event("INSERT", "a", 1, image={"v": {"N": "1"}})], lines=[b"not json\n", b"{}\n"])
    lake.write([event("INSERT", "b", 2, image={"v": {"N": "2"}})])
    config = ApplyConfig.build(table=TABLE, lake=lake.config, once=True, max_files=1)
    applier = Applier(config, storage=lake.storage)
    calls = _losing(applier, 2)
    result = service._run_once_racing(applier, TABLE, None, None)
    assert len(calls) == 3 and (result.quarantined, result.files, result.events) == (2, 2, 2)
    assert sorted(lake.dump()) == ["a", "b"]
