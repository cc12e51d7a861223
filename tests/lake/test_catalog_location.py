"""Two catalogs on one lake and namespace must not put two tables in one folder.

Each table's orphan sweep deletes the files its own metadata does not reference, so a second
catalog (``DDBLAKE_CATALOG_URI`` changed, or ``catalog.db`` lost) creating its table where the first
one's table lives would, a day later, delete the first table's data.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lake_helpers import TABLE, Lake, event

from ddblake.errors import TerminalError
from ddblake.lake.apply import Applier, ApplyConfig
from ddblake.lake.catalog import LakeConfig, open_catalog
from ddblake.lake.history import iceberg_schema


def _apply_with(lake: Lake, catalog_uri: str) -> None:
    config = LakeConfig.build(lake=str(lake.root), catalog_uri=catalog_uri)
    Applier(ApplyConfig.build(table=TABLE, lake=config, once=True), storage=lake.storage).run_once()


def test_a_second_catalog_is_refused_where_the_first_ones_table_has_data(lake: Lake, tmp_path: Path) -> None:
    lake.write([event("INSERT", "a", 1, image={"n": {"N": "1"}})])
    lake.apply()
    before = lake.dump()
    files = sorted(p for p in lake.root.rglob("*") if p.is_file() and "warehouse" in p.parts)

    other = f"sqlite:///{tmp_path / 'other.db'}"
    with pytest.raises(TerminalError) as refused:
        _apply_with(lake, other)
    text = str(refused.value)
    assert "ddb.orders_table_changes" in text and other in text and "catalog.db" in text
    assert "warehouse/ddb/orders_table_changes" in text and "dropped on purpose" in text
    assert sorted(p for p in lake.root.rglob("*") if p.is_file() and "warehouse" in p.parts) == files
    assert lake.dump() == before, "the first catalog's tables are untouched"


def test_a_create_that_crashed_before_its_catalog_commit_leaves_the_folder_usable(
    lake: Lake, tmp_path: Path
) -> None:
    # A metadata file without a snapshot: what a create killed before the catalog row leaves
    # (made here by another catalog that then never wrote data).
    config = LakeConfig.build(lake=str(lake.root), catalog_uri=f"sqlite:///{tmp_path / 'gone.db'}")
    catalog = open_catalog(config, lake.storage, create=True)
    catalog.create_table("ddb.orders_table_changes", schema=iceberg_schema())
    assert list((lake.root / "warehouse/ddb/orders_table_changes/metadata").glob("*.metadata.json"))

    lake.write([event("INSERT", "a", 1, image={"n": {"N": "1"}})])
    lake.apply()
    assert set(lake.dump()) == {"a"}
