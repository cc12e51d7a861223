"""Cross-account reads: assume the table owner's role, and say plainly who was denied where.

``ddblake load``, ``capture`` and ``sync`` all read the table (and its stream) through
:func:`build_role_clients`: with ``--assume-role`` (``DDBLAKE_ASSUME_ROLE``) every DynamoDB and
DynamoDB Streams call is made as that role, in the account that owns the table.

The failure this module exists to prevent is the reference sample's::

    ...assumed-role/<glue job role>/GlueJobRunnerSession is not authorized to perform:
    dynamodb:DescribeTable on resource: arn:aws:dynamodb:<region>:<CONSUMER account>:table/...

— a call that went to the caller's *own* account because the cross-account role was never applied.
Every access error of a load therefore names the account and region the call went to, the principal
that made it, the role ddblake assumed (or that none was), the table, and the one thing to change.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import boto3
import botocore.session
from botocore.client import BaseClient
from botocore.config import Config
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError

from ddblake.aws.clients import (
    ACCESS_DENIED_CODES,
    CREDENTIAL_CODES,
    DynamoClients,
    arns_in,
    build_dynamodb_clients,
    credentials_refused,
    describe_client,
    dynamodb_endpoint,
    error_code,
    new_session,
    translate_error,
)
from ddblake.aws.endpoints import looks_local
from ddblake.aws.kms import kms_hint
from ddblake.aws.setup_errors import endpoint_variable, setup_error
from ddblake.errors import ConfigError, DdblakeError, NotFoundError, TerminalError
from ddblake.settings import aws_region, elsewhere

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from mypy_boto3_sts import STSClient

SESSION_NAME: Final = "ddblake-load"
_ARN = re.compile(r"arn:aws[\w-]*:([\w-]+):([\w-]*):(\d{12})?:([^\s,;\"']+)")
STREAM_ACTIONS: Final = frozenset({"DescribeStream", "GetShardIterator", "GetRecords", "ListStreams"})


def account_of_arn(arn: str | None) -> str | None:
    """The 12-digit account of an ARN, if it has one."""
    match = _ARN.search(arn or "")
    return match.group(3) if match else None


@dataclass(frozen=True)
class Identity:
    """Who a load's calls are made as.

    Attributes:
        account: the caller's account (STS GetCallerIdentity), when known.
        principal: the caller's ARN, when known.
        role_arn: the role assumed with ``--assume-role``; None when the default credentials are used.
        unapplied_role: a role the settings name that ddblake did not assume for these calls, because
            the caller supplied the clients (whatever credentials they were built with).
    """

    account: str | None = None
    principal: str | None = None
    role_arn: str | None = None
    unapplied_role: str | None = None

    @property
    def role_text(self) -> str:
        """How the calls were authorised, for messages (``role R``, or why there is none)."""
        if self.role_arn:
            return f"role {self.role_arn}"
        if self.unapplied_role:
            return (
                "the caller's own DynamoDB clients (ddblake did not assume the configured role "
                f"{self.unapplied_role} for them)"
            )
        return "no role (--assume-role not given)"

    def describe(self) -> str:
        """``principal P (account A)``, plus how it was obtained."""
        who = f"principal {self.principal or '?'} (account {self.account or '?'})"
        if self.role_arn:
            return f"{who}, assumed from --assume-role {self.role_arn}"
        if self.unapplied_role:
            return f"{who}, using {self.role_text}"
        return f"{who}, from the default AWS credentials (no --assume-role)"


def caller_identity(session: boto3.session.Session, *, role_arn: str | None = None) -> Identity:
    """The identity a session's calls are made as; fields stay None when STS cannot say."""
    try:
        sts: STSClient = session.client("sts")
        answer = sts.get_caller_identity()
        return Identity(answer.get("Account"), answer.get("Arn"), role_arn)
    except (ClientError, BotoCoreError):
        return Identity(account_of_arn(role_arn), None, role_arn)


