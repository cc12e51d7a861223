"""Scan load fixes against DynamoDB Local: an on-demand table's MaxReadRequestUnits is the capacity
``--read-percent`` applies to, and the start log names the figure used."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ddblake.aws.clients import DynamoClients
from ddblake.load import LoadConfig, run_load
from ddblake.progress import NoProgress

pytestmark = pytest.mark.functional


def test_an_on_demand_maximum_caps_the_read_budget(
    clients: DynamoClients,
    table_name: str,
    tmp_path: Path,
    dynamodb_local_endpoint: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    clients.dynamodb.create_table(
        TableName=table_name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        OnDemandThroughput={"MaxReadRequestUnits": 40, "MaxWriteRequestUnits": 100},
    )
    for i in range(20):
        clients.dynamodb.put_item(TableName=table_name, Item={"pk": {"S": f"k{i}"}})
    config = LoadConfig.build(
        table=table_name,
        lake=str(tmp_path / "lake"),
        endpoint_url=dynamodb_local_endpoint,
        read_percent=25,
        segments=2,
    )
    with caplog.at_level(logging.INFO, logger="ddblake.load.scan"):
        result = run_load(config, clients=clients, progress=NoProgress("t"))
    assert result.items == 20
    assert (
        "budget 10 RCU/s (25 % of 40 RCU, the table's on-demand maximum, MaxReadRequestUnits)" in caplog.text
    )
