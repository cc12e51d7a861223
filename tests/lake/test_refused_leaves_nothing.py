"""A table whose current-state identifier is another table's history (``orders_table_changes`` beside
``orders-table``) is refused by apply before it creates anything: no ``…_changes_changes`` left
behind in the catalog."""

from __future__ import annotations

import lake_helpers
import pytest
from lake_helpers import Lake, insert

from ddblake.errors import TerminalError


def test_a_refused_table_leaves_no_history_table_behind(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    lake.write([insert("a", 1, {"n": {"N": "1"}})])
    lake.apply()
    other = "orders_table_changes"  # its current state would be orders-table's history
    monkeypatch.setattr(lake_helpers, "TABLE", other)
    lake.write([insert("b", 2, {"n": {"N": "2"}})])
    with pytest.raises(TerminalError, match="belongs to DynamoDB table 'orders-table'"):
        lake.apply()
    names = {".".join(t) for t in lake.catalog().list_tables("ddb")}
    assert names == {"ddb.orders_table", "ddb.orders_table_changes"}, names
