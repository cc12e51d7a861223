"""boto3 client factories and the translation of botocore errors into ddblake errors.

Clients are built once per command (they are thread-safe and hold connection pools) and handed to
adapters as parameters, so tests can give an adapter a client pointed at DynamoDB Local, moto or a
``botocore.stub.Stubber``.

Endpoints follow boto3's standard chain (``AWS_ENDPOINT_URL_<SERVICE>``, ``AWS_ENDPOINT_URL``,
profiles); ``--endpoint-url`` is only a shortcut. DynamoDB Local serves DynamoDB *and* DynamoDB
Streams on one port, so a DynamoDB endpoint override also applies to Streams unless
``AWS_ENDPOINT_URL_DYNAMODB_STREAMS`` says otherwise. When an endpoint override that looks local is
in effect (DynamoDB Local on this machine or in a container: :func:`ddblake.aws.endpoints.looks_local`)
and no credentials or region are configured, dummy ones are used: DynamoDB Local accepts any, and
asking a newcomer to invent credentials for a local database would be a needless hurdle.

Errors are translated at the adapters (``raise translate_error(...) from e``) so that callers decide
from the *kind* of error, and the CLI's one line names the table, endpoint or region, account and
what to change.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlparse

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    InvalidRegionError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    ProfileNotFound,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)
from botocore.utils import is_valid_endpoint_url, is_valid_ipv6_endpoint_url

from ddblake.aws.endpoints import (
    dynamodb_endpoint as dynamodb_endpoint,
)
from ddblake.aws.endpoints import (
    is_aws_endpoint as is_aws_endpoint,
)
from ddblake.aws.endpoints import (
    is_local_endpoint as is_local_endpoint,
)
from ddblake.aws.endpoints import (
    looks_local as looks_local,
)
from ddblake.aws.endpoints import (
    resolved_dynamodb_endpoint as resolved_dynamodb_endpoint,
)
from ddblake.aws.endpoints import (
    streams_endpoint as streams_endpoint,
)
from ddblake.aws.kms import kms_hint
from ddblake.aws.setup_errors import (
    endpoint_url_error,
    endpoint_variable,
    env_value,
    refused_parameters,
    setup_error,
    without_userinfo,
)
from ddblake.errors import (
    ConfigError,
    DdblakeError,
    NotFoundError,
    TerminalError,
    TransientError,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

DUMMY_REGION: Final = "us-east-1"
# DynamoDB Local accepts any credentials whose access key is letters and digits only.
DUMMY_ACCESS_KEY: Final = "ddblakelocal"
DUMMY_SECRET_KEY: Final = "ddblakelocal"  # noqa: S105 - not a secret

THROTTLING_CODES: Final[frozenset[str]] = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "LimitExceededException",
        "TooManyRequestsException",
        "SlowDown",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
GLUE_TRANSIENT_CODES: Final[frozenset[str]] = frozenset(
    {
        "OperationTimeoutException",
        "ConcurrentModificationException",  # another CreateTable/CreateDatabase on the same name
        "ResourceNotReadyException",
        "FederationSourceRetryableException",
        "InternalServiceException",
    }
)
"""Glue errors that a later call may not meet (Glue's own codes, beside :data:`THROTTLING_CODES`)."""
ACCESS_DENIED_CODES: Final[frozenset[str]] = frozenset(
    {
        "AccessDeniedException",
        "AccessDenied",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "KMSAccessDeniedException",
    }
)
CREDENTIAL_CODES: Final[frozenset[str]] = frozenset(
    {
        "ExpiredTokenException",
        "ExpiredToken",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
    }
)
"""Refused credentials (expired, unknown, a wrong secret): no permission grant fixes these."""
NOT_FOUND_CODES: Final[frozenset[str]] = frozenset({"ResourceNotFoundException", "NoSuchBucket", "NoSuchKey"})

_ARN = re.compile(r"arn:aws[\w-]*:([\w-]*):([\w-]*):(\d{12})?:([^\s,;\"']+)")


POOL_CONNECTIONS = 256
"""Connections a client keeps open: the most load workers (``ddblake.load.config``) there can be."""


def client_config(*, local: bool = False) -> Config:
    """Adaptive retries (client-side rate limiting on throttles) with short timeouts.

    A local endpoint gets fewer attempts: a refused connection to DynamoDB Local means it is not
    running, and saying so quickly helps more than a minute of backoff.
    """
    return Config(
        retries={"mode": "adaptive", "max_attempts": 3 if local else 8},
        connect_timeout=3 if local else 10,
        read_timeout=30,
        tcp_keepalive=True,
        # One client serves every scan worker (up to 256): botocore's pool of 10 would drop and
        # reopen (TLS) connections for the rest. The pool only caps idle connections kept.
        max_pool_connections=POOL_CONNECTIONS,
    )


def _client_kwargs(session: boto3.session.Session, endpoint_url: str | None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"config": client_config(local=is_local_endpoint(endpoint_url))}
    # Stand-in credentials and region for an endpoint that looks local (DynamoDB Local on this
    # machine, or a docker-compose service's http://dynamodb-local:8000), not for AWS under any
    # name (a VPC endpoint, a proxy): it would refuse the key, and the error would name a made-up
    # region (:func:`looks_local`).
    stand_in = looks_local(endpoint_url)
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
        if stand_in and session.get_credentials() is None:
            kwargs["aws_access_key_id"] = DUMMY_ACCESS_KEY
            kwargs["aws_secret_access_key"] = DUMMY_SECRET_KEY
    if session.region_name is None:
        # botocore reads AWS_DEFAULT_REGION only; the lake side (Storage, the catalog) also reads
        # AWS_REGION, so the clients do too and both sides agree on the region.
        env_region = env_value("AWS_REGION")
        if env_region:
            kwargs["region_name"] = env_region
        elif not stand_in:
            or_local = "" if endpoint_url else ", or pass --endpoint-url for DynamoDB Local"
            raise ConfigError(
                "no AWS region configured: set AWS_REGION or AWS_DEFAULT_REGION, or a region in your "
                f"AWS profile{or_local}"
            )
        else:
            kwargs["region_name"] = DUMMY_REGION
    return kwargs


@dataclass(frozen=True)
class DynamoClients:
    """The DynamoDB and DynamoDB Streams clients of one command, built once."""

    dynamodb: DynamoDBClient
    streams: DynamoDBStreamsClient

    @property
    def where(self) -> str:
        """Where requests go, for error messages: the endpoint when overridden, else the region."""
        return describe_client(self.dynamodb)


def describe_client(client: BaseClient) -> str:
    """``endpoint http://...`` for a local/overridden endpoint, ``region xx-yyy-n`` for AWS."""
    endpoint = str(getattr(client.meta, "endpoint_url", "") or "")
    region = str(getattr(client.meta, "region_name", "") or "?")
    if endpoint and not endpoint.endswith(".amazonaws.com") and ".amazonaws.com." not in endpoint:
        return f"endpoint {without_userinfo(endpoint)}"
    return f"region {region}"


def build_dynamodb_clients(
    endpoint_url: str | None = None, *, session: boto3.session.Session | None = None
) -> DynamoClients:
    """Build the DynamoDB and Streams clients for one command.

    Raises:
        ConfigError: no region is configured and no endpoint override is in effect; the AWS profile
            does not exist or cannot be read; an endpoint URL is not a URL (names which and the fix).
        TransientError: a credential source (container or instance endpoint, ``credential_process``)
            did not answer.
    """
    session = session or new_session()
    ddb_ep, streams_ep = dynamodb_endpoint(endpoint_url), streams_endpoint(endpoint_url)
    dynamodb: DynamoDBClient = _new_client(
        session, "dynamodb", ddb_ep, _endpoint_source(endpoint_url, _DYNAMODB_ENDPOINT_VARS)
    )
    streams: DynamoDBStreamsClient = _new_client(
        session, "dynamodbstreams", streams_ep, _endpoint_source(endpoint_url, _STREAMS_ENDPOINT_VARS)
    )
    return DynamoClients(dynamodb=dynamodb, streams=streams)


def build_s3_client(
    endpoint_url: str | None = None, *, session: boto3.session.Session | None = None
) -> S3Client:
    """An S3 client honoring ``AWS_ENDPOINT_URL_S3`` (moto, MinIO) like the lake's Storage does.

    Raises:
        ConfigError: as :func:`build_dynamodb_clients`.
    """
    session = session or new_session()
    endpoint = endpoint_url or env_value("AWS_ENDPOINT_URL_S3") or env_value("AWS_ENDPOINT_URL")
    source = "the S3 endpoint argument" if endpoint_url else _endpoint_source(None, _S3_ENDPOINT_VARS)
    client: S3Client = _new_client(session, "s3", endpoint, source)
    return client


_DYNAMODB_ENDPOINT_VARS: Final = ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL")
_STREAMS_ENDPOINT_VARS: Final = ("AWS_ENDPOINT_URL_DYNAMODB_STREAMS", *_DYNAMODB_ENDPOINT_VARS)
_S3_ENDPOINT_VARS: Final = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
_SERVICE_NAMES: Final = {"dynamodb": "DynamoDB", "dynamodbstreams": "DynamoDB Streams", "s3": "S3"}


def _endpoint_source(explicit: str | None, names: tuple[str, ...]) -> str:
    """Where an endpoint override came from, for messages."""
    if explicit:
        return "--endpoint-url or DDBLAKE_ENDPOINT_URL"
    return endpoint_variable(names) or "the AWS settings"


def new_session() -> boto3.session.Session:
    """``boto3.session.Session()``, its errors (a profile that does not exist) as ConfigError.

    Raises:
        ConfigError: names the profile and the fix.
    """
    try:
        return boto3.session.Session()
    except (BotoCoreError, ValueError) as e:
        raise setup_error(e, what="the AWS session") from e


def _valid_endpoint(endpoint: str) -> bool:
    """Whether botocore takes ``endpoint`` as an endpoint URL."""
    try:
        return bool(is_valid_endpoint_url(endpoint) or is_valid_ipv6_endpoint_url(endpoint))
    except ValueError:  # what the URL parser refuses outright: 'http://[::1' ("Invalid IPv6 URL")
        return False


def _new_client(session: boto3.session.Session, service: str, endpoint: str | None, source: str) -> Any:
    """``session.client(service)`` with :func:`_client_kwargs`, its set-up errors as ConfigError."""
    if endpoint and not _valid_endpoint(endpoint):
        # before the region check: a schemeless URL is not recognised as local, and "no region"
        # would send the user the wrong way
        raise endpoint_url_error(endpoint, source)
    try:
        make: Any = session.client  # typed per service name; the callers say which client they get
        client = make(service, **_client_kwargs(session, endpoint))
    except (BotoCoreError, ValueError) as e:
        what = f"the {_SERVICE_NAMES.get(service, service)} client"
        raise setup_error(e, what=what, source=source if endpoint else None) from e
    log.debug(
        "%s client: %s%s",
        _SERVICE_NAMES.get(service, service),
        describe_client(client),
        f" (from {source})" if endpoint else "",
    )
    return client


def error_code(e: BaseException) -> str:
    """The botocore error code of a ``ClientError`` ('' for anything else)."""
    if isinstance(e, ClientError):
        return str(e.response.get("Error", {}).get("Code", ""))
    return ""


def _status(e: ClientError) -> int:
    return int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def arns_in(
    message: str,
) -> tuple[tuple[str, str | None] | None, tuple[str, str, str | None, str] | None]:
    """The first principal ARN (``(arn, account)``) and the first resource ARN (``(arn, region,
    account, rest)``) an AWS error message names, if any.

    A KMS key's ARN is no resource of the call: the key may live in a central key account, while
    the call went to the table's (:func:`ddblake.aws.kms.kms_key_in` finds the key)."""
    principal = resource = None
    for match in _ARN.finditer(message):
        service, region, account, rest = match.groups()
        if service in {"sts", "iam"} and principal is None:
            principal = (match.group(0), account)
        elif service not in {"sts", "iam", "kms"} and resource is None:
            resource = (match.group(0), region, account, rest)
    return principal, resource


REFRESH_CREDENTIALS: Final = (
    "they have expired or are not valid: refresh them (a new session, 'aws sso login') or use a "
    "profile whose credentials refresh themselves, and run again"
)


LOCAL_CREDENTIALS: Final = (
    "DynamoDB Local takes any credentials, but only an access key ID of letters and digits: set "
    "AWS_ACCESS_KEY_ID to one (any will do, e.g. local) and AWS_SECRET_ACCESS_KEY to anything"
)


def credentials_refused(e: ClientError, *, what: str, local: bool = False) -> TerminalError:
    """The credentials themselves were refused (:data:`CREDENTIAL_CODES`): say to refresh them, or,
    at a local endpoint (DynamoDB Local), what it takes. ``what``: the credentials' use,
    ``calling Scan for table 't' at region r``."""
    message = str(e.response.get("Error", {}).get("Message", ""))[:300]
    fix = LOCAL_CREDENTIALS if local else REFRESH_CREDENTIALS
    return TerminalError(f"{what}: the AWS credentials were refused ({error_code(e)}: {message}); {fix}")


def _access_denied(e: ClientError, *, action: str, table: str | None, where: str) -> TerminalError:
    message = str(e.response.get("Error", {}).get("Message", ""))
    principal, resource = arns_in(message)
    parts = [f"access denied calling {action}"]
    if table:
        parts.append(f"on table {table!r}")
    if resource:
        parts.append(f"in region {resource[1] or '?'}, account {resource[2] or '?'} ({resource[0]})")
    else:
        parts.append(f"at {where}")
    if principal:
        parts.append(f"as {principal[0]} (account {principal[1] or '?'})")
    hint = (
        "; grant that principal the permission on that resource, or use credentials for the account "
        "that owns the table (AWS_PROFILE, or assume its read role)"
    )
    if resource and principal and resource[2] and principal[1] and resource[2] != principal[1]:
        hint = (
            f"; the request went to account {resource[2]} with a principal of account {principal[1]}: "
            "if the table lives in another account, assume that account's read role"
        )
    kms = kms_hint(
        message, "the principal", code=error_code(e), caller_account=principal[1] if principal else None
    )
    if kms:
        hint = f"; {kms}"
    said = f" (AWS: {message[:300]})" if message else ""
    return TerminalError(" ".join(parts) + hint + said)


_DEFAULT_DYNAMODB_HOST: Final = re.compile(r"(?:streams\.)?dynamodb\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?")


def _overridden(client: BaseClient | None) -> bool:
    """Whether the client calls an endpoint override (a VPC endpoint, DynamoDB Local), not the
    regional DynamoDB endpoint botocore picks by itself."""
    endpoint = str(getattr(getattr(client, "meta", None), "endpoint_url", "") or "")
    host = (urlparse(endpoint).hostname or "").lower()
    return bool(dynamodb_endpoint()) or not _DEFAULT_DYNAMODB_HOST.fullmatch(host)


def translate_error(
    e: BaseException, *, action: str, table: str | None = None, client: BaseClient | None = None
) -> DdblakeError:
    """Turn a botocore error into the ddblake error kind; the caller raises it ``from e``.

    Args:
        e: the caught exception (``ClientError`` or ``BotoCoreError``; others pass through as
            terminal errors).
        action: the API called (``DescribeTable``), named in the message.
        table: the DynamoDB table involved, named in the message.
        client: the client used, to name its endpoint or region.

    Returns:
        TransientError for throttling, 5xx and connection problems; NotFoundError for a missing
        resource; TerminalError (naming table, region and account) for access denied; ConfigError
        for missing credentials or region; TerminalError otherwise.
    """
    where = describe_client(client) if client is not None else "the configured endpoint"
    local = client is not None and is_local_endpoint(client.meta.endpoint_url)
    foreign = client is not None and looks_local(client.meta.endpoint_url)  # DynamoDB Local anywhere
    subject = f"table {table!r}" if table else "the request"
    if isinstance(e, DdblakeError):
        return e
    if isinstance(e, ClientError):
        code = error_code(e)
        message = str(e.response.get("Error", {}).get("Message", ""))[:300]
        if code in THROTTLING_CODES or _status(e) >= 500:
            return TransientError(f"{action} for {subject} at {where} failed after retries: {code} {message}")
        if code in NOT_FOUND_CODES:
            return NotFoundError(
                f"{subject} not found at {where} ({action}: {code}); check the name and the "
                "endpoint/region/account your AWS settings point to"
            )
        if code in CREDENTIAL_CODES:
            return credentials_refused(e, what=f"calling {action} for {subject} at {where}", local=foreign)
        if code in ACCESS_DENIED_CODES or "not authorized" in message.lower():
            return _access_denied(e, action=action, table=table, where=where)
        return TerminalError(f"{action} for {subject} at {where} failed: {code} {message}")
    if isinstance(e, NoCredentialsError):
        dynamodb = client is not None and client.meta.service_model.service_name.startswith("dynamodb")
        or_local = (
            " or pass --endpoint-url for DynamoDB Local" if dynamodb and not _overridden(client) else ""
        )
        return ConfigError(
            f"no AWS credentials found for {action} at {where}: configure a profile (AWS_PROFILE) or "
            f"environment credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY){or_local}"
        )
    if isinstance(e, NoRegionError):
        return ConfigError(
            f"no AWS region configured for {action}: set AWS_DEFAULT_REGION or a region in your AWS profile"
        )
    if isinstance(e, BotoConnectionError | HTTPClientError):
        hint = " (is DynamoDB Local running? 'ddblake local start')" if local else ""
        on = f" on {subject}" if table else ""
        return TransientError(f"cannot reach {where} for {action}{on}{hint}: {e}")
    if isinstance(e, ParamValidationError):
        return TerminalError(
            f"{action} for {subject}: invalid request, refused by botocore before sending "
            f"({refused_parameters(e)}); ddblake built a request DynamoDB would not accept: if it "
            "came from a state file in the lake, that file is damaged, else report it as a bug"
        )
    if isinstance(e, ProfileNotFound | InvalidRegionError):
        return setup_error(e, what=f"the AWS client for {action}")
    if isinstance(e, BotoCoreError):
        return TerminalError(f"{action} for {subject} at {where} failed: {e}")
    return TerminalError(f"{action} for {subject} at {where} failed: {e.__class__.__name__}: {e}")
