"""Limits a first deployment meets: a table name as long as DynamoDB allows, schedules an alarm
cannot watch, cron fields EventBridge reads otherwise, partitions outside ``aws``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from ddblake_infra.config import REPO_ROOT, parse_config
from ddblake_infra.config_reader import InfraConfigError
from ddblake_infra.cron import cron_problem
from ddblake_infra.scheduled_apply import not_running_period_seconds
from ddblake_infra.settings import service_host


def _example(name: str) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads((REPO_ROOT / f"infra/config/{name}.json").read_text())
    return raw


def _synth(raw: dict[str, Any], out: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    """``{construct id: (stack name, template)}``, synthesized in-process without cdk-nag."""
    from ddblake_infra.build import add_stacks, make_app

    app = make_app(outdir=str(out))
    stacks = add_stacks(app, parse_config(raw, file="x.json"), nag=False, allow_placeholder_key=True)
    return {s.node.id: (s.stack_name, Template.from_stack(s).to_json()) for s in stacks}


@pytest.mark.parametrize("name", ["single-account", "cross-account"])
def test_the_longest_table_name_the_lake_takes_synthesizes(name: str, tmp_path: Path) -> None:
    raw = _example(name)
    raw["table"]["name"] = "orders." + "x" * 233 + "-v2025"  # 247: its history is a 255-character Glue name
    for construct_id, (stack_name, template) in _synth(raw, tmp_path).items():
        assert stack_name == construct_id and len(stack_name) <= 128  # no hashed fallback ID
        for resource in template["Resources"].values():
            props = resource.get("Properties", {})
            if resource["Type"] == "AWS::SNS::Topic":
                assert len(props["DisplayName"]) <= 100
            if resource["Type"] == "AWS::Lambda::Function":
                assert len(props.get("Description", "")) <= 256
            if resource["Type"] == "AWS::CloudWatch::Alarm":
                assert len(props["AlarmDescription"]) <= 1024  # CloudWatch's limit


def test_the_not_running_alarm_needs_a_schedule_it_can_watch() -> None:
    assert not_running_period_seconds("rate(5 minutes)", 900) == 300 + 900 + 300
    assert not_running_period_seconds("cron(0 3 * * ? *)", 900) == 86400 + 900 + 300
    for unwatchable in ("rate(7 days)", "rate(30 days)", "cron(0 3 1 * ? *)", "cron(0 3 ? * MON *)"):
        assert not_running_period_seconds(unwatchable, 900) is None, unwatchable


def test_a_schedule_it_cannot_watch_gets_no_alarm_and_a_warning(tmp_path: Path) -> None:
    raw = _example("single-account")
    raw.setdefault("apply", {})["schedule"] = "rate(30 days)"
    from ddblake_infra.build import add_stacks, make_app

    app = make_app(outdir=str(tmp_path))
    (stack,) = add_stacks(app, parse_config(raw, file="x.json"), nag=False)
    alarms = Template.from_stack(stack).find_resources("AWS::CloudWatch::Alarm")
    assert not [a for a in alarms.values() if a["Properties"].get("MetricName") == "Invocations"]
    warnings = [
        str(entry.data)
        for node in stack.node.find_all()
        for entry in node.node.metadata
        if entry.type == "aws:cdk:warning"
    ]
    assert any("no ApplyNotRunning alarm" in w for w in warnings), warnings


@pytest.mark.parametrize(
    ("expression", "field"),
    [("50-10 * * * ? *", "minutes"), ("0/90 * * * ? *", "minutes"), ("0 20-4 * * ? *", "hours")],
)
def test_cron_ranges_that_wrap_and_steps_beyond_the_field_are_refused(expression: str, field: str) -> None:
    problem = cron_problem(expression.split())
    assert problem is not None and problem.startswith(f"{field} field")


def test_cron_day_and_month_ranges_may_wrap() -> None:
    assert cron_problem(["0", "3", "?", "*", "FRI-MON", "*"]) is None
    assert cron_problem(["0", "3", "?", "NOV-FEB", "MON", "*"]) is None


@pytest.mark.parametrize(
    ("region", "host"),
    [
        ("ap-northeast-1", "s3.ap-northeast-1.amazonaws.com"),
        ("cn-north-1", "s3.cn-north-1.amazonaws.com.cn"),
        ("us-gov-west-1", "s3.us-gov-west-1.amazonaws.com"),
        ("us-iso-east-1", "s3.us-iso-east-1.c2s.ic.gov"),
        ("us-isob-east-1", "s3.us-isob-east-1.sc2s.sgov.gov"),
        ("us-isof-south-1", "s3.us-isof-south-1.csp.hci.ic.gov"),
        ("eusc-de-east-1", "s3.eusc-de-east-1.amazonaws.eu"),
    ],
)
def test_key_policies_name_services_by_their_partitions_host(region: str, host: str) -> None:
    assert service_host("s3", region) == host


def test_a_cn_region_key_policy_uses_the_cn_host(tmp_path: Path) -> None:
    raw = _example("single-account") | {"region": "cn-north-1"}
    text = json.dumps([t for _, t in _synth(raw, tmp_path).values()])
    assert "s3.cn-north-1.amazonaws.com.cn" in text and 's3.cn-north-1.amazonaws.com"' not in text


def test_a_european_sovereign_cloud_region_synthesizes_in_its_own_partition(tmp_path: Path) -> None:
    """The AWS European Sovereign Cloud is partition aws-eusc with DNS suffix amazonaws.eu (botocore's
    partitions.json, aws-cdk-lib's region facts): every ARN the stacks write starts arn:aws-eusc:, and
    the key policies name S3 and CloudWatch Logs by their amazonaws.eu hosts."""
    raw = _example("cross-account") | {"region": "eusc-de-east-1"}
    raw["lake"] = {k: v for k, v in raw["lake"].items() if k != "key_arn"}  # the consumer stack alone
    single = _example("single-account") | {"region": "eusc-de-east-1"}
    text = json.dumps(
        [t for _, t in _synth(single, tmp_path / "single").values()]
        + [t for _, t in _synth(raw, tmp_path / "cross").values()]
    )
    assert "arn:aws-eusc:" in text and "arn:aws:" not in text
    assert '"s3.eusc-de-east-1.amazonaws.eu"' in text and '"logs.eusc-de-east-1.amazonaws.eu"' in text
    assert "eusc-de-east-1.amazonaws.com" not in text


def test_a_table_name_whose_history_glue_cannot_name_is_refused(tmp_path: Path) -> None:
    """DynamoDB takes 255 characters, Glue's table names stop at 255, and the change history is
    ``<identifier>_changes``: a 248-character name synthesized, and apply's first commit failed."""
    raw = _example("single-account")
    raw["table"]["name"] = "orders." + "x" * 235 + "-v2025"  # 248
    with pytest.raises(InfraConfigError, match=r"table\.name: is 248 characters: its change history's Glue "
                       r"table \(orders_xxxxxxxxxxxxx…\) would be 256, over Glue's 255; the lake takes table "
                       r"names of at most 247 characters"):  # fmt: skip
        _synth(raw, tmp_path)
