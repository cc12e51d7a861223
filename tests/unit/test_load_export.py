"""Export folders: manifests checked before anything is written, full/incremental/ION rows, resume."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from ddblake.changes.model import ChangeEvent
from ddblake.changes.resolve import version_of
from ddblake.errors import ConfigError, NotFoundError, TerminalError, TransientError
from ddblake.lake.rawlog import iter_raw_files
from ddblake.lake.storage import Storage
from ddblake.load import LoadConfig, export_load, export_parts
from ddblake.load import service as load_service
from ddblake.load.export import CorruptExportError, DataFile, ExportFolder, read_manifest, verify_export
from ddblake.load.export_load import ExportLoad
from ddblake.load.export_parts import DEFAULT_MAX_WORKERS, PARALLEL_MIN_ITEMS, plan_workers
from ddblake.load.rows import export_event_id, export_version_from_us
from ddblake.load.state import PartState, list_loads
from ddblake.progress import NoProgress

REPO = Path(__file__).resolve().parents[2]
SAMPLE_EXPORT = REPO / "tests" / "events" / "export"
"""A copy of shared/formats/export/ (AWS's sample export: DYNAMODB_JSON, two items in one file)."""
EXPORT_ID = "01764316800000-a1b2c3d4"
EXPORT_TIME = "2026-11-28T08:00:00.000Z"


def _item(i: int) -> dict[str, Any]:
    return {
        "id": {"S": f"id-{i}"},
        "name": {"S": "Zoë" if i % 2 else ""},
        "n": {"N": "12.50"},
        "b": {"B": "AAEC"},
        "ss": {"SS": ["a", "b"]},
        "m": {"M": {"ok": {"BOOL": True}, "nil": {"NULL": True}, "l": {"L": [{"N": "1"}, {"M": {}}]}}},
    }


def make_export(
    root: Path,
    files: Sequence[Sequence[Any]],
    *,
    incremental: bool = False,
    fmt: str = "DYNAMODB_JSON",
    table: str = "example-ddb-table",
    raw_lines: bool = False,
    shared_data: bool = False,
    kms: bool = False,
) -> Path:
    """An export folder as DynamoDB writes it: data files plus both manifests with true checksums.

    ``shared_data``: data files in ``AWSDynamoDB/data/`` beside the export folder, as incremental
    exports may have them. ``kms``: ETags as S3 gives objects encrypted with SSE-KMS (not the MD5).
    """
    folder = root / "AWSDynamoDB" / EXPORT_ID
    data_dir = "AWSDynamoDB/data" if shared_data else f"AWSDynamoDB/{EXPORT_ID}/data"
    (folder / "data").mkdir(parents=True)
    (root / data_dir).mkdir(parents=True, exist_ok=True)
    entries = []
    for n, lines in enumerate(files):
        if raw_lines:
            payload = b"".join(line if isinstance(line, bytes) else line.encode() for line in lines)
        else:
            payload = b"".join(json.dumps(obj).encode() + b"\n" for obj in lines)
        data = gzip.compress(payload)
        key = f"{data_dir}/file{n:02d}.json.gz"
        (root / key).write_bytes(data)
        digest = hashlib.md5(data, usedforsecurity=False).digest()
        entries.append(
            {
                "itemCount": len(lines),
                "md5Checksum": base64.b64encode(digest).decode(),
                "etag": hashlib.sha256(data).hexdigest()[:32] if kms else digest.hex(),
                "dataFileS3Key": key,
            }
        )
    (folder / "manifest-files.json").write_text("".join(json.dumps(e) + "\n" for e in entries))
    summary: dict[str, Any] = {
        "version": "2020-06-30",
        "exportArn": f"arn:aws:dynamodb:us-east-1:111111111111:table/{table}/export/{EXPORT_ID}",
        "tableArn": f"arn:aws:dynamodb:us-east-1:111111111111:table/{table}",
        "exportTime": EXPORT_TIME,
        "manifestFilesS3Key": f"AWSDynamoDB/{EXPORT_ID}/manifest-files.json",
        "itemCount": sum(len(f) for f in files),
        "outputFormat": fmt,
    }
    if incremental:
        summary.update(
            exportType="INCREMENTAL_EXPORT",
            exportFromTime="2026-11-28T07:00:00Z",
            exportToTime=EXPORT_TIME,
            outputView="NEW_AND_OLD_IMAGES",
        )
        del summary["exportTime"]
    (folder / "manifest-summary.json").write_text(json.dumps(summary))
    return folder


def _load(folder: Path, lake: Path, table: str = "example-ddb-table", **kw: Any) -> Any:
    storage = Storage.from_uri(str(lake))
    return ExportLoad(
        table,
        str(folder),
        storage,
        key_names=lambda: ("id",),
        buffer_bytes=kw.pop("buffer_bytes", 1 << 20),
        progress=NoProgress("tbl"),
        **kw,
    ).run()


def _events(lake: Path, table: str = "example-ddb-table") -> list[ChangeEvent]:
    storage = Storage.from_uri(str(lake))
    return [ChangeEvent.from_line(line) for c in iter_raw_files(storage, table) for line in c.lines]


def _untouched(lake: Path) -> bool:
    return not any(p.is_file() for p in lake.rglob("*")) if lake.exists() else True


def test_the_shared_sample_checks_out_and_loads(tmp_path: Path) -> None:
    folder = SAMPLE_EXPORT / "AWSDynamoDB" / EXPORT_ID
    manifest = read_manifest(ExportFolder(str(folder)))
    verify_export(ExportFolder(str(folder)), manifest, table="example-ddb-table")  # the sample's MD5 matches
    assert manifest.item_count == 2 and manifest.export_id == EXPORT_ID and not manifest.incremental
    result = _load(folder, tmp_path / "lake")
    events = _events(tmp_path / "lake")
    assert result.items == 2 and [e.keys for e in events] == [{"id": {"S": "864732"}}, {"id": {"S": "1"}}]
    assert events[1].new_image is not None and events[1].new_image["raw"] == {"B": "AAEC"}
    assert events[1].new_image["score"] == {"N": "12.50"}, "exactly as exported"


def test_full_export_rows_are_load_rows_at_the_export_time(tmp_path: Path) -> None:
    items = [_item(i) for i in range(30)]
    folder = make_export(
        tmp_path / "exp", [[{"Item": it} for it in items[:20]], [{"Item": it} for it in items[20:]]]
    )
    result = _load(folder, tmp_path / "lake")
    events = _events(tmp_path / "lake")
    assert [e.new_image for e in events] == items
    version = export_version_from_us(1_795_852_800_000_000)  # 08:00:00 less 1 µs
    assert {e.event_time_us for e in events} == {version} == {result.version_time_us}
    assert {(e.op, e.source) for e in events} == {("LOAD", "export")}
    assert events[0].event_id == export_event_id(EXPORT_ID, {"id": {"S": "id-0"}})
    assert result.items == 30 and result.parts_total == 2 and result.export_arn


def test_incremental_export_keeps_write_times_and_deletes(tmp_path: Path) -> None:
    lines = [
        {
            "Metadata": {"WriteTimestampMicros": {"N": "1795849200000001"}},
            "Keys": {"id": {"S": "a"}},
            "NewImage": {"id": {"S": "a"}, "v": {"N": "1"}},
        },
        {
            "Metadata": {"WriteTimestampMicros": {"N": "1795849200000002"}},
            "Keys": {"id": {"S": "b"}},
            "NewImage": {"id": {"S": "b"}, "v": {"N": "2"}},
            "OldImage": {"id": {"S": "b"}, "v": {"N": "1"}},
        },
        {
            "Metadata": {"WriteTimestampMicros": {"N": "1795849200000003"}},
            "Keys": {"id": {"S": "c"}},
            "OldImage": {"id": {"S": "c"}},
        },
    ]
    folder = make_export(tmp_path / "exp", [lines], incremental=True)
    storage = Storage.from_uri(str(tmp_path / "lake"))

    def no_describe() -> tuple[str, ...]:
        raise AssertionError("incremental exports carry their keys")

    ExportLoad(
        "example-ddb-table",
        str(folder),
        storage,
        key_names=no_describe,
        buffer_bytes=1 << 20,
        progress=NoProgress("tbl"),
    ).run()
    events = _events(tmp_path / "lake")
    version = export_version_from_us(1795849200000001)  # write times rounded like stream times
    assert [(e.op, e.event_time_us, e.sequence) for e in events] == [
        ("INSERT", version, "1795849200000001"),
        ("MODIFY", version, "1795849200000002"),
        ("REMOVE", version, "1795849200000003"),
    ]
    assert events[2].new_image is None and events[2].old_image == {"id": {"S": "c"}}
    assert events[1].event_id == export_event_id(EXPORT_ID, {"id": {"S": "b"}}, 1795849200000002)


def test_ion_export_gives_the_rows_the_json_export_gives(tmp_path: Path) -> None:
    ion = [
        b'$ion_1_0 {Item:{id:"1",n:12.50,big:2d3,b:{{AAEC}},ss:$dynamodb_SS::["a","b"],'
        b"m:{ok:true,nil:null}}}\n"
    ]
    folder = make_export(tmp_path / "exp", [ion], fmt="ION", raw_lines=True)
    _load(folder, tmp_path / "lake")
    (event,) = _events(tmp_path / "lake")
    assert event.new_image == {
        "id": {"S": "1"},
        "n": {"N": "12.5"},
        "big": {"N": "2000"},
        "b": {"B": "AAEC"},
        "ss": {"SS": ["a", "b"]},
        "m": {"M": {"ok": {"BOOL": True}, "nil": {"NULL": True}}},
    }


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("flip", r"checksum mismatch in .*file01\.json\.gz"),
        ("delete", r"data file .*file01\.json\.gz listed in manifest-files\.json is missing"),
        ("count", r"file00\.json\.gz holds 10 item\(s\) but manifest-files\.json says 9"),
        ("summary", r"manifest-summary\.json says 21 item\(s\) but manifest-files\.json lists 20"),
        ("truncate", r"data file .*file01\.json\.gz is not valid gzip \(the gzip stream is cut short\)"),
        ("etag", r"checksum mismatch in .*file01\.json\.gz: its MD5 is [0-9a-f]{32}, ETag [0-9a-f]{32}"),
        ("no-files-manifest", r"manifest-files\.json is missing"),
        ("twice", r"manifest-files\.json lists data file \S*file01\.json\.gz twice \(lines 2 and 3\)"),
    ],
)
def test_a_corrupt_or_incomplete_export_is_refused_and_changes_nothing(
    tmp_path: Path, damage: str, message: str
) -> None:
    folder = make_export(
        tmp_path / "exp",
        [[{"Item": _item(i)} for i in range(10)], [{"Item": _item(i)} for i in range(10, 20)]],
    )
    data = folder / "data" / "file01.json.gz"
    manifest = folder / "manifest-files.json"
    if damage == "flip":
        raw = bytearray(data.read_bytes())
        raw[-12] ^= 0xFF
        data.write_bytes(bytes(raw))
    elif damage == "delete":
        data.unlink()
    elif damage == "count":
        entries = [json.loads(line) for line in manifest.read_text().splitlines()]
        entries[1]["itemCount"] = 11
        entries[0]["itemCount"] = 9
        manifest.write_text("".join(json.dumps(e) + "\n" for e in entries))
    elif damage == "summary":
        summary = json.loads((folder / "manifest-summary.json").read_text())
        summary["itemCount"] = 21
        (folder / "manifest-summary.json").write_text(json.dumps(summary))
    elif damage == "truncate":  # no MD5, a multipart ETag: only the gzip stream tells
        data.write_bytes(data.read_bytes()[:-8])
        _set_checksums(manifest, 1, md5=None, etag="0123456789abcdef0123456789abcdef-2")
    elif damage == "etag":  # no MD5: a single-part ETag is the only check, and other valid data fails it
        data.write_bytes(gzip.compress(b"".join(json.dumps({"Item": _item(i + 100)}).encode() + b"\n"
                                                for i in range(10))))  # fmt: skip
        _set_checksums(manifest, 1, md5=None)
    elif damage == "twice":  # counts made to add up, so only the repeat gives it away
        entries = [json.loads(line) for line in manifest.read_text().splitlines()]
        entries[0]["itemCount"] = 0
        manifest.write_text("".join(json.dumps(e) + "\n" for e in [*entries, entries[1]]))
    else:
        manifest.unlink()
    lake = tmp_path / "lake"
    with pytest.raises(CorruptExportError, match=message) as caught:
        _load(folder, lake)
    assert "nothing loaded" in str(caught.value)
    assert _untouched(lake), "no raw file, no state"


