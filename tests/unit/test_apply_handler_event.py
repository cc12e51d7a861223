"""The apply Lambda takes its table from an object event, else from DDBLAKE_TABLE, whatever the event."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_no_item_data_in_logs import _Context  # the same fake Lambda context

from ddblake.aws import apply_handler
from ddblake.errors import ConfigError


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


SCHEDULED = json.loads(
    (Path(__file__).resolve().parents[1] / "events" / "eventbridge-scheduled-event.json").read_text()
)
"""What the stack's EventBridge schedule sends (infra/ddblake_infra/scheduled_apply.py): no table."""


@pytest.mark.parametrize(
    "event", [SCHEDULED, "x", ["orders-table"], 42, None, {}, {"table": None}, {"other": 1}]
)
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
