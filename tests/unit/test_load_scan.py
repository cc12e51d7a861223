"""The Scan loader against an in-memory table: resume, crash safety, throttling, stop, progress."""

from __future__ import annotations

import io
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from ddblake.changes.model import ChangeEvent
from ddblake.errors import TransientError
from ddblake.lake.rawlog import iter_raw_files
from ddblake.lake.storage import Storage
from ddblake.load import scan as scan_module
from ddblake.load.config import LoadConfig
from ddblake.load.handoff import has_finished_load
from ddblake.load.scan import LoadResult, ScanLoad
from ddblake.load.state import SCAN_STATE, LoadState, StateSaver, list_loads, read_state
from ddblake.load.table import Page, TableInfo
from ddblake.progress import NoProgress, Progress, format_eta


class SimulatedCrash(BaseException):
    """Not an Exception: nothing may catch it and tidy up, like a kill."""


class FakeReader:
    """A table of ``count`` items split into segments by key hash, served ``page`` items at a time."""

    where = "endpoint memory"

    def __init__(self, count: int, page: int = 7, throttle_every: int = 0) -> None:
        self.items = [{"pk": {"S": f"k{i:05d}"}, "v": {"N": str(i)}} for i in range(count)]
        self.page = page
        self.calls: Counter[int] = Counter()
        self.throttle_every = throttle_every
        self.total_calls = 0
        self.lock = threading.Lock()

    def describe(self) -> TableInfo:
        return TableInfo(
            "tbl", "arn:aws:dynamodb:us-east-1:111111111111:table/tbl", ("pk",), len(self.items), 0, 0, True
        )

    def scan_page(
        self, *, segment: int, total_segments: int, start_key: Any, consistent: bool, limit: int | None = None
    ) -> Page:
        with self.lock:
            self.total_calls += 1
            if self.throttle_every and self.total_calls % self.throttle_every == 0:
                raise TransientError("Scan throttled: ProvisionedThroughputExceededException")
            self.calls[segment] += 1
        mine = [it for i, it in enumerate(self.items) if i % total_segments == segment]
        start = 0
        if start_key is not None:
            start = next(i for i, it in enumerate(mine) if it["pk"] == start_key["pk"]) + 1
        chunk = mine[start : start + self.page]
        last = {"pk": chunk[-1]["pk"]} if chunk and start + self.page < len(mine) else None
        return Page(items=chunk, last_key=last, consumed=0.5 * len(chunk))


def _config(lake: Path, **kw: Any) -> LoadConfig:
    return LoadConfig(table="tbl", lake=str(lake), **kw)


def _events(storage: Storage) -> list[ChangeEvent]:
    out = []
    for content in iter_raw_files(storage, "tbl"):
        assert content.error is None
        out.extend(ChangeEvent.from_line(line) for line in content.lines)
    return out


def _load(reader: FakeReader, lake: Path, state_seconds: float = 1.0, **kw: Any) -> LoadResult:
    storage = Storage.from_uri(str(lake))
    load = ScanLoad(
        _config(lake, **kw), reader, storage, progress=NoProgress("tbl"), state_seconds=state_seconds
    )  # type: ignore[arg-type]
    return load.run()


def test_every_item_once_as_a_load_row(tmp_path: Path) -> None:
    reader = FakeReader(100)
    result = _load(reader, tmp_path, segments=4, workers=3)
    storage = Storage.from_uri(str(tmp_path))
    events = _events(storage)
    assert sorted(e.new_image["pk"]["S"] for e in events if e.new_image) == [f"k{i:05d}" for i in range(100)]
    assert len({e.event_id for e in events}) == 100
    assert {e.op for e in events} == {"LOAD"} and {e.source for e in events} == {"scan"}
    assert {e.event_time_us for e in events} == {result.version_time_us}
    assert result.items == 100 and result.parts_total == 4 and not result.resumed
    state = read_state(storage, "tbl", SCAN_STATE)
    assert state is not None and state.finished_us is not None and state.items == 100
    assert has_finished_load(storage, "tbl")


