"""Scan load limits from review: ``--keys`` is refused for a Scan (not silently ignored), and the
page ``Limit`` is learned from the pages' ConsumedCapacity (DescribeTable's item size is up to 6 h
stale: 0 for a table filled since, taken at 1 KB an item), so each page stays near one second of
budget as docs/load.md says (against DynamoDB Local)."""

from __future__ import annotations

import dataclasses
import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from test_load_local import create_table

from ddblake.aws.clients import DynamoClients
from ddblake.cli.main import main
from ddblake.errors import ConfigError
from ddblake.lake.storage import Storage
from ddblake.load import LoadConfig
from ddblake.load.plan import PageSizer, page_cost
from ddblake.load.scan import ScanLoad
from ddblake.load.table import Page, TableInfo, TableReader
from ddblake.progress import NoProgress

pytestmark = pytest.mark.functional


def _put(clients: DynamoClients, table: str, count: int, pad: int = 10) -> None:
    for start in range(0, count, 25):
        batch = [
            {"PutRequest": {"Item": {"pk": {"S": f"p{i}"}, "sk": {"N": str(i)}, "pad": {"S": "x" * pad}}}}
            for i in range(start, min(count, start + 25))
        ]
        assert not clients.dynamodb.batch_write_item(RequestItems={table: batch}).get("UnprocessedItems")  # type: ignore[dict-item]


def _raw_keys(lake: Path, table: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for f in sorted((lake / "raw" / table).rglob("*.gz")):
        with gzip.open(f) as lines:
            out.extend(json.loads(line)["keys"] for line in lines)
    return out


# --- --keys and a Scan load --------------------------------------------------------------------------


def test_keys_given_to_a_scan_load_are_refused_naming_where_they_came_from(
    clients: DynamoClients,
    table_name: str,
    tmp_path: Path,
    dynamodb_local_endpoint: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table = create_table(clients, table_name)
    _put(clients, table, 10)
    lake = tmp_path / "lake"
    args = ["load", "--table", table, "--lake", str(lake), "--endpoint-url", dynamodb_local_endpoint]
    assert main([*args, "--keys", "nope,wrong"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"ddblake: error: --keys named the key attributes of table {table!r}, but ")
    assert "Scan load, which takes them from DescribeTable" in line and line.endswith(": drop --keys")
    assert not lake.exists(), "refused before anything is read or written"

    # DDBLAKE_KEYS and the settings file's keys serve the table's export loads (a shell or a
    # container set up for them): a Scan load does not use them, nor is refused for them.
    monkeypatch.setenv("DDBLAKE_KEYS", "nope")
    settings = tmp_path / "ddblake.toml"
    settings.write_text(f'[tables."{table}"]\nkeys = "nope"\n')
    assert main([*args, "--config", str(settings)]) == 0, capsys.readouterr().err
    keys = _raw_keys(lake, table)
    assert len(keys) == 10 and all(set(k) == {"pk", "sk"} for k in keys), "DescribeTable's KeySchema"
    # ... as does the load config every sync builds, whether its load runs or not.
    assert LoadConfig.build(table=table, lake=str(lake)).keys is None


def test_scan_keys_in_config_values() -> None:
    with pytest.raises(ConfigError, match=r"keys pk given for a Scan load of table 'tbl'"):
        LoadConfig(table="tbl", lake="/l", keys=("pk",))
    assert LoadConfig(table="tbl", lake="/l", from_export="/x", keys=("pk",)).keys == ("pk",)


def test_a_rebootstrap_scan_leaves_the_environments_keys_aside_with_its_export(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DDBLAKE_FROM_EXPORT", "/exports/x")
    monkeypatch.setenv("DDBLAKE_KEYS", "pk")
    assert LoadConfig.build(table="tbl", lake="/l").keys == ("pk",), "the export load uses them"
    scan = LoadConfig.build(table="tbl", lake="/l", scan=True)
    assert scan.kind == "scan" and scan.keys is None
    with pytest.raises(ConfigError, match="--keys named the key attributes .*: drop --keys"):
        LoadConfig.build(table="tbl", lake="/l", scan=True, keys="pk")


# --- the page Limit learns from the pages' cost --------------------------------------------------------


def test_page_sizer_learns_the_cost_per_item_from_each_page() -> None:
    sizer = PageSizer(budget=10.0, avg_item_bytes=1024.0, consistent=False)
    assert sizer.limit == 80 and sizer.estimate() == pytest.approx(10.0), "the guess: 1 KB items"
    assert sizer.observe(25, 128.0) == 1, "40 KB items cost ~5 units: 10 units/s buys 1 (1.95)"
    assert sizer.estimate(128.0) == pytest.approx(5.12), "the learned limit's cost, not the last page's"
    assert sizer.observe(0, 0.0) == 1 and sizer.observe(3, 0.0) == 1, "nothing to learn from"
    small = PageSizer(budget=10.0, avg_item_bytes=40_000.0, consistent=False)
    assert small.limit == 2
    limits = [small.observe(small.limit or 0, 0.5) for _ in range(6)]  # small items after all
    assert limits == [4, 8, 16, 32, 64, 128], "grows at most twofold a page"
    assert small.observe(64, 320.0) == 3, "falls at once (smoothed: half the old cost, half the new)"
    capped = PageSizer(budget=10.0, avg_item_bytes=100.0, consistent=True, cap=50)
    assert capped.limit == 50 and capped.observe(50, 1.0) == 50, "DDBLAKE_PAGE_ITEMS bounds it"
    full = PageSizer(budget=page_cost(False), avg_item_bytes=0.0, consistent=False)
    assert full.limit is None and full.observe(1000, 128.0) is None, "a full page is within budget"
    assert full.estimate() == page_cost(False) and full.estimate(64.0) == 64.0


class _StaleReader(TableReader):
    """DescribeTable as AWS shows a table filled in the last 6 hours: no items, no bytes."""

    pages: list[tuple[int | None, int, float]]

    def describe(self) -> TableInfo:
        return dataclasses.replace(super().describe(), item_count=0, size_bytes=0)

    def scan_page(self, **kw: Any) -> Page:
        page = super().scan_page(**kw)
        self.pages.append((kw["limit"], len(page.items), page.consumed))
        return page


def test_a_stale_item_size_is_corrected_after_the_first_page(
    clients: DynamoClients, table_name: str, tmp_path: Path
) -> None:
    table = create_table(clients, table_name)
    _put(clients, table, 70, pad=40_000)  # 40 KB items: 5 units each, eventually consistent
    reader = _StaleReader(table, clients.dynamodb)
    reader.pages = []
    # 100 RCU/s: below a full page (128), so pages are limited to about a second of it
    config = LoadConfig(table=table, lake=str(tmp_path / "lake"), on_demand_rcu=200.0, segments=1)
    load = ScanLoad(config, reader, Storage.from_uri(config.lake), progress=NoProgress("t"))
    result = load.run()
    assert result.items == 70
    (first_limit, first_items, first_cost), *rest = reader.pages
    assert first_limit == 800, "guessed from 1 KB items: 100 units x 8 KB / 1 KB"
    assert first_items < first_limit and first_cost > 100, "a 1 MB page: more than a second of budget"
    learned = int(100 * first_items / first_cost)  # a second of budget at the first page's cost an item
    assert 18 <= learned <= 21, reader.pages  # about 5 units an item
    assert rest and all(limit == learned for limit, _, _ in rest), reader.pages
    assert all(cost <= 100 for _, _, cost in rest), f"each page within a second of budget: {reader.pages}"
