"""Names holding a NUL character (DynamoDB takes them) in ``query``: DuckDB ends a name at a NUL.

``query`` must neither crash nor drop a column silently: such columns are read under the name before
the NUL (``a``, ``a_1``), a warning names them, and every value stays in ``_ddb_item``.
"""

from __future__ import annotations

import json
import logging

import pytest
from lake_helpers import Lake, insert

from ddblake.cli.main import main


@pytest.mark.parametrize("fmt", ["json", "table"])
def test_nul_in_names_is_read_and_warned_not_a_crash(
    lake: Lake, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, fmt: str
) -> None:
    image = {"a\0b": {"S": "x"}, "a\0c": {"S": "y"}, "m": {"M": {"k\0b": {"S": "x"}, "k\0c": {"S": "y"}}}}
    lake.write([insert("p", 1, image)])
    lake.apply()
    capsys.readouterr()
    sql = "SELECT a, a_1, _ddb_item->>'$.m.M' AS m FROM orders_table"
    with caplog.at_level(logging.WARNING, logger="ddblake"):
        code = main(["query", "--lake", str(lake.root), "--format", fmt, sql])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Traceback" not in err
    if fmt == "json":
        (row,) = [json.loads(line) for line in out.splitlines()]
        assert (row["a"], row["a_1"]) == ("x", "y")
        assert json.loads(row["m"]) == {"k\0b": {"S": "x"}, "k\0c": {"S": "y"}}  # the whole map, exactly
    else:
        assert "x" in out and "y" in out
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "NUL" in warned and "'a\\x00b'" in warned and "_ddb_item" in warned
    assert "k\\x00" not in warned and "'m'" in warned  # map keys are item data: only their column
