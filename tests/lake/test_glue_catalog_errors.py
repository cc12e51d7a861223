"""A Glue lake's catalog errors and sharing, on moto's server: the reading commands explain a Glue
error as apply does (naming the lake and the database, Glue's advice, not DynamoDB's); they refuse
another lake's table in a shared database; apply needs no glue:CreateDatabase for a database that
exists; and the Glue errors that a later call may not meet are retried, not the end of apply.

Glue's refusals (Lake Formation, KMS, time-outs, concurrent changes) are not moto's to give: they
are raised in place of one call, as the modelled error Glue answers with."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.client
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from lake_helpers import TABLE, event

from ddblake.cli.main import main
from ddblake.errors import TerminalError, TransientError
from ddblake.lake import service
from ddblake.lake.catalog import LakeConfig, catalog_error, open_catalog
from ddblake.lake.rawlog import RawLogWriter

ACCOUNT = "123456789012"
CREDS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
PRINCIPAL = f"arn:aws:sts::{ACCOUNT}:assumed-role/apply/ddblake"


@dataclass
class GlueLake:
    """An s3:// lake on moto with the Glue catalog, in a namespace of its own."""

    endpoint: str
    bucket: str
    lake: str
    namespace: str
    inject: dict[str, tuple[str, str]]  # Glue operation -> (error code, message) to answer it with
    calls: list[str]  # Glue operations called, in order

    def write(self, pk: str, t: int, *, lake: str | None = None) -> None:
        writer = RawLogWriter(
            LakeConfig.build(lake=lake or self.lake).storage(),
            TABLE,
            buffer_bytes=1 << 30,
            buffer_seconds=3600,
        )
        writer.add(event("INSERT", pk, t, image={"n": {"N": str(t)}}).to_line())
        assert writer.flush() is not None


@pytest.fixture
def glue_lake(moto_s3: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[GlueLake]:
    monkeypatch.setenv("AWS_ENDPOINT_URL_GLUE", moto_s3.endpoint)
    namespace = f"ns_{uuid.uuid4().hex[:10]}"  # moto's Glue is shared by the session's tests
    monkeypatch.setenv("DDBLAKE_NAMESPACE", namespace)
    lake = GlueLake(moto_s3.endpoint, moto_s3.bucket, f"s3://{moto_s3.bucket}/lake", namespace, {}, [])
    real = botocore.client.BaseClient._make_api_call

    def call(client: Any, operation: str, params: dict[str, Any]) -> Any:
        if client.meta.service_model.service_name == "glue":
            lake.calls.append(operation)
            if operation in lake.inject:
                code, message = lake.inject.pop(operation)
                raise client.exceptions.from_code(code)(
                    {
                        "Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": 400},
                    },
                    operation,
                )
        return real(client, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", call)
    yield lake


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _reading_commands(lake: str) -> list[list[str]]:
    return [
        ["status", "--lake", lake],
        ["dump", "--table", TABLE, "--lake", lake],
        ["query", "--lake", lake, "select pk from orders_table"],
    ]


# --- 1. status, dump and query explain a Glue error naming the lake and database -------------------


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        (
            "AccessDeniedException",
            "Insufficient Lake Formation permission(s): Required Describe on orders_table",
            "access denied calling Glue GetTable",
        ),
        (
            "GlueEncryptionException",
            "Unable to decrypt the catalog (KMS key disabled)",
            "GlueEncryptionException",
        ),
        ("OperationTimeoutException", "Operation timed out", "OperationTimeoutException"),
    ],
)
def test_the_reading_commands_explain_a_glue_error_as_apply_does(
    glue_lake: GlueLake, capsys: pytest.CaptureFixture[str], code: str, message: str, expected: str
) -> None:
    glue_lake.write("a", 1)
    assert _cli(capsys, "apply", "--table", TABLE, "--lake", glue_lake.lake, "--once")[0] == 0
    for command in _reading_commands(glue_lake.lake):
        glue_lake.inject["GetTable"] = (code, message)
        rc, out, err = _cli(capsys, *command)
        assert rc == 1 and out == "", command
        assert len(err.splitlines()) == 1, err
        assert expected in err and "Glue GetTable" in err, (command, err)
        assert f"catalog of lake {glue_lake.lake}, database {glue_lake.namespace!r}" in err, (command, err)
        assert "owns the table" not in err and "read role" not in err, "no DynamoDB advice"
        if code == "AccessDeniedException":
            assert "glue:GetTable" in err and f"database/{glue_lake.namespace}" in err


