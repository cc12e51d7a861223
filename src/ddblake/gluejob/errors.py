"""The job's errors: one line naming the table, the S3 object, the role and what to do."""

from __future__ import annotations

from collections.abc import Mapping


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` as (bucket, key without leading or trailing slash)."""
    if not uri.startswith("s3://"):
        raise ValueError(f"{uri!r} is not an s3:// URI")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key.strip("/")


# --- errors: one line naming the table, the S3 object, the role and what to do ------------------------


class LoadRefused(SystemExit):
    """The job stops on the driver with one line: the table, the S3 object or argument, what to do.

    Raised before Spark writes anything (arguments, manifests, the check pass, the connector's key
    check), so the message says whether anything was written.
    """


class DataFileError(RuntimeError):
    """A Spark task failed on one data file or one S3 write: the message names the table and object."""


MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
_DENIED = frozenset({"AccessDenied", "403", "Forbidden", "AllAccessDisabled"})


def s3_error_code(error: BaseException) -> str:
    """The error code of a botocore ``ClientError`` (``NoSuchKey``, ``AccessDenied``), or ``""``."""
    response = getattr(error, "response", None)
    detail = response.get("Error") if isinstance(response, Mapping) else None
    return str(detail.get("Code") or "") if isinstance(detail, Mapping) else ""


def caller_arn() -> str:
    """Who the job's S3 calls act as (its role's session ARN), or ``""`` when STS does not say.

    Only asked once a call has failed, for the message.
    """
    try:
        import boto3  # a Glue driver and executor have boto3

        return str(boto3.client("sts").get_caller_identity()["Arn"])
    except Exception:  # noqa: BLE001 - a message without the role is still a message
        return ""


def _who(principal: str) -> str:
    if not principal:
        return "the Glue job's role (STS did not say which)"
    parts = principal.split(":")
    return f"{principal} (account {parts[4]})" if len(parts) > 4 and parts[4] else principal


def s3_problem(
    error: BaseException, *, action: str, bucket: str, key: str, principal: str, missing: str, arg: str
) -> str:
    """One line for a failed S3 call: the object, the caller and its account, and what to do.

    Args:
        error: the client's error (its code decides the case).
        action: the IAM action of the call (``s3:GetObject``, ``s3:PutObject``).
        bucket: the bucket called.
        key: the key called.
        principal: who called (:func:`caller_arn`; empty when unknown).
        missing: what to do when the object does not exist.
        arg: the job argument the location came from (``--EXPORT_PATH``, ``--LAKE``).
    """
    code = s3_error_code(error)
    where = f"s3://{bucket}/{key}"
    if code in MISSING:
        return f"{where} does not exist; {missing}"
    if code == "NoSuchBucket":
        return f"bucket {bucket!r} of {where} does not exist; check {arg}"
    if code in _DENIED:
        listing = (
            " (S3 also answers AccessDenied for an object that does not exist when the role may not "
            f"s3:ListBucket on {bucket}; {missing})"
            if action == "s3:GetObject"
            else ""
        )
        return (
            f"access denied: {action} on {where} as {_who(principal)}; grant that role {action} on "
            f"arn:aws:s3:::{bucket}/* (and kms:Decrypt on the bucket's KMS key if it uses SSE-KMS); a "
            f"bucket of another account must allow the role in its bucket policy too{listing}"
        )
    text = str(error)
    return f"{action} on {where} failed ({code or type(error).__name__}): {text[:300]}"
