"""Export rows are versioned to the second (AWS's clock on both sides), Scan loads to the minute.

``floor(t, 1 s) - 1 µs`` for an export row of time ``t`` (a full export's ``exportTime``, an
incremental row's write time): a stream change made at or after ``t`` is stamped at least
``floor(t, 1 s)`` and still outranks it, and a stream change of an earlier second no longer wins
over an incremental row written after it. Against DynamoDB Local (stream stamped to the minute)
export rows keep the minute rule, recorded in the load's state.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_load_export import _events, _load, make_export

from ddblake.changes.model import ChangeEvent
from ddblake.changes.resolve import keyed, version_of, winners
from ddblake.errors import TerminalError
from ddblake.gluejob import rules as glue_rules
from ddblake.lake.storage import Storage
from ddblake.load.config import LoadConfig
from ddblake.load.export import ExportManifest
from ddblake.load.export_rows import RowMaker
from ddblake.load.handoff import check_stream_follows_load
from ddblake.load.rows import export_version_from_us, version_time_from_us
from ddblake.load.service import export_versions
from ddblake.load.state import LoadState, list_loads, read_state, write_state

SECOND = 1_000_000
EIGHT = 1_795_852_800_000_000  # 2026-11-28 08:00:00 UTC
KEYS = {"id": {"S": "a"}}


def _manifest(incremental: bool, export_time_us: int | None = None) -> ExportManifest:
    return ExportManifest(
        uri="s3://b/AWSDynamoDB/E1",
        export_arn="arn:aws:dynamodb:us-east-1:1:table/tbl/export/E1",
        export_id="E1",
        table_arn="arn:aws:dynamodb:us-east-1:1:table/tbl",
        table_name="tbl",
        incremental=incremental,
        export_time_us=None if incremental else export_time_us,
        output_format="DYNAMODB_JSON",
        output_view="NEW_AND_OLD_IMAGES" if incremental else None,
        item_count=1,
        files=(),
    )


def _incremental_row(write_us: int, versions: str = "second") -> ChangeEvent:
    line = {
        "Metadata": {"WriteTimestampMicros": {"N": str(write_us)}},
        "Keys": KEYS,
        "NewImage": {**KEYS, "v": {"S": "exported"}},
        "OldImage": {**KEYS, "v": {"S": "before"}},
    }
    return RowMaker(_manifest(True), "tbl", None, versions).item_to_event(line, 0)


def _full_row(export_time_us: int, versions: str = "second") -> ChangeEvent:
    item = {**KEYS, "v": {"S": "exported"}}
    return RowMaker(_manifest(False, export_time_us), "tbl", ("id",), versions).item_to_event(
        {"Item": item}, 0
    )


def _stream_change(
    made_us: int, seq: str = "111100000000012345678901", *, stamp_us: int = SECOND
) -> ChangeEvent:
    """A stream change made at ``made_us``, stamped rounded down (to the second on AWS; DynamoDB
    Local: ``stamp_us`` a minute, with its small sequence numbers)."""
    stamped = made_us // stamp_us * stamp_us
    new = {**KEYS, "v": {"S": f"changed at {made_us}"}}
    return ChangeEvent("MODIFY", "tbl", KEYS, new, None, f"ev-{seq}", stamped, seq, "streams", False, 0)


def _winner(*events: ChangeEvent) -> ChangeEvent:
    (resolved,) = winners(keyed(list(events))).values()
    return resolved.event


def test_export_rows_are_the_second_less_one_microsecond() -> None:
    assert export_version_from_us(EIGHT + 5_400_000) == EIGHT + 5 * SECOND - 1
    assert export_version_from_us(EIGHT) == EIGHT - 1
    assert export_version_from_us(EIGHT + 5_400_000, "minute") == version_time_from_us(EIGHT + 5_400_000)
    with pytest.raises(ValueError, match="export versions 'hour'"):
        export_version_from_us(EIGHT, "hour")
    assert _full_row(EIGHT + 5_400_000).event_time_us == EIGHT + 5 * SECOND - 1
    assert _full_row(EIGHT + 5_400_000).sequence == str(EIGHT + 5_400_000)
    row = _incremental_row(EIGHT + 5_400_000)
    assert (row.event_time_us, row.sequence) == (EIGHT + 5 * SECOND - 1, str(EIGHT + 5_400_000))


def test_an_incremental_row_written_at_08_00_05_beats_a_stream_change_at_07_59_30() -> None:
    row = _incremental_row(EIGHT + 5 * SECOND)
    older = _stream_change(EIGHT - 30 * SECOND)
    assert _winner(row, older) is row
    # The minute rule (still the Scan load's) let the older change win: 07:59:30 > 07:58:59.999999.
    assert _winner(_incremental_row(EIGHT + 5 * SECOND, "minute"), older) is older


@pytest.mark.parametrize("after_us", [0, 1, 599_999, 600_000, SECOND, 59 * SECOND])
def test_a_stream_change_at_or_after_the_export_time_still_beats_the_export_row(after_us: int) -> None:
    t = EIGHT + 5_400_000  # 08:00:05.4
    for row in (_full_row(t), _incremental_row(t)):
        change = _stream_change(t + after_us)
        assert _winner(row, change) is change
        kinesis = ChangeEvent(  # Kinesis: millisecond stamps and no sequence number
            "MODIFY",
            "tbl",
            KEYS,
            change.new_image,
            None,
            "k-1",
            (t + after_us) // 1000 * 1000,
            None,
            "kinesis",
            False,
            0,
        )
        assert _winner(row, kinesis) is kinesis


@given(
    t=st.integers(min_value=EIGHT - 10**12, max_value=EIGHT + 10**12),
    after=st.integers(min_value=0, max_value=10**9),
    seq=st.sampled_from(["1", "000000000000000000019", "111100000000012345678901"]),
)
def test_any_change_made_at_or_after_t_outranks_the_row_of_t(t: int, after: int, seq: str) -> None:
    for row in (_full_row(t), _incremental_row(t)):
        assert version_of(_stream_change(t + after, seq)) > version_of(row)
        # DynamoDB Local stamps to the minute: only the minute rule keeps its changes on top.
        local = _stream_change(t + after, seq, stamp_us=60 * SECOND)
        minute_row = _full_row(t, "minute") if row.op == "LOAD" else _incremental_row(t, "minute")
        assert version_of(local) > version_of(minute_row)


def test_a_stream_change_of_the_same_second_before_the_row_may_still_win() -> None:
    # Streams cannot say which of two changes of one second came first; the stream's change wins,
    # as it did before (harmless: the exported write is in the stream too, later in that second).
    row = _incremental_row(EIGHT + 5_900_000)
    change = _stream_change(EIGHT + 5_100_000)
    assert _winner(row, change) is change


def test_the_glue_job_versions_export_rows_as_ddblake_load_does() -> None:
    for t in (0, EIGHT, EIGHT + 5_400_000, EIGHT + 59_999_999):
        assert glue_rules.export_version_from_us(t) == export_version_from_us(t)
    full = {"Item": {**KEYS, "v": {"S": "exported"}}}
    rules = glue_rules.Rules(
        "tbl", "E1", ("id",), glue_rules.export_version_from_us(EIGHT + 5_400_000), seq=str(EIGHT + 5_400_000)
    )
    assert ChangeEvent.from_line(glue_rules.export_line(json.dumps(full), rules, 0)) == _full_row(
        EIGHT + 5_400_000
    )
    line = {
        "Metadata": {"WriteTimestampMicros": {"N": str(EIGHT + 5_400_000)}},
        "Keys": KEYS,
        "NewImage": KEYS,
    }
    inc = glue_rules.Rules("tbl", "E1", (), 0, incremental=True, view="NEW_AND_OLD_IMAGES")
    theirs = RowMaker(_manifest(True), "tbl", None).item_to_event(line, 0)
    assert ChangeEvent.from_line(glue_rules.export_line(json.dumps(line), inc, 0)) == theirs


def _clients(endpoint: str | None) -> Any:
    return SimpleNamespace(dynamodb=SimpleNamespace(meta=SimpleNamespace(endpoint_url=endpoint)))


def test_export_rows_keep_the_minute_rule_against_dynamodb_local(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL", "DDBLAKE_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    config = LoadConfig(table="t", lake="/l", from_export="/e")
    assert export_versions(config, None) == "second"
    assert (
        export_versions(LoadConfig(table="t", lake="/l", endpoint_url="http://localhost:8000"), None)
        == "minute"
    )
    assert export_versions(config, _clients("http://127.0.0.1:8000")) == "minute"
    assert export_versions(config, _clients("https://dynamodb.eu-west-1.amazonaws.com")) == "second"
    # Any endpoint not AWS's takes the minute: DynamoDB Local in a container, LocalStack, moto.
    for other in ("http://dynamodb-local:8000", "http://172.17.0.2:8000", "http://localstack:4566"):
        assert export_versions(config, _clients(other)) == "minute"
        assert export_versions(LoadConfig(table="t", lake="/l", endpoint_url=other), None) == "minute"
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://localhost:8000")
    assert export_versions(config, None) == "minute"


def test_a_profiles_endpoint_url_counts_as_the_endpoint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    profile = tmp_path / "config"
    profile.write_text("[default]\nregion = eu-west-1\nendpoint_url = http://localhost:8000\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(profile))
    config = LoadConfig(table="t", lake="/l", from_export="/e")
    assert export_versions(config, None) == "minute"  # boto3 would call DynamoDB Local
    profile.write_text("[default]\nregion = eu-west-1\n")
    assert export_versions(config, None) == "second"


def test_a_lake_with_an_export_load_to_the_minute_keeps_the_minute(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Rows of the two rules do not order: an older incremental write (to the second) would win
    # over a newer full export's rows (to the minute, by an older ddblake).
    for name in ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    storage = Storage.from_uri(str(tmp_path / "lake"))
    config = LoadConfig(table="t", lake=str(tmp_path / "lake"), from_export="/e")
    aws = _clients("https://dynamodb.eu-west-1.amazonaws.com")
    assert export_versions(config, aws, storage) == "second"
    state = _export_state(EIGHT)
    write_state(storage, state)  # no versions option: an older ddblake's, to the minute
    assert export_versions(config, aws, storage) == "minute"
    state.options["versions"] = "second"
    write_state(storage, state)
    assert export_versions(config, aws, storage) == "second"


def test_the_load_records_its_rule_and_a_resumed_load_keeps_it(tmp_path: Path) -> None:
    folder = make_export(tmp_path / "exp", [[{"Item": {"id": {"S": f"i{n}"}}}] for n in range(2)])
    second = _load(folder, tmp_path / "a")
    (state,) = list_loads(Storage.from_uri(str(tmp_path / "a")), "example-ddb-table")
    assert state.options["versions"] == "second" and state.version_time_us == second.version_time_us
    assert second.version_time_us == EIGHT - 1  # the sample's exportTime is 08:00:00.000
    assert {e.event_time_us for e in _events(tmp_path / "a")} == {EIGHT - 1}

    minute = _load(folder, tmp_path / "b", versions="minute")
    assert minute.version_time_us == version_time_from_us(EIGHT)
    assert {e.event_time_us for e in _events(tmp_path / "b")} == {version_time_from_us(EIGHT)}

    # A state an older ddblake left unfinished (no rule recorded: it versioned every export row to
    # the minute): the rerun keeps the minute, whatever it is asked, so repeated rows are identical.
    lake = Storage.from_uri(str(tmp_path / "c"))
    old = read_state(Storage.from_uri(str(tmp_path / "b")), "example-ddb-table", state.name)
    assert old is not None
    old.options.pop("versions")
    old.finished_us = None
    for part in old.parts.values():
        part.done, part.items = False, 0
    write_state(lake, old)
    _load(folder, tmp_path / "c")
    assert {e.event_time_us for e in _events(tmp_path / "c")} == {version_time_from_us(EIGHT)}


def _export_state(time_us: int) -> LoadState:
    return LoadState(
        table="t",
        name="export-E1",
        kind="export",
        load_id="E1",
        started_us=time_us,
        version_time_us=export_version_from_us(time_us),
        total_parts=1,
        finished_us=time_us + 60 * SECOND,
    )


def test_a_stream_enabled_half_a_minute_after_an_export_is_refused(tmp_path: Path) -> None:
    # Both times are AWS's: the minute of skew a Scan's start (this machine's clock) is allowed
    # would let through the changes of those 30 s, in neither the export nor the stream.
    storage = Storage.from_uri(str(tmp_path / "lake"))
    write_state(storage, _export_state(EIGHT))
    arn = "arn:aws:dynamodb:us-east-1:1:table/t/stream/2026-11-28T08:00:30.000"
    with pytest.raises(TerminalError, match=r"enabled at 2026-11-28 08:00:30 UTC, after the lake's load E1"):
        check_stream_follows_load(storage, "t", arn)
    # Any later label is a gap: both times are AWS's, to the millisecond.
    with pytest.raises(TerminalError, match=r"after the lake's load E1"):
        check_stream_follows_load(
            storage, "t", "arn:aws:dynamodb:us-east-1:1:table/t/stream/2026-11-28T08:00:00.300"
        )
    check_stream_follows_load(
        storage, "t", "arn:aws:dynamodb:us-east-1:1:table/t/stream/2026-11-28T08:00:00.000"
    )
    scan = LoadState(
        table="t", name="scan", kind="scan", load_id="L", started_us=EIGHT, version_time_us=0, total_parts=1
    )
    scan.finished_us = EIGHT + SECOND
    other = Storage.from_uri(str(tmp_path / "scan"))
    write_state(other, scan)
    check_stream_follows_load(other, "t", arn)  # a Scan's start keeps its minute


def test_sync_refuses_an_export_taken_half_a_minute_before_the_stream(tmp_path: Path) -> None:
    from ddblake.sync import check_stream_older_than_load

    folder = make_export(tmp_path / "exp", [[{"Item": {"id": {"S": "a"}}}]])  # taken 08:00:00.000
    storage = Storage.from_uri(str(tmp_path / "lake"))
    load = LoadConfig(table="example-ddb-table", lake=str(tmp_path / "lake"), from_export=str(folder))
    stream = "arn:aws:dynamodb:us-east-1:1:table/example-ddb-table/stream/"
    with pytest.raises(
        TerminalError, match=r"holds the table as of 2026-11-28 08:00:00 UTC, before its stream"
    ):
        check_stream_older_than_load(load, storage, stream + "2026-11-28T08:00:30.000")
    with pytest.raises(TerminalError, match=r"before its stream"):
        check_stream_older_than_load(load, storage, stream + "2026-11-28T08:00:00.300")
    check_stream_older_than_load(load, storage, stream + "2026-11-28T08:00:00.000")


def test_a_damaged_versions_option_is_refused_naming_the_state(tmp_path: Path) -> None:
    folder = make_export(tmp_path / "exp", [[{"Item": {"id": {"S": "a"}}}]])
    _load(folder, tmp_path / "a")
    lake = Storage.from_uri(str(tmp_path / "a"))
    (state,) = list_loads(lake, "example-ddb-table")
    state.options["versions"] = "Second"
    state.finished_us = None
    write_state(lake, state)
    with pytest.raises(
        TerminalError, match=r"load state .*export-.*\.json of table 'example-ddb-table' is damaged"
    ):
        _load(folder, tmp_path / "a")