def _set_checksums(manifest: Path, line: int, *, md5: str | None, etag: str | None = None) -> None:
    """Line ``line`` of manifest-files.json without its MD5 (``md5=None``), and with ``etag`` if given."""
    entries = [json.loads(text) for text in manifest.read_text().splitlines()]
    if md5 is None:
        del entries[line]["md5Checksum"]
    if etag is not None:
        entries[line]["etag"] = etag
    manifest.write_text("".join(json.dumps(e) + "\n" for e in entries))


def test_an_export_without_md5_is_checked_by_a_single_part_etag_and_not_a_multipart_one(
    tmp_path: Path,
) -> None:
    """A single-part ETag is the file's MD5 and is compared; a multipart one (``-N``) is not an MD5."""
    for n, etag in enumerate((None, "0123456789abcdef0123456789abcdef-2")):
        folder = make_export(tmp_path / f"exp{n}", [[{"Item": _item(i)} for i in range(3)]])
        _set_checksums(folder / "manifest-files.json", 0, md5=None, etag=etag)
        _load(folder, tmp_path / f"lake{n}")
        assert sorted(e.keys["id"]["S"] for e in _events(tmp_path / f"lake{n}")) == sorted(
            _item(i)["id"]["S"] for i in range(3)
        )


def test_wrong_table_missing_folder_and_unknown_keys(tmp_path: Path) -> None:
    folder = make_export(tmp_path / "exp", [[{"Item": _item(0)}]], table="other-table")
    with pytest.raises(ConfigError, match="of table 'other-table'.*pass --table other-table"):
        _load(folder, tmp_path / "lake")
    with pytest.raises(NotFoundError, match="does not exist"):
        _load(tmp_path / "nope", tmp_path / "lake")
    with pytest.raises(NotFoundError, match="no manifest-summary.json"):
        _load(tmp_path / "exp", tmp_path / "lake")
    good = make_export(tmp_path / "exp2", [[{"Item": _item(0)}]])

    def denied() -> tuple[str, ...]:
        raise TerminalError("access denied calling DescribeTable")

    storage = Storage.from_uri(str(tmp_path / "lake"))
    with pytest.raises(TerminalError, match="pass --keys"):
        ExportLoad(
            "example-ddb-table",
            str(good),
            storage,
            key_names=denied,
            buffer_bytes=1 << 20,
            progress=NoProgress("tbl"),
        ).run()
    assert _untouched(tmp_path / "lake")


