"""The Glue job's main() end to end on a fake Glue, Spark and S3: where it refuses, what it says, and
that a refused job has written nothing to the lake.

The fakes run the script's own Spark closures in process (``map``, ``filter``, ``mapPartitions``), and
S3 answers as botocore does (``ClientError`` with ``NoSuchKey`` / ``AccessDenied``), so each test
goes through the same code as a job run on Glue, minus the cluster.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import json
import re
import sys
import types
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ddblake.changes.model import ChangeEvent
from ddblake.gluejob import errors, job

TABLE = "orders"
ARN = f"arn:aws:dynamodb:eu-west-1:111111111111:table/{TABLE}"
ROLE = "arn:aws:sts::222222222222:assumed-role/glue-load/GlueJobRunnerSession"
EXPORT_TIME = "2026-11-28T08:00:00.000Z"


@dataclass
class S3:
    """An in-memory S3: objects by (bucket, key); ``denied`` keys answer AccessDenied."""

    objects: dict[tuple[str, str], bytes] = field(default_factory=dict)
    denied: set[tuple[str, str]] = field(default_factory=set)
    clients_built: int = 0  # boto3.client("s3") calls: the job builds one per process

    def _check(self, bucket: str, key: str, op: str) -> None:
        if (bucket, key) in self.denied:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, op)

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803 - boto3's names
        self._check(Bucket, Key, "GetObject")
        if (Bucket, Key) not in self.objects:
            raise ClientError(
                {"Error": {"Code": "NoSuchKey", "Message": "The key does not exist."}}, "GetObject"
            )
        return {"Body": types.SimpleNamespace(read=lambda: self.objects[(Bucket, Key)])}

    def put_object(self, Bucket: str, Key: str, Body: bytes) -> dict[str, Any]:  # noqa: N803
        self._check(Bucket, Key, "PutObject")
        self.objects[(Bucket, Key)] = Body
        return {}

    def get_paginator(self, name: str) -> Any:
        assert name == "list_objects_v2"

        def paginate(Bucket: str, Prefix: str) -> list[dict[str, Any]]:  # noqa: N803
            keys = sorted(k for b, k in self.objects if b == Bucket and k.startswith(Prefix))
            return [{"Contents": [{"Key": k} for k in keys]}] if keys else [{}]

        return types.SimpleNamespace(paginate=paginate)

    def raw_events(self, bucket: str = "lake") -> list[ChangeEvent]:
        return [
            ChangeEvent.from_line(line)
            for (b, k), body in sorted(self.objects.items())
            if b == bucket and "/raw/" in f"/{k}"
            for line in gzip.decompress(body).splitlines()
        ]


class RDD:
    def __init__(self, items: Iterable[Any]) -> None:
        self.items = list(items)

    def map(self, f: Callable[[Any], Any]) -> RDD:
        return RDD(f(x) for x in self.items)

    def filter(self, f: Callable[[Any], Any]) -> RDD:
        return RDD(x for x in self.items if f(x))

    def mapPartitions(self, f: Callable[[Iterator[Any]], Iterable[Any]]) -> RDD:  # noqa: N802 - Spark's
        return RDD(f(iter(self.items)))

    def collect(self) -> list[Any]:
        return list(self.items)

    def sum(self) -> int:
        return sum(self.items)


class Row:
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def asDict(self, recursive: bool = False) -> dict[str, Any]:  # noqa: N802 - Spark's name
        return self.data


class DataFrame:
    """Connector rows with an ``Item`` struct; ``where`` reads the script's IS NULL condition."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items
        self.storage: str | None = None
        self.source_reads = 0  # actions that read the export (none once the frame is cached)
        fields = sorted({name for item in items for name, value in item.items() if value is not None})
        self.columns = ["Item"]
        self.schema = {
            "Item": types.SimpleNamespace(dataType=types.SimpleNamespace(fieldNames=lambda: fields))
        }

    def persist(self, level: str) -> DataFrame:
        self.storage = level
        return self

    def unpersist(self) -> DataFrame:
        self.storage = "unpersisted"
        return self

    def _read(self) -> None:
        if self.storage != "MEMORY_AND_DISK" or not self.source_reads:
            self.source_reads += 1

    def where(self, condition: str) -> Any:
        names = re.findall(r"Item\.`([^`]*)` IS NULL", condition)
        n = sum(1 for item in self.items if any(item.get(name) is None for name in names))

        def count() -> int:
            self._read()
            return n

        return types.SimpleNamespace(count=count)

    @property
    def rdd(self) -> RDD:
        self._read()
        return RDD(Row({"Item": item}) for item in self.items)


