"""The apply Lambda takes its table from an object event, else from DDBLAKE_TABLE, whatever the event."""

from __future__ import annotations

from typing import Any

import pytest

from ddblake.aws import apply_handler
from ddblake.errors import ConfigError


class _Context:
    function_name = "ddblake-apply"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ddblake-apply"
    aws_request_id = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


@pytest.fixture
def applied(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tables ``_apply`` was called with (nothing applied)."""
    tables: list[str] = []

    def fake(table: str, context: Any) -> dict[str, Any]:
        tables.append(table)
        return {"table": table}

    monkeypatch.setattr(apply_handler, "_apply", fake)
    monkeypatch.delenv("DDBLAKE_TABLE", raising=False)
    return tables


@pytest.mark.parametrize("event", ["x", ["orders-table"], 42, None, {}, {"table": None}, {"other": 1}])
def test_an_event_that_names_no_table_takes_the_functions_table(
    applied: list[str], monkeypatch: pytest.MonkeyPatch, event: Any
) -> None:
    monkeypatch.setenv("DDBLAKE_TABLE", "orders-table")
    assert apply_handler.handler(event, _Context()) == {"table": "orders-table"}  # type: ignore[arg-type]
    assert applied == ["orders-table"]


@pytest.mark.parametrize("event", ["x", [], 7, None])
def test_no_table_anywhere_is_the_config_error(applied: list[str], event: Any) -> None:
    with pytest.raises(ConfigError, match="no table: set DDBLAKE_TABLE"):
        apply_handler.handler(event, _Context())  # type: ignore[arg-type]
    assert applied == []


def test_an_object_event_names_the_table(applied: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DDBLAKE_TABLE", "orders-table")
    apply_handler.handler({"table": "other-table"}, _Context())  # type: ignore[arg-type]
    assert applied == ["other-table"]
