"""Session fixtures shared by every test tier: one DynamoDB Local, one moto server, per worker.

Each pytest-xdist worker is its own process, so each gets its own instances on free ports; the
context managers stop them at the end of the session (and at interpreter exit if a session dies).
"""

from __future__ import annotations

import logging
import os
import re
import signal
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pytest

from ddblake.local.dynamodb_local import DynamoDBLocal
from ddblake.local.runtime import free_port

if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    # A shell without job control starts background jobs with SIGINT ignored, and the ignore is
    # inherited by every process started from them: the tests that interrupt ddblake (and the CLI
    # runs they start) would see no Ctrl-C at all. Restore Python's own handler; children get the
    # default action back on exec, and install their KeyboardInterrupt handler.
    signal.signal(signal.SIGINT, signal.default_int_handler)

TEST_REGION = "us-east-1"
TEST_CREDS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The tests marked ``long(seconds)`` first, longest first.

    Started last, one of them kept a worker busy minutes after the other had run out of tests
    (pytest-xdist hands tests out in collection order).
    """
    del config

    def seconds(item: pytest.Item) -> float:
        mark = item.get_closest_marker("long")
        return float(mark.args[0]) if mark is not None else 0.0

    items.sort(key=seconds, reverse=True)


# The variables that say where DynamoDB Local's engine is and how its JVM starts describe this
# machine, not a test's configuration, and ``DDBLAKE_VERIFY_*`` sets the fault suite's strength:
# they stay.
_MACHINE_SETTINGS = frozenset(
    {"DDBLAKE_DYNAMODB_LOCAL_JAR", "DDBLAKE_DYNAMODB_LOCAL_JAVA_OPTS", "DDBLAKE_LOCAL_STARTUP_SECONDS"}
)


@pytest.fixture(autouse=True)
def _no_settings_from_the_shell(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Every test starts without the developer's ``DDBLAKE_*`` and AWS settings.

    Configuration reads the environment before its defaults, so a ``DDBLAKE_TABLE`` or
    ``DDBLAKE_LAKE`` left in a shell changed what tests (and the CLI processes they start) did:
    the Firehose transform refused the other tests' records as another table's. Likewise boto3
    reads ``AWS_PROFILE``, ``AWS_ENDPOINT_URL`` and ``~/.aws``: a profile the shell names but this
    machine lacks failed every DynamoDB Local client, and an SSO profile would have run its login.
    Tests see no AWS configuration file and no instance metadata; a test that wants a setting
    (``moto_s3`` does) sets it with ``monkeypatch``.
    """
    for name in list(os.environ):
        if name.startswith("AWS_") or (
            name.startswith("DDBLAKE_")
            and name not in _MACHINE_SETTINGS
            and not name.startswith("DDBLAKE_VERIFY_")
        ):
            monkeypatch.delenv(name)
    nowhere = tmp_path_factory.getbasetemp() / "no-aws-configuration"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(nowhere / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(nowhere / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(autouse=True)
def _ddblake_log_level_unset() -> Iterator[None]:
    """The CLI sets ddblake's log level when a test calls it in-process; every test starts unset
    (progress and summary lines are left out above INFO: :func:`ddblake.progress.quiet`)."""
    logging.getLogger("ddblake").setLevel(logging.NOTSET)
    yield
    logging.getLogger("ddblake").setLevel(logging.NOTSET)


@pytest.fixture(scope="session")
def dynamodb_local_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One in-memory DynamoDB Local for this test session (this xdist worker); always stopped."""
    log = tmp_path_factory.mktemp("dynamodb-local") / "dynamodb-local.log"
    with DynamoDBLocal(in_memory=True, log_path=log) as ddb:
        yield ddb.endpoint


@pytest.fixture
def table_name(request: pytest.FixtureRequest) -> str:
    """A table name unique to this test (tables of one session share one DynamoDB Local)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    test = re.sub(r"[^A-Za-z0-9_.-]", "-", request.node.name)[:60]
    return f"t-{worker}-{test}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class MotoS3:
    """moto's server, as the S3 endpoint of a test."""

    endpoint: str
    bucket: str


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto's threaded server on a free port of 127.0.0.1 for this session; yields its endpoint."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def moto_s3(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> MotoS3:
    """S3 on moto for one test: environment pointed at it (dummy credentials) and a fresh bucket."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", TEST_REGION)
    monkeypatch.setenv("AWS_DEFAULT_REGION", TEST_REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    bucket = f"lake-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_server, region_name=TEST_REGION, **TEST_CREDS).create_bucket(
        Bucket=bucket
    )
    return MotoS3(endpoint=moto_server, bucket=bucket)
