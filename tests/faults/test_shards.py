"""Shard splits and lineage, expired iterators and crashes, on recorded shard trees.

DynamoDB Local never splits a shard. Here a seeded simulator records a stream whose shards split
and roll over while items change — a change to one item moves from a parent shard to a child — and
serves it through fake DynamoDB and Streams clients with AWS's semantics and errors (real botocore
``ClientError`` objects, so capture's error translation runs): ``DescribeStream`` in pages, children
listed before their parents, iterators that expire at random (``ExpiredIteratorException``),
``AFTER_SEQUENCE_NUMBER`` positions. Capture runs against it — crashed at random instants and rerun —
then apply; the lake must equal the simulated table, every change must be read, and one item's
changes must reach the raw log parent shard first.
"""

from __future__ import annotations

import datetime as dt
import random
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from faultlib import Verdict, compare_history, merge, record, strength, trial_seed

from ddblake.aws.clients import DynamoClients
from ddblake.capture import consumer
from ddblake.capture.service import CaptureConfig, run_capture
from ddblake.changes.model import ChangeEvent
from ddblake.lake.apply import Applier, ApplyConfig
from ddblake.lake.catalog import LakeConfig, open_catalog
from ddblake.lake.rawlog import iter_raw_files
from ddblake.lake.report import dump_items
from ddblake.lake.storage import Storage

pytestmark = [pytest.mark.faults]

TABLE = "sharded-table"
ARN = f"arn:aws:dynamodb:us-east-1:123456789012:table/{TABLE}/stream/2026-11-28T00:00:00.000"
TRIALS = strength("trials", 1) * 4
SPACE = 1 << 32


@dataclass
class SimShard:
    shard_id: str
    parent: str | None
    lo: int
    hi: int
    start: int
    end: int | None = None
    records: list[dict[str, Any]] = field(default_factory=list)


class Meta:
    endpoint_url = "https://streams.dynamodb.us-east-1.amazonaws.com"
    region_name = "us-east-1"


def client_error(code: str, op: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": 400}}, op
    )