def _install(
    monkeypatch: pytest.MonkeyPatch,
    s3: S3,
    connector_items: list[dict[str, Any]] | None = None,
    frames: list[DataFrame] | None = None,
) -> None:
    fake = types.SimpleNamespace
    frames = [] if frames is None else frames

    class SparkContext:
        @staticmethod
        def getOrCreate() -> Any:  # noqa: N802 - pyspark's name
            return fake(parallelize=lambda items, n: RDD(items))

    def from_options(connection_type: str, connection_options: dict[str, Any]) -> Any:
        frame = DataFrame(connector_items or [])
        frames.append(frame)
        return fake(toDF=lambda: frame)

    glue = fake(
        GlueContext=lambda sc: fake(create_dynamic_frame=fake(from_options=from_options)),
        Job=lambda g: fake(init=lambda *a: None, commit=lambda: None),
    )
    sts = fake(get_caller_identity=lambda: {"Arn": ROLE})
    monkeypatch.setitem(sys.modules, "awsglue", types.ModuleType("awsglue"))
    monkeypatch.setitem(sys.modules, "awsglue.context", glue)  # type: ignore[arg-type]
    monkeypatch.setitem(sys.modules, "awsglue.job", glue)  # type: ignore[arg-type]
    monkeypatch.setitem(sys.modules, "pyspark", types.ModuleType("pyspark"))
    monkeypatch.setitem(sys.modules, "pyspark.context", fake(SparkContext=SparkContext))  # type: ignore[arg-type]
    storage = fake(StorageLevel=fake(MEMORY_AND_DISK="MEMORY_AND_DISK"))
    monkeypatch.setitem(sys.modules, "pyspark.storagelevel", storage)  # type: ignore[arg-type]

    def client(name: str) -> Any:
        s3.clients_built += name == "s3"
        return sts if name == "sts" else s3

    monkeypatch.setitem(sys.modules, "boto3", fake(client=client))  # type: ignore[arg-type]
    monkeypatch.setattr(job, "_s3", functools.cache(job._s3.__wrapped__))  # this test's boto3, one client


def _put_export(
    s3: S3,
    files: dict[str, list[bytes]],
    *,
    bucket: str = "exports",
    written_at: str = "AWSDynamoDB/E1",
    stored_at: str = "AWSDynamoDB/E1",
    incremental: bool = False,
) -> None:
    """An export written under ``written_at`` (its manifests say so), stored under ``stored_at``."""
    entries = []
    for name, lines in files.items():
        data = gzip.compress(b"".join(line + b"\n" for line in lines))
        md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
        listed = f"{written_at.rsplit('/', 1)[0]}/data/{name}" if incremental else f"{written_at}/data/{name}"
        entries.append({"dataFileS3Key": listed, "itemCount": len(lines), "md5Checksum": md5})
        stored = f"{stored_at.rsplit('/', 1)[0]}/data/{name}" if incremental else f"{stored_at}/data/{name}"
        s3.objects[(bucket, stored)] = data
    summary: dict[str, Any] = {
        "exportArn": f"{ARN}/export/E1",
        "tableArn": ARN,
        "itemCount": sum(len(lines) for lines in files.values()),
        "outputFormat": "DYNAMODB_JSON",
        "manifestFilesS3Key": f"{written_at}/manifest-files.json",
    }
    if incremental:
        summary |= {"exportType": "INCREMENTAL_EXPORT", "outputView": "NEW_AND_OLD_IMAGES"}
        summary |= {"exportFromTime": EXPORT_TIME, "exportToTime": EXPORT_TIME}
    else:
        summary |= {"exportType": "FULL_EXPORT", "exportTime": EXPORT_TIME}
    s3.objects[(bucket, f"{stored_at}/manifest-summary.json")] = json.dumps(summary).encode()
    manifest = "".join(json.dumps(e) + "\n" for e in entries)
    s3.objects[(bucket, f"{stored_at}/manifest-files.json")] = manifest.encode()


def _item(i: int, **extra: Any) -> bytes:
    return json.dumps({"Item": {"pk": {"S": f"k{i}"}, "sk": {"N": str(i)}, **extra}}).encode()


def _run(*args: str) -> None:
    job.main(["--TABLE", TABLE, "--LAKE", "s3://lake/lk", *args])


def _refusal(monkeypatch: pytest.MonkeyPatch, s3: S3, *args: str, items: Any = None) -> str:
    _install(monkeypatch, s3, items)
    with pytest.raises(SystemExit) as caught:
        _run(*args)
    assert s3.raw_events() == [], "a refused job writes no raw file"
    return str(caught.value)


