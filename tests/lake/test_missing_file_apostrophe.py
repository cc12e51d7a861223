"""A data file missing in a lake whose path holds an apostrophe (``/home/bob's lake``): pyarrow
quotes the path in '...', so reading it out of the quotes stopped at the apostrophe, and ``query``
and ``dump`` showed pyarrow's raw words instead of naming the table and what to do."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest
from lake_helpers import TABLE, Lake, insert
from pyiceberg.table import Table

from ddblake.cli.main import main
from ddblake.lake.reading import missing_file


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("name", ["bob's lake", "it's 'quoted'", "o'"])
@pytest.mark.parametrize("command", ["query", "dump"])
def test_a_missing_data_file_in_a_lake_path_with_an_apostrophe_names_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, command: str
) -> None:
    lake = Lake(tmp_path / name)
    lake.write([insert(k, i, {"n": {"N": str(i)}}) for i, k in enumerate("abc", 1)])
    lake.apply()
    path = sorted((lake.root / "warehouse/ddb/orders_table/data").rglob("*.parquet"))[0]
    path.unlink()
    argv = (
        ["query", "select count(*) from orders_table"] if command == "query" else ["dump", "--table", TABLE]
    )
    code, _, err = _run(capsys, argv[0], "--lake", str(lake.root), *argv[1:])
    assert code == 1 and len(err.splitlines()) == 1, err
    assert f"table ddb.orders_table cannot be read: its data file {path} is not there" in err
    assert f"delete its folder {lake.root / 'warehouse/ddb/orders_table'}," in err
    assert "Failed to open local file" not in err and "FileNotFoundError" not in err


class _Table:
    """What :func:`missing_file` asks of a table: its name and location."""

    def __init__(self, location: str, name: str) -> None:
        self._location, self._name = location, name

    def location(self) -> str:
        return self._location

    def name(self) -> tuple[str, str]:
        return ("ns", self._name)


def test_the_s3_form_is_matched_by_the_tables_location_not_by_quotes() -> None:
    root = "s3://bkt/bob's lake/warehouse/ns.db"
    tables: list[Any] = [
        _Table(f"{root}/orders_table_changes", "orders_table_changes"),
        _Table(f"{root}/orders_table", "orders_table"),
    ]
    key = "bob's lake/warehouse/ns.db/orders_table/data/_ddb_bucket=3/00000-0-abc.parquet"
    e = FileNotFoundError(f"Path does not exist 'bkt/{key}'. Detail: [errno 2] No such file or directory")
    said = missing_file(e, cast(list[Table], tables))
    assert said is not None
    assert f"table ns.orders_table cannot be read: its data file s3://bkt/{key} is not there" in str(said)
    # the location of none of them (another lake's file), or another error: not said so
    other = FileNotFoundError(
        "Path does not exist 'bkt/bob's lake/warehouse/ns.db/other/x.parquet'. Detail: [errno 2]"
    )
    assert missing_file(other, cast(list[Table], tables)) is None
    assert (
        missing_file(ValueError("Path does not exist 'bkt/bob's lake/warehouse/ns.db/orders_table/x'"), [])
        is None
    )
