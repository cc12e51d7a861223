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


def test_a_signal_during_an_s3_write_waits_for_it(moto_s3: Any) -> None:
    """An S3 object is replaced in place, and pyarrow completes an upload when its stream closes,
    on an exception too: a Ctrl-C between the open and the write would leave an empty checkpoint.
    The signal (delivered here, synchronously, just before the bytes go out) waits for the write."""
    import signal

    storage = Storage.from_uri(f"s3://{moto_s3.bucket}/sig")
    storage.write_atomic("state/capture/t/checkpoint.json", b'{"old": true}')
    opened = storage.fs.open_output_stream

    class Interrupted:
        def __init__(self, stream: Any) -> None:
            self.stream = stream

        def __enter__(self) -> Interrupted:
            self.stream.__enter__()
            return self

        def __exit__(self, *exc: Any) -> None:
            self.stream.__exit__(*exc)

        def write(self, data: bytes) -> int:
            signal.raise_signal(signal.SIGINT)  # Python runs the handler before the next line
            return int(self.stream.write(data))

    class Fs:
        def __getattr__(self, name: str) -> Any:
            if name == "open_output_stream":
                return lambda *a, **k: Interrupted(opened(*a, **k))
            return getattr(storage.fs, name)

    interrupted = Storage(root=storage.root, fs=Fs(), is_local=False, uri_root=storage.uri_root)  # type: ignore[arg-type]
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            interrupted.write_atomic("state/capture/t/checkpoint.json", b'{"new": true}')
    finally:
        signal.signal(signal.SIGINT, previous)
    assert storage.read("state/capture/t/checkpoint.json") == b'{"new": true}'  # whole, then the interrupt
