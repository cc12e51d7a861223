"""A table in another account: ``capture``, ``sync`` (its stream and its first load) and a
re-bootstrap all read it through ``--assume-role`` / ``DDBLAKE_ASSUME_ROLE``, against moto (DynamoDB
Local has no accounts and no STS).

Two tables named alike, both with a stream: one in the caller's own account, one in the table
owner's account, reachable only through the read role. Each holds items of its own, so every item
in the lake says which account it was read from: calls made with the caller's credentials reach the
first table, calls made as the role the second.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from capture_helpers import read_events

from ddblake.aws.clients import build_dynamodb_clients
from ddblake.capture.config import CaptureConfig
from ddblake.capture.service import run_capture
from ddblake.cli.main import main
from ddblake.errors import NotFoundError
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


def as_role(endpoint: str, role_arn: str) -> Any:
    """A DynamoDB client of the role's account, with credentials from AssumeRole on moto."""
    creds = boto3.client("sts", endpoint_url=endpoint, region_name=REGION).assume_role(
        RoleArn=role_arn, RoleSessionName="setup"
    )["Credentials"]
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


@dataclass(frozen=True)
class TwoTables:
    name: str
    own: Any  # a DynamoDB client of the caller's account
    owner: Any  # a DynamoDB client of the owner's account (as the role)


