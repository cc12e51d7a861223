"""An export whose data files are not in the format its manifest declares is refused, naming the file.

``{"Item": {"id": {"S": "1"}}}`` is valid Ion too: loaded as ION it would give ``id`` a map type,
silently. The check reads each data file's first non-empty line and refuses the export before any
raw file or state is written.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import shutil
from pathlib import Path

import pytest
from test_load_export import SAMPLE_EXPORT, _load, _untouched, make_export

from ddblake.lake.storage import Storage
from ddblake.load import LoadConfig, list_loads, run_load
from ddblake.load.export import CorruptExportError
from ddblake.load.export_format import MAX_FIRST_LINE, FirstLine, sniff_format
from ddblake.progress import NoProgress

SAMPLE_ID = "01764316800000-a1b2c3d4"
ION_LINES = [
    b'$ion_1_0 {Item:{id:"864732",name:"Adam"}}\n',
    b'$ion_1_0 {Item:{id:"1",score:12.50,raw:{{AAEC}},tags:$dynamodb_SS::["a","b"]}}\n',
]


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    """A copy of the shared sample export (DYNAMODB_JSON, two items in one data file)."""
    copy = tmp_path / "export"
    shutil.copytree(SAMPLE_EXPORT, copy)
    return copy / "AWSDynamoDB" / SAMPLE_ID


def _set_format(folder: Path, fmt: str) -> None:
    summary = json.loads((folder / "manifest-summary.json").read_text())
    summary["outputFormat"] = fmt
    (folder / "manifest-summary.json").write_text(json.dumps(summary))


def _replace_data(folder: Path, payload: bytes) -> Path:
    """Put ``payload`` (gzipped) in place of the sample's data file, with a manifest that matches."""
    (entry,) = [
        json.loads(line) for line in (folder / "manifest-files.json").read_text().splitlines() if line
    ]
    data = gzip.compress(payload)
    path = folder.parents[1] / entry["dataFileS3Key"]
    path.write_bytes(data)
    digest = hashlib.md5(data, usedforsecurity=False).digest()
    entry.update(md5Checksum=base64.b64encode(digest).decode(), etag=digest.hex())
    entry["itemCount"] = sum(1 for line in payload.splitlines() if line.strip())
    (folder / "manifest-files.json").write_text(json.dumps(entry) + "\n")
    return path


def _run(folder: Path, lake: Path) -> None:
    config = LoadConfig.build(table="example-ddb-table", lake=str(lake), from_export=str(folder), keys="id")
    run_load(config, progress=NoProgress("load"))


def test_a_json_export_declared_ion_is_refused_naming_the_file(sample: Path, tmp_path: Path) -> None:
    _set_format(sample, "ION")
    with pytest.raises(CorruptExportError) as caught:
        _run(sample, tmp_path / "lake")
    message = str(caught.value)
    assert f"export {sample} refused, nothing loaded" in message
    assert f"data file {sample}/data/q7x3m2abcdefghijklmn.json.gz holds DYNAMODB_JSON" in message
    assert "declares outputFormat ION" in message
    assert _untouched(tmp_path / "lake")


def test_an_ion_export_declared_json_is_refused_naming_the_file(sample: Path, tmp_path: Path) -> None:
    data = _replace_data(sample, b"".join(ION_LINES))
    with pytest.raises(
        CorruptExportError, match=r"holds ION .*declares outputFormat DYNAMODB_JSON"
    ) as caught:
        _run(sample, tmp_path / "lake")
    assert str(data) in str(caught.value)
    assert _untouched(tmp_path / "lake")
    _set_format(sample, "ION")  # declared right, the same files load, with the right types
    _run(sample, tmp_path / "lake")
    (state,) = list_loads(Storage.from_uri(str(tmp_path / "lake")), "example-ddb-table")
    assert state.items == 2


def test_the_check_reads_past_blank_lines_and_refuses_before_any_file_is_written(tmp_path: Path) -> None:
    # A right first file, then one in the other format whose first line comes after blank lines:
    # nothing is written, not even the first file's rows.
    good = [{"Item": {"id": {"S": f"i{n}"}}} for n in range(3)]
    folder = make_export(tmp_path / "exp", [good, good], raw_lines=False)
    ion = b"\n  \n" + ION_LINES[0]
    data = folder / "data" / "file01.json.gz"
    entries = [json.loads(line) for line in (folder / "manifest-files.json").read_text().splitlines()]
    raw = gzip.compress(ion)
    data.write_bytes(raw)
    digest = hashlib.md5(raw, usedforsecurity=False).digest()
    entries[1].update(md5Checksum=base64.b64encode(digest).decode(), etag=digest.hex(), itemCount=3)
    (folder / "manifest-files.json").write_text("".join(json.dumps(e) + "\n" for e in entries))
    with pytest.raises(CorruptExportError, match=r"file01\.json\.gz holds ION"):
        _load(folder, tmp_path / "lake")
    assert _untouched(tmp_path / "lake")