# --- 2. another lake's table in a shared Glue database -------------------------------------------


def test_dump_and_query_refuse_another_lakes_table_in_a_shared_glue_database(
    glue_lake: GlueLake, capsys: pytest.CaptureFixture[str]
) -> None:
    other_bucket = glue_lake.bucket + "-b"
    boto3.client("s3", endpoint_url=glue_lake.endpoint).create_bucket(Bucket=other_bucket)
    a, b = glue_lake.lake, f"s3://{other_bucket}/lake"
    glue_lake.write("from-lake-a", 1)
    glue_lake.write("from-lake-b", 1, lake=b)
    assert _cli(capsys, "apply", "--table", TABLE, "--lake", a, "--once")[0] == 0
    rc, _, err = _cli(capsys, "apply", "--table", TABLE, "--lake", b, "--once")
    assert rc == 1 and a in err, "apply of lake b does not take lake a's table"
    for command in _reading_commands(b)[1:]:
        rc, out, err = _cli(capsys, *command)
        assert (rc, out) == (1, ""), command
        assert len(err.splitlines()) == 1
        assert f"lake table {glue_lake.namespace}.orders_table belongs to lake {a}" in err
        assert f"not to this one ({b})" in err and "--namespace" in err
        assert "copied or moved" not in err, "no lake directory was copied"
    rc, out, _ = _cli(capsys, "dump", "--table", TABLE, "--lake", a)
    assert rc == 0 and "from-lake-a" in out, "lake a reads its own table"


def test_a_glue_table_without_the_lake_property_is_still_read_as_the_lakes_own(
    glue_lake: GlueLake, capsys: pytest.CaptureFixture[str]
) -> None:
    """A table an older ddblake wrote names no lake: it is taken as this lake's, as before."""
    glue_lake.write("a", 1)
    assert _cli(capsys, "apply", "--table", TABLE, "--lake", glue_lake.lake, "--once")[0] == 0
    config = LakeConfig.build(lake=glue_lake.lake)
    table = open_catalog(config, config.storage(), create=False).load_table(
        f"{glue_lake.namespace}.orders_table"
    )
    with table.transaction() as tx:
        tx.remove_properties("ddblake.lake")
    rc, out, err = _cli(capsys, "dump", "--table", TABLE, "--lake", glue_lake.lake)
    assert (rc, err) == (0, "") and '"pk":{"S":"a"}' in out
    rc, out, _ = _cli(
        capsys, "query", "--lake", glue_lake.lake, "--format", "csv", "select pk from orders_table"
    )
    assert rc == 0 and out.splitlines() == ["pk", "a"]


# --- 3. no glue:CreateDatabase for a database that exists -----------------------------------------


def _denied(operation: str, namespace: str) -> tuple[str, str]:
    return (
        "AccessDeniedException",
        f"User: {PRINCIPAL} is not authorized to perform: glue:{operation} on resource: "
        f"arn:aws:glue:us-east-1:{ACCOUNT}:database/{namespace} because no identity-based policy allows it",
    )


def test_apply_into_an_existing_database_does_not_call_create_database(
    glue_lake: GlueLake, capsys: pytest.CaptureFixture[str]
) -> None:
    boto3.client("glue", endpoint_url=glue_lake.endpoint).create_database(
        DatabaseInput={"Name": glue_lake.namespace}
    )  # made by the stack, or an administrator
    glue_lake.calls.clear()
    glue_lake.write("a", 1)
    glue_lake.inject["CreateDatabase"] = _denied("CreateDatabase", glue_lake.namespace)
    rc, _, err = _cli(capsys, "apply", "--table", TABLE, "--lake", glue_lake.lake, "--once")
    assert rc == 0 and "applied 1 file(s)" in err, err
    assert "CreateDatabase" not in glue_lake.calls


