"""Load defects fixed together: binary resume keys, failed exports, roles in sync, Glue keys, sources.

AWS-only APIs (ExportTableToPointInTime, DescribeExport, an AccessDenied answer) are answered by
``botocore.stub.Stubber``; the lake is a real directory. DynamoDB behaviour itself is tested against
DynamoDB Local (tests/functional/test_load_binary_keys.py) and moto (test_load_sync_role.py).
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from ddblake.aws.clients import DynamoClients
from ddblake.changes.model import ChangeEvent
from ddblake.errors import ConfigError, TerminalError, TransientError
from ddblake.gluejob import SCRIPT, job, library_files
from ddblake.gluejob import rules as glue_rules
from ddblake.lake.storage import Storage
from ddblake.load import LoadConfig, run_load
from ddblake.load.export_start import MAX_DESCRIBE_FAILURES, ExportFailedError
from ddblake.load.rows import (
    export_event_id,
    export_version_from_us,
    parse_export_time,
    scan_event_id,
    to_call_item,
    to_wire_item,
)
from ddblake.load.state import EXPORT_REQUEST, state_path
from ddblake.load.table import TableReader
from ddblake.progress import NoProgress

REGION = "eu-west-1"
CREDS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
TABLE_ARN = "arn:aws:dynamodb:eu-west-1:111111111111:table/orders"
ROLE = "arn:aws:iam::111111111111:role/reader"


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("DDBLAKE_"):
            monkeypatch.delenv(name)


def _clients() -> DynamoClients:
    return DynamoClients(
        boto3.client("dynamodb", region_name=REGION, **CREDS),
        boto3.client("dynamodbstreams", region_name=REGION, **CREDS),
    )


# --- 1. binary keys go back to botocore as bytes -----------------------------------------------------


def test_wire_form_and_call_form_are_inverse() -> None:
    call = {
        "pk": {"B": b"\x00\x01\xfb\xff"},
        "bs": {"BS": [b"\x00", b"\xfe\xff"]},
        "m": {"M": {"b": {"B": b">?"}, "l": {"L": [{"B": b"\x01"}, {"S": "AAE="}]}}},
        "s": {"S": "AAE="},
        "n": {"N": "1"},
    }
    wire = to_wire_item(call)
    assert wire["pk"] == {"B": "AAH7/w=="} and wire["bs"] == {"BS": ["AA==", "/v8="]}
    assert wire["s"] == {"S": "AAE="}, "a string that looks like base64 is still a string"
    assert to_call_item(wire) == call


def test_a_damaged_saved_binary_key_is_a_terminal_error_naming_the_segment() -> None:
    reader = TableReader("tbl", boto3.client("dynamodb", region_name=REGION, **CREDS))
    with pytest.raises(TerminalError, match="resume key of segment 3 .* not base64"):
        reader.scan_page(
            segment=3, total_segments=4, start_key={"pk": {"B": "not base64!"}}, consistent=False
        )


# --- 2. a FAILED export is forgotten, so a rerun starts a new one ------------------------------------


def _export_arn(n: int) -> str:
    return f"{TABLE_ARN}/export/0170000000000{n}-aaaa"


def _expect_start(stub: Stubber, arn: str, *, token: Any = ANY, lost: bool = False) -> None:
    """DescribeTable, then ExportTableToPointInTime (``lost``: its answer never arrives, a 500)."""
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
    params = {
        "TableArn": TABLE_ARN,
        "S3Bucket": "exports",
        "S3Prefix": "ddb",
        "ExportFormat": "DYNAMODB_JSON",
        "ClientToken": token,
    }
    if lost:
        stub.add_client_error(
            "export_table_to_point_in_time",
            "InternalServerError",
            http_status_code=500,
            expected_params=params,
        )
    else:
        stub.add_response("export_table_to_point_in_time", {"ExportDescription": {"ExportArn": arn}}, params)


def _expect_status(stub: Stubber, arn: str, status: str) -> None:
    description: dict[str, Any] = {"ExportArn": arn, "ExportStatus": status}
    if status == "FAILED":
        description.update(FailureCode="S3NoSuchBucket", FailureMessage="bucket does not exist")
    stub.add_response("describe_export", {"ExportDescription": description}, {"ExportArn": arn})


def _recorded(lake: Path) -> str | None:
    data = Storage.from_uri(str(lake)).read(state_path("orders", EXPORT_REQUEST))
    return None if data is None else str(json.loads(data)["export_arn"])


def test_a_failed_export_is_forgotten_and_the_rerun_starts_a_new_one(tmp_path: Path) -> None:
    config = LoadConfig.build(
        table="orders", lake=str(tmp_path), export_to="s3://exports/ddb", export_poll_seconds=0.01
    )
    clients = _clients()
    with Stubber(clients.dynamodb) as stub:
        _expect_start(stub, _export_arn(1))
        _expect_status(stub, _export_arn(1), "IN_PROGRESS")
        _expect_status(stub, _export_arn(1), "FAILED")
        with pytest.raises(ExportFailedError) as failed:
            run_load(config, clients=clients, progress=NoProgress("t"))
        stub.assert_no_pending_responses()
    text = str(failed.value)
    assert _export_arn(1) in text and "S3NoSuchBucket bucket does not exist" in text
    assert "the next run starts a new export" in text
    assert _recorded(tmp_path) is None, "the failed export is forgotten"

    # the cause fixed, the same command again: a NEW export, recorded and waited for
    stop = threading.Event()
    stop.set()  # leave after the first DescribeExport (the export keeps running on AWS)
    with Stubber(clients.dynamodb) as stub:
        _expect_start(stub, _export_arn(2))
        _expect_status(stub, _export_arn(2), "IN_PROGRESS")
        with pytest.raises(TransientError, match="picks it up again"):
            run_load(config, clients=clients, progress=NoProgress("t"), stop=stop)
        stub.assert_no_pending_responses()
    assert _recorded(tmp_path) == _export_arn(2), "a stopped wait keeps its request"


def test_a_run_that_never_saw_its_export_started_asks_again_with_the_same_client_token(
    tmp_path: Path,
) -> None:
    # A run killed after ExportTableToPointInTime and before recording the answer must not start
    # (and pay for) a second export: its client token is recorded first and used again.
    config = LoadConfig.build(
        table="orders", lake=str(tmp_path), export_to="s3://exports/ddb", export_poll_seconds=0.01
    )
    clients = _clients()
    with Stubber(clients.dynamodb) as stub:
        _expect_start(stub, _export_arn(1), lost=True)
        with pytest.raises((TransientError, TerminalError)):
            run_load(config, clients=clients, progress=NoProgress("t"))
    data = Storage.from_uri(str(tmp_path)).read(state_path("orders", EXPORT_REQUEST))
    assert data is not None
    token = json.loads(data)["client_token"]

    stop = threading.Event()
    stop.set()
    with Stubber(clients.dynamodb) as stub:
        _expect_start(stub, _export_arn(1), token=token)  # the same token: DynamoDB's same export
        _expect_status(stub, _export_arn(1), "IN_PROGRESS")
        with pytest.raises(TransientError, match="picks it up again"):
            run_load(config, clients=clients, progress=NoProgress("t"), stop=stop)
        stub.assert_no_pending_responses()
    assert _recorded(tmp_path) == _export_arn(1)


def test_a_failed_export_recorded_by_an_earlier_run_is_forgotten_when_seen(tmp_path: Path) -> None:
    storage = Storage.from_uri(str(tmp_path))
    doc = {"export_arn": _export_arn(7), "destination": "s3://exports/ddb", "started_us": 1}
    storage.write_atomic(state_path("orders", EXPORT_REQUEST), json.dumps(doc).encode())
    config = LoadConfig.build(
        table="orders", lake=str(tmp_path), export_to="s3://exports/ddb", export_poll_seconds=0.01
    )
    clients = _clients()
    with Stubber(clients.dynamodb) as stub:
        _expect_status(stub, _export_arn(7), "FAILED")
        with pytest.raises(ExportFailedError, match=_export_arn(7)):
            run_load(config, clients=clients, progress=NoProgress("t"))
        stub.assert_no_pending_responses()
    assert _recorded(tmp_path) is None


# --- 3. clients given without an identity: the configured role is not claimed as used ----------------


def test_given_clients_are_not_reported_as_using_the_configured_role(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DDBLAKE_ASSUME_ROLE", ROLE)
    config = LoadConfig.build(table="orders", lake=str(tmp_path))
    assert config.assume_role == ROLE
    clients = _clients()
    principal = "arn:aws:sts::222222222222:assumed-role/glue-role/GlueJobRunnerSession"
    with Stubber(clients.dynamodb) as stub:
        stub.add_client_error(
            "describe_table",
            service_error_code="AccessDeniedException",
            http_status_code=400,
            service_message=f"User: {principal} is not authorized to perform: dynamodb:DescribeTable on "
            "resource: arn:aws:dynamodb:eu-west-1:222222222222:table/orders",
        )
        with pytest.raises(TerminalError) as denied:
            run_load(config, clients=clients, progress=NoProgress("t"))
    text = str(denied.value)
    assert f"using role {ROLE}" not in text, "ddblake assumed no role for clients it was given"
    assert f"did not assume the configured role {ROLE}" in text
    assert "build_role_clients" in text and principal in text


# --- 4. the Glue job: keys required, Python 3.10 --------------------------------------------------------


def test_the_connector_needs_keys_and_keys_of_refuses_none() -> None:
    with pytest.raises(ValueError, match="--SOURCE connector needs --KEYS"):
        glue_rules.key_names_arg({"TABLE": "t"}, "connector")
    assert glue_rules.key_names_arg({"KEYS": " pk , sk "}, "connector") == ("pk", "sk")
    assert glue_rules.key_names_arg({}, "export-files") == (), "an incremental export carries its keys"
    with pytest.raises(ValueError, match="hash\\[,range\\]"):
        glue_rules.key_names_arg({"KEYS": "a,b,c"}, "export-files")
    with pytest.raises(ValueError, match="--SOURCE 'scan'"):
        glue_rules.key_names_arg({"KEYS": "pk"}, "scan")
    with pytest.raises(ValueError, match="no key attribute names"):
        glue_rules.keys_of({"pk": {"S": "a"}}, ())
    rules = glue_rules.Rules(table="t", load_id="jr", key_names=(), version_us=0, export=False)
    with pytest.raises(ValueError, match="--KEYS"):
        glue_rules.row_line({"pk": {"S": "a"}}, rules, 0)


def test_the_job_refuses_the_connector_without_keys_before_starting_spark() -> None:
    """main() fails on its arguments before it imports awsglue or pyspark (absent here)."""
    with pytest.raises(SystemExit, match="ddblake glue load of orders: --SOURCE connector needs --KEYS"):
        job.main(
            ["--TABLE", "orders", "--LAKE", "s3://lake", "--SOURCE", "connector", "--TABLE_ARN", TABLE_ARN]
        )


def test_connector_rows_with_keys_are_rows_apply_reads() -> None:
    keys = glue_rules.key_names_arg({"KEYS": "pk"}, "connector")
    rules = glue_rules.Rules(table="tbl", load_id="jr", key_names=keys, version_us=7, export=False)
    events = [
        ChangeEvent.from_line(glue_rules.row_line({"pk": {"S": k}, "v": {"N": "1"}}, rules, 0)) for k in "ab"
    ]
    assert [e.keys for e in events] == [{"pk": {"S": "a"}}, {"pk": {"S": "b"}}]
    assert len({e.event_id for e in events}) == 2


def _library(root: Path) -> Path:
    """The job's --extra-py-files zip content, unpacked under ``root``."""
    for name, path in library_files().items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, root / name)
    return root