class SimStream:
    """A recorded stream: a shard tree and its records, with a seeded way of serving them."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.seq = 0
        self.second = 1_795_000_000
        root = SimShard(self.new_id(), None, 0, SPACE, 1)
        self.shards: dict[str, SimShard] = {root.shard_id: root}
        self.items: dict[str, dict[str, Any]] = {}
        self.expire_rate = 0.0
        self.expired = 0

    def new_id(self) -> str:
        number = 1_700_000_000_000 + len(getattr(self, "shards", {}))
        return f"shardId-{number:020d}-{self.rng.getrandbits(32):08x}"

    def open_for(self, h: int) -> SimShard:
        (shard,) = [s for s in self.shards.values() if s.end is None and s.lo <= h < s.hi]
        return shard

    def split(self) -> None:
        """Close a random open shard; one child (roll over) or two (split) take its hash range."""
        shard = self.rng.choice([s for s in self.shards.values() if s.end is None])
        shard.end = self.seq
        cuts = [shard.lo, shard.hi]
        if shard.hi - shard.lo > 1 and self.rng.random() < 0.7:
            cuts.insert(1, self.rng.randrange(shard.lo + 1, shard.hi))
        for lo, hi in zip(cuts, cuts[1:], strict=False):
            child = SimShard(self.new_id(), shard.shard_id, lo, hi, self.seq + 1)
            self.shards[child.shard_id] = child

    def change(self, key: str) -> None:
        self.seq += 1
        if self.rng.random() < 0.3:
            self.second += 1
        keys = {"pk": {"S": key}}
        old = self.items.get(key)
        if old is not None and self.rng.random() < 0.25:
            op, new = "REMOVE", None
            del self.items[key]
        else:
            op = "MODIFY" if old is not None else "INSERT"
            new = {**keys, "n": {"N": str(self.seq)}, "b": {"B": self.rng.randbytes(3)}}
            self.items[key] = new
        ddb: dict[str, Any] = {
            "ApproximateCreationDateTime": dt.datetime.fromtimestamp(self.second, dt.UTC),
            "Keys": keys,
            "SequenceNumber": f"{self.seq:021d}",
            "SizeBytes": 20,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
        if new is not None:
            ddb["NewImage"] = new
        if old is not None:
            ddb["OldImage"] = old
        event = {"eventID": f"ev-{self.seq}", "eventName": op, "eventSource": "aws:dynamodb", "dynamodb": ddb}
        self.open_for(zlib.crc32(key.encode())).records.append(event)

    def all_events(self) -> list[dict[str, Any]]:
        return sorted((r for s in self.shards.values() for r in s.records), key=lambda r: r["eventID"])


class FakeDynamo:
    meta = Meta()

    def describe_table(self, TableName: str) -> dict[str, Any]:  # noqa: N803 - boto3's names
        return {
            "Table": {
                "TableName": TableName,
                "LatestStreamArn": ARN,
                "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
            }
        }


class FakeStreams:
    """DescribeStream, GetShardIterator and GetRecords over a :class:`SimStream`."""

    meta = Meta()

    def __init__(self, sim: SimStream) -> None:
        self.sim = sim
        self.iterators: dict[str, tuple[str, int]] = {}

    def describe_stream(self, StreamArn: str, ExclusiveStartShardId: str | None = None) -> dict[str, Any]:  # noqa: N803
        if ExclusiveStartShardId is None:  # a new listing, in an order of its own
            self._order = list(self.sim.shards.values())
            self.sim.rng.shuffle(self._order)  # children may come before their parents
        shards = self._order
        ids = [s.shard_id for s in shards]
        start = ids.index(ExclusiveStartShardId) + 1 if ExclusiveStartShardId else 0
        page = shards[start : start + self.sim.rng.randrange(1, 4)]
        answer: dict[str, Any] = {"StreamArn": StreamArn, "StreamStatus": "ENABLED", "Shards": []}
        for s in page:
            seq_range = {"StartingSequenceNumber": f"{s.start:021d}"}
            if s.end is not None:
                seq_range["EndingSequenceNumber"] = f"{s.end:021d}"
            shard: dict[str, Any] = {"ShardId": s.shard_id, "SequenceNumberRange": seq_range}
            if s.parent:
                shard["ParentShardId"] = s.parent
            answer["Shards"].append(shard)
        if start + len(page) < len(shards):
            answer["LastEvaluatedShardId"] = page[-1].shard_id
        return {"StreamDescription": answer}

    def get_shard_iterator(
        self, StreamArn: str, ShardId: str, ShardIteratorType: str, SequenceNumber: str | None = None
    ) -> dict[str, Any]:  # noqa: N803
        shard = self.sim.shards.get(ShardId)
        if shard is None:
            raise client_error("ResourceNotFoundException", "GetShardIterator")
        pos = 0
        if ShardIteratorType == "AFTER_SEQUENCE_NUMBER":
            assert SequenceNumber is not None
            pos = sum(1 for r in shard.records if int(r["dynamodb"]["SequenceNumber"]) <= int(SequenceNumber))
        name = f"open-{len(self.iterators)}-{self.sim.rng.getrandbits(16)}"
        self.iterators[name] = (ShardId, pos)
        return {"ShardIterator": name}

    def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:  # noqa: N803
        fresh = ShardIterator.startswith("open-")  # just handed out: a 15-minute life ahead of it
        if ShardIterator not in self.iterators or (
            not fresh and self.sim.rng.random() < self.sim.expire_rate
        ):
            self.sim.expired += 1
            raise client_error("ExpiredIteratorException", "GetRecords")
        shard_id, pos = self.iterators.pop(ShardIterator)
        shard = self.sim.shards[shard_id]
        take = min(Limit, self.sim.rng.randrange(1, 6))
        records = [dict(r) for r in shard.records[pos : pos + take]]
        pos += len(records)
        answer: dict[str, Any] = {"Records": records}
        if not (shard.end is not None and pos >= len(shard.records)):
            name = f"it-{len(self.iterators)}-{pos}-{self.sim.rng.getrandbits(16)}"
            self.iterators[name] = (shard_id, pos)
            answer["NextShardIterator"] = name
        return answer


class Crash(BaseException):
    """Not an Exception: capture cannot catch it and tidy up, as with a real crash."""


def raw_events(lake: str) -> list[ChangeEvent]:
    return [
        ChangeEvent.from_line(line) for c in iter_raw_files(Storage.from_uri(lake), TABLE) for line in c.lines
    ]


@pytest.mark.parametrize("trial", range(TRIALS))
def test_split_shards_expired_iterators_and_crashes(
    trial: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed = trial_seed("shards", trial)
    rng = random.Random(seed)
    sim = SimStream(rng)
    sim.expire_rate = rng.choice([0.0, 0.1, 0.3])
    clients = DynamoClients(dynamodb=FakeDynamo(), streams=FakeStreams(sim))  # type: ignore[arg-type]
    lake = str(tmp_path / "lake")
    config = CaptureConfig(table=TABLE, lake=lake, once=True, buffer_bytes=rng.choice([300, 2000, 1 << 20]))
    keys = [f"k{i}" for i in range(rng.randrange(3, 30))]
    crashes = 0
    real_save = consumer.save_checkpoint
    for _ in range(rng.randrange(1, 4)):  # rounds: the stream grows and splits, capture reads it
        for _ in range(rng.randrange(20, 120)):
            sim.change(rng.choice(keys[:3] if rng.random() < 0.4 else keys))
            if rng.random() < 0.05:
                sim.split()
        if rng.random() < 0.5:  # a crash right after a raw file, before its checkpoint
            countdown = [rng.randrange(1, 4)]

            def crashing_save(storage: Storage, checkpoint: Any, countdown: list[int] = countdown) -> None:
                countdown[0] -= 1
                if countdown[0] == 0:
                    raise Crash
                real_save(storage, checkpoint)

            monkeypatch.setattr(consumer, "save_checkpoint", crashing_save)
            try:
                run_capture(config, clients=clients)
            except Crash:
                crashes += 1
            monkeypatch.setattr(consumer, "save_checkpoint", real_save)
        run_capture(config, clients=clients)

    events = raw_events(lake)
    truth = sim.all_events()
    verdict = compare_history([e.event_id for e in events], [r["eventID"] for r in truth], exact=True)
    if not crashes:
        assert verdict.duplicated == 0, "without a crash capture writes every record once"
    verdict.duplicated = 0  # the unflushed tail of a crash comes again; apply drops it (checked below)
    # one item's changes reach the raw log in stream order: parents before children
    seen: dict[str, int] = {}
    for ev in events:
        seq = int(ev.sequence or 0)
        key = ev.keys["pk"]["S"]
        if seq < seen.get(key, 0) and ev.event_id not in {e.event_id for e in events[: events.index(ev)]}:
            verdict.mismatches += 1
            verdict.details.append(f"{ev.event_id} of {key} after a later change of it")
        seen[key] = max(seen.get(key, 0), seq)

    storage = Storage.from_uri(lake)
    Applier(
        ApplyConfig.build(table=TABLE, lake=LakeConfig.build(lake=lake), once=True), storage=storage
    ).run_once()
    config_lake = LakeConfig.build(lake=lake)
    catalog = open_catalog(config_lake, storage)
    import json

    dumped = {
        json.loads(x)["Item"]["pk"]["S"]: json.loads(x)["Item"] for x in dump_items(catalog, "ddb", TABLE)
    }
    expected = {
        k: {**v, "b": {"B": __import__("base64").b64encode(v["b"]["B"]).decode()}}
        for k, v in sim.items.items()
    }
    items = Verdict()
    for key in set(expected) | set(dumped):
        if expected.get(key) != dumped.get(key):
            items.mismatches += 1
            items.details.append(f"item {key}")
    history = catalog.load_table("ddb.sharded_table_changes").scan(selected_fields=("event_id",)).to_arrow()
    once = compare_history(history.column("event_id").to_pylist(), [r["eventID"] for r in truth])
    verdict = merge(verdict, items, once)
    splits = sum(1 for s in sim.shards.values() if s.end is not None)
    record(
        "stream/shards",
        faults=crashes + sim.expired + splits,
        verdict=verdict,
        seed=seed,
        shards=len(sim.shards),
    )
    assert verdict.ok, str(verdict)
