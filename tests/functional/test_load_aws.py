"""Exports and cross-account reads against moto's server (DynamoDB Local has neither)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from ddblake.changes.model import ChangeEvent
from ddblake.errors import NotFoundError, TerminalError
from ddblake.lake.rawlog import iter_raw_files
from ddblake.lake.storage import Storage
from ddblake.load import LoadConfig, run_load, service
from ddblake.load.export_start import ExportRequest
from ddblake.load.state import EXPORT_REQUEST, state_path
from ddblake.progress import NoProgress

pytestmark = pytest.mark.functional

REGION = "us-east-1"
OWNER = "111111111111"
READ_ROLE = f"arn:aws:iam::{OWNER}:role/dynamodb-cross-account-read-role"


@pytest.fixture
def moto_aws(moto_s3: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """DynamoDB and STS on moto too (the S3 part comes from ``moto_s3``)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", moto_s3.endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", moto_s3.endpoint)
    return moto_s3


def _ddb(endpoint: str, **creds: str) -> Any:
    creds = creds or {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    return boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION, **creds)


def _table(client: Any, name: str, count: int, *, pitr: bool) -> list[dict[str, Any]]:
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    if pitr:
        client.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
    items = [{"id": {"S": f"i{n}"}, "n": {"N": str(n)}, "b": {"B": "AAE="}} for n in range(count)]
    for item in items:
        client.put_item(TableName=name, Item={**item, "b": {"B": b"\x00\x01"}})
    return items


def _events(lake: str, table: str) -> list[ChangeEvent]:
    storage = Storage.from_uri(lake)
    return [ChangeEvent.from_line(line) for c in iter_raw_files(storage, table) for line in c.lines]


def _write_export(s3: Any, request: ExportRequest, table_arn: str, items: list[dict[str, Any]]) -> None:
    """What AWS would leave at the export's folder (moto writes one unnamed file, no manifests)."""
    bucket, _, prefix = request.folder[len("s3://") :].partition("/")
    data = gzip.compress(b"".join(json.dumps({"Item": it}).encode() + b"\n" for it in items), mtime=0)
    key = f"{prefix}/data/{request.export_id}-0.json.gz"
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    digest = hashlib.md5(data, usedforsecurity=False).digest()
    entry = {
        "itemCount": len(items),
        "md5Checksum": base64.b64encode(digest).decode(),
        "etag": digest.hex(),
        "dataFileS3Key": key,
    }
    s3.put_object(Bucket=bucket, Key=f"{prefix}/manifest-files.json", Body=json.dumps(entry) + "\n")
    summary = {
        "exportArn": request.export_arn,
        "tableArn": table_arn,
        "exportTime": "2026-11-28T08:00:00.000Z",
        "itemCount": len(items),
        "outputFormat": "DYNAMODB_JSON",
        "manifestFilesS3Key": f"{prefix}/manifest-files.json",
    }
    s3.put_object(Bucket=bucket, Key=f"{prefix}/manifest-summary.json", Body=json.dumps(summary))


def test_export_to_without_pitr_says_how_to_enable_it(moto_aws: Any, tmp_path: Path) -> None:
    _table(_ddb(moto_aws.endpoint), "no-pitr", 2, pitr=False)
    config = LoadConfig.build(
        table="no-pitr", lake=str(tmp_path / "lake"), export_to=f"s3://{moto_aws.bucket}/x"
    )
    with pytest.raises(TerminalError) as caught:
        run_load(config, progress=NoProgress("tbl"))
    text = str(caught.value)
    assert "point-in-time recovery is off" in text
    assert "aws dynamodb update-continuous-backups --table-name no-pitr" in text
    assert "PointInTimeRecoveryEnabled=true" in text and "arn:aws:dynamodb:" in text


