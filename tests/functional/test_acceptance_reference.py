"""Acceptance: the reference document's walkthrough, through the real CLI.

The reference runs three ``aws dynamodb put-item --table-name example-ddb-table --item '...'
--return-consumed-capacity TOTAL`` commands. They run here as written, with the AWS CLI (``awscli``,
a dev dependency) and ``--endpoint-url``, against ``ddblake local start``; then
``ddblake capture --table example-ddb-table --lake L --endpoint-url U --once`` must have put all three
changes in the raw change log, in order.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from capture_helpers import ddblake, read_events

from ddblake.local import dynamodb_local

pytestmark = pytest.mark.functional

TABLE = "example-ddb-table"
REFERENCE_ITEMS = [
    '{ "id": {"S": "864732"}, "name": {"S": "Adam"} , "Designation": {"S": "Architect"} }',
    '{ "id": {"S": "864732"}, "name": {"S": "Adam"} , "Designation": {"S": "Sr. Architect"} }',
    '{ "id": {"S": "864732"}, "name": {"S": "Adam"} , "Designation": {"S": "Developer Advocate"} }',
]


@pytest.fixture
def local_endpoint() -> Iterator[str]:
    result = ddblake("local", "start", "--in-memory")
    assert result.returncode == 0, result.stderr
    try:
        yield result.stdout.strip().splitlines()[-1]
    finally:
        stopped = ddblake("local", "stop")
        assert stopped.returncode == 0 and dynamodb_local.read_state() is None


def test_reference_put_items_reach_the_raw_change_log_in_order(local_endpoint: str, tmp_path: Path) -> None:
    import json

    client = boto3.client(
        "dynamodb",
        endpoint_url=local_endpoint,
        region_name="us-east-1",
        aws_access_key_id="reference",
        aws_secret_access_key="reference",  # noqa: S106 - DynamoDB Local accepts any credentials
    )
    # The reference's table: id (S) partition key, name (S) sort key, on-demand, stream with both images.
    client.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}, {"AttributeName": "name", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "id", "AttributeType": "S"},
            {"AttributeName": "name", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    aws = Path(sys.executable).with_name("aws")
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "reference",
        "AWS_SECRET_ACCESS_KEY": "reference",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    env.pop("AWS_PROFILE", None)
    for item in REFERENCE_ITEMS:  # the reference document's command, as written, plus --endpoint-url
        done = subprocess.run(
            [
                str(aws),
                "dynamodb",
                "put-item",
                "--table-name",
                TABLE,
                "--item",
                item,
                "--return-consumed-capacity",
                "TOTAL",
                "--endpoint-url",
                local_endpoint,
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["ConsumedCapacity"]["TableName"] == TABLE

    lake = tmp_path / "lake"
    result = ddblake(
        "capture", "--table", TABLE, "--lake", str(lake), "--endpoint-url", local_endpoint, "--once"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""

    events = read_events(str(lake), TABLE)
    key = {"id": {"S": "864732"}, "name": {"S": "Adam"}}
    assert [e.op for e in events] == ["INSERT", "MODIFY", "MODIFY"]
    assert all(e.keys == key and e.table == TABLE and e.source == "streams" for e in events)
    assert [e.new_image for e in events] == [json.loads(item) for item in REFERENCE_ITEMS]
    assert [e.old_image for e in events] == [None, *(json.loads(item) for item in REFERENCE_ITEMS[:2])]
    sequences = [int(e.sequence or -1) for e in events]
    assert sequences == sorted(sequences) and len(set(sequences)) == 3
    assert [(e.event_time_us, int(e.sequence or -1)) for e in events] == sorted(
        (e.event_time_us, int(e.sequence or -1)) for e in events
    )