def _forty_items(tmp_path: Path) -> Path:
    """An export of two data files, 20 items each."""
    return make_export(
        tmp_path / "exp",
        [[{"Item": _item(i)} for i in range(20)], [{"Item": _item(i)} for i in range(20, 40)]],
    )


def test_an_interrupted_export_load_resumes_after_its_last_raw_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _forty_items(tmp_path)
    real = export_load.write_state
    writes: list[int] = []

    class Crash(BaseException):
        pass

    def crash(storage: Storage, state: Any) -> None:
        writes.append(1)
        if len(writes) == 4:
            raise Crash
        real(storage, state)

    monkeypatch.setattr(export_load, "write_state", crash)
    item_bytes = len(json.dumps({"Item": _item(0)})) + 200
    with pytest.raises(Crash):  # a raw file every ~5 rows, each recorded at once
        _load(folder, tmp_path / "lake", buffer_bytes=item_bytes * 5, state_seconds=0)
    monkeypatch.setattr(export_load, "write_state", real)
    rerun = _load(folder, tmp_path / "lake", buffer_bytes=item_bytes * 5)
    assert rerun.resumed and rerun.items < 40
    events = _events(tmp_path / "lake")
    ids = [e.event_id for e in events]
    assert len(set(ids)) == 40, "every row, under its deterministic ID"
    assert len(ids) - 40 <= 5, "only the rows of the raw file whose state write was lost repeat"
    (state,) = list_loads(Storage.from_uri(str(tmp_path / "lake")), "example-ddb-table")
    assert state.finished_us is not None and state.items == 40
    again = _load(folder, tmp_path / "lake")
    assert again.items == 0 and again.parts_skipped == 2, "a finished export is not loaded twice"


