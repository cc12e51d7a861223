"""A re-bootstrap on a machine whose clock runs ahead of AWS's.

The Scan takes its start back by the clock's lead (``ddblake.load.scan``), so the wait before it must
count that in: before, the wait was made on the unshifted start, the rows ranked below the lake's
newest change from before the gap, and the change the gap hid was lost without a word. A rerun
must also find its load by the start it asked for, not start a whole new Scan.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from workload import dump_to_items, scan_items

from ddblake import rebootstrap as rb
from ddblake.aws.clients import DynamoClients
from ddblake.errors import StreamGapError
from ddblake.lake.catalog import LakeConfig, open_catalog
from ddblake.lake.report import dump_items
from ddblake.lake.storage import Storage
from ddblake.load import LoadConfig
from ddblake.load.scan import ScanLoad
from ddblake.load.table import CLOCK_AHEAD_ALLOWED_US, TableReader
from ddblake.progress import NoProgress
from ddblake.sync import SyncConfig, run_sync

pytestmark = pytest.mark.functional

SKEW_US = 3 * 60_000_000  # this machine's clock 3 minutes ahead of AWS's


def _sync_config(table: str, lake: str) -> SyncConfig:
    from ddblake.capture.config import CaptureConfig
    from ddblake.lake.apply import ApplyConfig

    return SyncConfig(
        capture=CaptureConfig.build(table=table, lake=lake, endpoint_url="http://127.0.0.1:9", once=True),
        apply=ApplyConfig.build(table=table, lake=LakeConfig.build(lake=lake), once=True),
        load=LoadConfig.build(table=table, lake=lake),
    )


def _skew(monkeypatch: pytest.MonkeyPatch) -> None:
    import ddblake.load.scan as scan_module

    real_scan, real_rb = scan_module.now_us, rb._now_us
    monkeypatch.setattr(scan_module, "now_us", lambda: real_scan() + SKEW_US)
    monkeypatch.setattr(rb, "_now_us", lambda: real_rb() + SKEW_US)


def test_the_lead_is_measured_and_covers_what_the_scan_takes_off(
    clients: DynamoClients, make_table: Callable[..., str], table_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = make_table(table_name)
    assert rb._clock_lead_us(table, clients, None) < CLOCK_AHEAD_ALLOWED_US  # a right clock
    _skew(monkeypatch)
    lead = rb._clock_lead_us(table, clients, None)
    assert SKEW_US <= lead < SKEW_US + 3_000_000  # the Date header is rounded down to the second
    assert rb._load_start_shift_us(lead) >= lead + 1_000_000
    assert rb._load_start_shift_us(1_000_000) == 0  # a Scan takes nothing off for so small a lead


def test_a_scan_moved_back_by_the_clock_is_found_by_the_start_it_was_asked_for(
    clients: DynamoClients,
    make_table: Callable[..., str],
    table_name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table, lake = make_table(table_name), str(tmp_path / "lake")
    _skew(monkeypatch)
    asked = rb._now_us()
    config = LoadConfig.build(table=table, lake=lake)
    storage = Storage.from_uri(lake)
    reader = TableReader(table, clients.dynamodb)
    ScanLoad(config, reader, storage, progress=NoProgress("load"), started_at_us=asked).run()
    from ddblake.load.state import SCAN_STATE, read_state

    state = read_state(storage, table, SCAN_STATE)
    assert state is not None and state.started_us <= asked - SKEW_US
    assert rb._is_load_from(state, asked)
    assert not rb._is_load_from(state, asked + 1)


@pytest.mark.long(90)
def test_a_rebootstrap_on_a_clock_ahead_of_aws_keeps_the_change_the_gap_hid(
    clients: DynamoClients,
    make_table: Callable[..., str],
    table_name: str,
    tmp_path: Path,
    dynamodb_local_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ddb = clients.dynamodb
    table, lake = make_table(table_name), str(tmp_path / "lake")
    item = {"pk": {"S": "k"}, "sk": {"S": "0"}}
    ddb.put_item(TableName=table, Item={**item, "v": {"N": "1"}})
    run_sync(_sync_config(table, lake), clients=clients)  # the first load
    ddb.put_item(TableName=table, Item={**item, "v": {"N": "2"}})
    run_sync(_sync_config(table, lake), clients=clients)  # v2 from the stream: the lake's newest
    ddb.update_table(TableName=table, StreamSpecification={"StreamEnabled": False})
    ddb.put_item(TableName=table, Item={**item, "v": {"N": "3"}})  # in no stream
    ddb.update_table(
        TableName=table, StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    )
    with pytest.raises(StreamGapError):
        run_sync(_sync_config(table, lake), clients=clients)
    _skew(monkeypatch)
    rb.rebootstrap(table, LakeConfig.build(lake=lake), dynamodb_local_endpoint, clients=clients)
    monkeypatch.undo()
    config = LakeConfig.build(lake=lake)
    dumped = dump_to_items(list(dump_items(open_catalog(config, config.storage()), "ddb", table)))
    assert dumped == scan_items(clients, table)
