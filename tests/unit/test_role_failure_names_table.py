"""A refused ``sts:AssumeRole`` names the table the role was for, through every caller that builds
clients (load, capture, and so sync): an operator running many tables must see which one to fix."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from ddblake.aws import roles
from ddblake.capture.config import CaptureConfig
from ddblake.capture.service import build_capture_clients
from ddblake.errors import TerminalError
from ddblake.load.config import LoadConfig
from ddblake.load.service import build_load_clients

CREDS: dict[str, Any] = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
ROLE = "arn:aws:iam::222222222222:role/Reader"
DENIED = (
    "User: arn:aws:iam::111111111111:user/alice is not authorized to perform: sts:AssumeRole on "
    f"resource: {ROLE}"
)


@pytest.fixture
def denying_sts(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Every AssumeRole ddblake makes goes to an STS stub that refuses it, as a wrong trust policy does."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)
    sts = boto3.session.Session(region_name="us-east-1", **CREDS).client("sts")
    stub = Stubber(sts)
    for _ in range(3):
        stub.add_client_error(
            "assume_role", service_error_code="AccessDenied", http_status_code=403, service_message=DENIED
        )
    real = roles.assume_role_session

    def with_stub(role_arn: str, **kwargs: Any) -> boto3.session.Session:
        return real(role_arn, **{**kwargs, "sts": sts})

    monkeypatch.setattr(roles, "assume_role_session", with_stub)
    with stub:
        yield sts


def denial(build: Callable[[], object]) -> str:
    with pytest.raises(TerminalError) as caught:
        build()
    return str(caught.value)


def test_assume_role_session_names_the_table_when_given() -> None:
    base = boto3.session.Session(region_name="us-east-1", **CREDS)
    sts = base.client("sts")
    with Stubber(sts) as stub:
        stub.add_client_error("assume_role", service_error_code="AccessDenied", service_message=DENIED)
        stub.add_client_error("assume_role", service_error_code="AccessDenied", service_message=DENIED)
        named = denial(lambda: roles.assume_role_session(ROLE, base=base, sts=sts, table="orders"))
        unnamed = denial(lambda: roles.assume_role_session(ROLE, base=base, sts=sts))
    assert f"cannot assume role {ROLE} (account 222222222222) to read table 'orders' as principal " in named
    assert "principal arn:aws:iam::111111111111:user/alice (account 111111111111)" in named
    assert "\n" not in named
    assert f"cannot assume role {ROLE} (account 222222222222) as principal " in unnamed


def test_load_and_capture_name_their_table_when_the_role_is_refused(denying_sts: Any, tmp_path: Path) -> None:
    lake = str(tmp_path / "lake")
    load = LoadConfig.build(table="orders", lake=lake, assume_role=ROLE)
    capture = CaptureConfig.build(table="payments", lake=lake, once=True, assume_role=ROLE)

    assert "to read table 'orders'" in denial(lambda: build_load_clients(load))
    assert "to read table 'payments'" in denial(lambda: build_capture_clients(capture))