def _sts_failure(
    e: Exception, role_arn: str, base: boto3.session.Session, table: str | None = None
) -> DdblakeError:
    """The error for a failed ``sts:AssumeRole``, naming the role, its account, the caller and the
    table the role was for: one operator running several tables' captures must see which one to fix."""
    code = error_code(e)
    message = str(e.response.get("Error", {}).get("Message", "")) if isinstance(e, ClientError) else ""
    account = account_of_arn(role_arn) or "?"
    purpose = f" to read table {table!r}" if table else ""
    if code in ACCESS_DENIED_CODES or "not authorized" in message.lower():
        named, _ = _arns(message)
        me = Identity(named[1], named[0]) if named else caller_identity(base)
        return TerminalError(
            f"cannot assume role {role_arn} (account {account}){purpose} as principal "
            f"{me.principal or '?'} (account {me.account or '?'}): the role's trust policy must allow that "
            "principal, and the principal needs sts:AssumeRole on the role (and --external-id if the trust "
            "requires one); fix the trust policy or pass the right --assume-role"
        )
    if code in CREDENTIAL_CODES and isinstance(e, ClientError):
        return credentials_refused(e, what=f"cannot assume role {role_arn} (account {account}){purpose}")
    # the table goes in the action, not ``table=``: a role that is not found is no missing table
    action = f"sts:AssumeRole of role {role_arn}" + (f" for table {table!r}" if table else "")
    return translate_error(e, action=action, client=None)


class RefreshFailureLine(logging.Filter):
    """botocore's warning that refreshing credentials failed, as one line (no traceback) when the
    refresh was an assumed role's: the error raised names the role and its table.

    botocore logs the failure with ``exc_info`` - some 25 lines for a brief STS outage during the
    advisory refresh window, in which the current credentials go on working and the refresh is
    simply tried again. Other credential providers' warnings pass unchanged.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drops one."""
        failure = record.exc_info[1] if record.exc_info else None
        if isinstance(failure, DdblakeError) and str(record.msg).startswith(
            "Refreshing temporary credentials"
        ):
            said = (str(failure).splitlines() or [""])[0][:600]
            if "advisory" in record.getMessage():
                text = (
                    "could not refresh the assumed role's credentials, which expire within 15 minutes (the "
                    "current ones stay in use and the refresh is tried again on a later call): %s"
                )
            else:
                text = "could not refresh the assumed role's credentials, which are about to expire: %s"
            record.msg, record.args = text, (said,)
            record.exc_info, record.exc_text = None, None
        return True


_REFRESH_LINE: Final = RefreshFailureLine()


def quiet_refresh_warnings() -> None:
    """Install :class:`RefreshFailureLine` on botocore's credentials logger (once), wherever the
    log goes: the CLI's handler, a Lambda's, a library caller's."""
    logger = logging.getLogger("botocore.credentials")
    if _REFRESH_LINE not in logger.filters:
        logger.addFilter(_REFRESH_LINE)


def assume_role_session(
    role_arn: str,
    *,
    base: boto3.session.Session | None = None,
    external_id: str | None = None,
    session_name: str = SESSION_NAME,
    duration_seconds: int = 3600,
    sts: STSClient | None = None,
    table: str | None = None,
) -> boto3.session.Session:
    """A boto3 session whose credentials come from ``sts:AssumeRole`` and refresh before they expire.

    Loads of big tables outlive the one-hour credentials, so the session re-assumes the role
    whenever botocore finds them close to expiry.

    Args:
        role_arn: the role to assume.
        base: the session whose credentials assume the role (default: boto3's chain).
        external_id: the ExternalId the role's trust policy requires, if any.
        session_name: the role session name (shows in CloudTrail).
        duration_seconds: lifetime of each set of credentials.
        sts: the STS client to use (tests pass a stubbed one); built from ``base`` when None.
        table: the DynamoDB table the role is assumed for, named when it cannot be (None: not named).

    Raises:
        TerminalError: the role cannot be assumed (names role, table, principal and accounts, says
            what to fix).
        ConfigError: no credentials or region for the STS call.
    """
    base = base or new_session()
    try:
        region = base.region_name or aws_region()  # botocore ignores AWS_REGION; ddblake does not
    except (BotoCoreError, ValueError) as e:  # a profile that does not exist, or cannot be read
        raise setup_error(e, what=f"the STS client to assume role {role_arn}") from e
    if region is None:
        raise ConfigError(
            "--assume-role needs an AWS region: set AWS_DEFAULT_REGION (or AWS_REGION) or a region in "
            "your AWS profile"
        )
    if sts is None:
        try:
            sts = base.client("sts", region_name=region)
        except (BotoCoreError, ValueError) as e:  # a bad region, or a bad AWS_ENDPOINT_URL_STS
            what = f"the STS client to assume role {role_arn}"
            source = endpoint_variable(("AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"))
            raise setup_error(e, what=what, source=source) from e
    kwargs: dict[str, Any] = {
        "RoleArn": role_arn,
        "RoleSessionName": session_name,
        "DurationSeconds": duration_seconds,
    }
    if external_id:
        kwargs["ExternalId"] = external_id

    def fetch() -> dict[str, str]:
        try:
            creds = sts.assume_role(**kwargs)["Credentials"]
        except (ClientError, BotoCoreError) as e:
            raise _sts_failure(e, role_arn, base, table) from e
        log.debug(
            "assumed role %s as session %s: credentials until %s", role_arn, session_name, creds["Expiration"]
        )
        return {
            "access_key": creds["AccessKeyId"],
            "secret_key": creds["SecretAccessKey"],
            "token": creds["SessionToken"],
            "expiry_time": creds["Expiration"].isoformat(),
        }

    quiet_refresh_warnings()
    credentials = RefreshableCredentials.create_from_metadata(
        metadata=fetch(), refresh_using=fetch, method="sts-assume-role"
    )
    core = botocore.session.get_session()
    # botocore has no public setter for refreshable credentials; this is how boto3 users hand them over.
    core._credentials = credentials  # type: ignore[attr-defined]
    return boto3.session.Session(botocore_session=core, region_name=region)


