"""Shard ordering on a recorded shard tree: parents always before children."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ddblake.capture.shards import Shard, order_parents_first, readable_shards

# A DescribeStream answer of a table that split and rolled over (IDs shortened, order as AWS pages it).
RECORDED = {
    "Shards": [
        {
            "ShardId": "shardId-00000001700000000000-000a",
            "ParentShardId": "shardId-00000001690000000000-trim",
            "SequenceNumberRange": {
                "StartingSequenceNumber": "100000000000000000001",
                "EndingSequenceNumber": "100000000000000000900",
            },
        },
        {
            "ShardId": "shardId-00000001700000000000-000b",
            "SequenceNumberRange": {
                "StartingSequenceNumber": "110000000000000000001",
                "EndingSequenceNumber": "110000000000000000500",
            },
        },
        {
            "ShardId": "shardId-00000001700014400000-00a1",
            "ParentShardId": "shardId-00000001700000000000-000a",
            "SequenceNumberRange": {
                "StartingSequenceNumber": "200000000000000000001",
                "EndingSequenceNumber": "200000000000000000300",
            },
        },
        {
            "ShardId": "shardId-00000001700014400000-00a2",
            "ParentShardId": "shardId-00000001700000000000-000a",
            "SequenceNumberRange": {"StartingSequenceNumber": "210000000000000000001"},
        },
        {
            "ShardId": "shardId-00000001700014400000-00b1",
            "ParentShardId": "shardId-00000001700000000000-000b",
            "SequenceNumberRange": {"StartingSequenceNumber": "220000000000000000001"},
        },
        {
            "ShardId": "shardId-00000001700028800000-a1x1",
            "ParentShardId": "shardId-00000001700014400000-00a1",
            "SequenceNumberRange": {"StartingSequenceNumber": "300000000000000000001"},
        },
    ]
}
SHARDS = [Shard.from_api(s) for s in RECORDED["Shards"]]
IDS = {s.shard_id[-4:]: s.shard_id for s in SHARDS}


def assert_parents_first(ordered: list[Shard]) -> None:
    position = {s.shard_id: i for i, s in enumerate(ordered)}
    for shard in ordered:
        if shard.parent_id in position:
            assert position[shard.parent_id] < position[shard.shard_id], shard.shard_id


def test_recorded_tree_orders_parents_first_whatever_the_listing_order() -> None:
    expected = ["000a", "000b", "00a1", "00a2", "00b1", "a1x1"]
    for seed in range(20):
        shuffled = SHARDS[:]
        random.Random(seed).shuffle(shuffled)
        ordered = order_parents_first(shuffled)
        assert [s.shard_id[-4:] for s in ordered] == expected
        assert_parents_first(ordered)


def test_from_api_reads_closure_and_parent() -> None:
    first = SHARDS[0]
    assert first.closed and first.end_seq == "100000000000000000900"
    assert first.parent_id == "shardId-00000001690000000000-trim"
    assert not SHARDS[3].closed and SHARDS[1].parent_id is None


@pytest.mark.parametrize(
    ("finished", "ready"),
    [
        # First sight: roots only (000a's parent was trimmed before ddblake knew it).
        (set(), ["000a", "000b"]),
        # 000a drained: its children may go; a1x1 still waits for 00a1.
        ({"000a"}, ["000b", "00a1", "00a2"]),
        ({"000a", "000b", "00a1"}, ["00a2", "00b1", "a1x1"]),
    ],
)
def test_readable_shards_wait_for_finished_parents(finished: set[str], ready: list[str]) -> None:
    done = {IDS[x] for x in finished}
    known = {s.shard_id for s in SHARDS}
    assert [s.shard_id[-4:] for s in readable_shards(SHARDS, done, known)] == ready


def test_known_but_unfinished_parent_outside_the_stream_blocks_its_children() -> None:
    # Gap detection reports this case; readable_shards must never read such a child early.
    child = Shard("child", parent_id="gone")
    assert readable_shards([child], finished=set(), known={"gone", "child"}) == []
    assert readable_shards([child], finished={"gone"}, known={"gone", "child"}) == [child]


@st.composite
def trees(draw: st.DrawFn) -> list[Shard]:
    count = draw(st.integers(1, 30))
    shards: list[Shard] = []
    for i in range(count):
        parent = draw(st.one_of(st.none(), st.integers(0, i - 1))) if i else None
        start = draw(st.integers(0, 10**21))
        shards.append(Shard(f"s{i:03d}", None if parent is None else f"s{parent:03d}", str(start)))
    return draw(st.permutations(shards))


@given(trees())
def test_any_tree_orders_parents_first(shards: list[Shard]) -> None:
    ordered = order_parents_first(shards)
    assert sorted(s.shard_id for s in ordered) == sorted(s.shard_id for s in shards)
    assert_parents_first(ordered)