def test_export_state_is_written_first_then_once_an_interval_then_at_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _forty_items(tmp_path)
    real = export_load.write_state
    written: list[tuple[int, bool]] = []

    def counting(storage: Storage, state: Any) -> None:
        written.append((state.items, state.finished_us is not None))
        real(storage, state)

    monkeypatch.setattr(export_load, "write_state", counting)
    item_bytes = len(json.dumps({"Item": _item(0)})) + 200
    result = _load(folder, tmp_path / "lake", buffer_bytes=item_bytes * 5, state_seconds=3600, workers=1)
    assert result.files >= 8 and result.items == 40
    first = written[0][0]
    assert 0 < first < 40 and written == [(first, False), (40, True)], (
        "with its first raw file, then at the end"
    )


def test_a_failing_export_load_records_what_it_wrote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _forty_items(tmp_path)
    real = export_load.write_part

    def second_file_fails(job: Any, record: Any, stopped: Any) -> bool:
        if job.entry.rel.endswith("file01.json.gz"):
            raise TransientError("S3 read timed out")
        return bool(real(job, record, stopped))

    monkeypatch.setattr(export_load, "write_part", second_file_fails)
    with pytest.raises(TransientError, match="timed out"):
        _load(folder, tmp_path / "lake", state_seconds=3600, workers=1)
    (state,) = list_loads(Storage.from_uri(str(tmp_path / "lake")), "example-ddb-table")
    assert state.items == 20 and state.done_parts == {"data/file00.json.gz"}, "the first file is recorded"
    monkeypatch.setattr(export_load, "write_part", real)
    rerun = _load(folder, tmp_path / "lake")
    assert rerun.items == 20 and len(_events(tmp_path / "lake")) == 40, "nothing written twice"