def test_apply_creates_a_database_that_is_not_there(
    glue_lake: GlueLake, capsys: pytest.CaptureFixture[str]
) -> None:
    glue_lake.write("a", 1)
    assert _cli(capsys, "apply", "--table", TABLE, "--lake", glue_lake.lake, "--once")[0] == 0
    assert glue_lake.calls.count("CreateDatabase") == 1
    names = boto3.client("glue", endpoint_url=glue_lake.endpoint).get_databases()["DatabaseList"]
    assert glue_lake.namespace in {d["Name"] for d in names}


def _stubbed(stub: Stubber, namespace: str, answers: list[str]) -> None:
    """GetDatabase/CreateDatabase answers in order: 'missing', 'found', 'denied' (CreateDatabase)."""
    for answer in answers:
        if answer == "missing":
            stub.add_client_error("get_database", service_error_code="EntityNotFoundException")
        elif answer == "found":
            stub.add_response("get_database", {"Database": {"Name": namespace}}, {"Name": namespace})
        else:
            code, message = _denied("CreateDatabase", namespace)
            stub.add_client_error("create_database", service_error_code=code, service_message=message)


def test_create_database_denied_is_fine_when_the_database_then_exists(tmp_path: Any) -> None:
    config = LakeConfig.build(lake=str(tmp_path), catalog="glue")
    glue = boto3.client("glue", region_name="us-east-1", **CREDS)
    with Stubber(glue) as stub:
        _stubbed(stub, config.namespace, ["missing", "denied", "found"])  # made meanwhile by another
        open_catalog(config, config.storage(), glue_client=glue, create=True)
        stub.assert_no_pending_responses()


def test_create_database_denied_for_a_database_not_there_says_what_to_grant(tmp_path: Any) -> None:
    config = LakeConfig.build(lake=str(tmp_path), catalog="glue")
    glue = boto3.client("glue", region_name="us-east-1", **CREDS)
    with Stubber(glue) as stub:
        _stubbed(stub, config.namespace, ["missing", "denied", "missing"])
        with pytest.raises(TerminalError, match="access denied calling Glue CreateDatabase") as caught:
            open_catalog(config, config.storage(), glue_client=glue, create=True)
    assert "glue:CreateDatabase" in str(caught.value) and PRINCIPAL in str(caught.value)


# --- 4. Glue errors a later call may not meet: retried ------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        "OperationTimeoutException",
        "ConcurrentModificationException",
        "ResourceNotReadyException",
        "FederationSourceRetryableException",
        "InternalServiceException",
    ],
)
@pytest.mark.parametrize("operation", ["CreateTable", "CreateDatabase", "GetTable"])
def test_glue_errors_retryable_by_nature_are_transient(tmp_path: Any, code: str, operation: str) -> None:
    config = LakeConfig.build(lake=str(tmp_path), catalog="glue")
    error = ClientError(
        {"Error": {"Code": code, "Message": "try again"}, "ResponseMetadata": {"HTTPStatusCode": 400}},
        operation,
    )
    explained = catalog_error(error, config, config.storage())
    assert isinstance(explained, TransientError), explained
    assert f"Glue {operation}" in str(explained) and code in str(explained)
    assert f"database {config.namespace!r}" in str(explained)


@pytest.mark.parametrize(
    ("operation", "code"),
    [("CreateTable", "ConcurrentModificationException"), ("GetTable", "OperationTimeoutException")],
)
def test_apply_goes_on_past_a_glue_error_retryable_by_nature(
    glue_lake: GlueLake,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    operation: str,
    code: str,
) -> None:
    monkeypatch.setattr(service, "retry_wait", lambda failures: 0.0)
    glue_lake.write("a", 1)
    glue_lake.inject[operation] = (code, "injected")
    rc, _, err = _cli(capsys, "apply", "--table", TABLE, "--lake", glue_lake.lake, "--once")
    assert rc == 0, err
    assert not glue_lake.inject, "the error was met"
    rc, out, _ = _cli(capsys, "dump", "--table", TABLE, "--lake", glue_lake.lake)
    assert rc == 0 and '"pk":{"S":"a"}' in out
