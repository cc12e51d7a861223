"""Error lines stay one line, name what is involved, and quote no values.

botocore's parameter validation quotes each refused value (a key value from a damaged load state)
over several lines; building clients raises ``ProfileNotFound`` or ``ValueError: Invalid endpoint``;
a capture thread can die of an error that is not ddblake's. Each must reach the user as one line
that names the profile, endpoint, table or state file and says what to do. Every case here fails
before any request leaves the machine (botocore validates, and refuses endpoints, locally).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ParamValidationError

from ddblake.aws.clients import DynamoClients, build_dynamodb_clients, translate_error
from ddblake.capture.service import CaptureConfig, CaptureThread
from ddblake.cli.main import main
from ddblake.errors import ConfigError, DdblakeError, TerminalError
from ddblake.lake.storage import Storage
from ddblake.load.table import TableReader

CARD = "4111111111111111"
"""A key value in a damaged resume key: it must appear in no message."""


@pytest.fixture(autouse=True)
def _own_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB Local's state of this test alone (tests/conftest.py clears DDBLAKE_* and AWS_*)."""
    monkeypatch.setenv("DDBLAKE_STATE_DIR", str(tmp_path / "state"))


def _client(service: str = "dynamodb") -> Any:
    """A real botocore client to a port nothing listens on: validation fails before any send."""
    return botocore.session.get_session().create_client(
        service,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",  # noqa: S106 - not a secret
        endpoint_url="http://127.0.0.1:9",
    )


def _refused(**scan: Any) -> ParamValidationError:
    with pytest.raises(ParamValidationError) as caught:
        _client().scan(TableName="orders", **scan)
    return caught.value


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr: {err!r}"
    assert lines[0].startswith("ddblake: error: ") and "Traceback" not in err
    return lines[0]


def test_refused_parameters_are_named_without_their_values() -> None:
    e = _refused(ExclusiveStartKey={"pk": {"N": int(CARD)}, "sk": {"B": 5}})
    assert CARD in str(e)  # botocore's own text quotes the value

    message = str(translate_error(e, action="Scan", table="orders", client=_client()))

    assert "\n" not in message and CARD not in message
    assert "Invalid type for parameter ExclusiveStartKey.pk.N (got int, valid types: str)" in message
    assert "ExclusiveStartKey.sk.B" in message
    assert "'orders'" in message


def test_a_value_with_a_line_break_leaves_nothing_behind() -> None:
    e = _refused(Limit=f"7\n{CARD}", ExclusiveStartKey={"pk": {"S": f"x\nInvalid {CARD}"}})

    message = str(translate_error(e, action="Scan", table="orders"))

    assert "\n" not in message and CARD not in message
    assert "Invalid type for parameter Limit" in message


def test_a_damaged_resume_key_names_the_state_file_not_the_key() -> None:
    reader = TableReader("orders", _client())

    with pytest.raises(TerminalError) as caught:
        reader.scan_page(segment=3, total_segments=8, start_key={"pk": {"N": int(CARD)}}, consistent=False)

    message = str(caught.value)
    assert "\n" not in message and CARD not in message
    assert "ExclusiveStartKey.pk.N" in message and "segment 3" in message
    assert "state/load/orders/scan.json" in message and "delete it" in message


@pytest.mark.parametrize(
    "argv",
    [
        ["load", "--table", "orders", "--endpoint-url", "http://127.0.0.1:1"],
        ["capture", "--table", "orders", "--endpoint-url", "http://127.0.0.1:1", "--once"],
        ["load", "--table", "orders", "--assume-role", "arn:aws:iam::123456789012:role/reader"],
    ],
    ids=["load", "capture", "assume-role"],
)
def test_a_missing_profile_is_one_line_naming_it(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "nope")

    code, err = _run(capsys, *argv, "--lake", str(tmp_path / "lake"))

    line = _one_line(err)
    assert code == 2, err  # a ConfigError, like settings.aws_region's for the same profile
    assert "'nope'" in line and "AWS_PROFILE" in line and "unset it" in line


