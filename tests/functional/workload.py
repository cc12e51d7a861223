"""A seeded random workload on DynamoDB Local, and the oracle that compares the lake with a Scan.

Every attribute type, numbers at DynamoDB's limits, one attribute name carrying different types in
different items, puts, updates, deletes, batch and transaction writes. Same seed, same workload.

Optional extras (all off by default, so existing seeds give the same workload):

* ``hot_keys``: that many keys take ``hot_share`` of all single-item writes, so one item changes
  many times within one second (versions then hang on the stream's sequence numbers);
* ``big_rate``: share of writes that put an item of 300 KB up to DynamoDB's 400 KB limit;
* ``ttl_rate``: share of writes that are TTL-style deletes: the item gets ``expires_at`` in the past,
  then is deleted on condition that it expired, as DynamoDB's TTL process would. DynamoDB Local
  never expires items itself; :class:`TtlStreams` marks such REMOVE records with DynamoDB's TTL
  identity, as AWS does;
* ``conflict_rate``: share of writes that give attribute ``shifty`` of a hot key a different type
  than last time (N, S, M, L, BOOL, NS...), so typed columns change type under one key.
"""

from __future__ import annotations

import base64
import json
import random
import time
from typing import Any

from ddblake.aws.clients import DynamoClients

EXTREME_NUMBERS = [
    "0",
    "-1",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "12345678901234567890123456789012345678",
    "1.2345678901234567890123456789012345678",
    "1E-130",
    "-1E-130",
    "9.9999999999999999999999999999999999999E+125",
    "-9.9999999999999999999999999999999999999E+125",
    "0.000001",
    "100",
    "12.5",
]


TTL_ATTRIBUTE = "expires_at"
TTL_PRINCIPAL = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
BIG_MIN, BIG_MAX = 300_000, 400_000  # bytes of the big attribute; the item stays under 400 KB


