"""LoadConfig precedence and checks; access errors that name account, principal, role and table."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from ddblake.aws.roles import Identity, account_of_arn, explain_access_error
from ddblake.errors import ConfigError, NotFoundError, TerminalError, TransientError
from ddblake.load.config import DEFAULT_READ_PERCENT, ON_DEMAND_ASSUMED_RCU, LoadConfig
from ddblake.load.ion import ion_line_to_json, parse_ion

CREDS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
ROLE = "arn:aws:iam::111111111111:role/dynamodb-cross-account-read-role"


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("DDBLAKE_"):
            monkeypatch.delenv(name)


def test_defaults_and_frozen() -> None:
    config = LoadConfig.build(table="tbl", lake="/l")
    assert config == LoadConfig(table="tbl", lake="/l")
    assert config.read_percent == DEFAULT_READ_PERCENT and config.on_demand_rcu == ON_DEMAND_ASSUMED_RCU
    assert config.segments is None and not config.consistent and config.kind == "scan"
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.table = "x"  # type: ignore[misc]


def test_environment_fills_in_and_arguments_win(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "TABLE": "env-t",
        "LAKE": "s3://b/l",
        "SEGMENTS": "12",
        "READ_PERCENT": "25",
        "CONSISTENT": "yes",
        "ASSUME_ROLE": ROLE,
        "ON_DEMAND_RCU": "500",
    }.items():
        monkeypatch.setenv(f"DDBLAKE_{name}", value)
    config = LoadConfig.build()
    assert (config.table, config.lake, config.segments, config.read_percent, config.consistent) == (
        "env-t",
        "s3://b/l",
        12,
        25.0,
        True,
    )
    assert config.assume_role == ROLE and config.kind == "scan" and config.on_demand_rcu == 500
    given = LoadConfig.build(table="arg", segments=3, read_percent=80)
    assert (given.table, given.segments, given.read_percent) == ("arg", 3, 80)
    for name in ("SEGMENTS", "READ_PERCENT", "CONSISTENT"):
        monkeypatch.delenv(f"DDBLAKE_{name}")
    monkeypatch.setenv("DDBLAKE_FROM_EXPORT", "s3://b/AWSDynamoDB/x")
    monkeypatch.setenv("DDBLAKE_KEYS", "id,name")  # key names are for an export loaded without DescribeTable
    export = LoadConfig.build()
    assert export.kind == "export" and export.from_export == "s3://b/AWSDynamoDB/x"
    assert export.keys == ("id", "name")
    assert LoadConfig.build(keys="pk").keys == ("pk",), "the argument wins"


@pytest.mark.parametrize(
    ("scan_setting", "named"),
    [
        ({"segments": 8}, "--segments"),
        ({"read_percent": 20}, "--read-percent"),
        ({"consistent": True}, "--consistent"),
    ],
)
@pytest.mark.parametrize("source", [{"from_export": "/exports/x"}, {"export_to": "s3://b/p"}])
def test_scan_settings_with_an_export_are_refused_not_ignored(
    scan_setting: dict[str, Any], named: str, source: dict[str, str]
) -> None:
    with pytest.raises(ConfigError, match=f"{named} set the Scan of table 'tbl'.*reads no table capacity"):
        LoadConfig.build(table="tbl", lake="/l", **source, **scan_setting)


def test_missing_and_malformed_values_name_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="missing table: pass --table or set DDBLAKE_TABLE"):
        LoadConfig.build(lake="/l")
    with pytest.raises(ConfigError, match="missing lake: pass --lake or set DDBLAKE_LAKE"):
        LoadConfig.build(table="tbl")
    monkeypatch.setenv("DDBLAKE_SEGMENTS", "many")
    with pytest.raises(ConfigError, match="DDBLAKE_SEGMENTS='many'"):
        LoadConfig.build(table="tbl", lake="/l")
    monkeypatch.delenv("DDBLAKE_SEGMENTS")
    for name in ("EXPORT_POLL_SECONDS", "ON_DEMAND_RCU"):
        for raw in ("inf", "nan", "0"):  # inf would reach a wait after the export has started
            monkeypatch.setenv(f"DDBLAKE_{name}", raw)
            with pytest.raises(ConfigError, match=f"DDBLAKE_{name}={raw!r} is not valid"):
                LoadConfig.build(table="tbl", lake="/l")
        monkeypatch.delenv(f"DDBLAKE_{name}")
    for bad, match in (
        ({"segments": 0}, "segments must be"),
        ({"read_percent": 0}, "read_percent"),
        ({"read_percent": 151}, "read_percent"),
        ({"from_export": "/x", "export_to": "s3://b/p"}, "exclude each other"),
        ({"export_to": "/local"}, "exports go to S3"),
        ({"assume_role": "arn:aws:iam::12:user/x"}, "not an IAM role ARN"),
        ({"keys": "a,b,c"}, "--keys"),
        ({"from_export": ""}, "--from-export was given an empty value"),  # not a silent Scan instead
        ({"export_to": " "}, "--export-to was given an empty value"),
    ):
        with pytest.raises(ConfigError, match=match):
            LoadConfig.build(table="tbl", lake="/l", **bad)


def _error(code: str, message: str, op: str = "DescribeTable") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 400}}, op
    )


@pytest.fixture
def client() -> Any:
    return boto3.client("dynamodb", region_name="eu-west-1", **CREDS)


def test_the_reference_samples_confusing_failure_is_spelled_out(client: Any) -> None:
    """The call went to the caller's own account: say so, and say to pass --assume-role."""
    message = (
        "User: arn:aws:sts::222222222222:assumed-role/ddb-cross-account-full-load-glue-job-role/"
        "GlueJobRunnerSession "
        "is not authorized to perform: dynamodb:DescribeTable on resource: "
        "arn:aws:dynamodb:eu-west-1:222222222222:table/example-ddb-table"
    )
    me = Identity(
        "222222222222", "arn:aws:sts::222222222222:assumed-role/glue-role/GlueJobRunnerSession", None
    )
    error = explain_access_error(
        _error("AccessDeniedException", message),
        action="DescribeTable",
        table="example-ddb-table",
        client=client,
        identity=lambda: me,
    )
    text = str(error)
    assert isinstance(error, TerminalError)
    assert "the call went to account 222222222222 (region eu-west-1" in text
    assert "assumed-role/ddb-cross-account-full-load-glue-job-role/GlueJobRunnerSession" in text
    assert "no role (--assume-role not given)" in text
    assert "pass --assume-role arn:aws:iam::<owner account>:role/<read role>" in text
    assert "table 'example-ddb-table'" in text


