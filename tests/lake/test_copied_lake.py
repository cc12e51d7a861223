"""A copied (or moved) lake directory: query and dump refuse, rather than answer from the original.

Iceberg metadata holds absolute paths, so the copy's catalog.db still names the original's files:
its answers came silently from there, and changed with it.
"""

from __future__ import annotations

import shutil

import pytest
from lake_helpers import TABLE, Lake, insert

from ddblake.cli.main import main


def test_a_copied_lake_is_refused_and_named_while_the_original_answers(
    lake: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    lake.write([insert("a", 1, {"n": {"N": "1"}})])
    lake.apply()
    copy = lake.root.parent / "copy"
    shutil.copytree(lake.root, copy)
    lake.write([insert("b", 2, {"n": {"N": "2"}})])  # the original moves on
    lake.apply()
    capsys.readouterr()

    assert (
        main(["query", "--lake", str(copy), "--format", "csv", "select count(*) as n from orders_table"]) == 1
    )
    err = capsys.readouterr().err
    assert "copied or moved" in err and lake.storage.uri() in err and "raw/" in err
    assert main(["dump", "--table", TABLE, "--lake", str(copy)]) == 1
    assert "copied or moved" in capsys.readouterr().err

    assert (
        main(["query", "--lake", str(lake.root), "--format", "csv", "select count(*) as n from orders_table"])
        == 0
    )
    assert capsys.readouterr().out.splitlines() == ["n", "2"]
    assert main(["dump", "--table", TABLE, "--lake", str(lake.root)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
