"""Fixtures of the fault suite (docs/reliability.md): hermetic state, clients, tables.

The session fixtures of tests/conftest.py give each xdist worker its own DynamoDB Local and moto
server. The workload generator and the capture helpers live with the functional tests and are
shared from there.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "functional"))

from ddblake.aws.clients import DynamoClients, build_dynamodb_clients  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "faults: the fault suite (docs/reliability.md); heavier at DDBLAKE_VERIFY_* strength"
    )


@pytest.fixture(autouse=True)
def _hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Own DynamoDB Local state directory; no stray DDBLAKE_* settings (the verify knobs stay)."""
    for name in list(os.environ):
        if name.startswith("DDBLAKE_") and not name.startswith("DDBLAKE_VERIFY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DDBLAKE_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture
def clients(dynamodb_local_endpoint: str) -> DynamoClients:
    return build_dynamodb_clients(dynamodb_local_endpoint)


@pytest.fixture
def make_table(clients: DynamoClients) -> Callable[..., str]:
    """Create a ``pk``/``sk`` (S, S) table, with a NEW_AND_OLD_IMAGES stream unless told otherwise."""

    def make(name: str, *, stream: bool = True) -> str:
        extra: dict[str, Any] = {}
        if stream:
            extra["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
        clients.dynamodb.create_table(
            TableName=name,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
            **extra,
        )
        return name

    return make