def test_export_to_starts_waits_checks_and_loads(
    moto_aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _ddb(moto_aws.endpoint)
    items = _table(client, "with-pitr", 5, pitr=True)
    table_arn = client.describe_table(TableName="with-pitr")["Table"]["TableArn"]
    s3 = boto3.client("s3", endpoint_url=moto_aws.endpoint, region_name=REGION)
    real_wait = service.wait_export
    seen: list[ExportRequest] = []

    def wait_then_publish(client: Any, request: ExportRequest, **kw: Any) -> dict[str, Any]:
        description = real_wait(client, request, **kw)  # DescribeExport on moto until COMPLETED
        seen.append(request)
        _write_export(s3, request, table_arn, items)
        return description

    monkeypatch.setattr(service, "wait_export", wait_then_publish)
    lake = str(tmp_path / "lake")
    config = LoadConfig.build(
        table="with-pitr", lake=lake, export_to=f"s3://{moto_aws.bucket}/exports", export_poll_seconds=0.05
    )
    result = run_load(config, progress=NoProgress("tbl"))
    (request,) = seen
    assert request.folder.startswith(f"s3://{moto_aws.bucket}/exports/AWSDynamoDB/")
    assert result.kind == "export" and result.items == 5 and result.export_arn == request.export_arn
    events = _events(lake, "with-pitr")
    assert sorted(e.new_image["id"]["S"] for e in events if e.new_image) == [f"i{n}" for n in range(5)]
    assert {e.source for e in events} == {"export"}
    assert Storage.from_uri(lake).read(state_path("with-pitr", EXPORT_REQUEST)) is None, "request forgotten"

    # an export started earlier and still recorded is waited for again, not started anew
    pending = ExportRequest(request.export_arn, f"s3://{moto_aws.bucket}/exports", 0)
    Storage.from_uri(lake).write_atomic(
        state_path("with-pitr", EXPORT_REQUEST),
        json.dumps(
            {"export_arn": pending.export_arn, "destination": pending.destination, "started_us": 0}
        ).encode(),
    )
    before = len(client.list_exports(TableArn=table_arn)["ExportSummaries"])
    again = run_load(config, progress=NoProgress("tbl"))
    assert len(client.list_exports(TableArn=table_arn)["ExportSummaries"]) == before
    assert again.parts_skipped == 1 and again.items == 0, "the same export is not loaded twice"


def test_a_corrupt_export_started_by_export_to_is_forgotten_so_the_rerun_starts_a_new_one(
    moto_aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _ddb(moto_aws.endpoint)
    items = _table(client, "cut-short", 3, pitr=True)
    table_arn = client.describe_table(TableName="cut-short")["Table"]["TableArn"]
    s3 = boto3.client("s3", endpoint_url=moto_aws.endpoint, region_name=REGION)
    real_wait = service.wait_export
    corrupt = [True]

    def wait_then_publish(client: Any, request: ExportRequest, **kw: Any) -> dict[str, Any]:
        description = real_wait(client, request, **kw)
        _write_export(s3, request, table_arn, items)
        if corrupt[0]:  # a data file cut short after its manifest was written
            bucket, _, prefix = request.folder[5:].partition("/")
            (key,) = [
                o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/data/")["Contents"]
            ]
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            s3.put_object(Bucket=bucket, Key=key, Body=body[: len(body) // 2])
        return description

    monkeypatch.setattr(service, "wait_export", wait_then_publish)
    lake = str(tmp_path / "lake")
    config = LoadConfig.build(
        table="cut-short", lake=lake, export_to=f"s3://{moto_aws.bucket}/exports", export_poll_seconds=0.05
    )
    with pytest.raises(TerminalError, match="export the table again"):
        run_load(config, progress=NoProgress("tbl"))
    assert Storage.from_uri(lake).read(state_path("cut-short", EXPORT_REQUEST)) is None, "request forgotten"

    corrupt[0] = False  # the advice followed: the same command starts a second export and loads it
    result = run_load(config, progress=NoProgress("tbl"))
    assert len(client.list_exports(TableArn=table_arn)["ExportSummaries"]) == 2
    assert result.items == 3


def test_from_export_on_s3_refuses_a_corrupt_file(moto_aws: Any, tmp_path: Path) -> None:
    s3 = boto3.client("s3", endpoint_url=moto_aws.endpoint, region_name=REGION)
    request = ExportRequest(
        f"arn:aws:dynamodb:{REGION}:{OWNER}:table/tbl/export/0123-abcd", f"s3://{moto_aws.bucket}/e", 0
    )
    _write_export(s3, request, f"arn:aws:dynamodb:{REGION}:{OWNER}:table/tbl", [{"id": {"S": "a"}}])
    bucket, _, prefix = request.folder[5:].partition("/")
    (key,) = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/data/")["Contents"]]
    s3.put_object(Bucket=bucket, Key=key, Body=gzip.compress(b'{"Item": {"id": {"S": "b"}}}\n'))
    lake = tmp_path / "lake"
    config = LoadConfig.build(table="tbl", lake=str(lake), from_export=request.folder, keys="id")
    with pytest.raises(TerminalError, match=f"checksum mismatch in {request.folder}/data/"):
        run_load(config, progress=NoProgress("tbl"))
    assert not any(p.is_file() for p in lake.rglob("*"))


def test_assume_role_reads_a_table_in_another_account(moto_aws: Any, tmp_path: Path) -> None:
    sts = boto3.client("sts", endpoint_url=moto_aws.endpoint, region_name=REGION)
    creds = sts.assume_role(RoleArn=READ_ROLE, RoleSessionName="setup")["Credentials"]
    owner = _ddb(
        moto_aws.endpoint,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    _table(owner, "shared-table", 4, pitr=False)
    assert OWNER in owner.describe_table(TableName="shared-table")["Table"]["TableArn"]

    lake = str(tmp_path / "lake")
    without = LoadConfig.build(table="shared-table", lake=lake)
    with pytest.raises(NotFoundError) as caught:
        run_load(without, progress=NoProgress("tbl"))
    text = str(caught.value)
    assert "account 123456789012" in text, "names the account the call actually went to"
    assert "no role (--assume-role not given)" in text and "pass --assume-role" in text

    with_role = LoadConfig.build(table="shared-table", lake=lake, assume_role=READ_ROLE)
    result = run_load(with_role, progress=NoProgress("tbl"))
    assert result.items == 4
    assert OWNER in Storage.from_uri(lake).read(state_path("shared-table", "scan")).decode()  # type: ignore[union-attr]