@pytest.fixture
def moto_aws(moto_s3: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """DynamoDB, Streams and STS on moto too (the S3 part and credentials come from ``moto_s3``)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", moto_s3.endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB_STREAMS", moto_s3.endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", moto_s3.endpoint)
    monkeypatch.delenv("DDBLAKE_ASSUME_ROLE", raising=False)
    return moto_s3


def create_streamed(client: Any, table: str) -> None:
    """A table keyed by ``id`` (S), on demand, with a NEW_AND_OLD_IMAGES stream."""
    client.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )


@pytest.fixture
def two_tables(moto_aws: Any) -> TwoTables:
    """The caller's table (item ``own0``) and the owner's (``i0``..``i3``), both streamed."""
    table = f"{TABLE}-{uuid.uuid4().hex[:8]}"
    endpoint = moto_aws.endpoint
    own = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION)
    owner = as_role(endpoint, READ_ROLE)
    create_streamed(own, table)
    create_streamed(owner, table)
    own.put_item(TableName=table, Item={"id": {"S": "own0"}})
    for n in range(4):
        owner.put_item(TableName=table, Item={"id": {"S": f"i{n}"}, "n": {"N": str(n)}})
    assert OWNER in owner.describe_table(TableName=table)["Table"]["TableArn"]
    assert CALLER in own.describe_table(TableName=table)["Table"]["TableArn"]
    return TwoTables(table, own, owner)


def ids(lake: str, table: str, *ops: str) -> list[str]:
    return sorted({e.keys["id"]["S"] for e in read_events(lake, table) if e.op in ops})


def assert_loaded_through_the_role(lake: str, table: str) -> None:
    (state,) = list_loads(LakeConfig.build(lake=lake).storage(), table)
    assert state.finished_us is not None
    assert f":{OWNER}:table/{table}" in state.source, "the load read the owner's table, via the role"
    assert ids(lake, table, "LOAD") == ["i0", "i1", "i2", "i3"]


def test_sync_reads_the_stream_and_loads_through_the_configured_role(
    two_tables: TwoTables, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = two_tables.name
    lake = str(tmp_path / "lake")
    monkeypatch.setenv("DDBLAKE_ASSUME_ROLE", READ_ROLE)  # as a deployed `ddblake sync` is configured
    capture = CaptureConfig.build(table=table, lake=lake, once=True)
    apply = ApplyConfig.build(table=table, lake=LakeConfig.build(lake=lake), once=True)
    load = LoadConfig.build(table=table, lake=lake)  # what cli/main.py builds for sync
    assert capture.assume_role == load.assume_role == READ_ROLE
    run_sync(SyncConfig(capture=capture, apply=apply, load=load))
    assert_loaded_through_the_role(lake, table)
    # Changes after the load reach the lake through the owner's stream, not the caller's.
    two_tables.owner.put_item(TableName=table, Item={"id": {"S": "i4"}})
    two_tables.own.put_item(TableName=table, Item={"id": {"S": "own1"}})
    run_sync(SyncConfig(capture=capture, apply=apply, load=load))
    assert ids(lake, table, "INSERT", "MODIFY") == ["i0", "i1", "i2", "i3", "i4"]
    seen = ids(lake, table, "INSERT", "MODIFY", "LOAD", "REMOVE")
    assert "own0" not in seen and "own1" not in seen, "nothing was read from the caller's own table"


def test_the_cli_flag_reaches_capture_and_the_load(
    two_tables: TwoTables, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = two_tables.name
    lake = str(tmp_path / "lake")
    assert main(["sync", "--table", table, "--lake", lake, "--once", "--assume-role", READ_ROLE]) == 0
    assert_loaded_through_the_role(lake, table)
    two_tables.owner.put_item(TableName=table, Item={"id": {"S": "i9"}})
    assert main(["capture", "--table", table, "--lake", lake, "--once", "--assume-role", READ_ROLE]) == 0
    assert "i9" in ids(lake, table, "INSERT")
    seen = ids(lake, table, "INSERT", "MODIFY", "LOAD", "REMOVE")
    assert "own0" not in seen, "nothing was read from the caller's own table"


def test_capture_without_the_role_reads_the_callers_own_table(two_tables: TwoTables, tmp_path: Path) -> None:
    """The control: the same capture without the role follows the other table's stream."""
    lake = str(tmp_path / "lake")
    run_capture(CaptureConfig.build(table=two_tables.name, lake=lake, once=True))
    assert ids(lake, two_tables.name, "INSERT") == ["own0"]


def test_a_table_missing_in_the_roles_account_names_the_role_and_the_account(
    moto_aws: Any, tmp_path: Path
) -> None:
    table = f"{TABLE}-{uuid.uuid4().hex[:8]}"
    create_streamed(
        boto3.client("dynamodb", endpoint_url=moto_aws.endpoint, region_name=REGION), table
    )  # caller's
    config = CaptureConfig.build(table=table, lake=str(tmp_path / "lake"), once=True, assume_role=READ_ROLE)
    with pytest.raises(NotFoundError) as missing:
        run_capture(config)
    text = str(missing.value)
    assert f"table {table!r} not found (DescribeTable)" in text
    assert f"using role {READ_ROLE}" in text
    assert "the role must belong to the account that owns" in text


def test_a_rebootstrap_captures_and_loads_through_the_configured_role(
    two_tables: TwoTables, tmp_path: Path
) -> None:
    table = two_tables.name
    lake = str(tmp_path / "lake")
    result = rebootstrap(table, LakeConfig.build(lake=lake), assume_role=READ_ROLE)
    assert result.loaded == 4
    assert_loaded_through_the_role(lake, table)
    assert "own0" not in ids(lake, table, "INSERT", "MODIFY", "LOAD")


def test_a_first_load_without_a_role_of_its_own_reads_as_the_captures_role(
    two_tables: TwoTables, moto_aws: Any, tmp_path: Path
) -> None:
    """Through the API, a load configured without a role uses sync's clients, and says so."""
    table = two_tables.name
    lake = str(tmp_path / "lake")
    capture = CaptureConfig.build(table=table, lake=lake, once=True, assume_role=READ_ROLE)
    apply = ApplyConfig.build(table=table, lake=LakeConfig.build(lake=lake), once=True)
    load = LoadConfig.build(table=table, lake=lake)
    assert load.assume_role is None
    run_sync(SyncConfig(capture=capture, apply=apply, load=load))
    assert_loaded_through_the_role(lake, table)
    # A table the role's account lacks: the load's error names the role its calls were made as.
    missing = f"{TABLE}-{uuid.uuid4().hex[:8]}"
    create_streamed(boto3.client("dynamodb", endpoint_url=moto_aws.endpoint, region_name=REGION), missing)
    lake2 = str(tmp_path / "lake2")
    with pytest.raises(NotFoundError) as caught:
        run_sync(
            SyncConfig(
                capture=CaptureConfig.build(table=missing, lake=lake2, once=True, assume_role=READ_ROLE),
                apply=ApplyConfig.build(table=missing, lake=LakeConfig.build(lake=lake2), once=True),
                load=LoadConfig.build(table=missing, lake=lake2),
            )
        )
    assert f"using role {READ_ROLE}" in str(caught.value)


def test_a_rebootstrap_given_clients_of_its_own_still_loads_through_the_loads_role(
    two_tables: TwoTables, tmp_path: Path
) -> None:
    """The caller's clients serve the stream; the load configured with a role builds the role's."""
    table = two_tables.name
    lake = str(tmp_path / "lake")
    load = LoadConfig.build(table=table, lake=lake, assume_role=READ_ROLE)
    clients = build_dynamodb_clients(None)  # the caller's own
    result = rebootstrap(table, LakeConfig.build(lake=lake), clients=clients, load_config=load)
    assert result.loaded == 4
    assert_loaded_through_the_role(lake, table)
