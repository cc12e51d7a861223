"""``--export-to``: start ExportTableToPointInTime, wait for it, and say where its folder is.

The request is remembered in the lake (``state/load/<table>/export-request.json``) before waiting,
so a load interrupted while the export runs picks the same export up again instead of paying for a
second one. An export DynamoDB reports FAILED, or no longer knows in the region and account it was
started in, is forgotten (it never completes), so the next run starts a new one.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlparse

from botocore.exceptions import BotoCoreError, ClientError

from ddblake.aws.clients import THROTTLING_CODES, describe_client, error_code, is_local_endpoint
from ddblake.aws.roles import Identity, account_of_arn, explain_access_error
from ddblake.errors import ConfigError, DdblakeError, StoppedError, TerminalError, TransientError
from ddblake.lake.storage import Storage
from ddblake.load.state import EXPORT_REQUEST, state_path
from ddblake.progress import Progress, format_eta
from ddblake.settings import places

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

log = logging.getLogger(__name__)


MAX_DESCRIBE_FAILURES = 5
"""Transient DescribeExport failures in a row that ``wait_export`` rides through before giving up."""


class ExportFailedError(TerminalError):
    """DynamoDB reports the export FAILED: it will never complete, so its request must be forgotten."""


class ExportNotFoundError(ExportFailedError):
    """DescribeExport does not know the recorded export (ExportNotFoundException) in the account and
    region it was started in: it will never complete either, so its request is forgotten too."""


@dataclass(frozen=True)
class ExportRequest:
    """An export ddblake started.

    Attributes:
        export_arn: the export's ARN.
        destination: the ``s3://bucket/prefix`` it writes under.
        started_us: when it was requested.
    """

    export_arn: str
    destination: str
    started_us: int

    @property
    def export_id(self) -> str:
        """The last segment of the ARN (the export's folder name)."""
        return self.export_arn.rsplit("/", 1)[-1]

    @property
    def folder(self) -> str:
        """``s3://bucket/prefix/AWSDynamoDB/<export id>``: where the manifests land."""
        return f"{self.destination.rstrip('/')}/AWSDynamoDB/{self.export_id}"


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` as (bucket, prefix without slashes).

    Raises:
        ConfigError: not an s3:// URI with a bucket.
    """
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ConfigError(f"--export-to {uri!r}: expected s3://bucket/prefix")
    return parsed.netloc, parsed.path.strip("/")


def pending_request(storage: Storage, table: str, destination: str) -> ExportRequest | None:
    """The export a previous run started to the same destination and did not load yet."""
    data = storage.read_rewritten(state_path(table, EXPORT_REQUEST))
    if data is None:
        return None
    try:
        doc = json.loads(data)
        request = ExportRequest(str(doc["export_arn"]), str(doc["destination"]), int(doc["started_us"]))
    except (ValueError, KeyError, TypeError):
        return None
    return request if request.destination.rstrip("/") == destination.rstrip("/") else None


TOKEN_WINDOW_US = 7 * 3_600_000_000
"""How long a recorded client token is reused: DynamoDB honours one for 8 hours."""


def _client_token(storage: Storage, table: str, destination: str, now: int) -> tuple[str, bool]:
    """The client token of the export to start: the one recorded by a run that did not see its answer.

    The token is recorded *before* ExportTableToPointInTime is called, so a run killed between the
    call and recording its answer calls again with the same token, and DynamoDB returns the export
    it already started instead of starting (and billing) a second one.

    Returns:
        The token, and whether this call made (and recorded) it rather than reusing an earlier run's.
    """
    path = state_path(table, EXPORT_REQUEST)
    data = storage.read_rewritten(path)
    if data is not None:
        try:
            doc = json.loads(data)
            if (
                "export_arn" not in doc
                and str(doc["destination"]).rstrip("/") == destination.rstrip("/")
                and now - int(doc["started_us"]) < TOKEN_WINDOW_US
            ):
                return str(doc["client_token"]), False
        except (ValueError, KeyError, TypeError):
            pass
    token = uuid.uuid4().hex
    doc = {"client_token": token, "destination": destination, "started_us": now}
    storage.write_atomic(path, (json.dumps(doc, indent=1) + "\n").encode())
    return token, True


_MAY_HAVE_STARTED: Final = frozenset(
    {"ExportConflictException", "IdempotentParameterMismatchException", *THROTTLING_CODES}
)
"""Error answers that do not prove the export was never started: a throttled or failed attempt may
follow one botocore retried after it was accepted, and a conflict may name an export of this token."""


def _refused(e: BaseException) -> bool:
    """Whether DynamoDB answered the call's first and only attempt with a refusal (a 4xx, not
    throttling): no export started.

    A network error or a 5xx may come after the request was accepted, so those keep the token; so
    does a refusal after botocore retried, since an earlier attempt may have been accepted with its
    answer lost (a timeout), and the record is what keeps the next run from starting a second export.
    """
    if not isinstance(e, ClientError):
        return False
    meta = e.response.get("ResponseMetadata", {})
    status = int(meta.get("HTTPStatusCode", 0) or 0)
    retried = int(meta.get("RetryAttempts", 0) or 0) > 0
    return 400 <= status < 500 and not retried and error_code(e) not in _MAY_HAVE_STARTED


def _forget_token(storage: Storage, table: str) -> None:
    """Drop a token record whose call DynamoDB refused; a failure to do so only leaves it behind."""
    try:
        forget_request(storage, table)
    except DdblakeError as e:  # the refusal is the error to report
        log.warning(
            "load %s: could not remove %s (%s); it holds no export and can be deleted",
            table,
            storage.shown(state_path(table, EXPORT_REQUEST)),
            e,
        )


def forget_request(storage: Storage, table: str) -> None:
    """Drop the request record once its export is loaded."""
    storage.delete(state_path(table, EXPORT_REQUEST))


def start_export(
    client: DynamoDBClient,
    *,
    table: str,
    table_arn: str,
    destination: str,
    storage: Storage,
    identity: Callable[[], Identity],
    bucket_owner: str | None = None,
) -> ExportRequest:
    """Start a full DYNAMODB_JSON export of the table as of now, and record it in the lake.

    A call DynamoDB refuses (a 4xx answer other than throttling or a conflict) leaves no request
    record behind when this run made the record: no export was started, so there is nothing for a
    rerun to pick up. A record an earlier run made is kept (its call may have been accepted).

    Raises:
        ConfigError: the endpoint has no export API (DynamoDB Local); says to load with a Scan.
        TerminalError: point-in-time recovery is off (says how to enable it), or access is denied
            (names account, principal and role).
    """
    bucket, prefix = split_s3(destination)
    kwargs: dict[str, Any] = {
        "TableArn": table_arn,
        "S3Bucket": bucket,
        "ExportFormat": "DYNAMODB_JSON",
    }
    kwargs["ClientToken"], fresh = _client_token(storage, table, destination, time.time_ns() // 1000)
    if prefix:
        kwargs["S3Prefix"] = prefix
    if bucket_owner:
        kwargs["S3BucketOwner"] = bucket_owner
    try:
        answer = client.export_table_to_point_in_time(**kwargs)
    except (ClientError, BotoCoreError) as e:
        # A refused call started no export: its token record would only be litter in the lake. One
        # this run did not make may stand for a call an earlier run got no answer to (maybe
        # accepted), so it stays for the next run to ask again with.
        if fresh and _refused(e):
            _forget_token(storage, table)
        if error_code(e) == "UnknownOperationException":
            raise ConfigError(
                f"cannot export table {table!r}: {describe_client(client)}"
                f"{' (DynamoDB Local)' if is_local_endpoint(client.meta.endpoint_url) else ''} has no export "
                "API (ExportTableToPointInTime: UnknownOperationException); leave out --export-to to load "
                "the table with a Scan, or point ddblake at AWS to export it there (no --endpoint-url, "
                "AWS_ENDPOINT_URL_DYNAMODB or AWS_ENDPOINT_URL)"
            ) from e
        if error_code(e) == "PointInTimeRecoveryUnavailableException":
            raise TerminalError(
                f"cannot export table {table!r} ({table_arn}, {describe_client(client)}): point-in-time "
                "recovery is off, and exports need it. Enable it with: aws dynamodb "
                f"update-continuous-backups --table-name {table} --point-in-time-recovery-specification "
                "PointInTimeRecoveryEnabled=true (in the table's account), or load with a Scan instead "
                "(leave out --export-to)"
            ) from e
        raise explain_access_error(
            e, action="ExportTableToPointInTime", table=table, client=client, identity=identity
        ) from e
    arn = answer["ExportDescription"]["ExportArn"]
    request = ExportRequest(arn, destination, time.time_ns() // 1000)
    doc = {
        "export_arn": arn,
        "destination": destination,
        "started_us": request.started_us,
        "client_token": kwargs["ClientToken"],
    }
    storage.write_atomic(state_path(table, EXPORT_REQUEST), (json.dumps(doc, indent=1) + "\n").encode())
    log.info(
        "load %s: started export %s to %s (table account %s)",
        table,
        request.export_id,
        request.folder,
        account_of_arn(table_arn) or "?",
    )
    return request


def _unknown_export(
    request: ExportRequest, *, table: str, client: DynamoDBClient, identity: Callable[[], Identity]
) -> TerminalError:
    """The error for a recorded export DescribeExport does not know (ExportNotFoundException).

    Asked in another region or account than the export's (the ARN says which), the export may well
    be there: the record is kept and the error says how to reach it, or to delete the record. Asked
    where the export was started, it is unknown there for good: :class:`ExportNotFoundError`, whose
    request the caller forgets, so that the next run starts a new export.
    """
    arn = request.export_arn
    parts = arn.split(":")
    arn_region = parts[3] if len(parts) > 5 and parts[3] else None
    arn_account = account_of_arn(arn)
    asked_region = str(getattr(client.meta, "region_name", "") or "") or None
    me = identity()
    record = state_path(table, EXPORT_REQUEST)
    asked = describe_client(client) + (f", account {me.account}" if me.account else "")
    exported = f"region {arn_region or '?'}, account {arn_account or '?'}"
    if (arn_region and asked_region and arn_region != asked_region) or (
        arn_account and me.account and arn_account != me.account
    ):
        return TerminalError(
            f"export {arn} of table {table!r}, recorded by an earlier run in the lake's {record}, was "
            f"started in {exported}, but DescribeExport asked {asked}, which does not know it "
            "(ExportNotFoundException): run with the AWS settings of that region and account (AWS_REGION, "
            f"profile, --assume-role) to pick it up, or delete {record} from the lake to start a new export"
        )
    return ExportNotFoundError(
        f"export {arn} of table {table!r} is unknown to DynamoDB in {exported} (DescribeExport at "
        f"{asked}: ExportNotFoundException): it no longer exists there; its request record {record} "
        "is dropped from the lake, so the next run starts a new export"
    )


def _export_failure(
    request: ExportRequest, description: dict[str, Any], *, table: str, identity: Callable[[], Identity]
) -> str:
    """Why a FAILED export failed, and who must be allowed what on which bucket.

    DynamoDB writes an export with the permissions of the principal that asked for it: that one
    (with its role and account), the bucket and the bucket's owner are named.
    """
    failure = f"{description.get('FailureCode') or ''} {description.get('FailureMessage') or ''}".strip()
    bucket = str(description.get("S3Bucket") or "") or split_s3(request.destination)[0]
    owner = str(description.get("S3BucketOwner") or "")
    owned = (
        f"owned by account {owner}"
        if owner
        else f"owned by the caller's account: no other owner is set in {places('export_bucket_owner', None)}"
    )
    me = identity()
    return (
        f"export {request.export_arn} of table {table!r} failed: {failure or 'no reason given'}; DynamoDB "
        f"writes the export as the caller that started it, {me.describe()}: check that it may write to "
        f"bucket {bucket!r} ({owned}) under {request.destination} (s3:PutObject, s3:AbortMultipartUpload, "
        "s3:PutObjectAcl) and use the bucket's KMS key if it has one (kms:GenerateDataKey, kms:Decrypt), "
        "then run again: the next run starts a new export"
    )


def wait_export(
    client: DynamoDBClient,
    request: ExportRequest,
    *,
    table: str,
    poll_seconds: float,
    progress: Progress,
    identity: Callable[[], Identity],
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Poll DescribeExport until the export completes; returns its description.

    Raises:
        ExportFailedError: the export failed (its failure code and message), or is unknown to
            DynamoDB where it was started (:class:`ExportNotFoundError`); the caller forgets the
            request, so that the next run starts a new export.
        TerminalError: access is denied, or the export is unknown to the region or account asked,
            which are not the export's (the record is kept; names both, and the record to delete).
        StoppedError: stopped while waiting.
        TransientError: DescribeExport failed transiently more than
            ``MAX_DESCRIBE_FAILURES`` times in a row (rerun picks the same export up again).
    """
    stop = stop or threading.Event()
    began = clock()
    failures = 0
    while True:
        try:
            description: dict[str, Any] = dict(
                client.describe_export(ExportArn=request.export_arn)["ExportDescription"]
            )
        except (ClientError, BotoCoreError) as e:
            if error_code(e) == "ExportNotFoundException":
                raise _unknown_export(request, table=table, client=client, identity=identity) from e
            error = explain_access_error(
                e, action="DescribeExport", table=table, client=client, identity=identity
            )
            failures += 1
            if not isinstance(error, TransientError) or failures > MAX_DESCRIBE_FAILURES:
                raise error from e
            # An export runs for minutes to hours: one network blip or throttled poll (after
            # botocore's own retries) must not end the wait; the export goes on regardless.
            log.warning(
                "table %s: DescribeExport failed (%s), %d of %d in a row; polling again in %.0f s",
                table,
                error_code(e) or type(e).__name__,
                failures,
                MAX_DESCRIBE_FAILURES,
                poll_seconds,
            )
            if stop.wait(poll_seconds):
                raise StoppedError(
                    f"stopped while export {request.export_arn} runs; the same command picks it up again"
                ) from e
            continue
        failures = 0
        status = str(description.get("ExportStatus") or "")
        if status == "COMPLETED":
            progress.status(f"export {request.export_id} completed after {format_eta(clock() - began)}")
            return description
        if status == "FAILED":
            raise ExportFailedError(_export_failure(request, description, table=table, identity=identity))
        progress.status(
            f"export {request.export_id} {status or 'IN_PROGRESS'} for {format_eta(clock() - began)}"
        )
        if stop.wait(poll_seconds):
            raise StoppedError(
                f"stopped while export {request.export_arn} runs; the same command picks it up again"
            )