def test_denied_with_the_role_says_to_grant_the_role(client: Any) -> None:
    principal = "arn:aws:sts::111111111111:assumed-role/dynamodb-cross-account-read-role/ddblake-load"
    message = (
        f"User: {principal} is not authorized to perform: dynamodb:Scan on resource: "
        "arn:aws:dynamodb:eu-west-1:111111111111:table/tbl"
    )
    me = Identity("111111111111", principal, ROLE)
    text = str(
        explain_access_error(
            _error("AccessDeniedException", message, "Scan"),
            action="Scan",
            table="tbl",
            client=client,
            identity=lambda: me,
        )
    )
    assert f"using role {ROLE}" in text and "grant the role dynamodb:Scan" in text and "kms:Decrypt" in text


def test_role_of_another_account_than_the_table(client: Any) -> None:
    message = (
        "User: arn:aws:sts::111111111111:assumed-role/dynamodb-cross-account-read-role/ddblake-load is not "
        "authorized to perform: dynamodb:DescribeTable on resource: "
        "arn:aws:dynamodb:eu-west-1:333333333333:table/tbl"
    )
    me = Identity("111111111111", None, ROLE)
    text = str(
        explain_access_error(
            _error("AccessDeniedException", message),
            action="DescribeTable",
            table="tbl",
            client=client,
            identity=lambda: me,
        )
    )
    assert "the role is in account 111111111111 but the call named a table in account 333333333333" in text


def test_not_found_names_account_and_role(client: Any) -> None:
    me = Identity("222222222222", "arn:aws:iam::222222222222:user/me", None)
    error = explain_access_error(
        _error("ResourceNotFoundException", "Requested resource not found"),
        action="DescribeTable",
        table="tbl",
        client=client,
        identity=lambda: me,
    )
    assert isinstance(error, NotFoundError)
    assert "account 222222222222" in str(error) and "--assume-role" in str(error)
    local = explain_access_error(
        _error("ResourceNotFoundException", "not found"),
        action="DescribeTable",
        table="tbl",
        client=client,
        identity=Identity,
    )
    assert "the call went to region eu-west-1" in str(local)
    throttled = explain_access_error(
        _error("ProvisionedThroughputExceededException", "slow down", "Scan"),
        action="Scan",
        table="tbl",
        client=client,
        identity=Identity,
    )
    assert isinstance(throttled, TransientError)
    assert account_of_arn(ROLE) == "111111111111" and account_of_arn("nope") is None


def test_ion_reader_covers_dynamodbs_subset() -> None:
    line = (
        b'$ion_1_0 /* c */ {Item:{\'odd name\':"q\\"uote\\u00e9",n:-0.5d1,i:7,f:false,'
        b"l:[1.,{{ AA EC }}, '''long ''' '''string'''],ns:$dynamodb_NS::[3,1.0],bs:$dynamodb_BS::[{{AAEC}}],"
        b"e:{}}} // end\n"
    )
    assert ion_line_to_json(line) == {
        "Item": {
            "odd name": {"S": 'q"uoteé'},
            "n": {"N": "-5"},
            "i": {"N": "7"},
            "f": {"BOOL": False},
            "l": {"L": [{"N": "1"}, {"B": "AAEC"}, {"S": "long string"}]},
            "ns": {"NS": ["3", "1"]},
            "bs": {"BS": ["AAEC"]},
            "e": {"M": {}},
        }
    }
    for bad in (
        b'{Item:{a:"x}}',
        b"{Item:{a:$dynamodb_XX::[1]}}",
        b"[1]",
        b"{Item:{a:1}} junk",
        b"{Item:{a:@}}",
    ):
        with pytest.raises(ValueError, match="Ion text"):
            ion_line_to_json(bad)
    assert parse_ion(b"null.string") is None


