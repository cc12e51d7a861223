"""First-use findings of ``ddblake load``: what a new user meets on the first runs of the command.

A rerun of a finished load, an export asked of an endpoint without exports, an ExternalId without a
role, a file given as the export folder, export sources from the environment, an export loaded
again with other keys, empty progress lines in a log, and the region hint of a missing table. The
lake is a real directory; AWS answers come from ``botocore.stub.Stubber``; DynamoDB Local's own
answers are in tests/functional/test_load_first_use_local.py.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from test_load_export import EXPORT_ID, _item, make_export
from test_load_fixes import CREDS, REGION, ROLE, TABLE_ARN, _clients  # the same stubbed account

from ddblake.aws.roles import Identity, explain_access_error
from ddblake.capture.config import CaptureConfig
from ddblake.configfile import read_settings_file
from ddblake.errors import ConfigError, NotFoundError, TerminalError, TransientError
from ddblake.lake.storage import Storage
from ddblake.load import LoadConfig, export_load, run_load
from ddblake.load import service as load_service
from ddblake.load.export import SUMMARY, ExportFolder
from ddblake.load.export_load import ExportLoad
from ddblake.load.scan import ScanLoad
from ddblake.load.state import EXPORT_REQUEST, SCAN_STATE, export_state_name, read_state, state_path
from ddblake.load.table import Page, TableInfo
from ddblake.progress import NoProgress, Progress
from ddblake.settings import using_file

EARLIER_RUN = "earlier-run"  # the client token an earlier run recorded (idempotency, not a secret)
EXPORT_TABLE = "example-ddb-table"  # the table test_load_export's exports are of


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("DDBLAKE_"):
            monkeypatch.delenv(name)


class Reader:
    """A table of ``count`` items in one segment, read 5 items a page."""

    where = "endpoint memory"

    def __init__(self, count: int) -> None:
        self.items = [{"pk": {"S": f"k{i:03d}"}} for i in range(count)]

    def describe(self) -> TableInfo:
        return TableInfo(
            name="tbl",
            arn="arn:aws:dynamodb:us-east-1:111111111111:table/tbl",
            key_names=("pk",),
            item_count=len(self.items),
            size_bytes=0,
            provisioned_rcu=0.0,
            on_demand=True,
        )

    def scan_page(
        self, *, segment: int, total_segments: int, start_key: Any, consistent: bool, limit: int | None = None
    ) -> Page:
        start = 0 if start_key is None else self.items.index(start_key) + 1
        chunk = self.items[start : start + 5]
        last = dict(chunk[-1]) if chunk and start + 5 < len(self.items) else None
        return Page(items=chunk, last_key=last, consumed=0.5)


def _scan(lake: Path, started_at_us: int | None = None) -> Any:
    return ScanLoad(
        LoadConfig(table="tbl", lake=str(lake), segments=1),
        Reader(12),  # type: ignore[arg-type]
        Storage.from_uri(str(lake)),
        progress=NoProgress("tbl"),
        started_at_us=started_at_us,
    ).run()


def _reload_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "already holds a finished load" in r.getMessage()]


# --- 1. a rerun after a FINISHED load is a new full load, and says so ------------------------------


def test_rerunning_a_finished_scan_load_warns_that_it_starts_a_new_full_load(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ddblake")
    first = _scan(tmp_path)
    assert not _reload_lines(caplog), "a first load has nothing to warn about"
    state = read_state(Storage.from_uri(str(tmp_path)), "tbl", SCAN_STATE)
    assert state is not None and state.finished_us is not None
    finished = dt.datetime.fromtimestamp(state.finished_us / 1e6, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    second = _scan(tmp_path)
    (line,) = _reload_lines(caplog)
    text = line.getMessage()
    assert line.levelno == logging.WARNING
    assert text.startswith("load tbl: ") and f"scan load {first.load_id}" in text and finished in text
    assert "NEW full load" in text and "change history again" in text
    assert second.load_id != first.load_id and second.items == 12, "a deliberate reload still runs"


def test_a_reload_the_caller_chose_is_noted_at_info(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ddblake")
    _scan(tmp_path)
    _scan(tmp_path, started_at_us=1_700_000_000_000_000)  # sync / a re-bootstrap passes the start
    assert [r.levelno for r in _reload_lines(caplog)] == [logging.INFO]


@pytest.mark.usefixtures("no_aws")
def test_loading_a_new_full_export_after_a_finished_load_warns_too(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ddblake")
    lake = tmp_path / "lake"
    first = _load(make_export(tmp_path / "a", [[{"Item": _item(i)} for i in range(3)]]), lake, keys="id")
    assert not _reload_lines(caplog)
    other = make_export(tmp_path / "b", [[{"Item": _item(i)} for i in range(3)]])
    summary = other / SUMMARY
    doc = json.loads(summary.read_text())
    doc["exportArn"] = doc["exportArn"].replace(EXPORT_ID, "01764316900000-b2b2b2b2")
    summary.write_text(json.dumps(doc))
    _load(other, lake, keys="id")
    (line,) = _reload_lines(caplog)
    assert f"export load {first.load_id}" in line.getMessage() and line.levelno == logging.WARNING


# --- 2. an endpoint without the export API; no request record left behind ---------------------------


def _expect_describe(stub: Stubber) -> None:
    stub.add_response(
        "describe_table",
        {
            "Table": {
                "TableName": "orders",
                "TableArn": TABLE_ARN,
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            }
        },
        {"TableName": "orders"},
    )


def _refused_export(lake: Path, error: str, raises: type[Exception], **stubbed: Any) -> Exception:
    """``load --export-to`` into ``lake`` with DescribeTable answered and the export call refused
    with ``error`` (``stubbed``: the rest of Stubber.add_client_error's arguments); the error raised."""
    config = LoadConfig.build(table="orders", lake=str(lake), export_to="s3://exports/ddb")
    clients = _clients()
    with Stubber(clients.dynamodb) as stub:
        _expect_describe(stub)
        stub.add_client_error("export_table_to_point_in_time", error, **stubbed)
        with pytest.raises(raises) as caught:
            run_load(config, clients=clients, progress=NoProgress("t"))
        stub.assert_no_pending_responses()
    return caught.value


def test_an_endpoint_without_exports_is_one_clear_line_and_leaves_no_request_record(tmp_path: Path) -> None:
    refused = _refused_export(
        tmp_path,
        "UnknownOperationException",
        ConfigError,
        service_message="An unknown operation was requested.",
        http_status_code=400,
    )
    text = str(refused)
    assert "\n" not in text and text.startswith("cannot export table 'orders'")
    assert "has no export API" in text and "leave out --export-to" in text and "Scan" in text
    assert Storage.from_uri(str(tmp_path)).read(state_path("orders", EXPORT_REQUEST)) is None


def test_a_refused_export_keeps_a_token_an_earlier_run_recorded(tmp_path: Path) -> None:
    # An earlier run recorded its token and got no answer: its export may have started, so a later
    # refusal must not forget the token the next run asks again with.
    storage = Storage.from_uri(str(tmp_path))
    now = time.time_ns() // 1000
    doc = {"client_token": EARLIER_RUN, "destination": "s3://exports/ddb", "started_us": now}
    storage.write_atomic(state_path("orders", EXPORT_REQUEST), json.dumps(doc).encode())
    refused = _refused_export(
        tmp_path,
        "ValidationException",
        TerminalError,
        service_message="bad",
        http_status_code=400,
        expected_params={
            "TableArn": TABLE_ARN,
            "S3Bucket": "exports",
            "S3Prefix": "ddb",
            "ExportFormat": "DYNAMODB_JSON",
            "ClientToken": EARLIER_RUN,
        },
    )
    assert "ValidationException" in str(refused)
    recorded = storage.read(state_path("orders", EXPORT_REQUEST))
    assert recorded is not None and json.loads(recorded)["client_token"] == EARLIER_RUN


def test_a_throttled_export_call_keeps_the_token_this_run_recorded(tmp_path: Path) -> None:
    # botocore retries a throttled call: an earlier attempt may have been accepted, so the token
    # stays for the next run (a 5xx likewise: tests/unit/test_load_fixes.py).
    refused = _refused_export(tmp_path, "LimitExceededException", TransientError, http_status_code=400)
    assert "LimitExceeded" in str(refused)
    assert Storage.from_uri(str(tmp_path)).read(state_path("orders", EXPORT_REQUEST)) is not None


def test_a_refusal_after_retries_keeps_the_token_this_run_recorded(tmp_path: Path) -> None:
    # The first attempt may have been accepted with its answer lost (a read timeout), and botocore's
    # retry then refused (credentials expired meanwhile, say): the export may be running, so the
    # record stays, or the next run would start (and bill) a second one.
    refused = _refused_export(
        tmp_path,
        "ValidationException",
        TerminalError,
        service_message="bad",
        http_status_code=400,
        response_meta={"RetryAttempts": 2},
    )
    assert "ValidationException" in str(refused)
    assert Storage.from_uri(str(tmp_path)).read(state_path("orders", EXPORT_REQUEST)) is not None
    # The same refusal at the first attempt: nothing started, no record left.
    fresh = tmp_path / "fresh"
    refused = _refused_export(
        fresh, "ValidationException", TerminalError, service_message="bad", http_status_code=400
    )
    assert "ValidationException" in str(refused)
    assert Storage.from_uri(str(fresh)).read(state_path("orders", EXPORT_REQUEST)) is None


# --- 3. --external-id needs --assume-role -----------------------------------------------------------


@pytest.mark.parametrize("build", [LoadConfig.build, CaptureConfig.build])
def test_an_external_id_without_a_role_is_refused_naming_both(
    build: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError) as given:
        build(table="orders", lake="/l", external_id="ext-1")
    text = str(given.value)
    assert "--external-id" in text and "--assume-role" in text and "\n" not in text
    monkeypatch.setenv("DDBLAKE_EXTERNAL_ID", "ext-env")
    with pytest.raises(ConfigError, match="DDBLAKE_EXTERNAL_ID.*DDBLAKE_ASSUME_ROLE"):
        build(table="orders", lake="/l")
    config = build(table="orders", lake="/l", assume_role=ROLE)
    assert (config.assume_role, config.external_id) == (ROLE, "ext-env")


# --- 4. a file given as the export folder ------------------------------------------------------------


def test_a_file_given_as_the_export_folder_is_named_as_a_file(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("not an export")
    with pytest.raises(ConfigError) as caught:
        ExportFolder(str(afile))
    text = str(caught.value)
    assert f"{afile} is a file, not a folder" in text and SUMMARY in text and "does not exist" not in text
    with pytest.raises(NotFoundError, match="does not exist"):
        ExportFolder(str(tmp_path / "missing"))


# --- 5. both export sources from the environment (or the settings file) ------------------------------


def test_both_export_sources_set_outside_the_command_line_are_named_where_they_are_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DDBLAKE_FROM_EXPORT", str(tmp_path))
    monkeypatch.setenv("DDBLAKE_EXPORT_TO", "s3://b/exports")
    with pytest.raises(ConfigError) as caught:
        LoadConfig.build(table="orders", lake="/l")
    text = str(caught.value)
    assert "DDBLAKE_FROM_EXPORT and DDBLAKE_EXPORT_TO" in text and "exclude each other" in text
    assert "--from-export and --export-to" not in text
    assert LoadConfig.build(table="orders", lake="/l", export_to="s3://b/x").kind == "export-to", (
        "a flag still wins over both variables"
    )

    monkeypatch.delenv("DDBLAKE_FROM_EXPORT")
    settings = tmp_path / "ddblake.toml"
    settings.write_text(f'from_export = "{tmp_path}"\n')
    with using_file(read_settings_file(settings)), pytest.raises(ConfigError) as in_file:
        LoadConfig.build(table="orders", lake="/l")
    assert f"from_export in {settings}" in str(in_file.value) and "DDBLAKE_EXPORT_TO" in str(in_file.value)


# --- 6. an export loaded again: other keys refused, a finished one is "already loaded" ---------------


def _load(folder: Path, lake: Path, **kw: Any) -> Any:
    config = LoadConfig.build(table=EXPORT_TABLE, lake=str(lake), from_export=str(folder), **kw)
    return run_load(config, progress=NoProgress("t"))


@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    def describe_table_keys(config: Any) -> Any:
        raise AssertionError("no DescribeTable here: every load passes --keys")

    monkeypatch.setattr(load_service, "build_load_clients", describe_table_keys)


@pytest.mark.usefixtures("no_aws")
def test_a_finished_export_load_again_is_already_loaded_and_other_keys_are_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ddblake")
    folder = make_export(tmp_path / "exp", [[{"Item": _item(i)} for i in range(5)]])
    lake = tmp_path / "lake"
    assert _load(folder, lake, keys="id").items == 5
    storage = Storage.from_uri(str(lake))
    state = read_state(storage, EXPORT_TABLE, export_state_name(EXPORT_ID))
    assert state is not None and state.finished_us is not None and state.options["keys"] == ["id"]

    caplog.clear()
    again = _load(folder, lake, keys="id")
    assert again.items == 0 and again.already_loaded
    assert "already loaded, nothing to do" in again.summary() and "resumed" not in again.summary()
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert f"export {EXPORT_ID} was already loaded" in messages and "continuing" not in messages
    after = read_state(storage, EXPORT_TABLE, export_state_name(EXPORT_ID))
    assert after is not None and after.finished_us == state.finished_us, "its finish time is kept"

    with pytest.raises(ConfigError) as caught:
        _load(folder, lake, keys="pk,sk")
    text = str(caught.value)
    assert "with keys id" in text and "keys are pk,sk (--keys pk,sk)" in text and "already loaded" in text
    assert f"delete {storage.root}/{state_path(EXPORT_TABLE, export_state_name(EXPORT_ID))}" in text


def test_an_unfinished_export_load_continued_with_other_keys_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_aws: None
) -> None:
    folder = make_export(
        tmp_path / "exp",
        [[{"Item": _item(i)} for i in range(10)], [{"Item": _item(i)} for i in range(10, 20)]],
    )
    lake = tmp_path / "lake"

    class Crash(BaseException):
        pass

    real = export_load.write_state
    writes: list[bool] = []

    def crash(storage: Storage, state: Any) -> None:
        writes.append(True)
        if len(writes) > 1:
            raise Crash  # only the state of the first raw file is written, never the load's end
        real(storage, state)

    monkeypatch.setattr(export_load, "write_state", crash)
    with pytest.raises(Crash):
        _load(folder, lake, keys="id", buffer_bytes=1000)
    monkeypatch.setattr(export_load, "write_state", real)
    state = read_state(Storage.from_uri(str(lake)), EXPORT_TABLE, export_state_name(EXPORT_ID))
    assert state is not None and state.finished_us is None, "the first raw file's state was written"

    with pytest.raises(ConfigError, match=r"partly loaded with keys id .*pass --keys id to continue it"):
        _load(folder, lake, keys="name")
    assert _load(folder, lake, keys="id").resumed, "the recorded keys continue it"


# --- 7. no empty progress lines in a log ---------------------------------------------------------


def test_an_export_load_logs_no_zero_progress_line_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    folder = make_export(tmp_path / "exp", [[{"Item": _item(i)} for i in range(2)]])
    out = io.StringIO()
    ExportLoad(
        EXPORT_TABLE,
        str(folder),
        Storage.from_uri(str(tmp_path / "lake")),
        key_names=lambda: ("id",),
        buffer_bytes=1 << 20,
        progress=Progress("load t", stream=out, tty=False),
    ).run()
    lines = out.getvalue().splitlines()
    assert lines[0] == f"load t: checking 1 data file(s) of export {EXPORT_ID}", lines
    assert not [ln for ln in lines if " 0 items" in ln or "0 / ~" in ln or "ETA ?" in ln], lines
    assert lines[-1].startswith("load t: done, 2 items in "), "the final summary stays"


def test_a_terminal_still_shows_counts_with_every_status_and_a_log_shows_each_status_once() -> None:
    tty, log = io.StringIO(), io.StringIO()
    live = Progress("load t", 10, stream=tty, tty=True, clock=lambda: 0.0)
    live.status("waiting")
    assert tty.getvalue() == "\r\x1b[Kload t: waiting 0 / ~10 items (0%) 0.0 items/s, ETA ?"
    now = [0.0]
    plain = Progress("load t", 10, stream=log, tty=False, clock=lambda: now[0])
    plain.status("waiting")
    plain.status("waiting")
    now[0] = 20.0
    plain.add(4)
    plain.status("waiting")
    assert log.getvalue().splitlines() == [
        "load t: waiting",
        "load t: waiting 4 / ~10 items (40%) 0.2 items/s, ETA 0:30",
        "load t: waiting 4 / ~10 items (40%) 0.2 items/s, ETA 0:30",
    ]


# --- 8. the region hint of a missing table names the order botocore reads ------------------------------


def test_a_missing_table_hint_names_the_region_sources_in_their_order() -> None:
    client = boto3.client("dynamodb", region_name=REGION, **CREDS)
    error = ClientError(
        {"Error": {"Code": "ResourceNotFoundException", "Message": "not found"}}, "DescribeTable"
    )
    text = str(
        explain_access_error(
            error, action="DescribeTable", table="tbl", client=client, identity=lambda: Identity("2" * 12)
        )
    )
    order = [text.find(s) for s in ("AWS_DEFAULT_REGION", "profile's region", "AWS_REGION)")]
    assert -1 not in order and order == sorted(order), text
    assert "(AWS_REGION, --endpoint-url)" not in text
