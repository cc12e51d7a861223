"""Where the AWS clients go: endpoint overrides (boto3's variables, ``--endpoint-url``), and which
endpoints are AWS's own, on this machine, or look local (DynamoDB Local in a container, LocalStack).

Apart from :mod:`ddblake.aws.clients` so that the rules are read in one place; that module
re-exports them.
"""

from __future__ import annotations

import ipaddress
from typing import Final
from urllib.parse import urlparse

import boto3

from ddblake.aws.setup_errors import env_value


def _host(endpoint_url: str) -> str:
    """An endpoint's host name, lower-cased, without the trailing dot of a fully qualified name."""
    try:
        host = urlparse(endpoint_url).hostname or ""
    except ValueError:  # 'http://[::1' ("Invalid IPv6 URL"): botocore refuses it before any call
        return ""
    return host.lower().rstrip(".")


_CONTAINER_HOSTS: Final = frozenset({"host.docker.internal", "host.containers.internal"})
"""The names docker and podman give a container for the machine it runs on."""


def is_local_endpoint(endpoint_url: str | None) -> bool:
    """Whether an endpoint is on this machine (DynamoDB Local, moto, MinIO), not AWS."""
    if not endpoint_url:
        return False
    host = _host(endpoint_url)
    local = host in {"localhost", "127.0.0.1", "::1", "0.0.0.0"} or host in _CONTAINER_HOSTS  # noqa: S104
    return local or host.endswith(".localhost")


_AWS_HOSTS: Final = (
    # botocore's partitions (data/partitions.json): each one's dnsSuffix and dualStackDnsSuffix
    ".amazonaws.com",  # aws, aws-us-gov
    ".api.aws",
    ".amazonaws.com.cn",  # aws-cn
    ".api.amazonwebservices.com.cn",
    ".amazonaws.eu",  # aws-eusc (European Sovereign Cloud)
    ".api.amazonwebservices.eu",
    ".c2s.ic.gov",  # aws-iso
    ".api.aws.ic.gov",
    ".sc2s.sgov.gov",  # aws-iso-b
    ".api.aws.scloud",
    ".cloud.adc-e.uk",  # aws-iso-e
    ".api.cloud-aws.adc-e.uk",
    ".csp.hci.ic.gov",  # aws-iso-f
    ".api.aws.hci.ic.gov",
)


def is_aws_endpoint(endpoint_url: str | None) -> bool:
    """Whether an endpoint is AWS's own (no override, or a host under an AWS partition's domain).

    Anything else (DynamoDB Local on this machine or in a container, LocalStack, moto, a proxy in
    front of AWS) may stamp its stream differently from AWS: callers that rely on AWS's stamping
    take the cautious path for it.
    """
    if not endpoint_url:
        return True
    return _host(endpoint_url).endswith(_AWS_HOSTS)


def looks_local(endpoint_url: str | None) -> bool:
    """Whether an endpoint override looks like a local DynamoDB (DynamoDB Local, LocalStack, moto)
    rather than AWS behind another name (a proxy, a private DNS alias): the rule for stand-in
    credentials and region and for DynamoDB Local's advice (docs/local.md).

    Local: not under an AWS domain (:func:`is_aws_endpoint`), and either plain ``http://`` (AWS and a
    proxy in front of it speak HTTPS), or a host that is a loopback, private, link-local or
    unspecified IP address, a single label (``localhost``, a docker-compose service such as
    ``dynamodb-local``), a name under ``.localhost``, or the container's name for its machine
    (``host.docker.internal``, ``host.containers.internal``). An ``https://`` endpoint with any other
    name is taken for AWS behind that name: boto3's own credentials and region, and its errors.
    """
    if not endpoint_url or is_aws_endpoint(endpoint_url):
        return False
    if endpoint_url.lower().startswith("http://"):
        return True
    host = _host(endpoint_url)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return bool(host) and ("." not in host or host.endswith(".localhost") or host in _CONTAINER_HOSTS)
    return address.is_loopback or address.is_private or address.is_link_local or address.is_unspecified


def resolved_dynamodb_endpoint(explicit: str | None = None) -> str | None:
    """The endpoint a DynamoDB client built now would call: the override (:func:`dynamodb_endpoint`),
    else what boto3 resolves, a profile's ``endpoint_url`` included; None if it cannot tell."""
    override = dynamodb_endpoint(explicit)
    if override:
        return override
    try:
        session = boto3.session.Session()
        client = session.client("dynamodb", region_name=session.region_name or "us-east-1")
        return str(client.meta.endpoint_url)
    except Exception:  # noqa: BLE001 - a profile boto3 cannot read: the clients will say so, not this
        return None


def dynamodb_endpoint(explicit: str | None = None) -> str | None:
    """The DynamoDB endpoint override in effect: the argument, else the standard variables."""
    return explicit or env_value("AWS_ENDPOINT_URL_DYNAMODB") or env_value("AWS_ENDPOINT_URL")


def streams_endpoint(explicit: str | None = None) -> str | None:
    """The DynamoDB Streams endpoint override: DynamoDB Local serves Streams on the DynamoDB port."""
    return (
        explicit
        or env_value("AWS_ENDPOINT_URL_DYNAMODB_STREAMS")
        or env_value("AWS_ENDPOINT_URL_DYNAMODB")
        or env_value("AWS_ENDPOINT_URL")
    )