def test_ion_surrogate_pair_escapes_are_one_character_as_in_json() -> None:
    # "\\uD83D\\uDE00" read half by half would be two lone surrogates, which no key can be encoded from.
    escaped = ion_line_to_json(b"{Item:{pk:\"a\\uD83D\\uDE00\",l:'''b\\uD83D''' '''\\uDE00'''}}")
    assert escaped == {"Item": {"pk": {"S": "a\U0001f600"}, "l": {"S": "b\U0001f600"}}}
    assert ion_line_to_json(b'{Item:{pk:"a\\U0001F600"}}')["Item"]["pk"] == escaped["Item"]["pk"]


def test_a_role_that_cannot_be_assumed_names_principal_role_and_trust() -> None:
    from botocore.stub import Stubber

    from ddblake.aws.roles import assume_role_session

    base = boto3.session.Session(region_name="eu-west-1", **CREDS)
    sts = base.client("sts")
    with Stubber(sts) as stub:
        stub.add_client_error(
            "assume_role",
            service_error_code="AccessDenied",
            service_message=f"User: arn:aws:iam::222222222222:user/dev is not authorized to perform: "
            f"sts:AssumeRole on resource: {ROLE}",
        )
        with pytest.raises(TerminalError) as caught:
            assume_role_session(ROLE, base=base, sts=sts)
    text = str(caught.value)
    assert f"cannot assume role {ROLE} (account 111111111111)" in text
    assert "principal arn:aws:iam::222222222222:user/dev (account 222222222222)" in text
    assert "trust policy" in text


def test_assumed_credentials_refresh_through_sts() -> None:
    import datetime as dt

    from botocore.stub import Stubber

    from ddblake.aws.roles import SESSION_NAME, assume_role_session

    base = boto3.session.Session(region_name="eu-west-1", **CREDS)
    sts = base.client("sts")
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    answer = {
        "Credentials": {
            "AccessKeyId": "ASIAEXAMPLEEXAMPLE",
            "SecretAccessKey": "s",
            "SessionToken": "tbl",
            "Expiration": expires,
        }
    }
    with Stubber(sts) as stub:
        stub.add_response(
            "assume_role",
            answer,
            {"RoleArn": ROLE, "RoleSessionName": SESSION_NAME, "DurationSeconds": 3600, "ExternalId": "ext"},
        )
        session = assume_role_session(ROLE, base=base, sts=sts, external_id="ext")
    creds = session.get_credentials()
    assert creds is not None and creds.get_frozen_credentials().access_key == "ASIAEXAMPLEEXAMPLE"
    assert session.region_name == "eu-west-1"


def test_assume_role_takes_the_region_from_aws_region_when_botocore_has_none(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # botocore reads AWS_DEFAULT_REGION and the profile only; Lambda and containers set AWS_REGION.
    import datetime as dt

    from botocore.stub import Stubber

    from ddblake.aws.roles import assume_role_session

    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_REGION", "ap-southeast-2")
    base = boto3.session.Session(**CREDS)
    assert base.region_name is None
    sts = base.client("sts", region_name="ap-southeast-2")
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    creds = {
        "AccessKeyId": "ASIAEXAMPLEEXAMPLE",
        "SecretAccessKey": "s",
        "SessionToken": "t",
        "Expiration": expires,
    }
    with Stubber(sts) as stub:
        stub.add_response("assume_role", {"Credentials": creds})
        session = assume_role_session(ROLE, base=base, sts=sts)
    assert session.region_name == "ap-southeast-2"
    monkeypatch.delenv("AWS_REGION")
    with pytest.raises(ConfigError, match="needs an AWS region"):
        assume_role_session(ROLE, base=boto3.session.Session(**CREDS))


def test_progress_past_a_stale_item_count_claims_no_end() -> None:
    import io

    from ddblake.progress import Progress

    now = [0.0]
    progress = Progress("load t", total=1000, stream=io.StringIO(), tty=False, clock=lambda: now[0])
    now[0] = 10.0
    progress.add(50_000)
    line = progress.line()
    assert "50,000 items (past the estimate of ~1,000)" in line
    assert "100%" not in line and "ETA" not in line
    progress.done = 500
    assert "(50%)" in progress.line() and "ETA" in progress.line()


def test_one_client_keeps_a_connection_for_every_load_worker() -> None:
    from ddblake.aws.clients import client_config

    assert client_config().max_pool_connections >= 256  # --workers goes up to 256
