"""The transform's metrics name its table, and the producer's reject alarm counts that table only.

One account may hold several ddblake stacks (one per table), all with the same transform service
name: a metric with the ``service`` dimension alone would be one metric for all of them, and any
table's rejected records would fire every stack's alarm. The handler adds ``Table`` (its
``DDBLAKE_TABLE``) to every invocation's metrics, and the alarm asks for that dimension.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from ddblake.aws import firehose_transform

TABLE = "example-ddb-table"
EVENT = Path(__file__).resolve().parents[1] / "events" / "firehose-kinesis-event.json"
TRANSFORM_METRICS = {"RecordsReceived", "RecordsOk", "RecordsFailed"}
CAPTURE_TEMPLATES = {
    "single": "single-account/ddblake-example-ddb-table",
    "producer": "cross-account/ddblake-example-ddb-table-producer",
}


class FakeContext:
    """What Powertools reads from a Lambda context."""

    function_name = "ddblake-example-ddb-table-transform"
    function_version = "$LATEST"
    invoked_function_arn = f"arn:aws:lambda:ap-northeast-1:111111111111:function:{function_name}"
    memory_limit_in_mb = 512
    aws_request_id = "6f2ad1d4-0000-4000-8000-000000000002"
    log_group_name = f"/aws/lambda/{function_name}"
    log_stream_name = "2025/11/28/[$LATEST]abc"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def _emf_blobs(stdout: str) -> list[dict[str, Any]]:
    """The embedded-metric-format documents Powertools printed (the logger's lines are not)."""
    blobs = []
    for line in stdout.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            blob = json.loads(line)
            if "CloudWatchMetrics" in blob.get("_aws", {}):
                blobs.append(blob)
    return blobs


def test_every_invocation_s_metrics_carry_the_table(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(firehose_transform.TABLE_ENV, TABLE)
    event = json.loads(EVENT.read_text())
    capsys.readouterr()
    for _ in range(2):  # Powertools clears dimensions after each flush: the second must have it too
        firehose_transform.handler(copy.deepcopy(event), FakeContext())
    blobs = _emf_blobs(capsys.readouterr().out)
    assert len(blobs) == 2, blobs
    for blob in blobs:
        (directive,) = blob["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "ddblake"
        assert directive["Dimensions"] and all("Table" in dims for dims in directive["Dimensions"])
        assert blob["Table"] == TABLE
        assert {m["Name"] for m in directive["Metrics"]} >= TRANSFORM_METRICS


def test_without_a_table_setting_no_table_dimension(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Older deploys and local runs (no DDBLAKE_TABLE) emit the metrics as before."""
    monkeypatch.delenv(firehose_transform.TABLE_ENV, raising=False)
    capsys.readouterr()
    firehose_transform.handler(json.loads(EVENT.read_text()), FakeContext())
    (blob,) = _emf_blobs(capsys.readouterr().out)
    (directive,) = blob["_aws"]["CloudWatchMetrics"]
    assert all("Table" not in dims for dims in directive["Dimensions"])
    assert "Table" not in blob


@pytest.mark.parametrize("name", CAPTURE_TEMPLATES)
def test_the_reject_alarm_counts_this_table_only(templates: dict[str, Any], name: str) -> None:
    """The alarm's dimensions are exactly the ones the function's metrics carry: Powertools'
    ``service`` (POWERTOOLS_SERVICE_NAME) and ``Table`` (DDBLAKE_TABLE)."""
    resources = templates[CAPTURE_TEMPLATES[name]]["Resources"].values()
    (alarm,) = [
        r["Properties"]
        for r in resources
        if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"].get("MetricName") == "RecordsFailed"
    ]
    (function,) = [
        r["Properties"]
        for r in resources
        if r["Type"] == "AWS::Lambda::Function"
        and r["Properties"].get("Handler") == "ddblake.aws.firehose_transform.handler"
    ]
    env = function["Environment"]["Variables"]
    assert alarm["Namespace"] == env["POWERTOOLS_METRICS_NAMESPACE"] == "ddblake"
    assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {
        "service": env["POWERTOOLS_SERVICE_NAME"],
        "Table": env["DDBLAKE_TABLE"],
    }
    assert env["DDBLAKE_TABLE"] == TABLE
