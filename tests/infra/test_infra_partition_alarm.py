"""With ``firehose.dynamic_partitioning`` each delivery stream alarms when it goes past Firehose's
active-partition quota: the records past it go to ``errors/<table>/activePartitionExceeded/``, which
``ddblake redrive`` does not read and the ``errors/`` lifecycle deletes, so without the alarm they
would be lost in silence.

The cross-account example has dynamic partitioning on (and a producer-side copy), so the cdk-nag and
cfn-lint checks of the examples (test_infra_nag.py, test_infra_lint.py) cover these alarms too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ddblake_infra.config import REPO_ROOT, parse_config

T = "example-ddb-table"
LAKE = f"ddblake-{T}-222222222222-ap-northeast-1"
COPY = f"ddblake-{T}-raw-111111111111-ap-northeast-1"


def _example(name: str) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads((REPO_ROOT / f"infra/config/{name}.json").read_text())
    return raw


def _partition_alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{delivery stream name: alarm properties}`` of the ``PartitionCountExceeded`` alarms."""
    found = {}
    for r in template["Resources"].values():
        p = r.get("Properties", {})
        if r["Type"] == "AWS::CloudWatch::Alarm" and p.get("MetricName") == "PartitionCountExceeded":
            (dimension,) = p["Dimensions"]
            assert dimension["Name"] == "DeliveryStreamName"
            found[dimension["Value"]] = p
    return found


def _topic(template: dict[str, Any]) -> str:
    (topic,) = [k for k, r in template["Resources"].items() if r["Type"] == "AWS::SNS::Topic"]
    return topic


def test_the_cross_account_example_partitions_by_event_hour_and_copies() -> None:
    """What makes the examples' nag and lint runs cover these alarms."""
    firehose = _example("cross-account")["firehose"]
    assert firehose["dynamic_partitioning"] is True and firehose["producer_copy"] is True


def test_each_delivery_stream_alarms_past_its_active_partitions(templates: dict[str, Any]) -> None:
    producer = templates[f"cross-account/ddblake-{T}-producer"]
    alarms = _partition_alarms(producer)
    assert set(alarms) == {f"ddblake-{T}", f"ddblake-{T}-local"}  # the lake's and the copy's
    for name, alarm in alarms.items():
        assert alarm["Namespace"] == "AWS/Firehose"
        assert alarm["Statistic"] == "Maximum" and alarm["Period"] == 300
        assert alarm["Threshold"] == 1
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == 1
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmActions"] == alarm["OKActions"] == [{"Ref": _topic(producer)}]
        text = alarm["AlarmDescription"]
        bucket = COPY if name.endswith("-local") else LAKE
        assert f"errors/{T}/activePartitionExceeded/ of s3://{bucket}" in text, text
        assert "ddblake redrive does not read them" in text
        assert "deletes them after 90 days" in text
        assert text.endswith("see docs/raw-log.md (active partitions)")


def test_no_partition_alarm_without_dynamic_partitioning(templates: dict[str, Any]) -> None:
    assert _example("single-account")["firehose"]["dynamic_partitioning"] is False
    assert _partition_alarms(templates[f"single-account/ddblake-{T}"]) == {}


def test_the_longest_table_name_keeps_the_alarm_text_whole(tmp_path: Path) -> None:
    from aws_cdk.assertions import Template

    from ddblake_infra.build import add_stacks, make_app

    raw = _example("cross-account")
    raw["table"]["name"] = "orders." + "x" * 233 + "-v2025"  # the longest the lake takes
    raw["lake"]["errors_expiration_days"] = 36500
    app = make_app(outdir=str(tmp_path))
    stacks = add_stacks(app, parse_config(raw, file="x.json"), nag=False, allow_placeholder_key=True)
    (producer,) = [s for s in stacks if s.stack_name.endswith("-producer")]
    alarms = _partition_alarms(Template.from_stack(producer).to_json())
    assert len(alarms) == 2
    for alarm in alarms.values():
        text = alarm["AlarmDescription"]
        assert len(text) <= 1024  # CloudWatch's limit
        assert "deletes them after 36500 days" in text
        assert text.endswith("see docs/raw-log.md (active partitions)")  # not cut


def _flat(path: str) -> str:
    return re.sub(r"\s+", " ", (REPO_ROOT / path).read_text(encoding="utf-8"))


def test_the_docs_name_the_alarm() -> None:
    deploy = _flat("docs/deploy.md")
    (row,) = re.findall(
        r"\| active partitions exceeded \(only with `firehose\.dynamic_partitioning`\) \|[^|]*\|", deploy
    )
    assert "`AWS/Firehose` `PartitionCountExceeded` (Maximum) >= 1" in row
    assert "`errors/<table>/activePartitionExceeded/`" in row and "docs/raw-log.md" in row
    (setting,) = re.findall(r"\| `firehose\.dynamic_partitioning` \|[^|]*\|[^|]*\|", deploy)
    assert "the active partitions exceeded alarm" in setting
    raw_log = _flat("docs/raw-log.md")
    paragraph = raw_log.split("each distinct hour in Firehose's buffer is one of its", 1)[1].split(
        "`errors/` holds", 1
    )[0]
    assert "`PartitionCountExceeded`" in paragraph and "alarms when it happens" in paragraph
    assert "before the `errors/` lifecycle deletes those records" in paragraph