# --- 2. a copied export: data files found relative to --EXPORT_PATH --------------------------------


def test_an_export_copied_to_another_bucket_and_prefix_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    s3 = S3()
    files = {"a.json.gz": [_item(1), _item(2)], "b.json.gz": [_item(3)]}
    _put_export(s3, files, bucket="copies", written_at="src/AWSDynamoDB/E1", stored_at="old/exports/E1")
    _install(monkeypatch, s3)
    _run("--EXPORT_PATH", "s3://copies/old/exports/E1/", "--KEYS", "pk,sk")
    events = s3.raw_events()
    assert sorted(e.keys["sk"]["N"] for e in events) == ["1", "2", "3"]
    assert s3.clients_built == 1  # one client for the manifests, both files' checks and reads, the raw log
    assert {e.source for e in events} == {"export"} and all(
        e.event_id.startswith("export-E1-") for e in events
    )


def test_a_copied_incremental_export_finds_its_files_in_the_shared_data_folder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s3 = S3()
    line = {
        "Metadata": {"WriteTimestampMicros": {"N": "1795852800000009"}},
        "Keys": {"pk": {"S": "a"}},
        "NewImage": {"pk": {"S": "a"}},
    }
    files = {"c.json.gz": [json.dumps(line).encode()]}
    _put_export(s3, files, written_at="AWSDynamoDB/E2", stored_at="copy/AWSDynamoDB/E2", incremental=True)
    _install(monkeypatch, s3)
    _run("--EXPORT_PATH", "s3://exports/copy/AWSDynamoDB/E2")
    assert [e.op for e in s3.raw_events()] == ["INSERT"]


def test_a_missing_data_file_names_the_bucket_key_tried_and_the_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s3 = S3()
    _put_export(s3, {"a.json.gz": [_item(1)], "b.json.gz": [_item(2)]}, stored_at="copy/E1")
    del s3.objects[("exports", "copy/E1/data/b.json.gz")]
    text = _refusal(monkeypatch, s3, "--EXPORT_PATH", "s3://exports/copy/E1", "--KEYS", "pk,sk")
    assert f"ddblake glue load of {TABLE}" in text and "nothing loaded" in text
    assert "s3://exports/copy/E1/data/b.json.gz does not exist" in text
    assert "listed as AWSDynamoDB/E1/data/b.json.gz" in text and "copy the whole export folder" in text


# --- 3. clear errors, and nothing written before every line is known to convert -------------------


def test_an_item_without_a_keys_attribute_is_refused_before_anything_is_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s3 = S3()
    bad = json.dumps({"Item": {"pk": {"S": "k9"}, "secret": {"S": "never in a message"}}}).encode()
    _put_export(s3, {"a.json.gz": [_item(1), _item(2)], "b.json.gz": [_item(3), bad]})
    text = _refusal(monkeypatch, s3, "--EXPORT_PATH", "s3://exports/AWSDynamoDB/E1/", "--KEYS", "pk,sk")
    assert (
        f"ddblake glue load of {TABLE}: export s3://exports/AWSDynamoDB/E1/ refused, nothing loaded" in text
    )
    assert "AWSDynamoDB/E1/data/b.json.gz line 2" in text and "no key attribute 'sk'" in text
    assert "--KEYS must name the table's key attributes" in text
    assert "never in a message" not in text and "k9" not in text


def test_a_keys_attribute_of_another_type_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    s3 = S3()
    _put_export(s3, {"a.json.gz": [_item(1, tags={"SS": ["x"]})]})
    text = _refusal(monkeypatch, s3, "--EXPORT_PATH", "s3://exports/AWSDynamoDB/E1", "--KEYS", "pk,tags")
    assert "attribute 'tags' is not one value of type S, N or B" in text and "data/a.json.gz line 1" in text


def test_an_incremental_line_without_metadata_is_refused_naming_the_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s3 = S3()
    good = {"Metadata": {"WriteTimestampMicros": {"N": "1"}}, "Keys": {"pk": {"S": "a"}}, "NewImage": {}}
    lines = [json.dumps(good).encode(), json.dumps({"Keys": {"pk": {"S": "b"}}}).encode()]
    _put_export(s3, {"c.json.gz": lines}, incremental=True)
    text = _refusal(monkeypatch, s3, "--EXPORT_PATH", "s3://exports/AWSDynamoDB/E1")
    assert "AWSDynamoDB/data/c.json.gz line 2: incremental export line has no Metadata" in text


