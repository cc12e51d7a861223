"""Kinesis semantics: changes delivered more than once, out of order and late — the lake still ends
equal to the table, with every change once in the history.

A seeded workload runs on DynamoDB Local and is captured once, cleanly, into a staging lake: that is
the truth, in stream order. The changes are then delivered to the lake under test through one of
three paths, with a seeded fault plan (duplicates, shuffled lines and files, a share held back and
delivered rounds later, apply running between deliveries):

* ``streams``: the raw-log lines as capture wrote them (sequence numbers present);
* ``kinesis``: as Kinesis Data Streams for DynamoDB delivers them — no sequence number, times in
  microseconds (a table with ``ApproximateCreationDateTimePrecision`` = ``MICROSECOND``: DynamoDB
  Local stamps whole seconds, so the change's rank within its second is added to model it);
* ``firehose``: the same Kinesis records through Firehose batches into the transform Lambda's
  ``handler`` — whole batches retried (at-least-once), garbage records mixed in — and its ``Ok``
  answers written as raw files, as Firehose does.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from faultlib import LambdaContext, Verdict, check_lake, history_rows, merge, record, strength, trial_seed
from workload import TTL_PRINCIPAL, TtlStreams, Workload

from ddblake.aws.clients import DynamoClients
from ddblake.aws.firehose_transform import handler
from ddblake.capture.config import CaptureConfig
from ddblake.capture.service import run_capture
from ddblake.changes.model import ChangeEvent
from ddblake.lake.apply import Applier, ApplyConfig
from ddblake.lake.catalog import LakeConfig
from ddblake.lake.rawlog import RawLogWriter, iter_raw_files
from ddblake.lake.storage import Storage

pytestmark = [pytest.mark.faults, pytest.mark.functional]

TRIALS = strength("trials", 1)
PATHS = ("streams", "kinesis", "firehose")


def staged_events(
    clients: DynamoClients, table: str, endpoint: str, root: Path, seed: int
) -> list[ChangeEvent]:
    """Run a workload and capture it cleanly; returns the changes in stream order."""
    rng = random.Random(seed)
    work = Workload(
        clients, table, seed, keys=25, hot_keys=3, hot_share=0.5, ttl_rate=0.05, conflict_rate=0.08
    )
    work.run(rng.randrange(80, 200))
    staging = str(root / "staging")
    streams = DynamoClients(dynamodb=clients.dynamodb, streams=TtlStreams(clients.streams))
    run_capture(
        CaptureConfig.build(table=table, lake=staging, endpoint_url=endpoint, once=True), clients=streams
    )
    events = [
        ChangeEvent.from_line(line)
        for content in iter_raw_files(Storage.from_uri(staging), table)
        for line in content.lines
    ]
    return sorted(events, key=lambda e: (e.event_time_us, int(e.sequence or 0)))


def as_kinesis(events: list[ChangeEvent]) -> list[ChangeEvent]:
    """The same changes as Kinesis delivers them: no sequence number, µs times that keep their order."""
    out, second, rank = [], -1, 0
    for ev in events:
        rank = rank + 1 if ev.event_time_us // 1_000_000 == second else 0
        second = ev.event_time_us // 1_000_000
        out.append(
            dataclasses.replace(ev, sequence=None, source="kinesis", event_time_us=ev.event_time_us + rank)
        )
    return out


def kinesis_payload(ev: ChangeEvent) -> bytes:
    """A Kinesis Data Streams for DynamoDB record, as DynamoDB writes it (compact JSON)."""
    ddb: dict[str, Any] = {
        "ApproximateCreationDateTime": ev.event_time_us,
        "Keys": ev.keys,
        "SizeBytes": 100,
        "ApproximateCreationDateTimePrecision": "MICROSECOND",
    }
    if ev.new_image is not None:
        ddb["NewImage"] = ev.new_image
    if ev.old_image is not None:
        ddb["OldImage"] = ev.old_image
    record_ = {
        "awsRegion": "us-east-1",
        "eventID": ev.event_id,
        "eventName": ev.op,
        "userIdentity": dict(TTL_PRINCIPAL) if ev.ttl else None,
        "recordFormat": "application/json",
        "tableName": ev.table,
        "dynamodb": ddb,
        "eventSource": "aws:dynamodb",
    }
    return json.dumps(record_, separators=(",", ":"), ensure_ascii=False).encode()


GARBAGE = [b"not json", b'{"eventName":"UPSERT"}', b"[]", b'{"dynamodb":{}}', b"\xff\xfe"]


def firehose_lines(batch: list[ChangeEvent], rng: random.Random, arrival_ms: int) -> tuple[list[bytes], int]:
    """One Firehose invocation (with garbage mixed in): the lines of its Ok answers, and the garbage count."""
    payloads = [kinesis_payload(ev) for ev in batch]
    bad = 0
    for _ in range(rng.randrange(0, 3)):
        payloads.insert(rng.randrange(len(payloads) + 1), rng.choice(GARBAGE))
        bad += 1
    records = [
        {
            "recordId": f"r{i:06d}",
            "approximateArrivalTimestamp": arrival_ms,
            "data": base64.b64encode(p).decode(),
        }
        for i, p in enumerate(payloads)
    ]
    event = {
        "invocationId": "faults",
        "deliveryStreamArn": "arn:aws:firehose:us-east-1:111111111111:deliverystream/ddblake",
        "region": "us-east-1",
        "records": records,
    }
    answer = handler(event, LambdaContext())  # type: ignore[arg-type]
    answered = answer["records"]
    assert [r["recordId"] for r in answered] == [r["recordId"] for r in records], "each record answered once"
    failed = sum(r["result"] == "ProcessingFailed" for r in answered)
    assert failed == bad, "exactly the garbage fails"
    return [base64.b64decode(r["data"]) for r in answered if r["result"] == "Ok"], bad


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("trial", range(TRIALS))
def test_duplicated_reordered_and_late_changes_land_once(
    trial: int,
    path: str,
    clients: DynamoClients,
    make_table: Callable[..., str],
    table_name: str,
    dynamodb_local_endpoint: str,
    tmp_path: Path,
) -> None:
    seed = trial_seed(f"stream-{path}", trial)
    rng = random.Random(seed)
    table = make_table(table_name)
    truth = staged_events(clients, table, dynamodb_local_endpoint, tmp_path, seed)
    events = truth if path == "streams" else as_kinesis(truth)
    lake = Storage.from_uri(str(tmp_path / "lake"))
    applier = Applier(
        ApplyConfig.build(table=table, lake=LakeConfig.build(lake=lake.root), once=True), storage=lake
    )

    # the fault plan: late ones held back, the rest duplicated at random and cut into shuffled files
    p_dup, p_late = rng.uniform(0.05, 0.4), rng.uniform(0.0, 0.3)
    late = [ev for ev in events if rng.random() < p_late]
    late_ids = {ev.event_id for ev in late}
    on_time = [ev for ev in events if ev.event_id not in late_ids]
    delivery = on_time + [ev for ev in on_time if rng.random() < p_dup]
    rng.shuffle(delivery)
    rounds = [delivery, late + [ev for ev in late if rng.random() < p_dup]]
    faults = len(late) + sum(len(r) for r in rounds) - len(events)
    position = {ev.event_id: i for i, ev in enumerate(events)}
    for round_ in rounds:
        files = []
        while round_:
            size = rng.randrange(1, 25)
            files.append(round_[:size])
            round_ = round_[size:]
        faults += sum(
            1
            for chunk in files
            for a, b in zip(chunk, chunk[1:], strict=False)
            if position[a.event_id] > position[b.event_id]
        )
        for chunk in files:
            writer = RawLogWriter(lake, table, buffer_bytes=1 << 40, buffer_seconds=1e9)
            if path == "firehose":
                lines, bad = firehose_lines(chunk, rng, arrival_ms=rng.randrange(1, 10**12))
                faults += bad
                if rng.random() < 0.3:  # Firehose retried the invocation: the same lines again
                    lines += lines
                    faults += len(chunk)
            else:
                lines = [ev.to_line() for ev in chunk]
            for line in lines:
                writer.add(line)
            writer.flush()
            if rng.random() < 0.3:
                applier.run_once()
        applier.run_once()

    verdict = check_lake(clients, table, lake.root)
    ttl_rows = {r["event_id"]: r["ttl"] for r in history_rows(lake.root, table, ("event_id", "ttl"))}
    wrong = [
        e.event_id for e in truth if ttl_rows.get(e.event_id) is not None and ttl_rows[e.event_id] != e.ttl
    ]
    verdict = merge(verdict, Verdict(mismatches=len(wrong), details=[f"ttl flag of {w}" for w in wrong[:3]]))
    assert any(e.ttl for e in truth) or not truth, "the workload made TTL-style deletes"
    record(f"stream/{path}", faults=faults, verdict=verdict, seed=seed, events=len(events))
    assert verdict.ok, str(verdict)