def _arns(message: str) -> tuple[tuple[str, str | None] | None, tuple[str, str, str | None] | None]:
    principal, resource = arns_in(message)
    return principal, (resource[:3] if resource else None)


def explain_access_error(
    e: Exception,
    *,
    action: str,
    table: str,
    client: BaseClient,
    identity: Callable[[], Identity],
) -> DdblakeError:
    """Translate an error of a DynamoDB call of a load or capture, spelling out accounts and roles.

    Access denied and not-found errors name the account and region the call went to, the principal,
    the role (or its absence) and the table, and say what to change. Anything else goes through
    :func:`ddblake.aws.clients.translate_error`.

    Args:
        e: the botocore error.
        action: the API (``DescribeTable``, ``Scan``, ``ExportTableToPointInTime``).
        table: the table name.
        client: the DynamoDB client used (its endpoint or region is named).
        identity: gives the caller identity; called only for these errors (one STS call).
    """
    code = error_code(e)
    message = str(e.response.get("Error", {}).get("Message", "")) if isinstance(e, ClientError) else ""
    where = describe_client(client)
    if code in CREDENTIAL_CODES:  # no STS call: it would be refused too, and no grant helps
        return translate_error(e, action=action, table=table, client=client)
    denied = code in ACCESS_DENIED_CODES or "not authorized" in message.lower()
    if not denied and code != "ResourceNotFoundException":
        return translate_error(e, action=action, table=table, client=client)
    me = identity()
    named_principal, resource = _arns(message)  # a KMS key's ARN is no resource of the call
    principal = named_principal[0] if named_principal else me.principal
    account = (resource[2] if resource else None) or me.account
    region = (resource[1] if resource else None) or getattr(client.meta, "region_name", None)
    if account or principal:
        endpoint = f", {where}" if where.startswith("endpoint") else ""
        went = (
            f"the call went to account {account or '?'} (region {region or '?'}{endpoint}) "
            f"as principal {principal or '?'}"
        )
    else:  # no STS to ask (DynamoDB Local) and nothing in the message
        went = f"the call went to {where}"
    role = me.role_text
    apply_role = (
        f"build the clients with the role (ddblake.aws.roles.build_role_clients) or let ddblake build "
        f"them, so that {me.unapplied_role} is assumed"
    )
    if not denied:
        if me.role_arn:
            fix = f"check the table name and region; the role must belong to the account that owns {table!r}"
        elif me.unapplied_role:
            fix = f"{apply_role}; else check the name and region"
        elif not (account or principal) and looks_local(str(getattr(client.meta, "endpoint_url", ""))):
            # DynamoDB Local: no accounts (no STS to ask), so no role makes a table appear there
            fix = f"check the table name or create {table!r} at that endpoint (it has only tables made there)"
        else:
            fix = (
                f"if {table!r} lives in another account, pass --assume-role "
                f"arn:aws:iam::<owner account>:role/<read role> (or set {elsewhere('assume_role')}); else "
                "check the name and the region (AWS_DEFAULT_REGION, else the AWS profile's region, else "
                "AWS_REGION) or --endpoint-url"
            )
        return NotFoundError(f"table {table!r} not found ({action}): {went}, using {role}; {fix}")
    if me.role_arn is None and me.unapplied_role:
        fix = f"{apply_role}; or grant the principal that made the call dynamodb:{action} on the table"
    elif me.role_arn is None:
        fix = (
            f"if {table!r} is owned by another account, pass --assume-role "
            f"arn:aws:iam::<owner account>:role/<read role> (or set {elsewhere('assume_role')}) and check "
            f"that the role trusts this principal; if it is owned by account {account or '?'}, grant the "
            f"principal dynamodb:{action} on the table"
        )
    elif account and account_of_arn(me.role_arn) and account != account_of_arn(me.role_arn):
        fix = (
            f"the role is in account {account_of_arn(me.role_arn)} but the call named a table in account "
            f"{account}: use a role of the account that owns the table"
        )
    elif principal and me.role_arn.split("/")[-1] not in principal:
        fix = (
            f"the call was not made with the role (credentials of {principal} were used): "
            "check how the role is applied"
        )
    else:
        if action in STREAM_ACTIONS:
            fix = (
                f"grant the role dynamodb:{action} in its policy: capture needs dynamodb:DescribeTable on "
                "the table and dynamodb:DescribeStream, GetShardIterator and GetRecords on its stream"
            )
        else:
            fix = (
                f"grant the role dynamodb:{action} (and dynamodb:DescribeTable, dynamodb:Scan, and "
                "kms:Decrypt on the table's key if it has a customer-managed key) on the table in its policy"
            )
    caller = (named_principal[1] if named_principal else None) or me.account
    who = "the role" if me.role_arn else "the principal"
    fix = kms_hint(message, who, code=code, caller_account=caller) or fix
    said = f" (AWS: {message[:300]})" if message else ""
    return TerminalError(
        f"access denied calling {action} on table {table!r}: {went}, using {role}; {fix}{said}"
    )


