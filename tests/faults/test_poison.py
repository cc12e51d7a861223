"""Poison input never stops good data: bad lines and broken files are quarantined with their reason,
counted in ``status``, and every good line — in the same file too — is applied.

Through the command line (``apply``, ``status``, ``dump``), then as a seeded property: any mix of
good lines and mutated ones (wrong types, missing fields, bad attribute values, cut lines, random
bytes) is applied without an error, and the lake equals what the good lines alone say.
"""

from __future__ import annotations

import base64
import gzip
import json
import random
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

import pytest
from faultlib import DDBLAKE, Verdict, compare_history, record, run, strength, trial_seed

from ddblake.changes.model import ChangeEvent
from ddblake.changes.resolve import key_string, version_of
from ddblake.errors import BadRecordError
from ddblake.lake.apply import Applier, ApplyConfig
from ddblake.lake.catalog import LakeConfig, open_catalog
from ddblake.lake.rawlog import raw_file_path
from ddblake.lake.report import dump_items
from ddblake.lake.storage import Storage
from ddblake.names import changes_identifier

pytestmark = [pytest.mark.faults]

TABLE = "poison-table"
BASE_US = 1_795_000_000_000_000
TRIALS = strength("trials", 1) * 5


def event(op: str, pk: str, t: int, image: dict[str, Any] | None = None, **over: Any) -> dict[str, Any]:
    keys = {"pk": {"S": pk}}
    line = ChangeEvent(
        op=op,  # type: ignore[arg-type]
        table=TABLE,
        keys=keys,
        new_image=None if op == "REMOVE" else {**keys, **(image or {"v": {"N": str(t)}})},
        old_image=None,
        event_id=uuid.uuid4().hex,
        event_time_us=BASE_US + t * 1_000_000,
        sequence=str(t + 1),
        source="streams",
        ttl=False,
        ingested_us=BASE_US,
    ).to_dict()
    line.update(over)
    return line