def test_export_on_s3_folder_uri_is_accepted_by_scheme() -> None:
    with pytest.raises(ConfigError, match="not supported"):
        ExportFolder("ftp://host/x")
    assert os.sep  # s3:// folders are covered by the functional tests on moto


def _rows(lake: Path) -> list[tuple[Any, ...]]:
    """The raw rows, without the ingestion time (the one field that differs from run to run)."""
    return sorted(
        (e.event_id, e.op, json.dumps(e.keys), json.dumps(e.new_image), e.event_time_us, e.source)
        for e in _events(lake)
    )


def test_export_files_in_worker_processes_give_the_rows_one_process_gives(tmp_path: Path) -> None:
    files = [[{"Item": _item(i)} for i in range(n * 30, n * 30 + 30)] for n in range(3)]
    folder = make_export(tmp_path / "exp", files)
    item_bytes = len(json.dumps({"Item": _item(0)})) + 200
    one = _load(folder, tmp_path / "one", workers=1, buffer_bytes=item_bytes * 7)
    many = _load(folder, tmp_path / "many", workers=2, buffer_bytes=item_bytes * 7)
    assert _rows(tmp_path / "many") == _rows(tmp_path / "one")
    assert len(_rows(tmp_path / "many")) == 90
    assert (many.items, many.files, sorted(many.parts_read)) == (one.items, one.files, sorted(one.parts_read))
    (state,) = list_loads(Storage.from_uri(str(tmp_path / "many")), "example-ddb-table")
    assert state.finished_us is not None and state.items == 90
    assert all(p.done for p in state.parts.values()) and len(state.parts) == 3


def test_a_bad_line_in_a_worker_names_its_file_and_line_and_what_was_written_is_recorded(
    tmp_path: Path,
) -> None:
    good = [json.dumps({"Item": _item(i)}) + "\n" for i in range(10)]
    bad = good[:3] + ['{"Item": {"id": {"S": "x"}\n'] + good[4:]
    folder = make_export(tmp_path / "exp", [good, bad], raw_lines=True)
    with pytest.raises(
        TerminalError, match=r"file01\.json\.gz line 4 is not an export line.*export the table again"
    ):
        _load(folder, tmp_path / "lake", workers=2)
    (state,) = list_loads(Storage.from_uri(str(tmp_path / "lake")), "example-ddb-table")
    assert state.finished_us is None
    assert not state.parts.get("data/file01.json.gz", PartState()).done
    # Whether the good file ran before the other worker failed is up to the scheduler; either
    # way, every row in a raw file is in the state, so a rerun repeats none.
    assert len(_events(tmp_path / "lake")) == state.items


