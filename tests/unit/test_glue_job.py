"""The Glue job's transformation logic, without Spark: same rows, IDs and paths as ``ddblake load``."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ddblake.changes.model import ChangeEvent
from ddblake.changes.resolve import key_string
from ddblake.gluejob import SCRIPT, errors, job, library_files, manifest
from ddblake.gluejob import rules as glue_rules
from ddblake.lake.rawlog import raw_file_path
from ddblake.load.export import ExportManifest
from ddblake.load.export_rows import RowMaker
from ddblake.load.rows import (
    export_event_id,
    export_version_from_us,
    parse_export_time,
    scan_event_id,
    version_time_from_us,
)

KEYS = [
    {"pk": {"S": "a"}},
    {"pk": {"S": "Zoë"}, "sk": {"N": "1.50"}},
    {"pk": {"B": "AAEC"}, "sk": {"N": "1E+3"}},
    {"sk": {"N": "-0.0"}, "pk": {"S": ""}},
    {"pk": {"N": "12345678901234567890123456789012345678"}},
    {"pk": {"N": "-1.2345678901234567890123456789012345678E-130"}},
    {"pk": {"N": "1E+999999999"}},
]


def test_the_script_runs_from_its_zip_alone_and_imports_only_the_standard_library(tmp_path: Path) -> None:
    for name, path in library_files().items():  # the --extra-py-files zip, unpacked
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, tmp_path / name)
    code = (
        "import json, runpy, sys\n"
        f"sys.path.insert(0, {str(tmp_path)!r})\n"
        f"script = runpy.run_path({str(SCRIPT)!r})\n"
        "try:\n"
        "    script['main'](['--TABLE', 't', '--LAKE', 's3://l', '--SOURCE', 'connector'])\n"
        "except SystemExit as e:\n"
        "    refused = str(e)\n"
        "print(json.dumps({'refused': refused, 'modules': sorted(sys.modules),\n"
        "    'origin': sys.modules['ddblake'].__file__}))\n"
    )
    # -S: no site-packages, so neither the installed ddblake nor boto3 can be imported
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True)
    got = json.loads(out.stdout)
    assert "--SOURCE connector needs --KEYS" in got["refused"]
    assert got["origin"] == str(tmp_path / "ddblake" / "__init__.py")
    ours = [m for m in got["modules"] if m.split(".")[0] == "ddblake"]
    assert ours and all(m == "ddblake" or m.startswith("ddblake.gluejob") for m in ours), ours
    third_party = {"boto3", "botocore", "pyspark", "awsglue", "pyarrow", "pyiceberg", "duckdb"}
    assert [m for m in got["modules"] if m.split(".")[0] in third_party] == []


@pytest.mark.parametrize("keys", KEYS)
def test_key_and_id_rules_equal_ddblakes(keys: dict[str, dict[str, str]]) -> None:
    assert glue_rules.key_string(keys) == key_string(keys)
    assert glue_rules.event_id("L", keys) == scan_event_id("L", keys)
    assert glue_rules.event_id("E", keys, export=True) == export_event_id("E", keys)
    assert glue_rules.event_id("E", keys, export=True, write_us=7) == export_event_id("E", keys, 7)


def test_time_and_path_rules_equal_ddblakes() -> None:
    for us in (0, 1_795_852_800_000_000, 1_795_852_800_999_999, 1_795_852_801_000_001):
        assert glue_rules.version_time_from_us(us) == version_time_from_us(us)
        assert glue_rules.export_version_from_us(us) == export_version_from_us(us)
    assert glue_rules.parse_time_us("2026-11-28T08:00:00.250Z") == parse_export_time(
        "2026-11-28T08:00:00.250Z"
    )
    assert glue_rules.raw_file_key("", "tbl", 1_795_852_800_123_456, "u") == raw_file_path(
        "tbl", 1_795_852_800_123_456, "u"
    )
    assert glue_rules.raw_file_key("lake/x/", "tbl", 1_795_852_800_123_456, "u") == "lake/x/" + raw_file_path(
        "tbl", 1_795_852_800_123_456, "u"
    )
    for long in ("t" * 120, "t" * 121, "a.b-c_" * 42 + "xyz"):  # 120 whole; 121 and 255 cut, hashed
        assert (
            glue_rules.raw_file_key("", long, 1_795_852_800_123_456).rsplit("-", 1)[0]
            == raw_file_path(long, 1_795_852_800_123_456).rsplit("-", 1)[0]
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
    rules = glue_rules.Rules("tbl", "E1", ("pk", "sk"), glue_rules.export_version_from_us(at), seq=str(at))
    ours = ChangeEvent.from_line(glue_rules.export_line(json.dumps(full), rules, 5))
    theirs = RowMaker(_manifest(False), "tbl", ("pk", "sk")).item_to_event(full, 5)
    assert ours == theirs and ours.to_line() == glue_rules.export_line(json.dumps(full), rules, 5)
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
        inc = glue_rules.Rules("tbl", "E1", (), 0, incremental=True, view="NEW_AND_OLD_IMAGES")
        assert ChangeEvent.from_line(glue_rules.export_line(json.dumps(obj), inc, 5)) == RowMaker(
            _manifest(True), "tbl", None
        ).item_to_event(obj, 5)
    with pytest.raises(ValueError, match="no Item"):
        glue_rules.export_line(b'{"Keys": {}}', rules, 5)


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
    item = glue_rules.item_from_row(row)
    assert item == {
        "pk": {"S": "a"},
        "n": {"N": "1.50"},
        "m": {"M": {"x": {"BOOL": False}, "nil": {"NULL": True}}},
        "l": {"L": [{"S": "x"}, {"N": "2"}]},
        "b": {"B": "AAE="},
    }
    rules = glue_rules.Rules("tbl", "run-1", ("pk",), 99, export=False)
    event = ChangeEvent.from_line(glue_rules.row_line(item, rules, 5))
    assert (event.op, event.source, event.event_id, event.event_time_us) == (
        "LOAD",
        "scan",
        scan_event_id("run-1", {"pk": {"S": "a"}}),
        99,
    )
    assert glue_rules.item_from_row({"pk": {"S": "x"}}) == {"pk": {"S": "x"}}
    with pytest.raises(ValueError, match="'pk'"):
        glue_rules.keys_of({"x": {"S": "1"}}, ("pk",))


def test_files_chunking_gzip_and_manifest_checks() -> None:
    lines = [b"x" * 10 + b"\n"] * 7
    assert [len(c) for c in glue_rules.chunks(lines, max_bytes=33)] == [3, 3, 1]
    assert list(glue_rules.chunks([], 10)) == []
    data = glue_rules.gzip_lines(lines)
    assert gzip.decompress(data) == b"".join(lines) and glue_rules.gzip_lines(lines) == data
    digest = hashlib.md5(data, usedforsecurity=False).digest()
    entry = manifest.ManifestEntry("k", 7, base64.b64encode(digest).decode(), digest.hex())
    assert manifest.check_data_file(data, entry) is None
    assert "checksum mismatch" in (manifest.check_data_file(data[:-1] + bytes([data[-1] ^ 1]), entry) or "")
    # Without an MD5 a single-part ETag is the MD5 and is compared; a multipart one is not an MD5.
    other = glue_rules.gzip_lines([b"y" * 10 + b"\n"] * 7)
    by_etag = manifest.ManifestEntry("k", 7, None, digest.hex())
    assert manifest.check_data_file(data, by_etag) is None
    assert "ETag mismatch in k" in (manifest.check_data_file(other, by_etag) or "")
    assert manifest.check_data_file(other, manifest.ManifestEntry("k", 7, None, digest.hex() + "-2")) is None
    assert "holds 7 item(s)" in (
        manifest.check_data_file(data, manifest.ManifestEntry("k", 8, None, None)) or ""
    )
    not_gzip = manifest.check_data_file(b"nope", manifest.ManifestEntry("k", 0, None, None))
    assert "not valid gzip" in (not_gzip or "")
    key = "AWSDynamoDB/E/data/a.json.gz"
    entry_doc = {"itemCount": 2, "md5Checksum": "x", "etag": "y", "dataFileS3Key": key}
    text = json.dumps(entry_doc) + "\n\n"
    assert manifest.parse_manifest_files(text) == [
        manifest.ManifestEntry("AWSDynamoDB/E/data/a.json.gz", 2, "x", "y")
    ]
    with pytest.raises(ValueError, match=r"lists data file AWSDynamoDB/E/data/a\.json\.gz twice"):
        manifest.parse_manifest_files(text + text)
    assert errors.split_s3("s3://b/p/q/") == ("b", "p/q")
    with pytest.raises(ValueError):
        errors.split_s3("/local")
    assert job.resolve_args(["--TABLE", "tbl", "--LAKE", "s3://b/l", "x", "--KEYS", "pk,sk"]) == {
        "TABLE": "tbl",
        "LAKE": "s3://b/l",
        "KEYS": "pk,sk",
    }


def test_an_empty_map_whose_tag_spark_dropped_comes_back_as_an_empty_map() -> None:
    """Spark keeps no empty structs: {"M": {}} loses its tag, leaving a struct with every tag null."""
    row = {"Item": {"pk": {"S": "a"}, "x": {"S": None}, "l": {"L": [{"S": None}, {"S": "b"}]}}}
    assert glue_rules.item_from_row(row) == {
        "pk": {"S": "a"},
        "x": {"M": {}},
        "l": {"L": [{"M": {}}, {"S": "b"}]},
    }
    deep = {
        "pk": {"S": "a", "M": None},
        # a map member holding an empty map (its struct non-null, tags null); a member absent (null)
        "m": {"S": None, "M": {"inner": {"S": None, "N": None}, "gone": None, "n": {"N": "1", "S": None}}},
        # an empty map whose M struct survived (other items' maps have members): all members null
        "e": {"S": None, "M": {"a": None, "b": None}},
        "ll": {"L": [{"L": [{"N": None}]}, {"M": {"k": {"BOOL": None, "L": [{"S": None}]}}}]},
    }
    assert glue_rules.item_from_row(deep) == {
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
    assert glue_rules.item_from_row(kept) == {
        "s": {"S": ""},
        "l": {"L": []},
        "b": {"B": ""},
        "f": {"BOOL": False},
        "n": {"NULL": True},
        "ss": {"SS": ["x"]},
        "bs": {"BS": ["AA=="]},
    }
    from boto3.dynamodb.types import TypeDeserializer  # refuses {} (not DynamoDB JSON)

    for item in (glue_rules.item_from_row(row), glue_rules.item_from_row(deep)):
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
    assert f"s3://bkt/{manifest.data_file_key(folder, listed, manifest_key)}" == theirs
    if folder != "p/AWSDynamoDB/E1":  # moved: not the key the export was written to
        assert manifest.data_file_key(folder, listed, manifest_key) != listed