def test_given_start_time_sets_the_version(tmp_path: Path) -> None:
    storage = Storage.from_uri(str(tmp_path))
    load = ScanLoad(
        _config(tmp_path, segments=2),
        FakeReader(10),
        storage,
        progress=NoProgress("tbl"),  # type: ignore[arg-type]
        started_at_us=1_700_000_000_500_000,
    )
    result = load.run()
    # floor to the minute (1_699_999_980 s), less a minute of skew, less 1 µs (ddblake.load.rows)
    assert result.version_time_us == 1_699_999_919_999_999 and result.started_us == 1_700_000_000_500_000


def test_crash_then_rerun_skips_finished_segments_and_resumes_within_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = FakeReader(200, page=5)
    real = scan_module.write_state
    writes: list[int] = []

    def crash_on(storage: Storage, state: Any) -> None:
        writes.append(1)
        if len(writes) == 14:  # initial write, 10 pages of segment 0, 2 of segment 1, then the 3rd
            raise SimulatedCrash  # the raw file of this checkpoint is written, its state is not
        real(storage, state)

    monkeypatch.setattr(scan_module, "write_state", crash_on)
    # one worker, a tiny buffer: a raw file and a state write after every page
    with pytest.raises(SimulatedCrash):
        _load(reader, tmp_path, segments=4, workers=1, buffer_bytes=10, state_seconds=0)
    storage = Storage.from_uri(str(tmp_path))
    before = read_state(storage, "tbl", SCAN_STATE)
    assert before is not None and before.finished_us is None
    done = before.done_parts
    assert done, "some segments finished before the crash"
    in_progress = {k: p for k, p in before.parts.items() if not p.done and p.last_key}
    assert in_progress, "a segment was in the middle"
    monkeypatch.setattr(scan_module, "write_state", real)
    calls_before = Counter(reader.calls)
    rerun = _load(reader, tmp_path, segments=99, workers=2, buffer_bytes=10)
    assert rerun.resumed and rerun.parts_skipped == len(done) and rerun.parts_total == 4
    assert not done & set(rerun.parts_read), "finished segments are not read again"
    for seg in done:
        assert reader.calls[int(seg)] == calls_before[int(seg)]
    seg, part = next(iter(in_progress.items()))
    assert part.pages == 2
    assert reader.calls[int(seg)] - calls_before[int(seg)] == 10 - 2, "resumed after its last key"
    events = _events(storage)
    counts = Counter(e.event_id for e in events)
    assert len(counts) == 200, "every item, under one deterministic ID"
    assert sum(counts.values()) - 200 == 5, "only the page whose state write was lost repeats"
    assert rerun.load_id == before.load_id and rerun.version_time_us == before.version_time_us


def test_state_is_written_at_most_once_an_interval_and_always_at_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = scan_module.write_state
    written: list[tuple[int, int, bool]] = []

    def counting(storage: Storage, state: Any) -> None:
        written.append((state.items, state.done_count, state.finished_us is not None))
        real(storage, state)

    monkeypatch.setattr(scan_module, "write_state", counting)
    # a raw file after every page (40 of them), on a clock that never reaches the interval
    result = _load(
        FakeReader(200, page=5), tmp_path, segments=4, workers=2, buffer_bytes=10, state_seconds=3600
    )
    assert result.files == 40 and result.items == 200
    assert written[0] == (0, 0, False) and written[-1] == (200, 4, True), (
        "the first record, the finished load"
    )
    between = [done for _, done, _ in written[1:-1]]
    assert between == sorted(set(between)) and 1 <= len(between) <= 4, (
        "in between, a write only when a (multi-page) segment finishes, never per raw file"
    )


def test_a_stopped_load_records_everything_it_wrote(tmp_path: Path) -> None:
    storage = Storage.from_uri(str(tmp_path))
    stop = threading.Event()

    class Stopping(FakeReader):
        def scan_page(self, **kw: Any) -> Page:
            page = super().scan_page(**kw)
            if self.total_calls == 6:
                stop.set()
            return page

    with pytest.raises(TransientError, match="run the same command again"):
        ScanLoad(
            _config(tmp_path, segments=2, workers=1, buffer_bytes=10),
            Stopping(60, page=5),
            storage,  # type: ignore[arg-type]
            progress=NoProgress("tbl"),
            stop=stop,
            state_seconds=3600,
        ).run()
    state = read_state(storage, "tbl", SCAN_STATE)
    written = sum(1 for e in _events(storage))
    assert state is not None and state.items == written == 30, "every written row is recorded"
    rerun = _load(FakeReader(60, page=5), tmp_path, segments=2)
    assert rerun.items == 30 and len(_events(storage)) == 60, "nothing written twice"