def test_a_parallel_load_stopped_midway_records_what_it_wrote_and_resumes_without_repeating_a_row(
    tmp_path: Path,
) -> None:
    files = [[{"Item": _item(i)} for i in range(n * 200, n * 200 + 200)] for n in range(4)]
    folder = make_export(tmp_path / "exp", files)
    item_bytes = len(json.dumps({"Item": _item(0)})) + 200
    stop = threading.Event()

    class StopOnFirstReport(NoProgress):
        def add(self, items: int, *, part_done: bool = False) -> None:
            super().add(items, part_done=part_done)
            stop.set()  # as Ctrl-C does: the workers stop after their current raw file

    lake = Storage.from_uri(str(tmp_path / "lake"))

    def load(**kw: Any) -> Any:
        return ExportLoad(
            "example-ddb-table",
            str(folder),
            lake,
            key_names=lambda: ("id",),
            buffer_bytes=item_bytes * 20,
            workers=2,
            **kw,
        ).run()

    with pytest.raises(TransientError, match="stopped; run the same command again"):
        load(progress=StopOnFirstReport("tbl"), stop=stop)
    written = len(_events(tmp_path / "lake"))  # rows in the raw files written before the stop
    (state,) = list_loads(lake, "example-ddb-table")
    assert state.finished_us is None and state.items == written >= 20
    rerun = load(progress=NoProgress("tbl"))
    assert rerun.resumed and rerun.items == 800 - written, "the rerun writes exactly what was not written"
    ids = [e.event_id for e in _events(tmp_path / "lake")]
    assert len(ids) == len(set(ids)) == 800


def test_plan_workers_uses_processes_only_for_a_large_export() -> None:
    def files(*counts: int) -> list[DataFile]:
        return [DataFile(f"k{i}", f"data/f{i}.json.gz", c, None, None) for i, c in enumerate(counts)]

    assert plan_workers(files(10, 10, 10), None, cpus=8) == 1, "small: this process"
    assert plan_workers(files(PARALLEL_MIN_ITEMS, 5, 5), None, cpus=2) == 2, "large: one per CPU"
    assert plan_workers(files(PARALLEL_MIN_ITEMS, 5), None, cpus=8) == 2, "never more than the files"
    assert plan_workers(files(PARALLEL_MIN_ITEMS, *[5] * 20), None, cpus=64) == DEFAULT_MAX_WORKERS, "capped"
    assert plan_workers(files(10, 10, 10), 2, cpus=1) == 2, "as asked"
    assert plan_workers(files(10), 4, cpus=8) == 1, "as asked, but one file is one task"


def test_where_processes_cannot_share_a_queue_the_export_loads_in_this_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class NoSemaphores:  # what multiprocessing gives on a host without /dev/shm (AWS Lambda)
        def Queue(self) -> Any:  # noqa: N802 - the multiprocessing context's own name
            raise OSError(38, "Function not implemented")

    monkeypatch.setattr(export_parts.multiprocessing, "get_context", lambda method: NoSemaphores())
    files = [[{"Item": _item(i)} for i in range(n * 10, n * 10 + 10)] for n in range(2)]
    result = _load(make_export(tmp_path / "exp", files), tmp_path / "lake", workers=2)
    assert result.items == 20 and len(_events(tmp_path / "lake")) == 20


def test_an_export_loaded_with_its_keys_given_needs_no_aws_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)

    def no_clients(config: Any) -> Any:
        raise AssertionError("DynamoDB clients were built for a load that needs none")

    monkeypatch.setattr(load_service, "build_load_clients", no_clients)
    folder = make_export(tmp_path / "exp", [[{"Item": _item(i)} for i in range(5)]])
    config = LoadConfig.build(
        table="example-ddb-table", lake=str(tmp_path / "lake"), from_export=str(folder), keys="id"
    )
    result = load_service.run_load(config, progress=NoProgress("tbl"))
    assert result.items == 5 and len(_events(tmp_path / "lake")) == 5


def test_wrong_keys_name_the_key_taken_and_the_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(load_service, "build_load_clients", lambda config: None)
    folder = make_export(tmp_path / "exp", [[{"Item": _item(i)} for i in range(5)]])
    config = LoadConfig.build(
        table="example-ddb-table", lake=str(tmp_path / "lake"), from_export=str(folder), keys="pk"
    )
    # Found by the check before anything is written (tests/unit/test_load_export_keys.py).
    with pytest.raises(ConfigError, match=r"line 1: its item has no attribute 'pk', but --keys pk names"):
        load_service.run_load(config, progress=NoProgress("tbl"))
    assert _untouched(tmp_path / "lake")