def _python310() -> str | None:
    candidates = [
        shutil.which("python3.10"),
        *sorted(Path.home().glob(".pyenv/versions/3.10*/bin/python3.10")),
    ]
    for candidate in candidates:
        if candidate is None:
            continue
        probe = subprocess.run(
            [str(candidate), "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True
        )
        if probe.returncode == 0 and probe.stdout.strip() == "(3, 10)":
            return str(candidate)
    return None


_ON_310 = """
import json, sys
sys.path.insert(0, sys.argv[3])  # the --extra-py-files zip's content, as Glue puts it on the path
from ddblake.gluejob import job
from ddblake.gluejob import rules as r
cases = json.loads(sys.argv[2])
rules = r.Rules(table="tbl", load_id="L", key_names=("pk", "sk"), version_us=5, export=True)
out = {
    "times": [r.parse_time_us(t) for t in cases["times"]],
    "paths": [r.raw_file_key("p", "t", us, "u") for us in cases["us"]],
    "versions": [r.version_time_from_us(us) for us in cases["us"]],
    "export_versions": [r.export_version_from_us(us) for us in cases["us"]],
    "ids": [r.event_id("L", k) for k in cases["keys"]]
    + [r.event_id("E", k, export=True) for k in cases["keys"]],
    "line": r.export_line(json.dumps({"Item": cases["item"]}), rules, 9).decode(),
    "nulls": r.strip_nulls({"a": {"S": "x", "N": None}, "b": [{"B": None, "S": "y"}]}),
}
try:
    job.main(["--TABLE", "t", "--LAKE", "s3://l", "--SOURCE", "connector"])
except SystemExit as e:
    out["refused"] = str(e)
print(json.dumps(out))
"""


# Names Python 3.11+ added that the script could reach for; the subprocess test below needs a
# Python 3.10 interpreter, which CI (Python 3.11+ only) does not have, so this check always runs.
_NEWER_THAN_310 = {
    ("datetime", "UTC"),
    ("dt", "UTC"),
    ("enum", "StrEnum"),
    ("typing", "Self"),
    ("typing", "LiteralString"),
    ("typing", "Never"),
    ("typing", "assert_never"),
    ("typing", "Required"),
    ("typing", "NotRequired"),
    ("asyncio", "TaskGroup"),
    ("contextlib", "chdir"),
    ("hashlib", "file_digest"),
}
_MODULES_NEWER_THAN_310 = {"tomllib", "wsgiref.types"}
_BUILTINS_NEWER_THAN_310 = {"ExceptionGroup", "BaseExceptionGroup"}


def test_the_glue_script_is_python_310_syntax_and_names_even_without_a_310() -> None:
    found = [
        f"{name} {problem}"
        for name, path in {"glue_job.py": SCRIPT, **library_files()}.items()
        for problem in _newer_than_310(path)
    ]
    assert found == [], "Glue 4.0 runs Python 3.10"


def _newer_than_310(path: Path) -> list[str]:
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source, feature_version=(3, 10))  # except*, PEP 695, ... are SyntaxErrors
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if (node.value.id, node.attr) in _NEWER_THAN_310:
                found.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            found += [
                f"line {node.lineno}: from {node.module} import {a.name}"
                for a in node.names
                if (node.module, a.name) in _NEWER_THAN_310 or node.module in _MODULES_NEWER_THAN_310
            ]
        elif isinstance(node, ast.Import):
            found += [
                f"line {node.lineno}: import {a.name}"
                for a in node.names
                if a.name in _MODULES_NEWER_THAN_310
            ]
        elif isinstance(node, ast.Name) and node.id in _BUILTINS_NEWER_THAN_310:
            found.append(f"line {node.lineno}: {node.id}")
    return found