def encode(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


class RawFiles:
    """Raw files written as Firehose or capture would, plus broken ones written by hand."""

    def __init__(self, lake: Path) -> None:
        self.storage = Storage.from_uri(str(lake))
        self.us = 0

    def path(self) -> str:
        # named by write time, like Firehose and capture: apply folds old hours it has finished
        self.us = max(time.time_ns() // 1000, self.us + 1)
        return raw_file_path(TABLE, self.us)

    def write(self, lines: list[bytes], *, data: bytes | None = None) -> str:
        path = self.path()
        payload = b"".join(line + b"\n" for line in lines)
        self.storage.write_atomic(path, gzip.compress(payload, mtime=0) if data is None else data)
        return path


def dump(lake: str) -> dict[str, Any]:
    config = LakeConfig.build(lake=lake)
    items = [json.loads(x)["Item"] for x in dump_items(open_catalog(config, config.storage()), "ddb", TABLE)]
    return {item["pk"]["S"]: item for item in items}


def history_ids(lake: str) -> list[str]:
    config = LakeConfig.build(lake=lake)
    table = open_catalog(config, config.storage()).load_table(f"ddb.{changes_identifier(TABLE)}")
    return table.scan(selected_fields=("event_id",)).to_arrow().column("event_id").to_pylist()


def test_poison_lines_and_files_are_quarantined_through_the_cli_and_counted_in_status(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    files = RawFiles(lake)
    big = {"blob": {"B": base64.b64encode(random.Random(1).randbytes(399_000)).decode()}}
    good = [
        event("INSERT", "a", 1),
        event("INSERT", "b", 2),
        event("INSERT", "big", 3, big),
        event("INSERT", "c", 4),
    ]
    bad_lines: list[bytes] = [
        b"{not json",  # malformed JSON
        b"[1, 2, 3]",  # not an object
        encode({**event("INSERT", "x", 5), "v": 2}),  # a format version from the future
        encode(event("UPSERT", "x", 5)),  # unknown operation (event name)
        encode({k: v for k, v in event("INSERT", "x", 5).items() if k != "keys"}),  # wrong shape
        encode(event("INSERT", "x", 5, keys={"pk": {"BOOL": True}})),  # a key no table can have
        encode(event("INSERT", "x", 5, {"n": {"N": "twelve"}})),  # a number that is not one
        encode(event("INSERT", "x", 5, {"s": {"SS": []}})),  # an empty set
        encode(event("INSERT", "x", 5, {"s": {"X": "?"}})),  # an unknown type tag
        encode(event("INSERT", "x", 5, event_time_us=10**30)),  # a time past year 9999
        encode(event("INSERT", "x", 5, ttl=True)),  # a TTL expiry that is not a REMOVE
        encode(event("INSERT", "x", 5, new=None)),  # an INSERT without its image
        encode(event("INSERT", "x", 5, table="other-table")),  # another table's change
        json.dumps(event("INSERT", "x", 5, {"s": {"S": "\ud800"}})).encode(),  # a lone surrogate
        b'{"v":1,"op":"INSERT","pad":"' + b"x" * (17 * 1024 * 1024) + b'"}',  # oversize: 17 MiB
    ]
    mixed = [encode(good[0])] + bad_lines[:8] + [encode(good[1])] + bad_lines[8:] + [encode(good[2])]
    files.write(mixed)
    cut_lines = [encode(event("INSERT", f"t{i}", 10 + i, {"pad": {"S": "p" * 300}})) for i in range(20)]
    whole = gzip.compress(b"".join(x + b"\n" for x in cut_lines), mtime=0)
    files.write([], data=whole[: len(whole) * 2 // 3])  # truncated gzip: its complete lines count
    files.write([], data=b'{"v":1,"op":"INSERT"}\n')  # not gzip at all
    files.write([], data=b"")  # empty
    member = gzip.compress(encode(good[3]) + b"\n", mtime=0)
    files.write([], data=member + zlib.compress(b"junk"))  # a good member, then garbage
    argv = [str(DDBLAKE), "apply", "--table", TABLE, "--lake", str(lake), "--once"]
    applied = run(argv)
    assert applied.returncode == 0, applied.stderr
    assert "Traceback" not in applied.stderr

    items = dump(str(lake))
    cut = {k for k in items if k.startswith("t")}
    assert {"a", "b", "big", "c"} <= set(items), "good lines of a file with bad ones are applied"
    assert items["big"]["blob"] == big["blob"], "a 400 KB item comes through whole"
    assert 0 < len(cut) < 20 and cut == {f"t{i}" for i in range(len(cut))}, (
        "a cut file keeps its complete lines"
    )
    assert set(items) == {"a", "b", "big", "c"} | cut

    status = run([str(DDBLAKE), "status", "--lake", str(lake), "--format", "json"])
    assert status.returncode == 0, status.stderr
    (table_status,) = json.loads(status.stdout)["tables"]
    broken_files = 4  # truncated, not gzip, empty, garbage after a member
    assert table_status["quarantined"] == len(bad_lines) + broken_files, table_status

    storage = Storage.from_uri(str(lake))
    quarantined = [
        json.loads(line)
        for path in storage.list_files(f"errors/{TABLE}/apply")
        for line in gzip.decompress(storage.read(path) or b"").splitlines()
    ]
    assert len(quarantined) == len(bad_lines) + broken_files
    assert all(q["reason"] and q["file"].startswith(f"raw/{TABLE}/") for q in quarantined)
    reasons = " | ".join(q["reason"] for q in quarantined)
    for words in (
        "not JSON",
        "version",
        "unknown op",
        "no keys",
        "empty",
        "truncated",
        "not gzip",
        "UTF-8",
        "bytes",
    ):
        assert words in reasons, f"no reason mentions {words!r}: {reasons}"

    again = run(argv)  # nothing new: no double counting
    assert again.returncode == 0
    status = run([str(DDBLAKE), "status", "--lake", str(lake), "--format", "json"])
    assert json.loads(status.stdout)["tables"][0]["quarantined"] == len(bad_lines) + broken_files
    record("poison/cli", faults=len(bad_lines) + broken_files)


# --- the property: any mix of good and mutated lines --------------------------------------------------

VALUES: list[Any] = [None, True, 0, -1, 1.5, "", "x", [], {}, [1], {"S": "x"}, 10**40, "\ud800"]
BAD_AVS: list[Any] = [
    {"X": 1},
    {"N": "abc"},
    {"SS": []},
    {"S": 5},
    {"L": "x"},
    {"M": []},
    {},
    {"N": "1", "S": "1"},
    5,
]


def mutate(obj: dict[str, Any], rng: random.Random) -> bytes:
    """One random way of being wrong."""
    kind = rng.randrange(8)
    if kind == 0:
        obj[rng.choice(list(obj))] = rng.choice(VALUES)
    elif kind == 1:
        del obj[rng.choice(list(obj))]
    elif kind == 2 and isinstance(obj.get("new"), dict):
        obj["new"][rng.choice(["v", "w", "pk"])] = rng.choice(BAD_AVS)
    elif kind == 3:
        obj["keys"] = rng.choice(
            [{}, {"pk": rng.choice(BAD_AVS)}, {"a": {"S": "1"}, "b": {"S": "2"}, "c": {"S": "3"}}]
        )
    elif kind == 4:
        obj[rng.choice(["event_time_us", "ingested_us"])] = rng.choice([-1, 10**20, "1", 2.5])
    elif kind == 5:
        obj["op"] = rng.choice(["UPSERT", "insert", "", "REMOVE "])
    else:
        data = json.dumps(obj).encode()
        cut = rng.randrange(1, len(data))
        return data[:cut] if kind == 6 else data[:cut] + rng.randbytes(rng.randrange(1, 8)) + data[cut:]
    return json.dumps(obj).encode()


def expected_state(lines: list[bytes]) -> tuple[dict[str, Any], set[str]]:
    """What the lake must hold: newest version per key among the lines the reader accepts."""
    best: dict[str, tuple[str, ChangeEvent]] = {}
    ids: set[str] = set()
    for line in lines:
        try:
            ev = ChangeEvent.from_line(line)
        except BadRecordError:
            continue
        if ev.table != TABLE or (ev.op != "REMOVE" and ev.new_image is None) or ev.event_id in ids:
            continue
        ids.add(ev.event_id)
        key, version = key_string(ev.keys), version_of(ev)
        if key not in best or version > best[key][0]:
            best[key] = (version, ev)
    items = {json.loads(k)["pk"]["S"]: ev.new_image for k, (_, ev) in best.items() if ev.op != "REMOVE"}
    return items, ids


@pytest.mark.parametrize("trial", range(TRIALS))
def test_any_mix_of_good_and_mutated_lines_applies_the_good_ones(trial: int, tmp_path: Path) -> None:
    seed = trial_seed("poison", trial)
    rng = random.Random(seed)
    lake = tmp_path / "lake"
    files = RawFiles(lake)
    applier = Applier(ApplyConfig.build(table=TABLE, lake=LakeConfig.build(lake=str(lake)), once=True))
    everything: list[bytes] = []
    mutated = 0
    for _ in range(rng.randrange(2, 5)):
        lines = []
        for _ in range(rng.randrange(5, 40)):
            op = rng.choice(["INSERT", "MODIFY", "MODIFY", "REMOVE"])
            obj = event(op, f"k{rng.randrange(12)}", rng.randrange(0, 300))
            if rng.random() < 0.35:
                lines.append(mutate(obj, rng))
                mutated += 1
            else:
                lines.append(encode(obj))
        files.write(lines)
        everything.extend(lines)
        applier.run_once()  # must never raise
    items, ids = expected_state(everything)
    got = dump(str(lake))
    verdict = Verdict()
    for key in set(items) | set(got):
        if items.get(key) != got.get(key):
            verdict.mismatches += 1
            verdict.details.append(f"item {key}")
    verdict.lost, verdict.duplicated = (v := compare_history(history_ids(str(lake)), ids)).lost, v.duplicated
    verdict.mismatches += v.mismatches
    record("poison/property", faults=mutated, verdict=verdict, seed=seed)
    assert verdict.ok, str(verdict)
