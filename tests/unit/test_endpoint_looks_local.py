"""Which endpoint overrides get DynamoDB Local's stand-ins (credentials ``ddblakelocal``, region
us-east-1) and its advice on refused credentials (docs/local.md): those that look local, not AWS
under any partition's domain nor an ``https://`` name in front of AWS (a proxy, a private alias)."""

from __future__ import annotations

from typing import Any

import boto3
import botocore.loaders
import pytest
from botocore.exceptions import ClientError

from ddblake.aws.clients import DUMMY_ACCESS_KEY, build_dynamodb_clients, translate_error
from ddblake.aws.endpoints import is_aws_endpoint, is_local_endpoint, looks_local
from ddblake.errors import ConfigError

AWS_ENDPOINTS = [
    "https://dynamodb.us-east-1.amazonaws.com",
    "https://dynamodb.us-east-1.amazonaws.com.",  # a fully qualified name's trailing dot
    "https://dynamodb.us-iso-east-1.c2s.ic.gov",
    "https://dynamodb.us-isob-east-1.sc2s.sgov.gov",
    "https://dynamodb.eusc-de-east-1.amazonaws.eu",
    "https://dynamodb.eu-isoe-west-1.cloud.adc-e.uk",
    "https://dynamodb.us-isof-south-1.csp.hci.ic.gov",
    "https://dynamodb.cn-north-1.api.amazonwebservices.com.cn",
    "http://dynamodb.us-east-1.amazonaws.com",  # plain HTTP to AWS is still AWS
]
NOT_LOCAL = [
    *AWS_ENDPOINTS,
    "https://ddb.internal.example.com",  # a proxy or private DNS alias in front of AWS
    "https://dynamodb.example.com.",
    "https://dynamodb.local.example.org:8443",
]
LOCAL = [
    "http://localstack:4566",
    "http://dynamodb-local:8000",
    "http://ddb.example.com:8000",  # plain HTTP: no AWS endpoint or proxy to it
    "https://localhost:8000",
    "https://localhost.:8000",
    "https://ddb.localhost:8000",
    "https://dynamodb-local:8000",  # a compose service's single name
    "https://127.0.0.1:8000",
    "https://10.1.2.3:8000",
    "https://192.168.0.10",
    "https://[::1]:8000",
    "https://[fd00::5]:8000",
    "https://host.docker.internal:8000",
    "https://host.containers.internal:8000",
]


def test_every_partition_botocore_knows_is_an_aws_endpoint() -> None:
    partitions = botocore.loaders.create_loader().load_data("partitions")["partitions"]
    suffixes = {p["outputs"][k] for p in partitions for k in ("dnsSuffix", "dualStackDnsSuffix")}
    assert len(suffixes) >= 12
    for suffix in suffixes:
        assert is_aws_endpoint(f"https://dynamodb.some-region-1.{suffix}"), suffix
        assert is_aws_endpoint(f"https://dynamodb.some-region-1.{suffix}."), suffix
    assert not is_aws_endpoint("https://amazonaws.com.example.com")


def test_a_trailing_dot_does_not_hide_this_machine() -> None:
    assert is_local_endpoint("http://localhost.:8000") and is_local_endpoint("http://127.0.0.1.:8000")
    assert is_local_endpoint("http://host.containers.internal:8000")


@pytest.mark.parametrize("endpoint", NOT_LOCAL)
def test_aws_and_https_names_keep_boto3s_chain_and_its_no_region_error(endpoint: str) -> None:
    assert not looks_local(endpoint)
    with pytest.raises(ConfigError) as caught:
        build_dynamodb_clients(endpoint)
    said = str(caught.value)
    assert said.startswith("no AWS region configured") and "--endpoint-url" not in said


@pytest.mark.parametrize("endpoint", NOT_LOCAL)
def test_aws_and_https_names_get_no_stand_in_credentials(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    ddb: Any = build_dynamodb_clients(endpoint).dynamodb
    assert ddb.meta.region_name == "eu-west-1"
    assert ddb._request_signer._credentials is None  # noqa: SLF001 - boto3's NoCredentialsError follows


def test_real_credentials_at_an_iso_endpoint_get_no_made_up_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREALKEY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    with pytest.raises(ConfigError, match="no AWS region configured"):
        build_dynamodb_clients("https://dynamodb.us-iso-east-1.c2s.ic.gov")


@pytest.mark.parametrize("endpoint", LOCAL)
def test_endpoints_that_look_local_get_stand_ins(endpoint: str) -> None:
    assert looks_local(endpoint)
    ddb: Any = build_dynamodb_clients(endpoint).dynamodb
    assert ddb.meta.region_name == "us-east-1"
    assert ddb._request_signer._credentials.access_key == DUMMY_ACCESS_KEY  # noqa: SLF001


def _refused(endpoint: str) -> str:
    client: Any = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="a",
        aws_secret_access_key="b",  # noqa: S106 - not a secret
    )
    e = ClientError({"Error": {"Code": "UnrecognizedClientException", "Message": "invalid token"}}, "Scan")
    return str(translate_error(e, action="Scan", table="orders", client=client))


def test_refused_credentials_are_blamed_on_dynamodb_local_only_where_it_looks_local() -> None:
    for endpoint in ("https://ddb.internal.example.com", "https://dynamodb.us-iso-east-1.c2s.ic.gov"):
        said = _refused(endpoint)
        assert "DynamoDB Local" not in said and "refresh them" in said, endpoint
    said = _refused("http://dynamodb-local:8000")
    assert "DynamoDB Local takes any credentials" in said and "refresh them" not in said