def test_the_glue_script_runs_under_python_310_as_glue_4_does(tmp_path: Path) -> None:
    python = _python310()
    if python is None:
        pytest.skip("no Python 3.10 interpreter on this machine")
    cases = {
        "times": [
            "2026-11-28T08:00:00.250Z",
            "2026-11-28T08:00:00Z",
            "2026-11-28T08:00:00.1234567Z",
            "2026-11-28T09:00:00.5+01:00",
        ],
        "us": [0, 1_795_852_800_123_456, 1_795_852_801_000_001],
        "keys": [{"pk": {"S": "Zoë"}, "sk": {"N": "1.50"}}, {"pk": {"B": "AAEC"}, "sk": {"N": "1E+3"}}],
        "item": {"pk": {"S": "a"}, "sk": {"N": "2"}, "b": {"B": "AAE="}},
    }
    run = subprocess.run(
        [python, "-I", "-c", _ON_310, str(SCRIPT), json.dumps(cases), str(_library(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    assert got["times"] == [parse_export_time(t) for t in cases["times"]]
    assert got["paths"] == [glue_rules.raw_file_key("p", "t", us, "u") for us in cases["us"]]
    assert got["versions"] == [glue_rules.version_time_from_us(us) for us in cases["us"]]
    assert got["export_versions"] == [export_version_from_us(us) for us in cases["us"]]
    assert got["ids"] == [scan_event_id("L", k) for k in cases["keys"]] + [
        export_event_id("E", k) for k in cases["keys"]
    ]
    line = ChangeEvent.from_line(got["line"].encode())
    assert line.keys == {"pk": {"S": "a"}, "sk": {"N": "2"}} and line.new_image == cases["item"]
    assert got["nulls"] == {"a": {"S": "x"}, "b": [{"S": "y"}]}
    assert "--SOURCE connector needs --KEYS" in got["refused"]


# --- 5. an argument for the source wins over both environment variables ------------------------------


@pytest.mark.parametrize(
    ("env", "argument", "kind"),
    [
        ("DDBLAKE_FROM_EXPORT", {"export_to": "s3://b/p"}, "export-to"),
        ("DDBLAKE_EXPORT_TO", {"from_export": "/tmp/x"}, "export"),
        ("DDBLAKE_EXPORT_TO", {"export_to": "s3://b/new"}, "export-to"),
    ],
)
def test_a_source_argument_ignores_both_source_variables(
    monkeypatch: pytest.MonkeyPatch, env: str, argument: dict[str, str], kind: str
) -> None:
    monkeypatch.setenv(env, "s3://old/AWSDynamoDB/01" if env == "DDBLAKE_FROM_EXPORT" else "s3://old")
    config = LoadConfig.build(table="tbl", lake="/tmp/l", **argument)
    assert config.kind == kind
    assert (config.from_export, config.export_to) == (argument.get("from_export"), argument.get("export_to"))


def test_source_variables_apply_without_arguments_and_still_exclude_each_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DDBLAKE_FROM_EXPORT", "/exports/AWSDynamoDB/01")
    assert LoadConfig.build(table="tbl", lake="/tmp/l").from_export == "/exports/AWSDynamoDB/01"
    monkeypatch.setenv("DDBLAKE_EXPORT_TO", "s3://b/p")
    with pytest.raises(ConfigError, match="exclude each other"):
        LoadConfig.build(table="tbl", lake="/tmp/l")
    with pytest.raises(ConfigError, match="exclude each other"):
        LoadConfig.build(table="tbl", lake="/tmp/l", from_export="/x", export_to="s3://b/p")


def _expect_throttled(stub: Stubber, arn: str, times: int) -> None:
    for _ in range(times):
        stub.add_client_error(
            "describe_export",
            "ThrottlingException",
            "Rate of requests exceeds the allowed throughput.",
            http_status_code=400,
            expected_params={"ExportArn": arn},
        )


def test_a_transient_describe_export_error_does_not_end_the_wait(tmp_path: Path) -> None:
    # An export runs for hours: a throttled poll, after botocore's own retries, must not end the
    # wait (and the command) while the export goes on.
    config = LoadConfig.build(
        table="orders", lake=str(tmp_path), export_to="s3://exports/ddb", export_poll_seconds=0.001
    )
    clients = _clients()
    with Stubber(clients.dynamodb) as stub:
        _expect_start(stub, _export_arn(1))
        _expect_throttled(stub, _export_arn(1), MAX_DESCRIBE_FAILURES)
        _expect_status(stub, _export_arn(1), "IN_PROGRESS")
        _expect_throttled(stub, _export_arn(1), MAX_DESCRIBE_FAILURES)  # counted afresh after a success
        _expect_status(stub, _export_arn(1), "FAILED")
        with pytest.raises(ExportFailedError):
            run_load(config, clients=clients, progress=NoProgress("t"))
        stub.assert_no_pending_responses()

    # One failure too many in a row ends the wait; the request is kept for the rerun.
    with Stubber(clients.dynamodb) as stub:
        _expect_start(stub, _export_arn(2))
        _expect_throttled(stub, _export_arn(2), MAX_DESCRIBE_FAILURES + 1)
        with pytest.raises(TransientError, match="DescribeExport"):
            run_load(config, clients=clients, progress=NoProgress("t"))
        stub.assert_no_pending_responses()
    assert _recorded(tmp_path) == _export_arn(2)