def _identity_of(session: boto3.session.Session, role_arn: str | None, local: bool) -> Callable[[], Identity]:
    @functools.cache
    def identity() -> Identity:
        if local:  # DynamoDB Local has no accounts, and STS is not there to ask
            return Identity(role_arn=role_arn)
        try:
            sts = session.client(
                "sts", config=Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 2})
            )
            answer = sts.get_caller_identity()
            return Identity(answer.get("Account"), answer.get("Arn"), role_arn)
        except Exception:  # noqa: BLE001 - only used to explain another error; never hide that one
            return Identity(role_arn=role_arn)

    return identity


def build_role_clients(
    endpoint_url: str | None,
    role_arn: str | None,
    *,
    external_id: str | None = None,
    session_name: str = SESSION_NAME,
    base: boto3.session.Session | None = None,
    sts: STSClient | None = None,
    table: str | None = None,
) -> tuple[DynamoClients, Callable[[], Identity]]:
    """DynamoDB and Streams clients acting as ``role_arn`` (when given), and who they act as.

    One place builds them for the load and for capture, so that a table in another account is
    read, and its stream followed, with the same role.

    Args:
        endpoint_url: DynamoDB endpoint override (DynamoDB Local); None follows boto3's chain.
        role_arn: the role to assume; None uses the default credentials.
        external_id: the ExternalId the role's trust policy requires, if any.
        session_name: the role session name (shows in CloudTrail: ``ddblake-load``, ``ddblake-capture``).
        base: the session whose credentials assume the role (default: boto3's chain).
        sts: the STS client for AssumeRole (tests pass a stubbed one).
        table: the table the clients are for, named if the role cannot be assumed.

    Raises:
        TerminalError: the role cannot be assumed (names principal, role, accounts and table).
        ConfigError: no region or credentials.
    """
    session = base or new_session()
    if role_arn:
        session = assume_role_session(
            role_arn, base=session, external_id=external_id, session_name=session_name, sts=sts, table=table
        )
    clients = build_dynamodb_clients(endpoint_url, session=session)
    # DynamoDB Local has no STS beside it; moto (or LocalStack) does when an STS endpoint is set.
    no_sts = looks_local(dynamodb_endpoint(endpoint_url)) and not (
        os.environ.get("AWS_ENDPOINT_URL_STS") or os.environ.get("AWS_ENDPOINT_URL")
    )
    return clients, _identity_of(session, role_arn, no_sts)
