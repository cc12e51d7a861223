"""A file replaced in place on S3 (a capture's checkpoint, a load's state) is read whole.

pyarrow reads an S3 object in two requests: its size, then that many bytes. A capture saving its
checkpoint between the two gave a reader (``status``, a load checking the capture's start) the new
version cut at the old size, which it called damaged, telling the user to delete the checkpoint
and capture again from the stream's oldest record.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from ddblake.capture.checkpoint import Checkpoint, ShardPosition, load_checkpoint, save_checkpoint
from ddblake.errors import TransientError
from ddblake.lake.storage import Storage

OLD = Checkpoint(table="t", stream_arn="arn:s", shards={"shardId-1": ShardPosition(seq="1")}, updated_us=1)
NEW = Checkpoint(
    table="t",
    stream_arn="arn:s",
    shards={"shardId-1": ShardPosition(seq="1"), "shardId-2": ShardPosition(parent="shardId-1", seq="7")},
    updated_us=2,
)


class _SavedWhileOpening:
    """The real S3 file system, but a checkpoint save lands right after each of the first ``times``
    opens have asked the object's size: where a concurrent capture's save can land."""

    def __init__(self, fs: Any, writer: Storage, times: int) -> None:
        self.fs, self.writer, self.times = fs, writer, times

    def open_input_stream(self, path: str, **kwargs: Any) -> Any:
        stream = self.fs.open_input_stream(path, **kwargs)
        if self.times > 0:
            self.times -= 1
            grown = {
                f"shardId-{i}": ShardPosition(seq=str(i)) for i in range(self.times)
            }  # a new size each time
            save_checkpoint(self.writer, dataclasses.replace(NEW, shards={**NEW.shards, **grown}))
        return stream

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fs, name)


def _reader(uri: str, writer: Storage, times: int) -> Storage:
    real = Storage.from_uri(uri)
    return dataclasses.replace(real, fs=_SavedWhileOpening(real.fs, writer, times))  # type: ignore[arg-type]


def test_a_checkpoint_saved_during_a_read_is_read_whole(moto_s3: Any) -> None:
    uri = f"s3://{moto_s3.bucket}/lake"
    writer = Storage.from_uri(uri)
    save_checkpoint(writer, OLD)
    got = load_checkpoint(_reader(uri, writer, times=1), "t")
    assert got is not None and got.updated_us == NEW.updated_us and set(got.shards) == set(NEW.shards)


def test_a_file_replaced_during_every_read_is_a_transient_error(moto_s3: Any) -> None:
    uri = f"s3://{moto_s3.bucket}/lake"
    writer = Storage.from_uri(uri)
    save_checkpoint(writer, OLD)
    with pytest.raises(TransientError, match=r"checkpoint\.json: it was replaced during each of 5 reads"):
        load_checkpoint(_reader(uri, writer, times=100), "t")