def test_a_missing_export_path_names_the_argument_and_its_form(monkeypatch: pytest.MonkeyPatch) -> None:
    text = _refusal(monkeypatch, S3(), "--KEYS", "pk")
    assert text.startswith(f"ddblake glue load of {TABLE}: --EXPORT_PATH is missing")
    assert "AWSDynamoDB/<export id>/" in text and "manifest-summary.json" in text
    with pytest.raises(SystemExit, match="--LAKE 'lake' is not an s3:// location"):
        job.main(["--TABLE", TABLE, "--LAKE", "lake", "--EXPORT_PATH", "s3://e/x", "--KEYS", "pk"])
    with pytest.raises(SystemExit, match=r"ddblake glue load of \(no --TABLE\): --TABLE is missing"):
        job.main(["--LAKE", "s3://l", "--EXPORT_PATH", "s3://e/x", "--KEYS", "pk"])
    with pytest.raises(SystemExit, match="--EXPORT_BUCKET is missing"):
        job.main(
            [
                "--TABLE",
                TABLE,
                "--LAKE",
                "s3://l",
                "--SOURCE",
                "connector",
                "--TABLE_ARN",
                ARN,
                "--KEYS",
                "pk",
            ]
        )


@pytest.mark.parametrize("path", ["s3://exports/AWSDynamoDB/", "s3://exports/AWSDynamoDB/E1/data/"])
def test_a_parent_or_data_folder_says_to_give_the_exports_own_folder(
    monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    s3 = S3()
    _put_export(s3, {"a.json.gz": [_item(1)]})
    text = _refusal(monkeypatch, s3, "--EXPORT_PATH", path, "--KEYS", "pk,sk")
    assert f"ddblake glue load of {TABLE}: export {path} refused, nothing loaded" in text
    assert f"{path}manifest-summary.json does not exist" in text
    assert "the export's own folder" in text and "not its parent or its data/ folder" in text


def test_access_denied_names_the_object_the_role_and_its_account(monkeypatch: pytest.MonkeyPatch) -> None:
    s3 = S3()
    _put_export(s3, {"a.json.gz": [_item(1)]})
    s3.denied.add(("exports", "AWSDynamoDB/E1/data/a.json.gz"))
    text = _refusal(monkeypatch, s3, "--EXPORT_PATH", "s3://exports/AWSDynamoDB/E1", "--KEYS", "pk,sk")
    assert f"ddblake glue load of {TABLE}" in text
    assert "s3:GetObject on s3://exports/AWSDynamoDB/E1/data/a.json.gz" in text
    assert f"as {ROLE} (account 222222222222); grant that role s3:GetObject" in text
    s3.denied = {("exports", "AWSDynamoDB/E1/manifest-summary.json")}
    text = _refusal(monkeypatch, s3, "--EXPORT_PATH", "s3://exports/AWSDynamoDB/E1", "--KEYS", "pk,sk")
    assert "access denied: s3:GetObject on s3://exports/AWSDynamoDB/E1/manifest-summary.json" in text
    assert "s3:ListBucket" in text


def test_a_raw_file_write_denied_names_the_lake_key_and_role(monkeypatch: pytest.MonkeyPatch) -> None:
    class Denying(S3):
        def put_object(self, Bucket: str, Key: str, Body: bytes) -> dict[str, Any]:  # noqa: N803
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "PutObject")

    s3 = Denying()
    _put_export(s3, {"a.json.gz": [_item(1)]})
    _install(monkeypatch, s3)
    with pytest.raises(errors.DataFileError) as caught:
        _run("--EXPORT_PATH", "s3://exports/AWSDynamoDB/E1", "--KEYS", "pk,sk")
    text = str(caught.value)
    assert (
        f"ddblake glue load of {TABLE}: writing the raw log: access denied: s3:PutObject on s3://lake/lk/raw/"
        in text
    )
    assert ROLE in text


# --- the connector: keys checked before any row; a finished load's ID refused ----------------------


