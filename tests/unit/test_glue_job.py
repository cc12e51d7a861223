"""The Glue job's transformation logic, without Spark: same rows, IDs and paths as ``ddblake load``."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ddblake.changes.model import ChangeEvent
from ddblake.changes.resolve import key_string
from ddblake.lake.rawlog import raw_file_path
from ddblake.load import glue_job as job
from ddblake.load.export import ExportManifest
from ddblake.load.export_rows import RowMaker
from ddblake.load.rows import (
    export_event_id,
    export_version_from_us,
    parse_export_time,
    scan_event_id,
    version_time_from_us,
)

GLUE_FILE = Path(job.__file__)
KEYS = [
    {"pk": {"S": "a"}},
    {"pk": {"S": "Zoë"}, "sk": {"N": "1.50"}},
    {"pk": {"B": "AAEC"}, "sk": {"N": "1E+3"}},
    {"sk": {"N": "-0.0"}, "pk": {"S": ""}},
    {"pk": {"N": "12345678901234567890123456789012345678"}},
    {"pk": {"N": "-1.2345678901234567890123456789012345678E-130"}},
    {"pk": {"N": "1E+999999999"}},
]


def test_the_script_imports_only_the_standard_library() -> None:
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('glue_script', {str(GLUE_FILE)!r})\n"
        "mod = importlib.util.module_from_spec(spec); sys.modules['glue_script'] = mod\n"
        "spec.loader.exec_module(mod)\n"
        "deps = {'ddblake', 'boto3', 'botocore', 'pyspark', 'awsglue'}\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in deps]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("keys", KEYS)
def test_key_and_id_rules_equal_ddblakes(keys: dict[str, dict[str, str]]) -> None:
    assert job.key_string(keys) == key_string(keys)
    assert job.event_id("L", keys) == scan_event_id("L", keys)
    assert job.event_id("E", keys, export=True) == export_event_id("E", keys)
    assert job.event_id("E", keys, export=True, write_us=7) == export_event_id("E", keys, 7)


def test_time_and_path_rules_equal_ddblakes() -> None:
    for us in (0, 1_795_852_800_000_000, 1_795_852_800_999_999, 1_795_852_801_000_001):
        assert job.version_time_from_us(us) == version_time_from_us(us)
        assert job.export_version_from_us(us) == export_version_from_us(us)
    assert job.parse_time_us("2026-11-28T08:00:00.250Z") == parse_export_time("2026-11-28T08:00:00.250Z")
    assert job.raw_file_key("", "tbl", 1_795_852_800_123_456, "u") == raw_file_path(
        "tbl", 1_795_852_800_123_456, "u"
    )
    assert job.raw_file_key("lake/x/", "tbl", 1_795_852_800_123_456, "u") == "lake/x/" + raw_file_path(
        "tbl", 1_795_852_800_123_456, "u"
    )


def _manifest(incremental: bool) -> ExportManifest:
    return ExportManifest(
        uri="s3://b/AWSDynamoDB/E1",
        export_arn="arn:aws:dynamodb:us-east-1:1:table/tbl/export/E1",
        export_id="E1",
        table_arn="arn:aws:dynamodb:us-east-1:1:table/tbl",
        table_name="tbl",
        incremental=incremental,
        export_time_us=None if incremental else 1_795_852_800_000_000,
        output_format="DYNAMODB_JSON",
        output_view="NEW_AND_OLD_IMAGES" if incremental else None,
        item_count=1,
        files=(),
    )


def test_export_lines_become_the_rows_ddblake_load_writes() -> None:
    full = {"Item": {"pk": {"S": "a"}, "sk": {"N": "1"}, "b": {"B": "AAEC"}, "tbl": {"S": "é"}}}
    at = 1_795_852_800_000_000  # the manifest's exportTime
    rules = job.Rules("tbl", "E1", ("pk", "sk"), job.export_version_from_us(at), seq=str(at))
    ours = ChangeEvent.from_line(job.export_line(json.dumps(full), rules, 5))
    theirs = RowMaker(_manifest(False), "tbl", ("pk", "sk")).item_to_event(full, 5)
    assert ours == theirs and ours.to_line() == job.export_line(json.dumps(full), rules, 5)
    for obj in (
        {
            "Metadata": {"WriteTimestampMicros": {"N": "1795852800000009"}},
            "Keys": {"pk": {"S": "a"}},
            "NewImage": {"pk": {"S": "a"}},
        },
        {
            "Metadata": {"WriteTimestampMicros": {"N": "1795852800000009"}},
            "Keys": {"pk": {"S": "a"}},
            "OldImage": {"pk": {"S": "a"}},
        },
        {
            "Metadata": {"WriteTimestampMicros": {"N": "1795852800000009"}},
            "Keys": {"pk": {"S": "a"}},
            "NewImage": {"pk": {"S": "a"}},
            "OldImage": {"pk": {"S": "b"}},
        },
    ):
        inc = job.Rules("tbl", "E1", (), 0, incremental=True, view="NEW_AND_OLD_IMAGES")
        assert ChangeEvent.from_line(job.export_line(json.dumps(obj), inc, 5)) == RowMaker(
            _manifest(True), "tbl", None
        ).item_to_event(obj, 5)
    with pytest.raises(ValueError, match="no Item"):
        job.export_line(b'{"Keys": {}}', rules, 5)


def test_connector_rows_lose_their_null_type_tags() -> None:
    row = {
        "Item": {
            "pk": {"S": "a", "N": None, "M": None},
            "n": {"S": None, "N": "1.50"},
            "m": {"M": {"x": {"BOOL": False, "S": None}, "absent": None, "nil": {"NULL": True}}},
            "l": {"L": [{"S": "x", "N": None}, {"N": "2", "S": None}]},
            "b": {"B": b"\x00\x01"},
            "gone": None,
        }
    }
    item = job.item_from_row(row)
    assert item == {
        "pk": {"S": "a"},
        "n": {"N": "1.50"},
        "m": {"M": {"x": {"BOOL": False}, "nil": {"NULL": True}}},
        "l": {"L": [{"S": "x"}, {"N": "2"}]},
        "b": {"B": "AAE="},
    }
    rules = job.Rules("tbl", "run-1", ("pk",), 99, export=False)
    event = ChangeEvent.from_line(job.row_line(item, rules, 5))
    assert (event.op, event.source, event.event_id, event.event_time_us) == (
        "LOAD",
        "scan",
        scan_event_id("run-1", {"pk": {"S": "a"}}),
        99,
    )
    assert job.item_from_row({"pk": {"S": "x"}}) == {"pk": {"S": "x"}}
    with pytest.raises(ValueError, match="'pk'"):
        job.keys_of({"x": {"S": "1"}}, ("pk",))


def test_files_chunking_gzip_and_manifest_checks() -> None:
    lines = [b"x" * 10 + b"\n"] * 7
    assert [len(c) for c in job.chunks(lines, max_bytes=33)] == [3, 3, 1]
    assert list(job.chunks([], 10)) == []
    data = job.gzip_lines(lines)
    assert gzip.decompress(data) == b"".join(lines) and job.gzip_lines(lines) == data
    digest = hashlib.md5(data, usedforsecurity=False).digest()
    entry = job.ManifestEntry("k", 7, base64.b64encode(digest).decode(), digest.hex())
    assert job.check_data_file(data, entry) is None
    assert "checksum mismatch" in (job.check_data_file(data[:-1] + bytes([data[-1] ^ 1]), entry) or "")
    assert "holds 7 item(s)" in (job.check_data_file(data, job.ManifestEntry("k", 8, None, None)) or "")
    not_gzip = job.check_data_file(b"nope", job.ManifestEntry("k", 0, None, None))
    assert "not valid gzip" in (not_gzip or "")
    key = "AWSDynamoDB/E/data/a.json.gz"
    entry_doc = {"itemCount": 2, "md5Checksum": "x", "etag": "y", "dataFileS3Key": key}
    text = json.dumps(entry_doc) + "\n\n"
    assert job.parse_manifest_files(text) == [job.ManifestEntry("AWSDynamoDB/E/data/a.json.gz", 2, "x", "y")]
    with pytest.raises(ValueError, match=r"lists data file AWSDynamoDB/E/data/a\.json\.gz twice"):
        job.parse_manifest_files(text + text)
    assert job.split_s3("s3://b/p/q/") == ("b", "p/q")
    with pytest.raises(ValueError):
        job.split_s3("/local")
    assert job.resolve_args(["--TABLE", "tbl", "--LAKE", "s3://b/l", "x", "--KEYS", "pk,sk"]) == {
        "TABLE": "tbl",
        "LAKE": "s3://b/l",
        "KEYS": "pk,sk",
    }


def test_an_empty_map_whose_tag_spark_dropped_comes_back_as_an_empty_map() -> None:
    """Spark keeps no empty structs: {"M": {}} loses its tag, leaving a struct with every tag null."""
    row = {"Item": {"pk": {"S": "a"}, "x": {"S": None}, "l": {"L": [{"S": None}, {"S": "b"}]}}}
    assert job.item_from_row(row) == {"pk": {"S": "a"}, "x": {"M": {}}, "l": {"L": [{"M": {}}, {"S": "b"}]}}
    deep = {
        "pk": {"S": "a", "M": None},
        # a map member holding an empty map (its struct non-null, tags null); a member absent (null)
        "m": {"S": None, "M": {"inner": {"S": None, "N": None}, "gone": None, "n": {"N": "1", "S": None}}},
        # an empty map whose M struct survived (other items' maps have members): all members null
        "e": {"S": None, "M": {"a": None, "b": None}},
        "ll": {"L": [{"L": [{"N": None}]}, {"M": {"k": {"BOOL": None, "L": [{"S": None}]}}}]},
    }
    assert job.item_from_row(deep) == {
        "pk": {"S": "a"},
        "m": {"M": {"inner": {"M": {}}, "n": {"N": "1"}}},
        "e": {"M": {}},
        "ll": {"L": [{"L": [{"M": {}}]}, {"M": {"k": {"L": [{"M": {}}]}}}]},
    }
    # Values that are empty but not null keep their own type: only an empty map loses its tag.
    kept = {
        "s": {"S": "", "M": None},
        "l": {"L": [], "S": None},
        "b": {"B": b"", "S": None},
        "f": {"BOOL": False, "S": None},
        "n": {"NULL": True, "S": None},
        "ss": {"SS": ["x"], "S": None},
        "bs": {"BS": [b"\x00"], "S": None},
    }
    assert job.item_from_row(kept) == {
        "s": {"S": ""},
        "l": {"L": []},
        "b": {"B": ""},
        "f": {"BOOL": False},
        "n": {"NULL": True},
        "ss": {"SS": ["x"]},
        "bs": {"BS": ["AA=="]},
    }
    from boto3.dynamodb.types import TypeDeserializer  # refuses {} (not DynamoDB JSON)

    for item in (job.item_from_row(row), job.item_from_row(deep)):
        TypeDeserializer().deserialize({"M": item})


@pytest.mark.parametrize(
    ("manifest_key", "listed", "folder"),
    [
        # a full export read where it was written, and copied to another bucket or prefix
        ("p/AWSDynamoDB/E1/manifest-files.json", "p/AWSDynamoDB/E1/data/a.json.gz", "p/AWSDynamoDB/E1"),
        ("p/AWSDynamoDB/E1/manifest-files.json", "p/AWSDynamoDB/E1/data/a.json.gz", "backup/E1"),
        ("AWSDynamoDB/E1/manifest-files.json", "AWSDynamoDB/E1/data/a.json.gz", "x/y/z"),
        # an incremental export's files in the shared AWSDynamoDB/data/ folder beside its own
        ("AWSDynamoDB/E2/manifest-files.json", "AWSDynamoDB/data/b.json.gz", "copy/AWSDynamoDB/E2"),
        ("p/AWSDynamoDB/E2/manifest-files.json", "p/AWSDynamoDB/data/b.json.gz", "E2"),
        # no manifestFilesS3Key in the summary; a key under neither folder
        ("manifest-files.json", "elsewhere/AWSDynamoDB/E1/data/c.json.gz", "copy/E1"),
        ("p/AWSDynamoDB/E1/manifest-files.json", "odd/d.json.gz", "copy/E1"),
    ],
)
def test_data_files_are_found_relative_to_the_export_folder_as_ddblake_load_finds_them(
    manifest_key: str, listed: str, folder: str
) -> None:
    from ddblake.load.export import _join, _relative

    theirs = _join(f"s3://bkt/{folder}", _relative(listed, manifest_key))
    assert f"s3://bkt/{job.data_file_key(folder, listed, manifest_key)}" == theirs
    if folder != "p/AWSDynamoDB/E1":  # moved: not the key the export was written to
        assert job.data_file_key(folder, listed, manifest_key) != listed