@pytest.mark.parametrize("command", ["capture", "load"])
@pytest.mark.parametrize("region", ["us-east-1", None])
def test_a_schemeless_endpoint_is_one_line_saying_how_to_write_it(
    command: str,
    region: str | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if region:
        monkeypatch.setenv("AWS_REGION", region)
    once = ["--once"] if command == "capture" else []

    code, err = _run(
        capsys,
        command,
        "--table",
        "orders",
        "--lake",
        str(tmp_path / "lake"),
        "--endpoint-url",
        "localhost:8000",
        *once,
    )

    line = _one_line(err)
    assert code == 2, err
    assert "'localhost:8000'" in line and "--endpoint-url" in line and "http://localhost:8000" in line


def test_an_endpoint_variable_is_named_when_it_is_the_bad_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB_STREAMS", "streams-host:8000")

    with pytest.raises(ConfigError) as caught:
        build_dynamodb_clients()

    message = str(caught.value)
    assert "'streams-host:8000'" in message and "AWS_ENDPOINT_URL_DYNAMODB_STREAMS" in message
    assert "http://streams-host:8000" in message


def test_an_error_message_with_a_line_break_is_printed_as_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no\nlake"  # the "no lake at <path>" error quotes the path as given

    code, err = _run(capsys, "status", "--lake", str(missing))

    line = _one_line(err)
    assert code == 2
    assert f"no lake at {tmp_path}/no lake: check --lake" in line


def test_a_foreign_capture_failure_names_the_table_and_the_kind(tmp_path: Path) -> None:
    dynamodb, streams = _client(), _client("dynamodbstreams")

    def broken_plugin(**_: Any) -> None:  # a botocore handler failing, as an SSO or proxy plugin can
        raise RuntimeError(f"handler failed\nwhile sending {CARD}")

    dynamodb.meta.events.register("before-send.dynamodb.DescribeTable", broken_plugin)
    config = CaptureConfig.build(table="orders", lake=str(tmp_path / "lake"))
    capture = CaptureThread(
        config, DynamoClients(dynamodb=dynamodb, streams=streams), Storage.from_uri(str(tmp_path / "lake"))
    )
    capture.thread.join(timeout=60)

    with pytest.raises(DdblakeError) as caught:
        capture.finish()

    message = str(caught.value)
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert message == "capture of table 'orders' failed: RuntimeError: handler failed"


def test_an_unknown_name_botocore_quotes_is_not_repeated() -> None:
    """An unknown member (a damaged key's type tag) is quoted by botocore: it may be item data."""
    e = _refused(ExclusiveStartKey={"pk": {"alice@example.com": "x"}})
    assert "alice@example.com" in str(e)

    message = str(translate_error(e, action="Scan", table="orders"))

    assert "alice" not in message
    assert "Unknown parameter in ExclusiveStartKey.pk: a name it does not know" in message


def test_an_endpoint_url_with_credentials_is_named_without_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with pytest.raises(ConfigError) as caught:
        build_dynamodb_clients("operator:s3cret@minio:9000")
    assert "s3cret" not in str(caught.value) and "operator" not in str(caught.value)
    assert "endpoint URL 'minio:9000'" in str(caught.value) and "http://minio:9000" in str(caught.value)


def test_a_valid_endpoint_url_with_credentials_never_reaches_a_message_or_the_log(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """``where`` goes into every DynamoDB error line; ``-v`` logs each client's endpoint."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with caplog.at_level(logging.DEBUG, logger="ddblake"):
        clients = build_dynamodb_clients("http://operator:s3cret@localhost:8000")
    assert clients.where == "endpoint http://localhost:8000"
    assert "DynamoDB client: endpoint http://localhost:8000 (from --endpoint-url" in caplog.text
    assert "s3cret" not in caplog.text and "operator" not in caplog.text


def test_a_credential_source_that_does_not_answer_is_transient(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not a configuration mistake (exit 2) but an outage: a rerun may well succeed."""
    from ddblake.errors import TransientError

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/credentials")
    with pytest.raises(TransientError) as caught:
        build_dynamodb_clients(None)
    assert not isinstance(caught.value, ConfigError)
    assert "CredentialRetrievalError" in str(caught.value) and "run again" in str(caught.value)


def test_set_up_errors_are_classed_by_whose_they_are() -> None:
    from botocore.exceptions import BotoCoreError, PartialCredentialsError

    from ddblake.aws.setup_errors import setup_error

    partial = setup_error(PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"), what="x")
    assert isinstance(partial, ConfigError)
    other = setup_error(BotoCoreError(), what="x")
    assert isinstance(other, TerminalError) and not isinstance(other, ConfigError)
