"""A checkpoint whose ``closed`` is not a JSON boolean is refused: ``"false"`` read as closed would
skip the rest of the shard and read its children before it."""

from __future__ import annotations

import json

import pytest

from ddblake.capture.checkpoint import Checkpoint, ShardPosition
from ddblake.errors import DdblakeError


def _doc(closed: object) -> bytes:
    good = Checkpoint("t", None, {"s-1": ShardPosition(seq="123", closed=False)}).to_json()
    doc = json.loads(good)
    doc["shards"]["s-1"]["closed"] = closed
    return json.dumps(doc).encode()


@pytest.mark.parametrize("closed", [True, False])
def test_booleans_are_read_as_written(closed: bool) -> None:
    assert Checkpoint.from_json(_doc(closed), table="t", where="cp.json").shards["s-1"].closed is closed


@pytest.mark.parametrize("closed", ["false", 0, 1, None])
def test_anything_else_names_the_shard_and_the_file(closed: object) -> None:
    with pytest.raises(DdblakeError, match=r"cp\.json.*shard s-1 has closed"):
        Checkpoint.from_json(_doc(closed), table="t", where="cp.json")
