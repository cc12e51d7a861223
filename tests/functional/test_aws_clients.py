"""Client factories (endpoints, dummy credentials) and botocore error translation."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from ddblake.aws.clients import DUMMY_ACCESS_KEY, build_dynamodb_clients, build_s3_client, translate_error
from ddblake.errors import ConfigError, NotFoundError, TerminalError, TransientError


@pytest.fixture
def no_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_DYNAMODB",
        "AWS_ENDPOINT_URL_DYNAMODB_STREAMS",
        "AWS_ENDPOINT_URL_S3",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def client_error(code: str, message: str = "", status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op"
    )


@pytest.mark.usefixtures("no_aws_env")
def test_local_endpoint_gets_dummy_credentials_and_region() -> None:
    clients = build_dynamodb_clients("http://127.0.0.1:8000")
    assert clients.dynamodb.meta.endpoint_url == "http://127.0.0.1:8000"
    assert clients.streams.meta.endpoint_url == "http://127.0.0.1:8000"
    assert clients.dynamodb.meta.region_name == "us-east-1"
    credentials = clients.dynamodb._request_signer._credentials  # noqa: SLF001
    assert credentials.access_key == DUMMY_ACCESS_KEY and credentials.access_key.isalnum()
    assert clients.where == "endpoint http://127.0.0.1:8000"
    assert clients.dynamodb.meta.config.retries["mode"] == "adaptive"


@pytest.mark.usefixtures("no_aws_env")
def test_dynamodb_endpoint_variable_also_serves_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://localhost:8123")
    clients = build_dynamodb_clients()
    assert clients.streams.meta.endpoint_url == "http://localhost:8123"
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB_STREAMS", "http://localhost:9000")
    assert build_dynamodb_clients().streams.meta.endpoint_url == "http://localhost:9000"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:5000")
    assert build_s3_client().meta.endpoint_url == "http://127.0.0.1:5000"


@pytest.mark.usefixtures("no_aws_env")
def test_aws_without_region_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="AWS_REGION"):
        build_dynamodb_clients()


def test_throttling_and_5xx_are_transient() -> None:
    assert isinstance(
        translate_error(client_error("ProvisionedThroughputExceededException"), action="X"), TransientError
    )
    assert isinstance(translate_error(client_error("Whatever", status=503), action="X"), TransientError)
    down = EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
    error = translate_error(down, action="DescribeTable", table="t1")
    assert isinstance(error, TransientError) and "t1" in str(error)


def test_not_found_names_table_and_endpoint() -> None:
    clients = build_dynamodb_clients("http://127.0.0.1:8000")
    error = translate_error(
        client_error("ResourceNotFoundException"), action="DescribeTable", table="t1", client=clients.dynamodb
    )
    assert isinstance(error, NotFoundError)
    assert "'t1'" in str(error) and "http://127.0.0.1:8000" in str(error)


def test_access_denied_names_table_region_account_and_what_to_change() -> None:
    message = (
        "User: arn:aws:sts::111111111111:assumed-role/ddb-cross-account-full-load-glue-job-role/"
        "GlueJobRunnerSession is not authorized to perform: dynamodb:DescribeTable on resource: "
        "arn:aws:dynamodb:ap-northeast-1:111111111111:table/example-ddb-table because no identity-based "
        "policy allows the dynamodb:DescribeTable action"
    )
    error = translate_error(
        client_error("AccessDeniedException", message), action="DescribeTable", table="example-ddb-table"
    )
    text = str(error)
    assert type(error) is TerminalError
    assert "example-ddb-table" in text and "ap-northeast-1" in text and "111111111111" in text
    assert "ddb-cross-account-full-load-glue-job-role" in text and "grant" in text


def test_missing_credentials_say_how_to_configure() -> None:
    error = translate_error(NoCredentialsError(), action="DescribeTable", table="t1")
    assert isinstance(error, ConfigError) and "AWS_PROFILE" in str(error)


def test_access_denied_across_accounts_says_to_assume_the_owners_role() -> None:
    message = (
        "User: arn:aws:sts::222222222222:assumed-role/reader/session is not authorized to perform: "
        "dynamodb:DescribeStream on resource: arn:aws:dynamodb:eu-west-1:111111111111:table/t1/stream/x"
    )
    text = str(
        translate_error(client_error("AccessDeniedException", message), action="DescribeStream", table="t1")
    )
    assert "account 111111111111" in text and "account 222222222222" in text and "assume" in text


@pytest.mark.usefixtures("no_aws_env")
def test_an_aws_endpoint_gets_no_stand_in_credentials_or_region() -> None:
    """A VPC endpoint is AWS: made-up credentials would be refused and the error name a made-up region."""
    with pytest.raises(ConfigError, match="no AWS region configured"):
        build_dynamodb_clients("https://vpce-0abc-xyz.dynamodb.eu-west-1.vpce.amazonaws.com")


@pytest.mark.parametrize(
    "code", ["ExpiredTokenException", "UnrecognizedClientException", "InvalidSignatureException"]
)
def test_refused_credentials_say_to_refresh_them_not_to_grant_a_permission(code: str) -> None:
    error = translate_error(
        client_error(code, "The security token included in the request is expired"), action="Scan", table="t1"
    )
    text = str(error)
    assert type(error) is TerminalError and "'t1'" in text and code in text
    assert "refresh them" in text and "grant" not in text


def test_a_denied_kms_key_says_kms_decrypt() -> None:
    message = (
        "KMS key access denied error: com.amazonaws.services.kms.model.AWSKMSException: The ciphertext "
        "refers to a customer master key that does not exist, does not exist in this region, or you are "
        "not allowed to access."
    )
    text = str(translate_error(client_error("AccessDeniedException", message), action="Scan", table="t1"))
    assert "kms:Decrypt" in text and "'t1'" in text and "AWS: KMS key access denied" in text


def test_an_assume_role_that_fails_names_the_role_and_expired_credentials_say_refresh() -> None:
    import boto3

    from ddblake.aws.roles import _sts_failure

    role = "arn:aws:iam::111111111111:role/read"
    base = boto3.session.Session(region_name="eu-west-1")  # not called: the errors name their role
    expired = str(_sts_failure(client_error("ExpiredToken", "The security token is expired"), role, base))
    assert role in expired and "refresh them" in expired and "trust policy" not in expired
    too_long = "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
    other = str(_sts_failure(client_error("ValidationError", too_long), role, base))
    assert role in other and "MaxSessionDuration" in other


def test_a_denied_kms_key_through_a_role_names_the_role_and_kms_decrypt() -> None:
    from ddblake.aws.roles import Identity, explain_access_error

    clients = build_dynamodb_clients("http://127.0.0.1:8000")
    role = "arn:aws:iam::111111111111:role/read"
    message = (
        "User: arn:aws:sts::111111111111:assumed-role/read/ddblake-load is not authorized to perform: "
        "kms:Decrypt on resource: arn:aws:kms:eu-west-1:111111111111:key/1234"
    )
    error = explain_access_error(
        client_error("AccessDeniedException", message),
        action="Scan",
        table="t1",
        client=clients.dynamodb,
        identity=lambda: Identity("111111111111", "arn:aws:sts::111111111111:assumed-role/read/x", role),
    )
    text = str(error)
    assert "'t1'" in text and role in text and "grant the role kms:Decrypt" in text
