"""A Glue connector load that failed midway and is run again: the history holds every item once.

The rows are the Glue script's own (``row_line``), written to a file lake as its ``_put_files``
writes them to S3, and applied by ddblake's apply; only Spark and the connector are left out.
"""

from __future__ import annotations

import json
from typing import Any

from lake_helpers import TABLE, Lake
from lake_helpers import lake as lake  # noqa: F401  (fixture)

from ddblake.gluejob import job
from ddblake.gluejob import rules as glue_rules
from ddblake.load.state import GLUE_CONNECTOR, list_loads, state_path

HOUR_US = 3_600_000_000


def _item(i: int) -> dict[str, Any]:
    return {"pk": {"S": f"k{i:03d}"}, "n": {"N": str(i)}}


def _run(lake: Lake, record: dict[str, Any], items: range, written_us: int) -> None:
    rules = glue_rules.Rules(
        TABLE, record["load_id"], ("pk",), glue_rules.version_time_from_us(record["started_us"]), export=False
    )
    lines = [glue_rules.row_line(_item(i), rules, written_us) for i in items]
    for n, batch in enumerate(glue_rules.chunks(lines, max_bytes=2_000)):
        lake.storage.write_atomic(
            glue_rules.raw_file_key("", TABLE, written_us + n), glue_rules.gzip_lines(batch)
        )


def test_a_rerun_goes_on_with_the_failed_runs_load_and_nothing_is_twice(lake: Lake) -> None:
    t1 = 1_764_316_800_000_000
    first = job.connector_run(None, None, "jr_first", t1)
    _run(lake, first, range(40), t1 + 1_000)  # then the job fails: its record stays unfinished
    lake.apply()

    second = job.connector_run(first, None, "jr_second", t1 + HOUR_US)
    assert (second["load_id"], second["started_us"]) == ("jr_first", t1)
    _run(lake, second, range(100), t1 + HOUR_US)  # the connector exports the whole table again
    lake.apply()

    history = lake.history()
    assert len(history) == 100 and len({row["event_id"] for row in history}) == 100
    assert sorted(lake.dump()) == [f"k{i:03d}" for i in range(100)]


def test_connector_run_starts_a_new_load_after_a_finished_one_or_another_load_id() -> None:
    unfinished = {"load_id": "jr_1", "started_us": 5, "finished_us": None}
    assert job.connector_run(unfinished, "jr_1", "jr_2", 9)["started_us"] == 5  # the same load named
    finished = {**unfinished, "finished_us": 7}
    assert job.connector_run(finished, None, "jr_2", 9) == {
        "load_id": "jr_2",
        "started_us": 9,
        "finished_us": None,
    }
    assert job.connector_run(unfinished, "weekly", "jr_2", 9)["load_id"] == "weekly"  # another load
    assert job.connector_run({"load_id": 3}, None, "jr_2", 9)["load_id"] == "jr_2"  # unreadable: new
    assert job.connector_run([1, 2], None, "jr_2", 9)["load_id"] == "jr_2"  # type: ignore[arg-type]
    assert job.connector_state_key("lake/", TABLE) == f"lake/{state_path(TABLE, GLUE_CONNECTOR)}"
    assert job.connector_state_key("", TABLE) == state_path(TABLE, GLUE_CONNECTOR)


def test_the_run_record_is_not_taken_for_a_load_state(lake: Lake) -> None:
    record = job.connector_run(None, None, "jr_1", 5)
    lake.storage.write_atomic(job.connector_state_key("", TABLE), json.dumps(record).encode())
    assert list_loads(lake.storage, TABLE) == []
