"""The same Storage on S3 (moto's server): the code path an s3:// lake takes."""

from __future__ import annotations

import gzip
from typing import Any

import boto3
import pytest

from ddblake.lake.storage import Storage

pytestmark = pytest.mark.functional


def test_s3_round_trip_bytes_unchanged_and_listing(moto_s3: Any) -> None:
    storage = Storage.from_uri(f"s3://{moto_s3.bucket}/lake")
    assert not storage.is_local and storage.uri("raw") == f"s3://{moto_s3.bucket}/lake/raw"
    assert storage.read("raw/t/none.gz") is None
    assert storage.list_files("raw/t") == []

    data = gzip.compress(b'{"line":1}\n', mtime=0)
    storage.write_atomic("raw/t/2024/01/01/00/b.gz", data)
    storage.write_atomic("raw/t/2024/01/01/00/a.gz", data)
    storage.write_atomic("state/capture/t/checkpoint.json", b"{}")
    assert storage.read("raw/t/2024/01/01/00/b.gz") == data
    s3 = boto3.client("s3", endpoint_url=moto_s3.endpoint, region_name="us-east-1")
    body = s3.get_object(Bucket=moto_s3.bucket, Key="lake/raw/t/2024/01/01/00/b.gz")["Body"].read()
    assert body == data, "stored as given, not gzipped again"
    assert storage.list_files("raw/t") == ["raw/t/2024/01/01/00/a.gz", "raw/t/2024/01/01/00/b.gz"]
    storage.delete("raw/t/2024/01/01/00/a.gz")
    assert storage.list_files("raw/t") == ["raw/t/2024/01/01/00/b.gz"]
