"""A machine whose clock runs minutes ahead of AWS's: a Scan load's start is checked against
DescribeTable's Date and taken that much earlier. Before, the load's rows outranked changes made
after it (an update lost), and reconcile removed an item created after the Scan passed its key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from workload import cli, dump_to_items, scan_items

from ddblake.aws.clients import DynamoClients

pytestmark = pytest.mark.functional

SKEW_US = 3 * 60_000_000  # this machine's clock 3 minutes ahead of AWS's (SigV4 accepts up to 5+)


def test_a_load_on_a_clock_ahead_of_aws_neither_overwrites_later_changes_nor_reconciles_them_away(
    clients: DynamoClients,
    make_table: Callable[..., str],
    table_name: str,
    dynamodb_local_endpoint: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    table = make_table(table_name)
    lake = str(tmp_path / "lake")
    ddb = clients.dynamodb
    ddb.put_item(TableName=table, Item={"pk": {"S": "a"}, "sk": {"S": "1"}, "n": {"N": "1"}})
    ep = ["--endpoint-url", dynamodb_local_endpoint]
    tl = ["--table", table, "--lake", lake]
    cli(capsys, "sync", *tl, *ep, "--once")

    import ddblake.load.scan as scan_module

    real = scan_module.now_us
    monkeypatch.setattr(scan_module, "now_us", lambda: real() + SKEW_US)  # the skewed machine
    cli(capsys, "load", *tl, *ep)
    monkeypatch.setattr(scan_module, "now_us", real)
    assert "clock is 18" in caplog.text and "s ahead of AWS's" in caplog.text  # about 180 s
    # After the load: a new item and a change, both through the healthy stream.
    ddb.put_item(TableName=table, Item={"pk": {"S": "b"}, "sk": {"S": "2"}, "n": {"N": "2"}})
    ddb.put_item(TableName=table, Item={"pk": {"S": "a"}, "sk": {"S": "1"}, "n": {"N": "99"}})
    cli(capsys, "sync", *tl, *ep, "--once")
    cli(capsys, "reconcile", *tl)
    dumped = dump_to_items(cli(capsys, "dump", *tl).splitlines())
    truth = scan_items(clients, table)
    assert dumped == truth, f"lake {dumped} != table {truth}"
