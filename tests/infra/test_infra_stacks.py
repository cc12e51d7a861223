"""Each stack has its counterpart of every row of shared/seed/resource-inventory.md, hardened.

Assertions run on the templates ``make synth`` writes (tests/infra/conftest.py), through
aws_cdk.assertions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

ACCOUNT_P, ACCOUNT_C, REGION = "111111111111", "222222222222", "ap-northeast-1"
TABLE = "example-ddb-table"
SINGLE_BUCKET = f"ddblake-{TABLE}-{ACCOUNT_P}-{REGION}"
CROSS_BUCKET = f"ddblake-{TABLE}-{ACCOUNT_C}-{REGION}"
PLACEHOLDER_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT_C}:key/00000000-0000-0000-0000-000000000000"
REPO = Path(__file__).resolve().parents[2]

CAPTURE = ("single", "producer")
LAKE = ("single", "consumer")


def t(stack_templates: dict[str, Template], name: str) -> Template:
    return stack_templates[name]


# ---- producer side -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CAPTURE)
def test_table(stack_templates: dict[str, Template], name: str) -> None:
    tpl = t(stack_templates, name)
    tpl.resource_count_is("AWS::DynamoDB::Table", 1)
    tpl.has_resource(
        "AWS::DynamoDB::Table",
        {
            "DeletionPolicy": "Retain",
            "Properties": {
                "TableName": TABLE,
                "BillingMode": "PAY_PER_REQUEST",
                "KeySchema": [
                    {"AttributeName": "id", "KeyType": "HASH"},
                    {"AttributeName": "name", "KeyType": "RANGE"},
                ],
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                "SSESpecification": {
                    "SSEEnabled": True,
                    "SSEType": "KMS",
                    "KMSMasterKeyId": {"Fn::GetAtt": [Match.string_like_regexp("^CaptureTableKey"), "Arn"]},
                },
                "KinesisStreamSpecification": {
                    "StreamArn": {"Fn::GetAtt": [Match.string_like_regexp("^CaptureStream"), "Arn"]},
                    "ApproximateCreationDateTimePrecision": "MICROSECOND",
                },
                "DeletionProtectionEnabled": True,
            },
        },
    )


@pytest.mark.parametrize("name", CAPTURE)
def test_stream_has_its_own_key(stack_templates: dict[str, Template], name: str) -> None:
    tpl = t(stack_templates, name)
    tpl.has_resource_properties(
        "AWS::Kinesis::Stream",
        {
            "Name": f"ddblake-{TABLE}",
            "ShardCount": 10,
            "RetentionPeriodHours": 24,
            "StreamEncryption": {
                "EncryptionType": "KMS",
                "KeyId": {"Fn::GetAtt": [Match.string_like_regexp("^CaptureStreamKey"), "Arn"]},
            },
        },
    )
    tpl.has_resource_properties("AWS::KMS::Alias", {"AliasName": f"alias/ddblake/{TABLE}/stream"})
    tpl.has_resource_properties("AWS::KMS::Alias", {"AliasName": f"alias/ddblake/{TABLE}/table"})
    # one key per purpose, each rotated
    keys = tpl.find_resources("AWS::KMS::Key")
    assert all(k["Properties"]["EnableKeyRotation"] for k in keys.values())
    assert len(keys) >= 3


@pytest.mark.parametrize("name", CAPTURE)
def test_transform_lambda(stack_templates: dict[str, Template], name: str) -> None:
    tpl = t(stack_templates, name)
    tpl.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "FunctionName": f"ddblake-{TABLE}-transform",
            "Handler": "ddblake.aws.firehose_transform.handler",
            "Runtime": "python3.13",
            "Architectures": ["arm64"],
            "Layers": [
                f"arn:aws:lambda:{REGION}:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-arm64:27"
            ],
            # DDBLAKE_TABLE: the transform fails records of any other table (another table's
            # Kinesis destination may point at this stream) instead of partitioning them by name
            "Environment": {
                "Variables": Match.object_like(
                    {"DDBLAKE_TABLE": TABLE, "POWERTOOLS_METRICS_NAMESPACE": "ddblake"}
                )
            },
            "LoggingConfig": Match.object_like({"LogFormat": "JSON"}),
        },
    )
    tpl.has_resource_properties(
        "AWS::Logs::LogGroup",
        {"LogGroupName": f"/aws/lambda/ddblake-{TABLE}-transform", "RetentionInDays": 90},
    )


def _delivery(tpl: Template, name: str) -> dict[str, Any]:
    found = tpl.find_resources(
        "AWS::KinesisFirehose::DeliveryStream", {"Properties": {"DeliveryStreamName": name}}
    )
    assert len(found) == 1, found
    props: dict[str, Any] = next(iter(found.values()))["Properties"]
    return props


@pytest.mark.parametrize("name", CAPTURE)
def test_delivery_stream(stack_templates: dict[str, Template], name: str) -> None:
    tpl = t(stack_templates, name)
    props = _delivery(tpl, f"ddblake-{TABLE}")
    assert props["DeliveryStreamType"] == "KinesisStreamAsSource"
    s3 = props["ExtendedS3DestinationConfiguration"]
    if name == "producer":  # the cross-account example partitions by the change's own event hour
        assert s3["Prefix"] == (
            "raw/!{partitionKeyFromLambda:table}/!{partitionKeyFromLambda:year}/!{partitionKeyFromLambda:month}/"
            "!{partitionKeyFromLambda:day}/!{partitionKeyFromLambda:hour}/"
        )
        assert s3["DynamicPartitioningConfiguration"]["Enabled"] is True
        assert s3["BufferingHints"] == {"IntervalInSeconds": 60, "SizeInMBs": 64}
    else:
        assert s3["Prefix"] == f"raw/{TABLE}/!{{timestamp:yyyy/MM/dd/HH}}/"
        assert "DynamicPartitioningConfiguration" not in s3
        assert s3["BufferingHints"] == {"IntervalInSeconds": 60, "SizeInMBs": 16}
    assert (
        s3["ErrorOutputPrefix"]
        == f"errors/{TABLE}/!{{firehose:error-output-type}}/!{{timestamp:yyyy/MM/dd/HH}}/"
    )
    assert s3["CompressionFormat"] == "GZIP"
    assert s3["CloudWatchLoggingOptions"]["Enabled"] is True
    assert s3["CloudWatchLoggingOptions"]["LogStreamName"] == "S3Delivery"
    processor = s3["ProcessingConfiguration"]["Processors"][0]
    params = {p["ParameterName"]: p["ParameterValue"] for p in processor["Parameters"]}
    assert processor["Type"] == "Lambda"
    assert params["NumberOfRetries"] == "2" and params["BufferSizeInMBs"] == "3"
    assert params["BufferIntervalInSeconds"] == "60"
    assert "Fn::GetAtt" in params["LambdaArn"]
    key = s3["EncryptionConfiguration"]["KMSEncryptionConfig"]["AWSKMSKeyARN"]
    if name == "producer":  # the consumer's bucket and key, by name and ARN from the config
        assert s3["BucketARN"] == f"arn:aws:s3:::{CROSS_BUCKET}"
        assert key == PLACEHOLDER_KEY
    else:
        assert (
            s3["BucketARN"] == {"Fn::GetAtt": [Match.string_like_regexp("^LakeBucket"), "Arn"]}
            or "Fn::GetAtt" in (s3["BucketARN"])
        )
        assert "Fn::GetAtt" in key
    tpl.has_resource_properties(
        "AWS::Logs::LogGroup",
        {"LogGroupName": f"/aws/kinesisfirehose/ddblake-{TABLE}", "RetentionInDays": 90},
    )
    tpl.has_resource_properties("AWS::Logs::LogStream", {"LogStreamName": "S3Delivery"})


def test_producer_copy_delivery_uses_dynamic_defaults_and_local_bucket(
    stack_templates: dict[str, Template],
) -> None:
    tpl = t(stack_templates, "producer")
    props = _delivery(tpl, f"ddblake-{TABLE}-local")
    assert "Fn::GetAtt" in props["ExtendedS3DestinationConfiguration"]["BucketARN"]
    tpl.has_resource_properties(
        "AWS::S3::Bucket", {"BucketName": f"ddblake-{TABLE}-raw-{ACCOUNT_P}-{REGION}"}
    )
    tpl.resource_count_is("AWS::KinesisFirehose::DeliveryStream", 2)


def test_read_role_trusts_only_the_consumer_load_role(stack_templates: dict[str, Template]) -> None:
    tpl = t(stack_templates, "producer")
    tpl.has_resource_properties(
        "AWS::IAM::Role",
        {
            "RoleName": f"ddblake-{TABLE}-load-read",
            "AssumeRolePolicyDocument": {
                "Statement": [
                    {
                        "Action": "sts:AssumeRole",
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_C}:root"},
                        "Condition": {
                            "ArnEquals": {
                                "aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT_C}:role/ddblake-{TABLE}-load"
                            }
                        },
                    }
                ]
            },
        },
    )
    t(stack_templates, "single").resource_properties_count_is(
        "AWS::IAM::Role", {"RoleName": f"ddblake-{TABLE}-load-read"}, 0
    )


# ---- consumer side -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", LAKE)
def test_lake_bucket(stack_templates: dict[str, Template], name: str) -> None:
    tpl = t(stack_templates, name)
    bucket = SINGLE_BUCKET if name == "single" else CROSS_BUCKET
    found = tpl.find_resources("AWS::S3::Bucket", {"Properties": {"BucketName": bucket}})
    assert len(found) == 1
    (res,) = found.values()
    props = res["Properties"]
    assert res["DeletionPolicy"] == "Retain"
    rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert "Fn::GetAtt" in rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]
    assert rule["BucketKeyEnabled"] is True
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert props["LoggingConfiguration"]["LogFilePrefix"] == f"{bucket}/"
    rules = {r["Id"]: r for r in props["LifecycleConfiguration"]["Rules"]}
    assert rules["raw-log"]["Prefix"] == "raw/"
    assert rules["raw-log"]["Transitions"] == [{"StorageClass": "STANDARD_IA", "TransitionInDays": 30}]
    assert rules["errors"] == {
        "Id": "errors",
        "Prefix": "errors/",
        "ExpirationInDays": 90,
        "Status": "Enabled",
    }
    assert rules["versions-and-uploads"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    assert rules["warehouse-versions"] == {
        "Id": "warehouse-versions",
        "Prefix": "warehouse/",
        "NoncurrentVersionExpiration": {"NoncurrentDays": 7},
        "Status": "Enabled",
    }
    assert rules["versions-and-uploads"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}


@pytest.mark.parametrize("name", LAKE)
def test_bucket_policy_tls_only_and_producer_firehose_only(
    stack_templates: dict[str, Template], name: str
) -> None:
    tpl = t(stack_templates, name)
    producer = ACCOUNT_P
    policies = tpl.find_resources("AWS::S3::BucketPolicy")
    lake = [p for p in policies.values() if "LakeBucket" in json.dumps(p["Properties"]["Bucket"])]
    assert len(lake) == 1
    stmts = lake[0]["Properties"]["PolicyDocument"]["Statement"]
    denies = [s for s in stmts if s["Effect"] == "Deny"]
    assert {json.dumps(s["Condition"], sort_keys=True) for s in denies} == {
        json.dumps({"Bool": {"aws:SecureTransport": "false"}}),
        json.dumps({"NumericLessThan": {"s3:TlsVersion": 1.2}}),
    }
    allows = [s for s in stmts if s["Effect"] == "Allow"]
    firehose = f"arn:aws:iam::{producer}:role/ddblake-{TABLE}-firehose"
    read = f"arn:aws:iam::{producer}:role/ddblake-{TABLE}-load-read"
    for s in allows:
        assert s["Principal"] == {"AWS": f"arn:aws:iam::{producer}:root"}
        admitted = s["Condition"]["ArnEquals"]["aws:PrincipalArn"]
        assert admitted in ([firehose], firehose, read)
    # the read role (the load's export writer) only across accounts
    assert any("load-read" in json.dumps(s) for s in allows) == (name == "consumer")


def test_lake_key_policy_admits_only_the_producer_roles(stack_templates: dict[str, Template]) -> None:
    keys = t(stack_templates, "consumer").find_resources("AWS::KMS::Key")
    lake_keys = [k for lid, k in keys.items() if lid.startswith("LakeKey")]
    assert len(lake_keys) == 1
    stmts = lake_keys[0]["Properties"]["KeyPolicy"]["Statement"]
    foreign = [s for s in stmts if ACCOUNT_P in json.dumps(s.get("Principal"))]
    assert {s["Sid"] for s in foreign} == {"ProducerFirehoseEncryptsLakeObjects", "ProducerExportEncryption"}
    for s in foreign:
        assert s["Condition"]["StringEquals"]["kms:ViaService"] == f"s3.{REGION}.amazonaws.com"
        assert s["Condition"]["ArnEquals"]["aws:PrincipalArn"]
        assert sorted(s["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]


@pytest.mark.parametrize("name", LAKE)
def test_glue_database_and_load_job(stack_templates: dict[str, Template], name: str) -> None:
    tpl = t(stack_templates, name)
    bucket = SINGLE_BUCKET if name == "single" else CROSS_BUCKET
    tpl.has_resource_properties(
        "AWS::Glue::Database",
        {
            "DatabaseInput": Match.object_like(
                {"Name": "ddb", "LocationUri": f"s3://{bucket}/warehouse/ddb.db"}
            )
        },
    )
    jobs = tpl.find_resources("AWS::Glue::Job")
    assert len(jobs) == 1
    job = next(iter(jobs.values()))["Properties"]
    assert job["GlueVersion"] == "5.1" and job["WorkerType"] == "G.1X" and job["NumberOfWorkers"] == 2
    assert job["Command"]["Name"] == "glueetl" and job["Command"]["ScriptLocation"].endswith(".py")
    assert job["ExecutionProperty"] == {"MaxConcurrentRuns": 1}
    assert "Ref" in job["SecurityConfiguration"]
    args = job["DefaultArguments"]
    assert args["--TABLE"] == TABLE and args["--LAKE"] == f"s3://{bucket}" and args["--KEYS"] == "id,name"
    assert args["--SOURCE"] == "connector" and args["--EXPORT_PREFIX"] == f"exports/{TABLE}/"
    if name == "consumer":  # cross-account: the job reads through the producer's read role
        assert args["--ROLE_ARN"] == f"arn:aws:iam::{ACCOUNT_P}:role/ddblake-{TABLE}-load-read"
        assert args["--EXPORT_BUCKET_OWNER"] == ACCOUNT_C
        assert args["--TABLE_ARN"] == f"arn:aws:dynamodb:{REGION}:{ACCOUNT_P}:table/{TABLE}"
    else:
        assert "--ROLE_ARN" not in args
    tpl.has_resource_properties(
        "AWS::Glue::SecurityConfiguration",
        {
            "EncryptionConfiguration": {
                "S3Encryptions": [Match.object_like({"S3EncryptionMode": "SSE-KMS"})],
                "CloudWatchEncryption": Match.object_like({"CloudWatchEncryptionMode": "SSE-KMS"}),
                "JobBookmarksEncryption": Match.object_like({"JobBookmarksEncryptionMode": "CSE-KMS"}),
            }
        },
    )


@pytest.mark.parametrize("name", LAKE)
def test_scheduled_apply_one_run_at_a_time(stack_templates: dict[str, Template], name: str) -> None:
    tpl = t(stack_templates, name)
    bucket = SINGLE_BUCKET if name == "single" else CROSS_BUCKET
    tpl.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "FunctionName": f"ddblake-{TABLE}-apply",
            "PackageType": "Image",
            "ReservedConcurrentExecutions": 1,
            "Architectures": ["arm64"],
            "Timeout": 900,
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "DDBLAKE_TABLE": TABLE,
                        "DDBLAKE_LAKE": f"s3://{bucket}",
                        "DDBLAKE_CATALOG": "glue",
                        "DDBLAKE_NAMESPACE": "ddb",
                    }
                )
            },
        },
    )
    tpl.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig", {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 60}
    )
    tpl.has_resource_properties(
        "AWS::Events::Rule", {"ScheduleExpression": "rate(5 minutes)", "State": "ENABLED"}
    )
    tpl.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.glue"],
                "detail-type": ["Glue Job State Change"],
                "detail": {"jobName": [f"ddblake-{TABLE}-load"], "state": ["FAILED", "TIMEOUT", "ERROR"]},
            }
        },
    )


@pytest.mark.parametrize("name", LAKE)
def test_alarms(stack_templates: dict[str, Template], name: str) -> None:
    tpl = t(stack_templates, name)
    dims = [{"Name": "Table", "Value": TABLE}, {"Name": "service", "Value": "ddblake-apply"}]
    for metric, statistic in (("ApplyLagSeconds", "Maximum"), ("QuarantinedRecords", "Sum")):
        tpl.has_resource_properties(
            "AWS::CloudWatch::Alarm",
            {
                "Namespace": "ddblake",
                "MetricName": metric,
                "Statistic": statistic,
                "Dimensions": dims,
                "AlarmActions": [{"Ref": Match.string_like_regexp("AlarmTopic")}],
            },
        )
    tpl.has_resource_properties(
        "AWS::CloudWatch::Alarm", {"Namespace": "AWS/Lambda", "MetricName": "Errors", "Threshold": 0}
    )
    tpl.has_resource_properties(
        "AWS::SNS::Topic", {"KmsMasterKeyId": {"Fn::GetAtt": [Match.string_like_regexp("^OpsKey"), "Arn"]}}
    )


@pytest.mark.parametrize("name", LAKE)
def test_apply_lag_alarm_sees_a_datapoint_in_every_period(templates: dict[str, Any], name: str) -> None:
    """ApplyLagSeconds comes once per run, at its end; with 5-minute ticks and 900 s runs (a backlog)
    3 consecutive breaching 5-minute periods never happen. One period of interval + timeout does."""
    template = templates[LAKE_TEMPLATES[name]]
    (lag,) = _alarms(template, "ApplyLagSeconds")
    assert lag["Period"] == 300 + 900  # rate(5 minutes) + apply.timeout_seconds of the examples
    assert lag["EvaluationPeriods"] == lag["DatapointsToAlarm"] == 1
    assert lag["Statistic"] == "Maximum" and lag["Threshold"] == 900
    assert lag["AlarmActions"] == lag["OKActions"] == [{"Ref": _topic(template)}]
    # It says what it measures: the raw file waiting longest, not the tables' staleness.
    assert "oldest raw file waiting for apply" in lag["AlarmDescription"]
    assert (
        "Firehose's buffering" in lag["AlarmDescription"] and "lag the table" not in lag["AlarmDescription"]
    )
    # LagSeconds (staleness) is emitted, but alarmed only when alarms.stale_seconds is set.
    assert _alarms(template, "LagSeconds") == []


@pytest.mark.parametrize("name", LAKE)
def test_an_apply_that_never_runs_raises_an_alarm(templates: dict[str, Any], name: str) -> None:
    """The lag alarm treats missing data as fine, so a schedule that stops firing would go unseen:
    a second alarm wants an invocation in every period of one interval, the timeout and 5 minutes'
    slack (delivery, cold start, the invocation published at the run's end), and takes a period
    without one (missing data) as breaching."""
    template = templates[LAKE_TEMPLATES[name]]
    (runs,) = _alarms(template, "Invocations")
    assert runs["Namespace"] == "AWS/Lambda" and runs["Statistic"] == "Sum"
    (function,) = [
        k
        for k, r in template["Resources"].items()
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"].get("PackageType") == "Image"
    ]
    assert runs["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function}}]
    assert runs["ComparisonOperator"] == "LessThanThreshold" and runs["Threshold"] == 1
    assert runs["TreatMissingData"] == "breaching"
    (lag,) = _alarms(template, "ApplyLagSeconds")
    assert lag["Period"] == 300 + 900 and runs["Period"] == 300 + 900 + 300
    assert runs["EvaluationPeriods"] == runs["DatapointsToAlarm"] == 1
    assert runs["AlarmActions"] == runs["OKActions"] == [{"Ref": _topic(template)}]
    assert lag["TreatMissingData"] == "notBreaching"


@pytest.mark.parametrize("name", LAKE)
def test_the_not_running_alarm_says_a_new_deployment_notifies_once(
    templates: dict[str, Any], name: str
) -> None:
    """A new function has no invocation yet, exactly like a schedule that stopped, so the alarm fires
    once on a new deployment (no CloudWatch setting tells the two apart without losing a schedule
    that never fires). The notification says that this first ALARM is expected, and what it means
    when no OK follows."""
    from ddblake_infra.scheduled_apply import NEW_DEPLOYMENT_NOTE

    (runs,) = _alarms(templates[LAKE_TEMPLATES[name]], "Invocations")
    assert runs["TreatMissingData"] == "breaching"  # kept: the schedule that never fires still alarms
    assert runs["AlarmDescription"].endswith(NEW_DEPLOYMENT_NOTE)
    assert "On a new deployment it fires once" in NEW_DEPLOYMENT_NOTE
    assert "no OK within one period of the deployment" in NEW_DEPLOYMENT_NOTE


def test_the_apply_not_running_alarm_can_be_turned_off(tmp_path: Path) -> None:
    from ddblake_infra.build import add_stacks, make_app
    from ddblake_infra.config import load_config

    raw = json.loads((REPO / "infra/config/cross-account.json").read_text())
    del raw["lake"]["key_arn"]  # the consumer stack alone: the apply is there
    raw["alarms"]["apply_not_running"] = False
    path = tmp_path / "quiet.json"
    path.write_text(json.dumps(raw))
    app = make_app(outdir=str(tmp_path / "out"))
    (consumer,) = add_stacks(app, load_config(path), nag=False)
    template = Template.from_stack(consumer).to_json()
    assert _alarms(template, "Invocations") == []
    assert len(_alarms(template, "ApplyLagSeconds")) == 1


def test_stale_seconds_adds_a_staleness_alarm(tmp_path: Path) -> None:
    """``alarms.stale_seconds``: an alarm on LagSeconds (status's lag_seconds), with the apply lag
    alarm's period (both come once per run)."""
    from ddblake_infra.build import add_stacks, make_app
    from ddblake_infra.config import load_config

    raw = json.loads((REPO / "infra/config/cross-account.json").read_text())
    del raw["lake"]["key_arn"]  # the consumer stack alone: the alarms are there
    raw["alarms"]["stale_seconds"] = 3600
    path = tmp_path / "stale.json"
    path.write_text(json.dumps(raw))
    app = make_app(outdir=str(tmp_path / "out"))
    (consumer,) = add_stacks(app, load_config(path), nag=False)
    template = Template.from_stack(consumer).to_json()
    (stale,) = _alarms(template, "LagSeconds")
    (lag,) = _alarms(template, "ApplyLagSeconds")
    assert stale["Threshold"] == 3600 and stale["Statistic"] == "Maximum" and stale["Namespace"] == "ddblake"
    assert stale["Period"] == lag["Period"] == 300 + 900
    assert stale["EvaluationPeriods"] == stale["DatapointsToAlarm"] == 1
    assert stale["Dimensions"] == lag["Dimensions"]
    assert "newest change applied" in stale["AlarmDescription"]


def _datapoint_times(interval: int, run_seconds: int, horizon: int) -> list[int]:
    """When LagSeconds is emitted: runs start on schedule ticks free of a run (reserved
    concurrency 1 drops the others) and emit when they end."""
    times, free_at, tick = [], 0, 0
    while tick < horizon:
        if tick >= free_at:
            free_at = tick + run_seconds
            times.append(free_at)
        tick += interval
    return times


@pytest.mark.parametrize(
    ("schedule", "interval"),
    [("rate(5 minutes)", 300), ("rate(1 minute)", 60), ("rate(1 hour)", 3600), ("cron(0/10 * * * ? *)", 600)],
)
@pytest.mark.parametrize("timeout", [60, 301, 900])
def test_lag_alarm_period_holds_a_run_end_in_every_period(schedule: str, interval: int, timeout: int) -> None:
    from ddblake_infra.scheduled_apply import lag_alarm_period_seconds, schedule_interval_seconds

    assert schedule_interval_seconds(schedule) == interval
    period = lag_alarm_period_seconds(schedule, timeout)
    assert period % 60 == 0 and period >= interval + timeout
    for run in (1, timeout // 2, timeout - 1, timeout):  # quiet runs to runs cut by the timeout
        ends = _datapoint_times(interval, run, 40 * (interval + timeout))
        windows = range(period, ends[-1] - period, period)  # CloudWatch periods, clock-aligned
        empty = [w for w in windows if not any(w <= e < w + period for e in ends)]
        assert not empty, (schedule, timeout, run, empty[:3])
    # what the alarm had: 5-minute periods, most of them empty during a backlog of 900 s runs
    if (interval, timeout) == (300, 900):
        ends = _datapoint_times(300, 900, 40 * 1200)
        assert (
            sum(1 for w in range(0, ends[-1], 300) if any(w <= e < w + 300 for e in ends))
            < len(range(0, ends[-1], 300)) / 2
        )


def test_lag_alarm_period_of_schedules_that_skip_days_is_cloudwatch_s_longest() -> None:
    from ddblake_infra.scheduled_apply import lag_alarm_period_seconds, schedule_interval_seconds

    assert schedule_interval_seconds("cron(30 2,14 * * ? *)") == 12 * 3600
    assert schedule_interval_seconds("cron(0 9-17 * * ? *)") == 16 * 3600  # 17:00 to 09:00
    assert lag_alarm_period_seconds("cron(0 9 ? * MON-FRI *)", 900) == 7 * 86400
    assert lag_alarm_period_seconds("rate(30 days)", 900) == 7 * 86400


@pytest.mark.parametrize("config", ["single-account", "cross-account"])
def test_every_log_group_is_encrypted_with_the_ops_key(templates: dict[str, Any], config: str) -> None:
    """docs/deploy.md: the ops key covers the logs - the transform's and Firehose's too."""
    checked = 0
    for name, template in templates.items():
        if not name.startswith(f"{config}/"):
            continue
        resources = template["Resources"]
        groups = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Logs::LogGroup"]
        for group in groups:
            key = group.get("KmsKeyId")
            assert key and key["Fn::GetAtt"][1] == "Arn", f"{name}: {group['LogGroupName']} has no KMS key"
            assert key["Fn::GetAtt"][0].startswith("OpsKey"), f"{name}: {group['LogGroupName']}: {key}"
            policy = resources[key["Fn::GetAtt"][0]]["Properties"]["KeyPolicy"]["Statement"]
            (logs,) = [s for s in policy if s.get("Principal") == {"Service": f"logs.{REGION}.amazonaws.com"}]
            context = logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
            assert context == f"arn:aws:logs:{REGION}:{_account(name)}:log-group:*"
            assert {"kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"} <= set(logs["Action"])
            checked += 1
    names = {g for t in templates.values() for g in _log_group_names(t)}
    assert (
        f"/aws/lambda/ddblake-{TABLE}-transform" in names and f"/aws/kinesisfirehose/ddblake-{TABLE}" in names
    )
    assert checked >= 3


def _account(template_name: str) -> str:
    return ACCOUNT_C if template_name.endswith("-consumer") else ACCOUNT_P


def _log_group_names(template: dict[str, Any]) -> set[str]:
    return {
        r["Properties"]["LogGroupName"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Logs::LogGroup"
    }


def _alarms(template: dict[str, Any], metric: str) -> list[dict[str, Any]]:
    return [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"].get("MetricName") == metric
    ]


CAPTURE_TEMPLATES = {
    "single": "single-account/ddblake-example-ddb-table",
    "producer": "cross-account/ddblake-example-ddb-table-producer",
}
LAKE_TEMPLATES = {
    "single": "single-account/ddblake-example-ddb-table",
    "consumer": "cross-account/ddblake-example-ddb-table-consumer",
}


@pytest.mark.parametrize("name", CAPTURE)
def test_silent_loss_alarms(templates: dict[str, Any], name: str) -> None:
    """Changes DynamoDB could not put into the stream, and a stream read so far behind that its
    records would expire unread, both notify the topic."""
    template = templates[CAPTURE_TEMPLATES[name]]
    (skipped,) = _alarms(template, "FailedToReplicateRecordCount")
    assert skipped["Namespace"] == "AWS/DynamoDB" and skipped["Statistic"] == "Sum"
    assert {d["Name"]: d["Value"] for d in skipped["Dimensions"]} == {
        "TableName": TABLE,
        "DelegatedOperation": "PutRecords",
    }
    assert skipped["Threshold"] == 0 and skipped["ComparisonOperator"] == "GreaterThanThreshold"
    assert skipped["EvaluationPeriods"] == 1

    (behind,) = _alarms(template, "GetRecords.IteratorAgeMilliseconds")
    assert behind["Namespace"] == "AWS/Kinesis" and behind["Statistic"] == "Maximum"
    assert behind["Dimensions"] == [{"Name": "StreamName", "Value": f"ddblake-{TABLE}"}]
    retention_ms = 24 * 3600 * 1000  # stream.retention_hours of the examples
    assert behind["Threshold"] == retention_ms // 2
    assert behind["ComparisonOperator"] == "GreaterThanThreshold"
    for alarm in (skipped, behind):
        assert alarm["AlarmActions"] == alarm["OKActions"] == [{"Ref": _topic(template)}]
        assert alarm["TreatMissingData"] == "notBreaching"


def _topic(template: dict[str, Any]) -> str:
    (topic,) = [k for k, r in template["Resources"].items() if r["Type"] == "AWS::SNS::Topic"]
    return topic


def test_stream_age_alarm_follows_the_retention() -> None:
    from ddblake_infra.producer import iterator_age_threshold_ms

    for hours in (24, 48, 168, 8760):
        threshold = iterator_age_threshold_ms(hours)
        assert 0 < threshold < hours * 3600 * 1000
    assert iterator_age_threshold_ms(48) == 2 * iterator_age_threshold_ms(24)


def test_athena_workgroup_encrypts_results(stack_templates: dict[str, Template]) -> None:
    t(stack_templates, "consumer").has_resource_properties(
        "AWS::Athena::WorkGroup",
        {
            "WorkGroupConfiguration": Match.object_like(
                {
                    "EnforceWorkGroupConfiguration": True,
                    "ResultConfiguration": {
                        "OutputLocation": f"s3://{CROSS_BUCKET}/athena-results/",
                        "EncryptionConfiguration": Match.object_like({"EncryptionOption": "SSE_KMS"}),
                    },
                }
            )
        },
    )


# ---- outputs and synth hygiene -------------------------------------------------------------------

PRODUCER_OUTPUTS = {
    "LakeBucketArn", "StreamArn", "DeliveryStreamArn", "LakeKeyArn", "TableArn", "FirehoseRoleArn",
    "FirehoseRoleId", "ReadRoleArn", "LocalCopyDeliveryStreamArn", "TableKeyArn", "StreamKeyArn",
}  # fmt: skip
CONSUMER_OUTPUTS = {
    "LakeBucketArn", "LakeKeyArn", "LoadRoleArn", "LoadRoleId", "LoadJobArn", "GlueDatabase",
    "ApplyFunctionArn", "AlarmTopicArn", "AthenaWorkGroup",
}  # fmt: skip


def test_outputs_cover_the_reference(templates: dict[str, Any]) -> None:
    producer = set(templates["cross-account/ddblake-example-ddb-table-producer"]["Outputs"])
    consumer = set(templates["cross-account/ddblake-example-ddb-table-consumer"]["Outputs"])
    single = set(templates["single-account/ddblake-example-ddb-table"]["Outputs"])
    assert producer >= PRODUCER_OUTPUTS
    assert consumer >= CONSUMER_OUTPUTS
    assert (PRODUCER_OUTPUTS - {"ReadRoleArn", "LocalCopyDeliveryStreamArn"}) | CONSUMER_OUTPUTS <= single


def test_synth_is_offline_and_deterministic(assemblies: dict[str, Path], templates: dict[str, Any]) -> None:
    for config, assembly in assemblies.items():
        manifest = json.loads((assembly / "manifest.json").read_text())
        assert "missing" not in manifest, f"{config}: synth needed context lookups: {manifest.get('missing')}"
        for artifact in manifest["artifacts"].values():
            if artifact["type"] == "aws:cloudformation:stack":
                assert artifact["environment"] in (
                    f"aws://{ACCOUNT_P}/{REGION}",
                    f"aws://{ACCOUNT_C}/{REGION}",
                ), "stacks must name their account and region (no environment-agnostic stacks)"
    for name, template in templates.items():
        text = json.dumps(template)
        assert "AWS::CDK::Metadata" not in text, name
        assert "/work/" not in text and "/tmp/" not in text, f"{name}: a local path leaked into the template"


def test_placeholder_key_is_flagged(assemblies: dict[str, Path]) -> None:
    metadata = (assemblies["cross-account"] / "ddblake-example-ddb-table-producer.metadata.json").read_text()
    assert "placeholder" in metadata and "LakeKeyArn" in metadata and "allow_placeholder_key" in metadata


def test_placeholder_key_is_an_error_unless_allowed() -> None:
    """The all-zero lake key would let ``cdk deploy`` create a producer whose every Firehose put
    fails: without ``-c allow_placeholder_key=true`` it stops the synth, naming file and key."""
    from ddblake_infra.build import add_stacks, make_app
    from ddblake_infra.config import load_config
    from ddblake_infra.config_reader import InfraConfigError

    cfg = load_config(REPO / "infra/config/cross-account.json")
    with pytest.raises(InfraConfigError) as e:
        add_stacks(make_app(), cfg, nag=False)
    message = str(e.value)
    assert message.startswith("infra/config/cross-account.json: lake.key_arn: is the all-zero placeholder")
    assert "-c allow_placeholder_key=true" in message and "LakeKeyArn" in message


def test_app_refuses_the_placeholder_key_without_the_flag(tmp_path: Path) -> None:
    """What ``cdk synth``/``cdk deploy`` run (infra/app.py): exit code 2 and one line, unless the
    context flag is given (as make synth and the fixtures give it)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {
        "CDK_OUTDIR": str(tmp_path / "out"),
        "CDK_CONTEXT_JSON": json.dumps({"config": "infra/config/cross-account.json", "nag": "false"}),
    }
    proc = subprocess.run(
        [sys.executable, "infra/app.py"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert (
        "ddblake infra: error: infra/config/cross-account.json: lake.key_arn: is the all-zero placeholder"
        in proc.stderr
    )


def test_make_synth_allows_the_example_placeholder_key() -> None:
    """``make synth`` synthesizes the cross-account example, whose key is the placeholder."""
    makefile = (REPO / "Makefile").read_text()
    recipe = makefile.split("\nsynth:", 1)[1].split("\n\n", 1)[0]
    assert "cdk synth" in recipe and "-c allow_placeholder_key=true" in recipe


def test_a_cross_account_config_without_a_lake_key_builds_the_consumer_alone(tmp_path: Path) -> None:
    """The first cross-account step: the consumer stack (whose LakeKeyArn the producer needs) must
    synthesize and deploy before lake.key_arn can be filled in."""
    from ddblake_infra.build import add_stacks, make_app
    from ddblake_infra.config import load_config

    raw = json.loads((REPO / "infra/config/cross-account.json").read_text())
    del raw["lake"]["key_arn"]
    path = tmp_path / "first-step.json"
    path.write_text(json.dumps(raw))
    app = make_app(outdir=str(tmp_path / "out"))
    stacks = add_stacks(app, load_config(path), nag=False)
    assert [s.stack_name for s in stacks] == ["ddblake-example-ddb-table-consumer"]
    assembly = app.synth()
    assert [s.stack_name for s in assembly.stacks] == ["ddblake-example-ddb-table-consumer"]
    warnings = [m.entry.data for m in assembly.stacks[0].messages]
    assert any("lake.key_arn is not set" in str(w) and "LakeKeyArn" in str(w) for w in warnings)
