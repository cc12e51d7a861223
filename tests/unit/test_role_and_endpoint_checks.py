"""Review 29 of the cross-account role code: KMS advice only on real KMS signals, a KMS key's account
kept apart from the table's, the external ID and role ARN checked under the name of where they came
from, stand-in credentials for any non-AWS endpoint, one-line refresh warnings, a failed export
naming its principal and bucket, and a table missing at DynamoDB Local not blamed on a missing role."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, NoCredentialsError
from botocore.stub import Stubber

from ddblake.aws import roles
from ddblake.aws.clients import DUMMY_ACCESS_KEY, build_dynamodb_clients, translate_error
from ddblake.aws.kms import is_kms_error
from ddblake.aws.roles import Identity, explain_access_error
from ddblake.capture.config import CaptureConfig
from ddblake.cli.main import main
from ddblake.configfile import read_settings_file
from ddblake.errors import ConfigError, DdblakeError, NotFoundError, TransientError
from ddblake.load.config import LoadConfig
from ddblake.load.export_start import ExportFailedError, ExportRequest, wait_export
from ddblake.progress import NoProgress
from ddblake.settings import using_file

CREDS: dict[str, Any] = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
ACCOUNT = "111111111111"
KEY_ACCOUNT = "999999999999"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/ddblake-read"
PRINCIPAL = f"arn:aws:sts::{ACCOUNT}:assumed-role/ddblake-read/ddblake-load"


@pytest.fixture
def client() -> Any:
    return boto3.client("dynamodb", region_name="eu-west-1", **CREDS)


def _error(code: str, message: str, op: str = "Scan") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, op)


def _explain(e: ClientError, client: Any, table: str, me: Identity) -> str:
    return str(explain_access_error(e, action="Scan", table=table, client=client, identity=lambda: me))


def _scan_denied(table: str, principal: str = PRINCIPAL) -> ClientError:
    return _error(
        "AccessDeniedException",
        f"User: {principal} is not authorized to perform: dynamodb:Scan on resource: "
        f"arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/{table} because no identity-based policy allows "
        "the dynamodb:Scan action",
    )


# --- 1. "kms" in a name is no KMS error ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "principal"),
    [
        ("kms-audit-log", PRINCIPAL),
        ("orders", f"arn:aws:sts::{ACCOUNT}:assumed-role/kms-reader/ddblake-load"),
        ("KMSAuditException", PRINCIPAL),
    ],
)
def test_a_plain_scan_denial_on_a_kms_named_table_or_role_gets_no_kms_advice(
    client: Any, table: str, principal: str
) -> None:
    e = _scan_denied(table, principal)
    role = f"arn:aws:iam::{ACCOUNT}:role/{principal.split('/')[1]}"
    explained = _explain(e, client, table, Identity(ACCOUNT, principal, role))
    translated = str(translate_error(e, action="Scan", table=table, client=client))
    fix = explained.split(" (AWS:")[0]
    assert "grant the role dynamodb:Scan" in fix and "customer-managed KMS key that" not in fix
    assert "KMS key" not in translated.split(" (AWS:")[0]
    assert "grant that principal the permission" in translated


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (
            "AccessDeniedException",
            f"User: {PRINCIPAL} is not authorized to perform: kms:Decrypt on resource: x",
        ),
        ("AccessDeniedException", f"... on resource arn:aws:kms:eu-west-1:{ACCOUNT}:key/1234"),
        ("KMSAccessDeniedException", "Access denied"),
        ("AccessDeniedException", "KMS.DisabledException: the key is disabled"),
        ("AccessDeniedException", "KMS key access denied error: ..."),
        ("AccessDeniedException", "The ciphertext refers to a customer master key that does not exist"),
    ],
)
def test_real_kms_signals_still_get_kms_advice(client: Any, code: str, message: str) -> None:
    assert is_kms_error(message, code)
    text = _explain(_error(code, message), client, "kms-audit-log", Identity(ACCOUNT, PRINCIPAL, ROLE))
    assert "kms:Decrypt and kms:DescribeKey" in text.split(" (AWS:")[0]


# --- 2. a KMS key in a central key account --------------------------------------------------------------


def test_a_kms_denial_names_the_tables_account_as_the_calls_and_the_keys_account_in_the_advice(
    client: Any,
) -> None:
    key = f"arn:aws:kms:eu-west-1:{KEY_ACCOUNT}:key/1234"
    e = _error(
        "AccessDeniedException",
        f"User: {PRINCIPAL} is not authorized to perform: kms:Decrypt on resource: {key}",
    )
    text = _explain(e, client, "orders", Identity(ACCOUNT, PRINCIPAL, ROLE)).split(" (AWS:")[0]
    assert f"the call went to account {ACCOUNT} (region eu-west-1)" in text
    assert f"account {KEY_ACCOUNT} (region" not in text
    assert f"the KMS key {key} (account {KEY_ACCOUNT})" in text
    assert "key policy must allow the role" in text and "own IAM policy" in text
    # translate_error (no identity) does not take the key for the table either
    translated = str(translate_error(e, action="Scan", table="orders", client=client)).split(" (AWS:")[0]
    assert f"account {KEY_ACCOUNT} (" not in translated and f"the KMS key {key}" in translated


# --- 3. the external ID -------------------------------------------------------------------------------


SECRETISH = "zq!"  # 3 characters, one STS refuses


@pytest.mark.parametrize(
    ("value", "odd"),
    [("x", ""), (SECRETISH, ", some of them not allowed"), ("y" * 1225, "")],
)
def test_an_external_id_sts_would_refuse_is_a_usage_error_naming_its_flag_not_its_value(
    value: str, odd: str
) -> None:
    for build in (
        lambda: LoadConfig.build(table="orders", lake="/l", assume_role=ROLE, external_id=value),
        lambda: CaptureConfig.build(table="orders", lake="/l", assume_role=ROLE, external_id=value),
    ):
        with pytest.raises(ConfigError) as caught:
            build()
        text = str(caught.value)
        assert (
            f"the external ID from --external-id is not one STS accepts ({len(value)} character(s){odd})"
            in text
        )
        assert "2 to 1224 characters" in text
        if len(value) > 1:  # (a lone "x" is in any text)
            assert value not in text


def test_an_external_id_from_the_environment_or_the_settings_file_is_named_there(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DDBLAKE_EXTERNAL_ID", SECRETISH)
    with pytest.raises(ConfigError, match="the external ID from DDBLAKE_EXTERNAL_ID is not"):
        LoadConfig.build(table="orders", lake="/l", assume_role=ROLE)
    monkeypatch.delenv("DDBLAKE_EXTERNAL_ID")
    settings = tmp_path / "ddblake.toml"
    settings.write_text(f'external_id = "{SECRETISH}"\nassume_role = "{ROLE}"\n')
    with using_file(read_settings_file(settings)), pytest.raises(ConfigError) as caught:
        CaptureConfig.build(table="orders", lake="/l")
    assert f"the external ID from external_id in {settings}" in str(caught.value)
    assert SECRETISH not in str(caught.value)


def test_valid_external_ids_pass() -> None:
    for value in ("ab", "Ext-ID_1+=,.@:/", "z" * 1224):
        assert (
            LoadConfig.build(table="orders", lake="/l", assume_role=ROLE, external_id=value).external_id
            == value
        )


def test_the_cli_exits_2_on_a_bad_external_id_without_showing_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--table", "orders", "--lake", str(tmp_path / "lake"), "--assume-role", ROLE, "--external-id"]
    assert main(["load", *args, SECRETISH]) == 2
    err = capsys.readouterr().err
    assert "--external-id" in err and SECRETISH not in err and "bug" not in err and len(err.splitlines()) == 1


# --- 5. a malformed role ARN is named where it came from --------------------------------------------


def test_a_malformed_role_arn_from_the_environment_is_not_blamed_on_the_flag(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DDBLAKE_ASSUME_ROLE", "read-role")
    for build in (
        lambda: LoadConfig.build(table="orders", lake="/l"),
        lambda: CaptureConfig.build(table="orders", lake="/l"),
    ):
        with pytest.raises(ConfigError) as caught:
            build()
        text = str(caught.value)
        assert (
            "DDBLAKE_ASSUME_ROLE 'read-role' is not an IAM role ARN" in text and "--assume-role" not in text
        )


def test_a_malformed_role_arn_from_the_settings_file_names_its_key(tmp_path: Path) -> None:
    settings = tmp_path / "ddblake.toml"
    settings.write_text('assume_role = "arn:aws:iam::12:user/x"\n')
    with using_file(read_settings_file(settings)):
        for build in (
            lambda: LoadConfig.build(table="orders", lake="/l"),
            lambda: CaptureConfig.build(table="orders", lake="/l"),
        ):
            with pytest.raises(ConfigError) as caught:
                build()
            text = str(caught.value)
            assert f"'arn:aws:iam::12:user/x' (assume_role in {settings}) is not an IAM role ARN" in text
            assert "--assume-role" not in text
    with pytest.raises(ConfigError, match=r"--assume-role 'read-role' is not an IAM role ARN"):
        LoadConfig.build(table="orders", lake="/l", assume_role="read-role")


def test_the_pass_assume_role_advice_names_the_settings_file_key(client: Any, tmp_path: Path) -> None:
    settings = tmp_path / "ddblake.toml"
    settings.write_text('lake = "/l"\n')
    me = Identity(ACCOUNT, f"arn:aws:sts::{ACCOUNT}:assumed-role/glue/x", None)
    with using_file(read_settings_file(settings)):
        denied = _explain(_scan_denied("orders"), client, "orders", me)
        missing = _explain(
            _error("ResourceNotFoundException", "Requested resource not found"), client, "orders", me
        )
    for text in (denied, missing):
        assert f"(or set DDBLAKE_ASSUME_ROLE or assume_role in {settings})" in text


# --- 4. stand-in credentials for any endpoint that is not AWS's -------------------------------------


def test_a_container_hostname_endpoint_gets_stand_in_credentials_and_region() -> None:
    clients = build_dynamodb_clients("http://dynamodb-local:8000")
    assert clients.dynamodb.meta.region_name == "us-east-1"
    assert clients.dynamodb._request_signer._credentials.access_key == DUMMY_ACCESS_KEY  # noqa: SLF001
    assert clients.streams._request_signer._credentials.access_key == DUMMY_ACCESS_KEY  # noqa: SLF001


def test_an_aws_vpc_endpoint_gets_no_stand_ins_and_no_endpoint_url_advice() -> None:
    vpce = "https://vpce-0a1b2c3d-4e5f.dynamodb.us-east-1.vpce.amazonaws.com"
    with pytest.raises(ConfigError) as caught:
        build_dynamodb_clients(vpce)
    assert "no AWS region configured" in str(caught.value) and "--endpoint-url" not in str(caught.value)
    ddb = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=vpce)
    said = str(translate_error(NoCredentialsError(), action="Scan", table="t", client=ddb))
    assert "AWS_ACCESS_KEY_ID" in said and "--endpoint-url" not in said
    # no override at all: the advice stays
    with pytest.raises(ConfigError, match="or pass --endpoint-url for DynamoDB Local"):
        build_dynamodb_clients()


# --- 8. a table missing at DynamoDB Local --------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:8000", "http://dynamodb-local:8000"])
def test_a_table_missing_at_a_local_endpoint_says_create_it_there_not_assume_a_role(endpoint: str) -> None:
    local = build_dynamodb_clients(endpoint).dynamodb
    error = explain_access_error(
        _error("ResourceNotFoundException", "Cannot do operations on a non-existent table", "DescribeTable"),
        action="DescribeTable",
        table="orders",
        client=local,
        identity=lambda: Identity(),
    )
    text = str(error)
    assert isinstance(error, NotFoundError)
    assert f"the call went to endpoint {endpoint}" in text
    assert "check the table name or create 'orders' at that endpoint" in text
    assert "--assume-role arn:" not in text and "another account" not in text


def test_a_table_missing_behind_an_https_proxy_to_aws_gets_the_cross_account_advice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An https name in front of AWS is AWS: no "create it at that endpoint" (DynamoDB Local's)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEEXAMPLE00")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    proxy = build_dynamodb_clients("https://dynamodb.proxy.example.com").dynamodb
    error = explain_access_error(
        _error("ResourceNotFoundException", "Cannot do operations on a non-existent table", "DescribeTable"),
        action="DescribeTable",
        table="orders",
        client=proxy,
        identity=lambda: Identity(),
    )
    assert "create 'orders' at that endpoint" not in str(error)
    assert "another account" in str(error)


# --- 6. a failed advisory refresh is one line -------------------------------------------------------


def _credentials(expiry: dt.datetime) -> dict[str, Any]:
    return {
        "Credentials": {
            "AccessKeyId": "ASIAFIRSTFIRST00",
            "SecretAccessKey": "secret",
            "SessionToken": "token",
            "Expiration": expiry,
        }
    }


@pytest.mark.parametrize("minutes", [12, 5])  # botocore's advisory window is 15 min, its mandatory 10
def test_a_failed_refresh_is_logged_as_one_line_naming_the_role(
    minutes: int, caplog: pytest.LogCaptureFixture
) -> None:
    base = boto3.session.Session(region_name="us-east-1", **CREDS)
    sts = base.client("sts")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    with Stubber(sts) as stub:
        stub.add_response("assume_role", _credentials(later))
        stub.add_client_error("assume_role", service_error_code="ServiceUnavailable", http_status_code=503)
        session = roles.assume_role_session(ROLE, base=base, sts=sts, table="orders")
        credentials: Any = session.get_credentials()
        credentials._expiry_time = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)  # noqa: SLF001
        caplog.set_level(logging.WARNING, logger="botocore.credentials")
        if minutes == 12:
            assert credentials.get_frozen_credentials().access_key == "ASIAFIRSTFIRST00"  # the old ones go on
        else:
            with pytest.raises(TransientError):
                credentials.get_frozen_credentials()
    (record,) = [r for r in caplog.records if r.name == "botocore.credentials"]
    line = logging.Formatter("%(levelname)s %(name)s: %(message)s").format(record)
    assert "\n" not in line and "Traceback" not in line and record.exc_info is None
    assert ROLE in line and "'orders'" in line
    if minutes == 12:
        assert "the current ones stay in use and the refresh is tried again" in line


def test_other_credential_warnings_pass_unchanged(caplog: pytest.LogCaptureFixture) -> None:
    roles.quiet_refresh_warnings()
    roles.quiet_refresh_warnings()  # once only
    logger = logging.getLogger("botocore.credentials")
    assert logger.filters.count(roles._REFRESH_LINE) == 1  # noqa: SLF001
    caplog.set_level(logging.WARNING, logger="botocore.credentials")
    try:
        raise ValueError("not ours")
    except ValueError:
        logger.warning(
            "Refreshing temporary credentials failed during advisory refresh period.", exc_info=True
        )
    (record,) = caplog.records
    assert record.exc_info is not None and record.getMessage().startswith("Refreshing temporary")
    assert not isinstance(record.exc_info[1], DdblakeError)


# --- 7. a failed export names who wrote where --------------------------------------------------------


@pytest.mark.parametrize("owner", [None, "222222222222"])
def test_a_failed_export_names_the_principal_role_account_bucket_and_owner(owner: str | None) -> None:
    ddb = boto3.client("dynamodb", region_name="eu-west-1", **CREDS)
    arn = f"arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/orders/export/01700000000000-abcdef12"
    description: dict[str, Any] = {
        "ExportArn": arn,
        "ExportStatus": "FAILED",
        "FailureCode": "KMS.AccessDeniedException",
        "FailureMessage": "Access denied to KMS key",
        "S3Bucket": "lake-bucket",
    }
    if owner:
        description["S3BucketOwner"] = owner
    me: Callable[[], Identity] = lambda: Identity(ACCOUNT, PRINCIPAL, ROLE)  # noqa: E731
    with Stubber(ddb) as stub, pytest.raises(ExportFailedError) as caught:
        stub.add_response("describe_export", {"ExportDescription": description})
        wait_export(
            ddb,
            ExportRequest(arn, "s3://lake-bucket/exports/orders", 0),
            table="orders",
            poll_seconds=0.01,
            progress=NoProgress("x"),
            identity=me,
        )
    text = str(caught.value)
    assert "KMS.AccessDeniedException Access denied to KMS key" in text
    assert f"principal {PRINCIPAL} (account {ACCOUNT}), assumed from --assume-role {ROLE}" in text
    assert "bucket 'lake-bucket'" in text and "s3://lake-bucket/exports/orders" in text
    if owner:
        assert f"owned by account {owner}" in text
    else:
        assert "owned by the caller's account: no other owner is set in DDBLAKE_EXPORT_BUCKET_OWNER" in text
    assert "the next run starts a new export" in text


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::111111111111:role/reader\n",
        " arn:aws:iam::111111111111:role/reader",
        "arn:aws:iam::111111111111:role/lé",
    ],
)
def test_a_role_arn_iam_would_not_match_is_refused(arn: str) -> None:
    from ddblake.aws.role_checks import check_role_arn

    with pytest.raises(ConfigError, match="is not an IAM role ARN"):
        check_role_arn(arn)
    check_role_arn(
        "arn:aws:iam::111111111111:role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_Read_0a1b"
    )