def test_an_incremental_export_with_its_files_in_the_shared_data_folder_loads(tmp_path: Path) -> None:
    new = {"id": {"S": "a"}, "v": {"N": "1"}}
    lines = [
        {
            "Metadata": {"WriteTimestampMicros": {"N": "1764313200000001"}},
            "Keys": {"id": {"S": "a"}},
            "NewImage": new,
        },
        {"Metadata": {"WriteTimestampMicros": {"N": "1764313200000002"}}, "Keys": {"id": {"S": "b"}}},
    ]
    folder = make_export(tmp_path / "exp", [lines], incremental=True, shared_data=True)
    assert not any((folder / "data").iterdir())  # the files are in AWSDynamoDB/data/, not here
    _load(folder, tmp_path / "lake")
    assert sorted((e.op, e.keys["id"]["S"]) for e in _events(tmp_path / "lake")) == [
        ("INSERT", "a"),  # no OldImage: a new item
        ("REMOVE", "b"),
    ]


def test_an_export_to_a_kms_bucket_is_checked_by_its_md5_not_its_etag(tmp_path: Path) -> None:
    folder = make_export(tmp_path / "exp", [[{"Item": _item(1)}, {"Item": _item(2)}]], kms=True)
    _load(folder, tmp_path / "lake")
    assert len(_events(tmp_path / "lake")) == 2


def test_ctrl_c_while_an_export_is_checked_stops_at_once_and_loads_nothing(tmp_path: Path) -> None:
    folder = make_export(tmp_path / "exp", [[{"Item": _item(i)} for i in range(5)]] * 3)
    stop = threading.Event()
    stop.set()  # as the SIGINT handler does
    with pytest.raises(TransientError, match="stopped while checking export"):
        _load(folder, tmp_path / "lake", stop=stop)
    assert _untouched(tmp_path / "lake")


def test_the_manifest_summary_file_given_instead_of_its_folder_is_taken_as_its_folder(tmp_path: Path) -> None:
    folder = make_export(tmp_path / "exp", [[{"Item": _item(1)}]])
    _load(folder / "manifest-summary.json", tmp_path / "lake")
    assert len(_events(tmp_path / "lake")) == 1


def test_an_incremental_write_wins_over_a_full_export_of_the_same_second_only_if_made_after_it(
    tmp_path: Path,
) -> None:
    # A full export at 08:00:30.500 and an incremental export whose writes fall at 08:00:30.200
    # (before the snapshot, so the full export holds newer state) and 08:00:30.800 (after it). Both
    # rules round to the same second, so the sequence decides: the export's own time for the full
    # export's rows. Writes of other seconds are ordered by their time alone.
    full = make_export(tmp_path / "full", [[{"Item": {"id": {"S": "a"}, "v": {"S": "full"}}}]])
    summary = json.loads((full / "manifest-summary.json").read_text())
    summary["exportTime"] = "2026-11-28T08:00:30.500Z"
    (full / "manifest-summary.json").write_text(json.dumps(summary))
    _load(full, tmp_path / "lake-full")
    (full_row,) = _events(tmp_path / "lake-full")

    minute = 1_795_852_800_000_000  # 08:00:00
    lines = [
        {
            "Metadata": {"WriteTimestampMicros": {"N": str(minute + ms * 1_000)}},
            "Keys": {"id": {"S": "a"}},
            "NewImage": {"id": {"S": "a"}, "v": {"S": f"at {ms} ms"}},
        }
        for ms in (29_900, 30_200, 30_800, 31_000)
    ]
    _load(make_export(tmp_path / "incr", [lines], incremental=True), tmp_path / "lake-incr")
    earlier, before, after, later = _events(tmp_path / "lake-incr")
    assert before.event_time_us == after.event_time_us == full_row.event_time_us == minute + 30_000_000 - 1
    assert version_of(earlier) < version_of(before) < version_of(full_row) < version_of(after)
    assert version_of(after) < version_of(later)


