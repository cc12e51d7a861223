"""The transform's failure alarms tell the operator how to bring a failed batch back (ddblake redrive).

A batch the Lambda could not answer (an error, a throttle) lands whole under Firehose's error
prefix: valid changes apply never reads. Both alarms fire on it and name the command that redrives them.
"""

from __future__ import annotations

from typing import Any

import pytest
from test_infra_stacks import CAPTURE, CAPTURE_TEMPLATES, CROSS_BUCKET, SINGLE_BUCKET, TABLE, _topic

pytestmark = pytest.mark.infra


@pytest.mark.parametrize("name", CAPTURE)
def test_lambda_errors_and_throttles_name_the_redrive_command(templates: dict[str, Any], name: str) -> None:
    template = templates[CAPTURE_TEMPLATES[name]]
    bucket = SINGLE_BUCKET if name == "single" else CROSS_BUCKET
    alarms = {
        r["Properties"]["MetricName"]: r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        and r["Properties"].get("Namespace") == "AWS/Lambda"
        and "transform" in r["Properties"]["AlarmDescription"]  # not the apply Lambda's
    }
    for metric in ("Errors", "Throttles"):
        alarm = alarms[metric]
        assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["AlarmActions"] == [{"Ref": _topic(template)}]
        assert f"ddblake redrive --table {TABLE} --lake s3://{bucket}" in alarm["AlarmDescription"]