def test_an_incremental_json_export_declared_ion_is_refused(tmp_path: Path) -> None:
    line = {
        "Metadata": {"WriteTimestampMicros": {"N": "1795849200000001"}},
        "Keys": {"id": {"S": "a"}},
        "NewImage": {"id": {"S": "a"}},
    }
    folder = make_export(tmp_path / "exp", [[line]], incremental=True, fmt="ION")
    with pytest.raises(CorruptExportError, match=r"file00\.json\.gz holds DYNAMODB_JSON .*outputFormat ION"):
        _load(folder, tmp_path / "lake")
    assert _untouched(tmp_path / "lake")


@pytest.mark.parametrize(
    ("line", "found"),
    [
        (b'{"Item": {"id": {"S": "1"}, "n": {"N": "2"}, "m": {"M": {}}}}', "DYNAMODB_JSON"),
        (
            b'{"Metadata":{"WriteTimestampMicros":{"N":"1"}},"Keys":{"id":{"S":"a"}},"OldImage":{"id":{"S":"a"}}}',
            "DYNAMODB_JSON",
        ),
        (b'{"Item": {}}', "DYNAMODB_JSON"),
        (ION_LINES[1], "ION"),
        (b'{Item:{id:"1",n:12.50}}', "ION"),  # Ion without the version marker
        (b'{"Item": {"id": "1", "n": 12.50}}', "ION"),  # JSON-compatible Ion: plain values, no tags
        (b'{"Metadata":{"WriteTimestampMicros":1795849200000001},"Keys":{"id":"a"}}', "ION"),
        (b"not an export line", None),
        (b'{"Item": ', None),
        (b"[1, 2]", None),
    ],
)
def test_the_first_line_tells_the_format(line: bytes, found: str | None) -> None:
    assert sniff_format(line) == found


def test_the_first_line_is_found_across_pieces() -> None:
    first = FirstLine()
    for piece in (b"\n \n", b'{"Item": {"id"', b': {"S": "1"}}}', b"\nnext line\n"):
        first.feed(piece)
    assert first.done and first.line == b'{"Item": {"id": {"S": "1"}}}'
    last = FirstLine()
    last.feed(b"\n\n{Item:{}}")
    assert not last.done
    last.finish()
    assert last.line == b"{Item:{}}"
    huge = FirstLine()
    huge.feed(b"x" * (MAX_FIRST_LINE + 1))
    huge.finish()
    assert huge.done and huge.line is None  # too long for an item: the load names it


def test_the_glue_job_refuses_ion_data_under_a_dynamodb_json_manifest() -> None:
    from ddblake.gluejob import manifest

    def entry(data: bytes, count: int) -> manifest.ManifestEntry:
        digest = hashlib.md5(data, usedforsecurity=False).digest()
        return manifest.ManifestEntry(
            "AWSDynamoDB/E/data/a.json.gz", count, base64.b64encode(digest).decode(), None
        )

    for ion in (b"\n" + ION_LINES[0], b'{Item:{id:"1"}}\n', b'{"Item": {"id": "1"}}\n'):
        data = gzip.compress(ion)
        problem = manifest.check_data_file(data, entry(data, ion.count(b"\n")))
        assert problem is not None and "AWSDynamoDB/E/data/a.json.gz holds ION" in problem
        assert "declares outputFormat DYNAMODB_JSON" in problem
    good = gzip.compress(b'{"Item": {"id": {"S": "1"}}}\n{"Item": {"id": {"S": "2"}}}\n')
    assert manifest.check_data_file(good, entry(good, 2)) is None


def test_a_null_old_image_reads_as_dynamodb_json_here_and_in_the_glue_job() -> None:
    from ddblake.gluejob import manifest
    from ddblake.load.export_format import sniff_format

    line = (
        b'{"Metadata":{"WriteTimestampMicros":{"N":"1"}},"Keys":{"id":{"S":"a"}},'
        b'"NewImage":{"id":{"S":"a"}},"OldImage":null}'
    )
    assert sniff_format(line) == "DYNAMODB_JSON"
    assert not manifest.ion_like(line)


@pytest.mark.parametrize(
    "line",
    [
        b'{"Item": {"id": {"S": "1"}}}',
        b'{"Item": {"m": {"Q": "b"}}}',  # a tag no DynamoDB type has: Ion's JSON-compatible struct
        b'{"Item": {"id": "1"}}',
        b'{"Item": {"id": {"S": "1", "N": "2"}}}',
        b'{"Metadata":{"WriteTimestampMicros":{"N":"1"}},"Keys":{"id":{"S":"a"}},"OldImage":null}',
        b'{"Item": {"b": {"BOOL": true}, "n": {"NULL": true}, "s": {"SS": ["a"]}}}',
    ],
)
def test_the_glue_job_and_the_load_agree_on_what_is_dynamodb_json(line: bytes) -> None:
    """The Glue job took any one-key object as a typed value: a first line whose tag no DynamoDB
    type has was refused by ddblake load and loaded by the job."""
    from ddblake.gluejob import manifest

    assert (sniff_format(line) == "DYNAMODB_JSON") == (not manifest.ion_like(line))
