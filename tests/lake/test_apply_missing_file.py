"""apply on a table one of whose data files is not there says which table, which file and what to do.

Apply reads the files of the buckets a batch touches (copy-on-write), so a deleted data file stops
it; the line must name the table and the way out (restore the file, or rebuild the table from
raw/), not blame the process's permissions.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lake_helpers import TABLE, Lake, insert

from ddblake.cli.main import main


def test_apply_over_a_missing_data_file_names_the_table_and_the_way_out(
    lake: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    lake.write([insert(k, i, {"n": {"N": str(i)}}) for i, k in enumerate("abcdefgh", 1)])
    lake.apply()
    gone: Path = sorted((lake.root / "warehouse/ddb/orders_table/data").rglob("*.parquet"))[0]
    gone.unlink()
    lake.write([insert(k, i, {"n": {"N": str(i * 10)}}) for i, k in enumerate("abcdefgh", 100)])
    capsys.readouterr()
    code = main(["apply", "--table", TABLE, "--lake", str(lake.root), "--once"])
    err = capsys.readouterr().err
    assert code == 1
    line = err.strip().splitlines()[-1]
    assert f"its data file {gone} is not there" in line
    assert "table ddb.orders_table cannot be read" in line
    assert "restore it (a backup" in line and "catalog.drop_table('ddb.orders_table')" in line
    assert "permissions" not in line
