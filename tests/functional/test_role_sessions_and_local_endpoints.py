"""Review 29, end to end: DynamoDB Local reached by a name other than localhost gets stand-in
credentials and region; a table missing there is not blamed on a missing role; and a re-bootstrap
through ``--assume-role`` assumes the role once (one set of clients, session ``ddblake-capture``)
for its stream positions, its capture and its load, as docs/load.md says (against moto)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from test_cross_account_role import as_role, create_streamed

from ddblake.aws import roles
from ddblake.cli.main import main
from ddblake.lake.catalog import LakeConfig
from ddblake.load import list_loads
from ddblake.rebootstrap import rebootstrap

pytestmark = pytest.mark.functional

REGION = "us-east-1"
OWNER = "111111111111"
READ_ROLE = f"arn:aws:iam::{OWNER}:role/review29-read"


def _other_loopback(endpoint: str) -> str:
    """The same DynamoDB Local, by a host that is not localhost/127.0.0.1 (it listens on every
    interface; all of 127/8 is loopback), as a docker-compose service name would be."""
    return f"http://127.0.0.2:{urlparse(endpoint).port}"


def test_dynamodb_local_by_another_host_name_needs_no_credentials_or_region(
    dynamodb_local_endpoint: str,
    make_table: Any,
    clients: Any,
    table_name: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    make_table(table_name, sort_key=False)
    clients.dynamodb.put_item(TableName=table_name, Item={"pk": {"S": "a"}, "n": {"N": "1"}})
    lake = str(tmp_path / "lake")
    endpoint = _other_loopback(dynamodb_local_endpoint)
    # no AWS_* credentials or region here (tests/conftest.py removes them)
    assert main(["load", "--table", table_name, "--lake", lake, "--endpoint-url", endpoint]) == 0, (
        capsys.readouterr().err
    )
    (state,) = list_loads(LakeConfig.build(lake=lake).storage(), table_name)
    assert state.items == 1


def test_a_table_missing_at_dynamodb_local_says_create_it_there(
    dynamodb_local_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = str(tmp_path / "lake")
    assert (
        main(["load", "--table", "no-such-table", "--lake", lake, "--endpoint-url", dynamodb_local_endpoint])
        == 1
    )
    err = capsys.readouterr().err
    assert "table 'no-such-table' not found" in err
    assert "create 'no-such-table' at that endpoint" in err and "--assume-role arn:" not in err


@pytest.fixture
def owners_table(moto_s3: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """A streamed table of two items in the owner's account (moto), reachable only through the role."""
    endpoint = moto_s3.endpoint
    for name in ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_DYNAMODB_STREAMS", "AWS_ENDPOINT_URL_STS"):
        monkeypatch.setenv(name, endpoint)
    table = f"review29-{uuid.uuid4().hex[:8]}"
    owner = as_role(endpoint, READ_ROLE)
    create_streamed(owner, table)
    for n in range(2):
        owner.put_item(TableName=table, Item={"id": {"S": f"i{n}"}})
    return table


@pytest.fixture
def sessions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The session name of every AssumeRole ddblake makes."""
    seen: list[str] = []
    real = roles.assume_role_session

    def spy(role_arn: str, **kwargs: Any) -> Any:
        seen.append(kwargs.get("session_name", roles.SESSION_NAME))
        return real(role_arn, **kwargs)

    monkeypatch.setattr(roles, "assume_role_session", spy)
    return seen


def test_a_rebootstrap_assumes_the_role_once_for_capture_and_load(
    owners_table: str, sessions: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = str(tmp_path / "lake")
    args = [
        "sync",
        "--table",
        owners_table,
        "--lake",
        lake,
        "--rebootstrap",
        "--once",
        "--assume-role",
        READ_ROLE,
    ]
    assert main(args) == 0, capsys.readouterr().err
    assert sessions == ["ddblake-capture"]
    (state,) = list_loads(LakeConfig.build(lake=lake).storage(), owners_table)
    assert state.items == 2 and f":{OWNER}:table/{owners_table}" in state.source, "read as the role"


def test_a_rebootstrap_through_the_api_also_assumes_the_role_once(
    owners_table: str, sessions: list[str], tmp_path: Path
) -> None:
    lake = str(tmp_path / "lake")
    result = rebootstrap(owners_table, LakeConfig.build(lake=lake), assume_role=READ_ROLE)
    assert result.loaded == 2 and sessions == ["ddblake-capture"]
