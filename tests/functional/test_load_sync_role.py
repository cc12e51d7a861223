"""``sync``'s first load and a re-bootstrap's load honour ``DDBLAKE_ASSUME_ROLE``, against moto
(DynamoDB Local has no STS).

Two tables named alike: one in the caller's own account (with the stream capture reads), one in the
table owner's account, reachable only through the read role and holding the items. A load made with
the caller's credentials reads the first, empty table; a load made with the role reads the second.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from capture_helpers import read_events

from ddblake.aws.clients import build_dynamodb_clients
from ddblake.capture.config import CaptureConfig
from ddblake.lake.apply import ApplyConfig
from ddblake.lake.catalog import LakeConfig
from ddblake.load import LoadConfig, list_loads
from ddblake.rebootstrap import rebootstrap
from ddblake.sync import SyncConfig, run_sync

pytestmark = pytest.mark.functional

REGION = "us-east-1"
OWNER = "111111111111"
CALLER = "123456789012"  # moto's default account
READ_ROLE = f"arn:aws:iam::{OWNER}:role/dynamodb-cross-account-read-role"
TABLE = "shared-orders"  # with a suffix per test: the moto server outlives a test


@pytest.fixture
def moto_aws(moto_s3: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """DynamoDB, Streams and STS on moto too (the S3 part and credentials come from ``moto_s3``)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", moto_s3.endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", moto_s3.endpoint)
    return moto_s3


def _create(client: Any, table: str, *, stream: bool) -> None:
    extra: dict[str, Any] = {}
    if stream:
        extra["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    client.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        **extra,
    )


@pytest.fixture
def two_tables(moto_aws: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """The caller's table (with the stream, no items) and the owner's (the items, via the role)."""
    table = f"{TABLE}-{uuid.uuid4().hex[:8]}"
    endpoint = moto_aws.endpoint
    own = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION)
    _create(own, table, stream=True)  # capture's stream: the caller's own account, no items
    creds = boto3.client("sts", endpoint_url=endpoint, region_name=REGION).assume_role(
        RoleArn=READ_ROLE, RoleSessionName="setup"
    )["Credentials"]
    owner = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    _create(owner, table, stream=False)
    for n in range(4):
        owner.put_item(TableName=table, Item={"id": {"S": f"i{n}"}, "n": {"N": str(n)}})
    assert OWNER in owner.describe_table(TableName=table)["Table"]["TableArn"]
    assert CALLER in own.describe_table(TableName=table)["Table"]["TableArn"]
    monkeypatch.setenv("DDBLAKE_ASSUME_ROLE", READ_ROLE)  # as `ddblake sync` is configured
    return table


def assert_loaded_through_the_role(lake: str, table: str) -> None:
    (state,) = list_loads(LakeConfig.build(lake=lake).storage(), table)
    assert state.finished_us is not None
    assert f":{OWNER}:table/{table}" in state.source, "the load read the owner's table, via the role"
    loaded = sorted(e.keys["id"]["S"] for e in read_events(lake, table) if e.op == "LOAD")
    assert loaded == ["i0", "i1", "i2", "i3"]


def test_sync_loads_through_the_configured_role(two_tables: str, tmp_path: Path) -> None:
    table = two_tables
    lake = str(tmp_path / "lake")
    capture = CaptureConfig.build(table=table, lake=lake, once=True)
    apply = ApplyConfig.build(table=table, lake=LakeConfig.build(lake=lake), once=True)
    load = LoadConfig.build(table=table, lake=lake)  # what cli/main.py builds for sync
    assert load.assume_role == READ_ROLE
    run_sync(SyncConfig(capture=capture, apply=apply, load=load))
    assert_loaded_through_the_role(lake, table)


def test_a_rebootstrap_loads_through_the_configured_role(two_tables: str, tmp_path: Path) -> None:
    table = two_tables
    lake = str(tmp_path / "lake")
    load = LoadConfig.build(table=table, lake=lake)
    assert load.assume_role == READ_ROLE
    clients = build_dynamodb_clients(None)  # the caller's own, for the stream (as sync passes them)
    result = rebootstrap(table, LakeConfig.build(lake=lake), clients=clients, load_config=load)
    assert result.loaded == 4
    assert_loaded_through_the_role(lake, table)