def test_state_saver_copies_under_the_lock_and_skips_within_the_interval(tmp_path: Path) -> None:
    storage = Storage.from_uri(str(tmp_path))
    state = LoadState(
        table="tbl", name="scan", kind="scan", load_id="L", started_us=1, version_time_us=0, total_parts=2
    )
    now = [0.0]
    saved: list[LoadState] = []
    lock = threading.Lock()
    saver = StateSaver(
        storage, state, lock, interval=1.0, write=lambda _s, st: saved.append(st), clock=lambda: now[0]
    )
    saver.save()
    assert saved == [], "nothing changed yet"
    with lock:
        state.part("0").items = 5
        saver.changed()
    saver.save()
    assert saved == [], "within the interval"
    now[0] = 1.5
    saver.save()
    assert len(saved) == 1 and saved[0].items == 5 and saved[0] is not state
    state.part("0").items = 9  # a later change does not alter what was handed to the writer
    assert saved[0].parts["0"].items == 5
    saver.save()
    assert len(saved) == 1, "no change since"
    saver.save(force=True)
    assert len(saved) == 2 and saved[1].items == 9


def test_throttling_is_retried_with_backoff(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    delays: list[float] = []
    monkeypatch.setattr(scan_module, "backoff_delay", lambda attempt, rng=None: delays.append(attempt) or 0.0)
    result = _load(FakeReader(60, page=4, throttle_every=3), tmp_path, segments=2, workers=1)
    assert result.items == 60 and delays and set(delays) == {0}


def test_persistent_throttling_fails_transiently_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scan_module, "backoff_delay", lambda attempt, rng=None: 0.0)
    with pytest.raises(TransientError, match="throttled"):
        _load(FakeReader(20, throttle_every=1), tmp_path, segments=2, workers=1)
    assert _load(FakeReader(20), tmp_path, segments=2).resumed


def test_stop_keeps_what_was_read_and_rerun_finishes(tmp_path: Path) -> None:
    storage = Storage.from_uri(str(tmp_path))
    stop = threading.Event()

    class Stopping(FakeReader):
        def scan_page(self, **kw: Any) -> Page:
            page = super().scan_page(**kw)
            if self.total_calls == 3:
                stop.set()
            return page

    with pytest.raises(TransientError, match="run the same command again"):
        ScanLoad(
            _config(tmp_path, segments=3, workers=1),
            Stopping(60, page=5),
            storage,  # type: ignore[arg-type]
            progress=NoProgress("tbl"),
            stop=stop,
        ).run()
    state = read_state(storage, "tbl", SCAN_STATE)
    assert state is not None and 0 < state.items < 60
    rerun = _load(FakeReader(60, page=5), tmp_path, segments=3)
    assert rerun.items == 60 - state.items
    assert len({e.event_id for e in _events(storage)}) == 60


def test_a_resumed_load_keeps_the_reads_it_started_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[bool] = []

    class Recording(FakeReader):
        def scan_page(self, **kw: Any) -> Page:
            seen.append(kw["consistent"])
            return super().scan_page(**kw)

    monkeypatch.setattr(scan_module, "backoff_delay", lambda attempt, rng=None: 0.0)
    with pytest.raises(TransientError, match="throttled"):
        _load(FakeReader(20, throttle_every=1), tmp_path, segments=2, workers=1, consistent=True)
    with caplog.at_level("WARNING", logger="ddblake.load.scan"):
        rerun = _load(Recording(20), tmp_path, segments=2)  # --consistent left out this time
    assert rerun.resumed and rerun.items == 20
    assert seen and set(seen) == {True}
    assert "strongly consistent; --consistent applies to new loads" in caplog.text
    fresh = _load(Recording(20), tmp_path, segments=2)  # a new load reads as told
    assert not fresh.resumed and seen[-1] is False


def test_a_finished_load_is_kept_and_a_new_one_starts(tmp_path: Path) -> None:
    first = _load(FakeReader(10), tmp_path, segments=2)
    second = _load(FakeReader(10), tmp_path, segments=2)
    assert second.load_id != first.load_id and not second.resumed
    names = sorted(s.name for s in list_loads(Storage.from_uri(str(tmp_path)), "tbl"))
    assert names == sorted(["scan", f"scan-{first.load_id}"])


