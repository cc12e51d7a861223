"""An incremental export loaded after a full one closes the gap to the stream only if its window joins on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_load_export import _load, make_export

from ddblake.errors import TerminalError
from ddblake.lake.storage import Storage
from ddblake.load.handoff import check_first_capture
from ddblake.load.rows import parse_export_time

HOUR = 3_600_000_000
FULL_TIME = "2026-11-28T08:00:00.000Z"


def _retime(folder: Path, export_id: str, **times: str) -> None:
    summary = json.loads((folder / "manifest-summary.json").read_text())
    summary["exportArn"] = summary["exportArn"].rsplit("/", 1)[0] + "/" + export_id
    summary.update(times)
    (folder / "manifest-summary.json").write_text(json.dumps(summary))


def _incremental(root: Path, export_id: str, start: str, end: str, written_us: int) -> Path:
    line = {
        "Metadata": {"WriteTimestampMicros": {"N": str(written_us)}},
        "Keys": {"id": {"S": "b"}},
        "NewImage": {"id": {"S": "b"}},
    }
    folder = make_export(root, [[line]], incremental=True)
    _retime(folder, export_id, exportFromTime=start, exportToTime=end)
    return folder


@pytest.mark.parametrize(
    ("start", "joins"), [("2026-11-28T13:00:00.000Z", False), ("2026-11-28T08:00:00.000Z", True)]
)
def test_an_incremental_export_starting_after_the_full_one_leaves_the_first_capture_refused(
    tmp_path: Path, start: str, joins: bool
) -> None:
    lake = tmp_path / "lake"
    full = make_export(tmp_path / "full", [[{"Item": {"id": {"S": "a"}}}]])
    _retime(full, "01-full", exportTime=FULL_TIME)
    _load(full, lake)
    t_full = parse_export_time(FULL_TIME)
    now = t_full + 30 * HOUR
    storage = Storage.from_uri(str(lake))
    with pytest.raises(TerminalError, match="more than 23 hours ago"):  # the full load alone: too old
        check_first_capture(storage, "example-ddb-table", now)
    _load(
        _incremental(tmp_path / "incr", "02-incr", start, "2026-11-29T13:00:00.000Z", t_full + 20 * HOUR),
        lake,
    )
    if joins:
        check_first_capture(storage, "example-ddb-table", now)  # 08:00 on to 13:00 the next day: covered
        return
    # 08:00 to 13:00 are in neither the full export nor the incremental one.
    with pytest.raises(TerminalError) as refused:
        check_first_capture(storage, "example-ddb-table", now)
    message = str(refused.value)
    assert "2026-11-28 08:00:00 UTC" in message
    assert "incremental export 02-incr was loaded but its window starts at 2026-11-28 13:00:00 UTC" in message