def test_connector_items_without_a_keys_attribute_are_refused_before_any_row(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    items = [{"pk": {"S": "a"}, "sk": {"N": "1"}}, {"pk": {"S": "b"}, "sk": None}]
    args = ("--SOURCE", "connector", "--TABLE_ARN", ARN, "--EXPORT_BUCKET", "x", "--KEYS", "pk,sk")
    text = _refusal(monkeypatch, S3(), *args, items=items)
    assert f"ddblake glue load of {TABLE}: 1 item(s) lack an attribute of --KEYS pk,sk" in text
    assert "nothing written" in text
    text = _refusal(monkeypatch, S3(), *args[:-1], "pk,sortkey", items=items)
    assert "no item holds attribute 'sortkey' named in --KEYS pk,sortkey" in text


def test_connector_rows_load_with_their_empty_maps(monkeypatch: pytest.MonkeyPatch) -> None:
    s3 = S3()
    items = [
        {"pk": {"S": "a"}, "x": {"S": None}, "l": {"L": [{"S": None}, {"S": "b"}]}},
        {"pk": {"S": "b"}, "x": {"S": "t"}, "l": None},
    ]
    frames: list[DataFrame] = []
    _install(monkeypatch, s3, items, frames)
    _run(
        "--SOURCE",
        "connector",
        "--TABLE_ARN",
        ARN,
        "--EXPORT_BUCKET",
        "x",
        "--KEYS",
        "pk",
        "--JOB_RUN_ID",
        "jr_1",
    )
    events = {e.keys["pk"]["S"]: e for e in s3.raw_events()}
    assert events["a"].new_image == {"pk": {"S": "a"}, "x": {"M": {}}, "l": {"L": [{"M": {}}, {"S": "b"}]}}
    assert events["b"].new_image == {"pk": {"S": "b"}, "x": {"S": "t"}}
    record = json.loads(s3.objects[("lake", f"lk/state/load/{TABLE}/glue-connector.json")])
    assert record["load_id"] == "jr_1" and record["finished_us"]
    # the key check and the conversion both pass over the rows: the export is read once, cached
    assert [(f.source_reads, f.storage) for f in frames] == [(1, "unpersisted")]


# --- 4. --LOAD_ID ----------------------------------------------------------------------------------


def test_a_load_id_of_a_finished_connector_load_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    s3 = S3()
    key = ("lake", f"lk/state/load/{TABLE}/glue-connector.json")
    s3.objects[key] = json.dumps({"load_id": "weekly", "started_us": 5, "finished_us": 9}).encode()
    args = ("--SOURCE", "connector", "--TABLE_ARN", ARN, "--EXPORT_BUCKET", "x", "--KEYS", "pk")
    items = [{"pk": {"S": "a"}}]
    text = _refusal(monkeypatch, s3, *args, "--LOAD_ID", "weekly", items=items)
    assert f"ddblake glue load of {TABLE}: --LOAD_ID 'weekly' is the ID of the connector load that" in text
    assert f"s3://lake/lk/state/load/{TABLE}/glue-connector.json" in text and "Pass a new --LOAD_ID" in text
    assert json.loads(s3.objects[key])["finished_us"] == 9, "the record is left as it was"
    with pytest.raises(ValueError, match="'weekly'"):
        job.connector_run({"load_id": "weekly", "started_us": 5, "finished_us": 9}, "weekly", "jr", 10)
    _install(monkeypatch, s3, items)  # another ID, or none, starts a new load
    _run(*args, "--LOAD_ID", "weekly-2")
    assert [e.event_id.split("-", 2)[:2] for e in s3.raw_events()] == [["load", "weekly"]]


def test_export_files_say_that_they_ignore_a_load_id(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    s3 = S3()
    _put_export(s3, {"a.json.gz": [_item(1)]})
    _install(monkeypatch, s3)
    _run("--EXPORT_PATH", "s3://exports/AWSDynamoDB/E1", "--KEYS", "pk,sk", "--LOAD_ID", "mine")
    assert "--LOAD_ID ignored: export rows take the export's ID" in capsys.readouterr().out
    assert all(e.event_id.startswith("export-E1-") for e in s3.raw_events())


def test_an_export_is_refused_when_the_lake_holds_export_loads_versioned_to_the_minute(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The job versions rows to the second; with a minute-versioned load of ``ddblake load`` in
    the lake, a stale row could win (docs/load.md, the Glue job)."""
    s3 = S3()
    _put_export(s3, {"a.json.gz": [_item(1)]})
    state = {"v": 1, "table": TABLE, "kind": "export", "options": {"versions": "minute"}}
    s3.objects[("lake", f"lk/state/load/{TABLE}/export-01764316800000-old.json")] = json.dumps(state).encode()
    text = _refusal(monkeypatch, s3, "--EXPORT_PATH", "s3://exports/AWSDynamoDB/E1", "--KEYS", "pk,sk")
    assert f"ddblake glue load of {TABLE}: the lake holds export load(s) export-01764316800000-old" in text
    assert "ddblake load --from-export" in text and "nothing written" in text
    state["options"] = {"versions": "second"}
    s3.objects[("lake", f"lk/state/load/{TABLE}/export-01764316800000-old.json")] = json.dumps(state).encode()
    _run("--EXPORT_PATH", "s3://exports/AWSDynamoDB/E1", "--KEYS", "pk,sk")
    assert len(s3.raw_events()) == 1