def test_progress_lines_show_counts_rate_and_eta_only() -> None:
    now = [0.0]
    out = io.StringIO()
    progress = Progress("load t", 1000, stream=out, tty=False, interval=10, clock=lambda: now[0])
    progress.set_parts(4)
    now[0] = 5.0
    progress.add(100)  # before the interval: nothing drawn
    assert out.getvalue() == ""
    now[0] = 10.0
    progress.add(100, part_done=True)
    assert out.getvalue() == "load t: 200 / ~1,000 items (20%) 20 items/s, ETA 0:40 parts 1/4\n"
    tty = io.StringIO()
    live = Progress("load t", None, stream=tty, tty=True, clock=lambda: now[0])
    now[0] = 20.0
    live.add(5)
    live.finish()
    assert (
        tty.getvalue().startswith("\r\x1b[K")
        and tty.getvalue().endswith("\n")
        and "5 items" in tty.getvalue()
    )
    assert format_eta(3725) == "1:02:05" and format_eta(None) == "?" and format_eta(65) == "1:05"


def test_table_reader_without_the_raw_body_converts_parsed_items_back() -> None:
    import boto3
    from botocore.stub import Stubber

    from ddblake.errors import NotFoundError
    from ddblake.load.table import TableReader

    creds = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    client = boto3.client("dynamodb", region_name="eu-west-1", **creds)
    reader = TableReader("tbl", client)
    with Stubber(client) as stub:
        stub.add_response(
            "describe_table",
            {
                "Table": {
                    "TableName": "tbl",
                    "TableArn": "arn:aws:dynamodb:eu-west-1:111111111111:table/tbl",
                    "KeySchema": [
                        {"AttributeName": "sk", "KeyType": "RANGE"},
                        {"AttributeName": "pk", "KeyType": "HASH"},
                    ],
                    "ItemCount": 10,
                    "TableSizeBytes": 2000,
                    "ProvisionedThroughput": {"ReadCapacityUnits": 40, "WriteCapacityUnits": 5},
                }
            },
        )
        stub.add_response(
            "scan",
            {
                "Items": [{"pk": {"B": b"\x00\x01"}, "sk": {"N": "1"}, "bs": {"BS": [b"\xff"]}}],
                "LastEvaluatedKey": {"pk": {"B": b"\x00\x01"}, "sk": {"N": "1"}},
                "ConsumedCapacity": {"TableName": "tbl", "CapacityUnits": 0.5},
            },
        )
        stub.add_client_error("scan", service_error_code="ResourceNotFoundException", service_message="gone")
        info = reader.describe()
        page = reader.scan_page(segment=0, total_segments=1, start_key=None, consistent=False)
        with pytest.raises(NotFoundError, match="table 'tbl' not found"):
            reader.scan_page(segment=0, total_segments=1, start_key=None, consistent=False)
    assert info.key_names == ("pk", "sk") and info.provisioned_rcu == 40 and not info.on_demand
    assert info.avg_item_bytes == 200
    assert page.items == [{"pk": {"B": "AAE="}, "sk": {"N": "1"}, "bs": {"BS": ["/w=="]}}]
    assert page.last_key == {"pk": {"B": "AAE="}, "sk": {"N": "1"}} and page.consumed == 0.5
    assert page.texts is None


def test_pages_are_capped_against_dynamodb_local_only(tmp_path: Path) -> None:
    from types import SimpleNamespace

    limits: list[int | None] = []

    class Recording(FakeReader):
        def __init__(self, endpoint: str) -> None:
            super().__init__(20)
            self.client = SimpleNamespace(meta=SimpleNamespace(endpoint_url=endpoint))

        def scan_page(self, **kw: Any) -> Page:
            limits.append(kw.get("limit"))
            return super().scan_page(**kw)

    seen = []
    for endpoint, extra in (
        ("http://127.0.0.1:8000", {}),
        ("https://dynamodb.eu-west-1.amazonaws.com", {}),
        ("https://dynamodb.eu-west-1.amazonaws.com", {"page_items": 50}),
    ):
        limits.clear()
        _load(Recording(endpoint), tmp_path / str(len(seen)), segments=1, **extra)
        seen.append(set(limits))
    assert seen == [{1000}, {None}, {50}]
