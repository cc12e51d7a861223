"""Errors of the right kind, naming what is involved and what to do, with no secret in them.

Real components throughout: export folders, lakes and catalogs on local disk, the real adapters
and loaders; AWS-only answers (DescribeExport, GetRecords and Glue errors) come from
``botocore.stub.Stubber``, as elsewhere in the suite. The S3 side (access denied on an export in
S3) is in tests/functional/test_error_kinds_io.py, on moto's server.
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber
from test_load_export import make_export

from ddblake.aws.clients import DynamoClients
from ddblake.capture.checkpoint import Checkpoint, ShardPosition, save_checkpoint
from ddblake.capture.service import CaptureConfig, run_capture
from ddblake.changes.model import ChangeEvent
from ddblake.errors import ConfigError, NotFoundError, StreamGapError, TerminalError, TransientError
from ddblake.lake import maintain
from ddblake.lake.apply import Applier, ApplyConfig
from ddblake.lake.catalog import LakeConfig, catalog_error, open_catalog, shown_catalog_uri
from ddblake.lake.cleanup import delete_all
from ddblake.lake.rawlog import RawLogWriter
from ddblake.lake.storage import Storage
from ddblake.load import LoadConfig, run_load
from ddblake.load.export import CorruptExportError, ExportFolder, iter_lines, read_manifest, verify_export
from ddblake.load.export_start import ExportFailedError
from ddblake.load.state import EXPORT_REQUEST, state_path
from ddblake.progress import NoProgress

REGION = "eu-west-1"
CREDS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
ACCOUNT = "111111111111"
PRINCIPAL = f"arn:aws:sts::{ACCOUNT}:assumed-role/apply/ddblake"
UNREADABLE = Path("/proc/self/mem")  # opens, and reading its first page fails with EIO (Linux)


def _items(n: int) -> list[dict[str, Any]]:
    return [{"Item": {"id": {"S": f"id-{i}"}}} for i in range(n)]


# --- 1. an export file that cannot be read: a ddblake error naming it ------------------------------


@pytest.fixture
def unreadable_data_file(tmp_path: Path) -> tuple[ExportFolder, Path]:
    """An export whose one data file opens but fails on its first read (an I/O error)."""
    if not UNREADABLE.exists():
        pytest.skip("needs /proc/self/mem (Linux)")
    folder = make_export(tmp_path, [_items(3)])
    (data,) = (folder / "data").iterdir()
    data.unlink()
    data.symlink_to(UNREADABLE)
    return ExportFolder(str(folder)), data


def test_an_export_data_file_failing_while_it_is_checked_is_a_ddblake_error_naming_it(
    unreadable_data_file: tuple[ExportFolder, Path],
) -> None:
    folder, data = unreadable_data_file
    with pytest.raises(TransientError) as caught:  # EIO: worth another try, not a damaged export
        verify_export(folder, read_manifest(folder))
    assert f"cannot read {data}" in str(caught.value)


def test_an_export_data_file_failing_while_it_is_loaded_is_a_ddblake_error_naming_it(
    unreadable_data_file: tuple[ExportFolder, Path],
) -> None:
    folder, data = unreadable_data_file
    (entry,) = read_manifest(folder).files
    with pytest.raises(TransientError) as caught:
        list(iter_lines(folder, entry))
    assert f"cannot read {data}" in str(caught.value)


def test_an_export_data_file_no_longer_gzip_when_loaded_is_refused_naming_it(tmp_path: Path) -> None:
    folder = ExportFolder(str(make_export(tmp_path, [_items(3)])))
    (entry,) = read_manifest(folder).files
    Path(folder.where(entry.rel)).write_bytes(b'{"Item": {"id": {"S": "x"}}}\n')  # replaced since checked
    with pytest.raises(CorruptExportError) as caught:
        list(iter_lines(folder, entry))
    assert folder.where(entry.rel) in str(caught.value) and "changed since it was checked" in str(
        caught.value
    )


# --- 2. DescribeExport: ExportNotFoundException for the recorded export ------------------------------


TABLE_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/orders"


def _clients() -> DynamoClients:
    return DynamoClients(
        boto3.client("dynamodb", region_name=REGION, **CREDS),
        boto3.client("dynamodbstreams", region_name=REGION, **CREDS),
    )


def _record_export(lake: Path, arn: str) -> None:
    doc = {"export_arn": arn, "destination": "s3://exports/ddb", "started_us": 1}
    Storage.from_uri(str(lake)).write_atomic(state_path("orders", EXPORT_REQUEST), json.dumps(doc).encode())


def _recorded(lake: Path) -> bytes | None:
    return Storage.from_uri(str(lake)).read(state_path("orders", EXPORT_REQUEST))


def _load_unknown_export(lake: Path, arn: str) -> TerminalError:
    config = LoadConfig.build(
        table="orders", lake=str(lake), export_to="s3://exports/ddb", export_poll_seconds=0.01
    )
    clients = _clients()
    with Stubber(clients.dynamodb) as stub:
        stub.add_client_error(
            "describe_export",
            service_error_code="ExportNotFoundException",
            service_message=f"Export not found: {arn}",
            expected_params={"ExportArn": arn},
        )
        with pytest.raises(TerminalError) as caught:
            run_load(config, clients=clients, progress=NoProgress("t"))
        stub.assert_no_pending_responses()
    return caught.value


def test_an_export_unknown_where_it_was_started_is_forgotten_so_the_rerun_starts_a_new_one(
    tmp_path: Path,
) -> None:
    arn = f"{TABLE_ARN}/export/01700000000000-gone"
    _record_export(tmp_path, arn)
    error = _load_unknown_export(tmp_path, arn)
    text = str(error)
    assert isinstance(error, ExportFailedError) and not error.transient
    assert arn in text and f"region {REGION}, account {ACCOUNT}" in text and "unknown to DynamoDB" in text
    assert "export-request.json" in text and "the next run starts a new export" in text
    assert _recorded(tmp_path) is None, "the request is forgotten: a rerun does not fail the same way"


def test_an_export_of_another_region_than_the_one_asked_is_kept_and_both_are_named(tmp_path: Path) -> None:
    arn = f"arn:aws:dynamodb:us-east-2:{ACCOUNT}:table/orders/export/01700000000000-there"
    _record_export(tmp_path, arn)
    error = _load_unknown_export(tmp_path, arn)
    text = str(error)
    assert not isinstance(error, ExportFailedError) and not error.transient
    assert "region us-east-2" in text and f"region {REGION}" in text
    assert f"delete {state_path('orders', EXPORT_REQUEST)}" in text
    assert _recorded(tmp_path) is not None, "the export may well be there: its record stays"


# --- 3. a catalog URI's password is never shown -----------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        (
            "postgresql://ddblake:s3cret@db.example:5432/iceberg",
            "postgresql://ddblake:***@db.example:5432/iceberg",
        ),
        (
            "postgresql+psycopg://u@db/x?password=s3cret&sslmode=require",
            "postgresql+psycopg://u@db/x?password=***&sslmode=require",
        ),
        ("not a url:s3cret@db.example", "***@db.example"),
        ("sqlite:////var/lake/catalog.db", "sqlite:////var/lake/catalog.db"),
        # an unescaped @ in the password: SQLAlchemy ends the password at the first @
        ("postgresql://u:s3@cret@db.example/iceberg", "postgresql://***@db.example/iceberg"),
    ],
)
def test_a_catalog_uri_is_shown_without_its_password(uri: str, shown: str) -> None:
    assert shown_catalog_uri(uri) == shown


def test_a_catalog_error_does_not_show_the_password_of_the_catalog_uri(tmp_path: Path) -> None:
    config = LakeConfig.build(lake=str(tmp_path), catalog_uri=f"sqlite://ddblake:s3cret@/{tmp_path}/c.db")
    with pytest.raises(TerminalError) as caught:
        open_catalog(config, config.storage())
    text = str(caught.value)
    assert "s3cret" not in text and "ddblake:***@" in text


def _raw_file(storage: Storage, table: str) -> None:
    writer = RawLogWriter(storage, table, buffer_bytes=1 << 30, buffer_seconds=3600)
    writer.add(
        ChangeEvent(
            op="INSERT",
            table=table,
            keys={"pk": {"S": "a"}},
            new_image={"pk": {"S": "a"}},
            old_image=None,
            event_id=uuid.uuid4().hex,
            event_time_us=1_764_316_800_000_000,
            sequence="1",
            source="streams",
            ttl=False,
            ingested_us=1_764_316_800_000_000,
        ).to_line()
    )
    assert writer.flush() is not None


def test_a_table_refused_for_another_catalog_does_not_show_the_catalog_password(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    storage = Storage.from_uri(str(lake))
    _raw_file(storage, "orders")
    first = LakeConfig.build(lake=str(lake))
    Applier(ApplyConfig.build(table="orders", lake=first, once=True), storage=storage).run_once()
    # A second catalog (as DDBLAKE_CATALOG_URI would name a database server) that lacks the table.
    other = LakeConfig.build(lake=str(lake), catalog_uri="postgresql://ddblake:s3cret@db.example/iceberg")
    catalog = open_catalog(
        LakeConfig.build(lake=str(lake), catalog_uri=f"sqlite:///{tmp_path}/other.db"), storage
    )
    applier = Applier(
        ApplyConfig.build(table="orders", lake=other, once=True), storage=storage, catalog=catalog
    )
    with pytest.raises(TerminalError) as caught:
        applier.run_once()
    text = str(caught.value)
    assert "not in the catalog this command uses" in text
    assert "s3cret" not in text and "postgresql://ddblake:***@db.example/iceberg" in text


# --- 4. Glue errors name the database and table and say what to grant in Glue ----------------------


def _glue_denied(stub: Stubber, method: str, resource: str) -> None:
    action = "glue:" + "".join(part.title() for part in method.split("_"))
    stub.add_client_error(
        method,
        service_error_code="AccessDeniedException",
        service_message=f"User: {PRINCIPAL} is not authorized to perform: {action} on resource: {resource} "
        "because no identity-based policy allows the action",
    )


def _assert_glue_advice(text: str) -> None:
    assert "glue:GetDatabase" in text and "glue:GetTable" in text and "glue:UpdateTable" in text
    base = f"arn:aws:glue:{REGION}:{ACCOUNT}"
    assert f"{base}:catalog" in text and f"{base}:database/ddb" in text and f"{base}:table/ddb/*" in text
    assert PRINCIPAL in text
    assert "owns the table" not in text and "read role" not in text, "no DynamoDB advice"


def test_glue_access_denied_on_the_database_says_what_to_grant_in_glue(tmp_path: Path) -> None:
    config = LakeConfig.build(lake=str(tmp_path), catalog="glue")
    glue = boto3.client("glue", region_name=REGION, **CREDS)
    with Stubber(glue) as stub:
        _glue_denied(stub, "get_database", f"arn:aws:glue:{REGION}:{ACCOUNT}:catalog")
        with pytest.raises(TerminalError) as caught:
            open_catalog(config, config.storage(), glue_client=glue, create=False)
    text = str(caught.value)
    assert "access denied calling Glue GetDatabase" in text and "database 'ddb'" in text
    _assert_glue_advice(text)


def test_glue_access_denied_on_a_table_names_the_table(tmp_path: Path) -> None:
    config = LakeConfig.build(lake=str(tmp_path), catalog="glue")
    storage = config.storage()
    glue = boto3.client("glue", region_name=REGION, **CREDS)
    with Stubber(glue) as stub:
        stub.add_response("get_database", {"Database": {"Name": "ddb"}}, {"Name": "ddb"})
        catalog = open_catalog(config, storage, glue_client=glue, create=False)
        _glue_denied(stub, "get_table", f"arn:aws:glue:{REGION}:{ACCOUNT}:table/ddb/orders_table")
        with pytest.raises(Exception) as raised:  # noqa: PT011 - pyiceberg lets botocore's error through
            catalog.load_table("ddb.orders_table")
    explained = catalog_error(raised.value, config, storage)
    assert isinstance(explained, TerminalError) and not explained.transient
    assert "Glue GetTable on table ddb.orders_table" in str(explained)
    _assert_glue_advice(str(explained))


# --- 5. maintenance failures are logged with what happened, not only its type ----------------------


def test_a_maintenance_pass_that_fails_logs_the_first_line_of_its_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    storage = Storage.from_uri(str(tmp_path))
    _raw_file(storage, "orders")
    applier = Applier(ApplyConfig.build(table="orders", lake=LakeConfig.build(lake=str(tmp_path)), once=True))
    applier.run_once()

    def unreachable(applier: Applier, **kwargs: Any) -> Any:
        raise TerminalError("the lake's SQL catalog is gone: restore catalog.db\nsecond line")

    monkeypatch.setattr(maintain, "maintain", unreachable)
    with caplog.at_level(logging.WARNING, logger="ddblake.lake.maintain"):
        assert maintain.Maintainer(applier).run() is None
    assert (
        "maintenance skipped, tried again later: TerminalError: the lake's SQL catalog is gone" in caplog.text
    )
    assert "second line" not in caplog.text


def test_a_file_that_cannot_be_deleted_is_logged_with_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    storage = Storage.from_uri(str(tmp_path))
    storage.write_atomic("warehouse/a.parquet", b"x")
    (tmp_path / "warehouse" / "b.parquet").mkdir()  # a folder where a file is expected: no delete_file
    with caplog.at_level(logging.WARNING, logger="ddblake.lake.cleanup"):
        out = delete_all(storage.delete, {"warehouse/a.parquet": 1, "warehouse/b.parquet": 2})
    assert (out.files, out.failed) == (1, 1)
    (record,) = [r for r in caplog.records if "could not delete" in r.getMessage()]
    message = record.getMessage()
    assert (
        "warehouse/b.parquet" in message
        and f"cannot delete {storage.shown('warehouse/b.parquet')}" in message
    )


# --- 6. GetRecords on a shard or stream that is gone ------------------------------------------------

STREAM_TABLE = "stubbed-table"
STREAM_ARN = f"arn:aws:dynamodb:us-east-1:123456789012:table/{STREAM_TABLE}/stream/2024-01-01T00:00:00.000"
SHARD = "shardId-00000001700000000000-aaaaaaaa"


def test_a_shard_gone_under_get_records_is_a_gap_naming_shard_and_stream(tmp_path: Path) -> None:
    kw: dict[str, Any] = {"region_name": "us-east-1", **CREDS}
    clients = DynamoClients(boto3.client("dynamodb", **kw), boto3.client("dynamodbstreams", **kw))
    save_checkpoint(
        Storage.from_uri(str(tmp_path)),
        Checkpoint(STREAM_TABLE, STREAM_ARN, {SHARD: ShardPosition(seq=f"{5:021d}")}),
    )
    with Stubber(clients.dynamodb) as ddb, Stubber(clients.streams) as streams:
        ddb.add_response(
            "describe_table",
            {
                "Table": {
                    "TableName": STREAM_TABLE,
                    "LatestStreamArn": STREAM_ARN,
                    "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
                }
            },
            {"TableName": STREAM_TABLE},
        )
        shard = {"ShardId": SHARD, "SequenceNumberRange": {"StartingSequenceNumber": f"{1:021d}"}}
        streams.add_response(
            "describe_stream",
            {"StreamDescription": {"StreamArn": STREAM_ARN, "Shards": [shard]}},
            {"StreamArn": STREAM_ARN},
        )
        streams.add_response("get_shard_iterator", {"ShardIterator": "it-1"})
        streams.add_client_error(
            "get_records",
            service_error_code="ResourceNotFoundException",
            service_message="Requested resource not found",
            expected_params={"ShardIterator": "it-1", "Limit": 1000},
        )
        with pytest.raises(StreamGapError) as caught:
            run_capture(CaptureConfig(table=STREAM_TABLE, lake=str(tmp_path), once=True), clients=clients)
    text = str(caught.value)
    assert SHARD in text and STREAM_ARN in text and "is gone" in text and f"read up to {5:021d}" in text
    assert "--rebootstrap" in text and "check the name" not in text


# --- 7. a throttled DescribeTable while loading a full export stays transient -----------------------


def _single_attempt_clients() -> DynamoClients:
    single = Config(retries={"mode": "standard", "max_attempts": 1})  # the answer as botocore gives up
    kw: dict[str, Any] = {"region_name": REGION, "config": single, **CREDS}
    return DynamoClients(boto3.client("dynamodb", **kw), boto3.client("dynamodbstreams", **kw))


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [("ThrottlingException", 400, TransientError), ("ResourceNotFoundException", 400, NotFoundError)],
)
def test_describe_table_failing_for_an_export_load_keeps_its_kind(
    tmp_path: Path, code: str, status: int, kind: type[Exception]
) -> None:
    folder = make_export(tmp_path / "export", [_items(2)], table="orders")
    clients = _single_attempt_clients()
    config = LoadConfig.build(table="orders", lake=str(tmp_path / "lake"), from_export=str(folder))
    with Stubber(clients.dynamodb) as stub:
        stub.add_client_error("describe_table", service_error_code=code, http_status_code=status)
        with pytest.raises(TerminalError if kind is NotFoundError else TransientError) as caught:
            run_load(config, clients=clients, progress=NoProgress("t"))
    text = str(caught.value)
    assert f"cannot load full export {folder}" in text and "--keys" in text
    assert isinstance(caught.value.__cause__, kind)
    assert caught.value.transient is (kind is TransientError)


# --- 8. a value out of range names the flag and the variable it can come from -----------------------


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({"segments": 0}, "segments must be 1..1000000, got 0 (from --segments or DDBLAKE_SEGMENTS)"),
        ({"workers": 999}, "(from --workers or DDBLAKE_WORKERS)"),
        ({"read_percent": 151.0}, "got 151.0 (from --read-percent or DDBLAKE_READ_PERCENT)"),
        ({"buffer_bytes": -1}, "buffer_bytes must be positive, got -1 (from DDBLAKE_LOAD_BUFFER_BYTES)"),
    ],
)
def test_a_value_out_of_range_names_its_flag_and_variable(given: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        LoadConfig.build(table="orders", lake="/l", **given)
    assert named in str(caught.value)