def test_an_incremental_export_alone_is_not_a_load_of_the_table(tmp_path: Path) -> None:
    # It holds only the items written in its window: sync must still load the whole table first.
    from ddblake.load import has_finished_load
    from ddblake.sync import needs_load

    lines = [
        {
            "Metadata": {"WriteTimestampMicros": {"N": "1795849200000001"}},
            "Keys": {"id": {"S": "a"}},
            "NewImage": {"id": {"S": "a"}},
        }
    ]
    _load(make_export(tmp_path / "incr", [lines], incremental=True), tmp_path / "lake")
    storage = Storage.from_uri(str(tmp_path / "lake"))
    assert [s.finished_us is not None for s in list_loads(storage, "example-ddb-table")] == [True]
    assert not has_finished_load(storage, "example-ddb-table")
    assert needs_load(storage, "example-ddb-table")

    _load(make_export(tmp_path / "full", [[{"Item": {"id": {"S": "b"}}}]]), tmp_path / "lake2")
    assert has_finished_load(Storage.from_uri(str(tmp_path / "lake2")), "example-ddb-table")


@pytest.mark.parametrize("fmt", ["DYNAMODB_JSON", "ION"])
def test_a_line_nested_past_any_recursion_limit_is_refused_naming_its_line(tmp_path: Path, fmt: str) -> None:
    if fmt == "ION":
        deep = '$ion_1_0 {Item:{id:{S:"a"},m:' + "{M:{x:" * 5000 + '{S:"z"}' + "}}" * 5000 + "}}\n"
    else:
        deep = '{"Item":{"id":{"S":"a"},"m":' + '{"M":{"x":' * 5000 + '{"S":"z"}' + "}}" * 5000 + "}}\n"
    folder = make_export(tmp_path / "exp", [[deep]], raw_lines=True, fmt=fmt)
    with pytest.raises(TerminalError, match=r"file00\.json\.gz line 1 nests too deep"):
        _load(folder, tmp_path / "lake")


def test_an_export_load_failing_before_its_first_raw_file_leaves_no_state(tmp_path: Path) -> None:
    # A state would tell capture and sync that the lake holds the table as of this export.
    folder = make_export(tmp_path / "exp", [[{"Item": {"other": {"S": "a"}}}]])
    with pytest.raises(TerminalError, match="line 1"):
        _load(folder, tmp_path / "lake", workers=1)
    assert list_loads(Storage.from_uri(str(tmp_path / "lake")), "example-ddb-table") == []
    assert _untouched(tmp_path / "lake")


@pytest.mark.parametrize(
    "damaged",
    [
        {"Keys": {"id": {"S": "b"}}, "NewImage": {"id": {"S": "b"}}},  # no Metadata
        {"Metadata": {"WriteTimestampMicros": {"N": "1795849200000002"}}, "NewImage": {"id": {"S": "b"}}},
        "not json",
    ],
)
def test_an_incremental_export_with_a_damaged_line_is_refused_before_anything_is_written(
    tmp_path: Path, damaged: Any
) -> None:
    """Its checksums match (a hand-made or re-manifested export): the load wrote the rows before the
    damaged line, and each rerun stopped there, where the docs promise nothing is loaded."""
    good = [
        {
            "Metadata": {"WriteTimestampMicros": {"N": f"179584920000000{i}"}},
            "Keys": {"id": {"S": f"k{i}"}},
            "NewImage": {"id": {"S": f"k{i}"}},
        }
        for i in range(3)
    ]
    lines = [json.dumps(obj) + "\n" for obj in good]
    lines.insert(2, (damaged if isinstance(damaged, str) else json.dumps(damaged)) + "\n")
    folder = make_export(tmp_path / "exp", [lines], incremental=True, raw_lines=True)
    with pytest.raises(CorruptExportError, match=r"file00\.json\.gz line 3: it is not"):
        _load(folder, tmp_path / "lake", buffer_bytes=1)
    lake = tmp_path / "lake"
    assert not lake.exists() or not [p for p in lake.rglob("*") if p.is_file()]


@pytest.mark.parametrize("uri", ["s3:/bucket/exports", "s3:///exports"])
def test_an_export_folder_uri_naming_no_bucket_is_said_as_the_export_folder(uri: str) -> None:
    with pytest.raises(
        ConfigError, match=rf"^export folder '{uri}' names no bucket; use s3://bucket/prefix$"
    ):
        ExportFolder(uri)
