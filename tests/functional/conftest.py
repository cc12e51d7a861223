"""Helpers for functional tests: hermetic state, tables with streams, capture runs, reading the log."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ddblake.aws.clients import DynamoClients, build_dynamodb_clients
from ddblake.capture.consumer import CaptureStats
from ddblake.capture.service import CaptureConfig, run_capture


@pytest.fixture(autouse=True)
def _hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own DynamoDB Local state directory and no stray DDBLAKE_* settings."""
    for name in list(os.environ):
        if name.startswith("DDBLAKE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DDBLAKE_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture
def clients(dynamodb_local_endpoint: str) -> DynamoClients:
    """DynamoDB and Streams clients on the session's DynamoDB Local."""
    return build_dynamodb_clients(dynamodb_local_endpoint)


@pytest.fixture
def make_table(clients: DynamoClients) -> Callable[..., str]:
    """Create a table (``pk`` S hash, optional ``sk`` S range) with a stream; returns its name."""

    def make(
        name: str, *, sort_key: bool = True, view: str = "NEW_AND_OLD_IMAGES", stream: bool = True
    ) -> str:
        keys: list[Any] = [{"AttributeName": "pk", "KeyType": "HASH"}]
        attrs: list[Any] = [{"AttributeName": "pk", "AttributeType": "S"}]
        if sort_key:
            keys.append({"AttributeName": "sk", "KeyType": "RANGE"})
            attrs.append({"AttributeName": "sk", "AttributeType": "S"})
        extra: dict[str, Any] = {}
        if stream:
            extra["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view}
        clients.dynamodb.create_table(
            TableName=name, KeySchema=keys, AttributeDefinitions=attrs, BillingMode="PAY_PER_REQUEST", **extra
        )
        return name

    return make


@pytest.fixture
def capture(clients: DynamoClients, dynamodb_local_endpoint: str) -> Callable[..., CaptureStats]:
    """Run ``capture --once`` in-process against the session's DynamoDB Local."""

    def run(table: str, lake: str, **overrides: Any) -> CaptureStats:
        config = CaptureConfig.build(table=table, lake=lake, endpoint_url=dynamodb_local_endpoint, once=True)
        if overrides:
            config = CaptureConfig(**{**config.__dict__, **overrides})
        return run_capture(config, clients=clients)

    return run