class Workload:
    """Random writes to one table whose key is ``pk`` (S) and ``sk`` (S)."""

    def __init__(
        self,
        clients: DynamoClients,
        table: str,
        seed: int,
        keys: int = 40,
        *,
        hot_keys: int = 0,
        hot_share: float = 0.3,
        big_rate: float = 0.0,
        ttl_rate: float = 0.0,
        conflict_rate: float = 0.0,
    ) -> None:
        self.ddb = clients.dynamodb
        self.table = table
        self.rng = random.Random(seed)
        self.keys = [(f"p{i % 13}", f"s{i}") for i in range(keys)]
        self.hot = self.keys[:hot_keys]
        self.hot_share = hot_share
        self.big_rate, self.ttl_rate, self.conflict_rate = big_rate, ttl_rate, conflict_rate
        self.extras = bool(hot_keys or big_rate or ttl_rate or conflict_rate)
        self.ttl_deletes = 0
        self.big_items = 0

    def value(self, depth: int = 0) -> dict[str, Any]:
        """A random attribute value in DynamoDB JSON (low-level client shape: B as bytes)."""
        rng = self.rng
        kinds = ["S", "N", "B", "BOOL", "NULL", "SS", "NS", "BS"] + (["M", "L"] if depth < 2 else [])
        kind = rng.choice(kinds)
        if kind == "S":
            return {"S": rng.choice(["", "a", "ünïcødé ✓", "x" * rng.randrange(1, 40)])}
        if kind == "N":
            return {"N": rng.choice(EXTREME_NUMBERS + [str(rng.randrange(-(10**6), 10**6))])}
        if kind == "B":
            return {"B": rng.randbytes(rng.randrange(0, 12))}
        if kind == "BOOL":
            return {"BOOL": rng.random() < 0.5}
        if kind == "NULL":
            return {"NULL": True}
        if kind == "SS":
            return {"SS": sorted({f"m{rng.randrange(20)}" for _ in range(rng.randrange(1, 5))})}
        if kind == "NS":
            return {
                "NS": sorted({str(rng.randrange(-50, 50)) for _ in range(rng.randrange(1, 5))} | {"1E-130"})
            }
        if kind == "BS":
            return {"BS": list({rng.randbytes(3) for _ in range(rng.randrange(1, 4))})}
        if kind == "M":
            return {"M": {f"f{i}": self.value(depth + 1) for i in range(rng.randrange(0, 4))}}
        return {"L": [self.value(depth + 1) for _ in range(rng.randrange(0, 4))]}

    def item(self, key: tuple[str, str]) -> dict[str, Any]:
        item: dict[str, Any] = {"pk": {"S": key[0]}, "sk": {"S": key[1]}}
        for name in self.rng.sample(["a", "b", "c", "d", "e", "shared", "num"], self.rng.randrange(1, 6)):
            item[name] = self.value()
        return item

    def _key(self) -> dict[str, Any]:
        pool = self.hot if self.hot and self.rng.random() < self.hot_share else self.keys
        pk, sk = self.rng.choice(pool)
        return {"pk": {"S": pk}, "sk": {"S": sk}}

    def _extra(self) -> str | None:
        """One of the optional writes, or None for an ordinary one."""
        rng = self.rng
        roll = rng.random()
        if roll < self.ttl_rate:
            key = self._key()
            past = {"N": str(int(time.time()) - rng.randrange(1, 10**6))}
            self.ddb.update_item(
                TableName=self.table,
                Key=key,
                UpdateExpression="SET #t = :t",
                ExpressionAttributeNames={"#t": TTL_ATTRIBUTE},
                ExpressionAttributeValues={":t": past},
            )
            self.ddb.delete_item(
                TableName=self.table,
                Key=key,
                ConditionExpression="#t < :now",
                ExpressionAttributeNames={"#t": TTL_ATTRIBUTE},
                ExpressionAttributeValues={":now": {"N": str(int(time.time()) + 1)}},
            )
            self.ttl_deletes += 1
            return "ttl"
        roll -= self.ttl_rate
        if roll < self.big_rate:
            item = self.item(self.rng.choice(self.keys))
            size = rng.randrange(BIG_MIN, BIG_MAX)
            # binary, or text of two-byte characters (DynamoDB counts UTF-8 bytes)
            item["blob"] = {"B": rng.randbytes(size)} if rng.random() < 0.5 else {"S": "ü" * (size // 2)}
            self.ddb.put_item(TableName=self.table, Item=item)
            self.big_items += 1
            return "big"
        roll -= self.big_rate
        if roll < self.conflict_rate and self.hot:
            pk, sk = rng.choice(self.hot)
            value = self.value()
            self.ddb.update_item(
                TableName=self.table,
                Key={"pk": {"S": pk}, "sk": {"S": sk}},
                UpdateExpression="SET shifty = :v",
                ExpressionAttributeValues={":v": value},
            )
            return "conflict"
        return None

    def step(self) -> str:
        """One random write; returns what kind it was."""
        rng = self.rng
        if self.extras:
            extra = self._extra()
            if extra is not None:
                return extra
        roll = rng.random()
        key = self._key()
        if roll < 0.35:
            self.ddb.put_item(TableName=self.table, Item=self.item((key["pk"]["S"], key["sk"]["S"])))
            return "put"
        if roll < 0.55:
            self.ddb.update_item(
                TableName=self.table,
                Key=key,
                UpdateExpression="SET #a = :v REMOVE #b",
                ExpressionAttributeNames={
                    "#a": rng.choice(["a", "shared", "num"]),
                    "#b": rng.choice(["c", "d"]),
                },
                ExpressionAttributeValues={":v": self.value()},
            )
            return "update"
        if roll < 0.7:
            self.ddb.delete_item(TableName=self.table, Key=key)
            return "delete"
        if roll < 0.85:
            picked = rng.sample(self.keys, 5)
            requests: list[Any] = []
            for k in picked:
                if rng.random() < 0.7:
                    requests.append({"PutRequest": {"Item": self.item(k)}})
                else:
                    requests.append({"DeleteRequest": {"Key": {"pk": {"S": k[0]}, "sk": {"S": k[1]}}}})
            self.ddb.batch_write_item(RequestItems={self.table: requests})
            return "batch"
        picked = rng.sample(self.keys, 3)
        items: list[Any] = [{"Put": {"TableName": self.table, "Item": self.item(picked[0])}}]
        items.append(
            {
                "Delete": {
                    "TableName": self.table,
                    "Key": {"pk": {"S": picked[1][0]}, "sk": {"S": picked[1][1]}},
                }
            }
        )
        items.append(
            {
                "Update": {
                    "TableName": self.table,
                    "Key": {"pk": {"S": picked[2][0]}, "sk": {"S": picked[2][1]}},
                    "UpdateExpression": "SET num = :n",
                    "ExpressionAttributeValues": {":n": {"N": rng.choice(EXTREME_NUMBERS)}},
                }
            }
        )
        self.ddb.transact_write_items(TransactItems=items)
        return "transaction"

    def run(self, steps: int) -> dict[str, int]:
        counts: dict[str, int] = {}
        for _ in range(steps):
            kind = self.step()
            counts[kind] = counts.get(kind, 0) + 1
        return counts


class TtlStreams:
    """A DynamoDB Streams client that marks TTL-style deletes the way AWS marks TTL expiries.

    A REMOVE whose old image holds ``expires_at`` in the past gets ``userIdentity`` = DynamoDB's
    service principal, which is what a TTL deletion carries on AWS. Everything else passes through.
    """

    def __init__(self, streams: Any) -> None:
        self._streams = streams
        self.marked: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._streams, name)

    def get_records(self, **kwargs: Any) -> Any:
        answer = self._streams.get_records(**kwargs)
        for record in answer.get("Records", []):
            old = record.get("dynamodb", {}).get("OldImage") or {}
            if record.get("eventName") == "REMOVE" and TTL_ATTRIBUTE in old:
                record["userIdentity"] = dict(TTL_PRINCIPAL)
                self.marked.append(record["eventID"])
        return answer


def _wire(value: Any) -> Any:
    """Low-level client values (bytes) back to DynamoDB JSON wire form, sets order-free."""
    if isinstance(value, dict):
        if len(value) == 1:
            ((tag, inner),) = value.items()
            if tag == "B":
                return {"B": base64.b64encode(inner).decode()}
            if tag == "BS":
                return {"BS": sorted(base64.b64encode(b).decode() for b in inner)}
            if tag in ("SS", "NS"):
                return {tag: sorted(inner)}
            if tag == "M":
                return {"M": {k: _wire(v) for k, v in inner.items()}}
            if tag == "L":
                return {"L": [_wire(v) for v in inner]}
            return {tag: inner}
        return {k: _wire(v) for k, v in value.items()}
    return value


def _sets_sorted(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1:
            ((tag, inner),) = value.items()
            if tag in ("SS", "NS", "BS"):
                return {tag: sorted(inner)}
            if tag == "M":
                return {"M": {k: _sets_sorted(v) for k, v in inner.items()}}
            if tag == "L":
                return {"L": [_sets_sorted(v) for v in inner]}
            return value
        return {k: _sets_sorted(v) for k, v in value.items()}
    return value


def scan_items(clients: DynamoClients, table: str) -> dict[str, dict[str, Any]]:
    """The source of truth: every item by key, in DynamoDB JSON wire form."""
    items: dict[str, dict[str, Any]] = {}
    paginator = clients.dynamodb.get_paginator("scan")
    for page in paginator.paginate(TableName=table, ConsistentRead=True):
        for item in page["Items"]:
            wire = _wire(item)
            items[f"{item['pk']['S']}/{item['sk']['S']}"] = wire
    return items


def dump_to_items(lines: list[str]) -> dict[str, dict[str, Any]]:
    """``ddblake dump`` output by key, sets order-free."""
    items: dict[str, dict[str, Any]] = {}
    for line in lines:
        item = json.loads(line)["Item"]
        items[f"{item['pk']['S']}/{item['sk']['S']}"] = _sets_sorted(item)
    return items


def cli(capsys: Any, *argv: str) -> str:
    """Run ``ddblake`` in-process; returns its stdout (fails the test with its stderr on a non-zero
    exit). ``capsys``: the test's ``pytest.CaptureFixture[str]``."""
    from ddblake.cli.main import main

    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, f"ddblake {argv[0]} exited {code}: {err[-3000:]}"
    return str(out)
