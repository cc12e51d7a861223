"""An export in S3 that the caller may not read: a terminal error naming the file, on moto's server.

moto checks IAM only when asked to (``INITIAL_NO_AUTH_ACTION_COUNT``); the server runs in this
process, so the test turns the check on for itself and the fixture's monkeypatch turns it off again.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from ddblake.errors import TerminalError
from ddblake.load.export import ExportFolder, read_manifest

pytestmark = pytest.mark.functional

EXPORT_ID = "01764316800000-a1b2c3d4"
REGION = "us-east-1"
CREDS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def test_an_export_in_s3_the_caller_may_not_read_is_terminal_and_names_the_file(
    moto_s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto import settings as moto_settings
    from moto.core.responses import ActionAuthenticatorMixin

    prefix = f"exports/AWSDynamoDB/{EXPORT_ID}"
    s3 = boto3.client("s3", endpoint_url=moto_s3.endpoint, region_name=REGION, **CREDS)
    summary = {"exportArn": f"arn:aws:dynamodb:{REGION}:123456789012:table/orders/export/{EXPORT_ID}"}
    s3.put_object(
        Bucket=moto_s3.bucket, Key=f"{prefix}/manifest-summary.json", Body=json.dumps(summary).encode()
    )
    s3.put_object(Bucket=moto_s3.bucket, Key=f"{prefix}/manifest-files.json", Body=b"")
    iam = boto3.client("iam", endpoint_url=moto_s3.endpoint, region_name=REGION, **CREDS)
    iam.create_user(UserName="no-s3")  # no policy: every S3 call it makes is denied
    key = iam.create_access_key(UserName="no-s3")["AccessKey"]

    monkeypatch.setattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
    monkeypatch.setattr(ActionAuthenticatorMixin, "request_count", 0)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    folder = ExportFolder(f"s3://{moto_s3.bucket}/{prefix}")
    with pytest.raises(TerminalError) as caught:  # no retry gives it access: not a TransientError
        read_manifest(folder)
    text = str(caught.value)
    assert f"cannot read s3://{moto_s3.bucket}/{prefix}/manifest-summary.json" in text
    assert "check that this process may read" in text and "bucket policy" in text
    assert key["SecretAccessKey"] not in text
