"""Helpers shared by bench/apply.py and bench/freshness.py: items, raw files, child processes, RSS.

Nothing here is timed on its own; the benches time what they compare.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from random import Random
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from ddblake.lake.rawlog import GZIP_LEVEL, raw_file_path  # noqa: E402
from ddblake.lake.storage import Storage  # noqa: E402

_WORDS = ("alpha", "beta", "", "Zoë", "日本語", "emoji 🎉", "O'Brien", 'quote " and \\ slash')
_SOURCES = ("web", "app", "api")


def keys_of(i: int) -> dict[str, Any]:
    """The DynamoDB key of item ``i``: ``pk`` (S) and ``sk`` (S), as a table with a sort key has."""
    return {"pk": {"S": f"customer#{i:08d}"}, "sk": {"S": "profile"}}


def _mix(i: int, salt: int) -> int:
    """A cheap, well-spread 64-bit hash of ``i`` (values differ per row without a Random call)."""
    x = (i * 0x9E3779B97F4A7C15 + salt * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x ^= x >> 31
    x = (x * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 29)


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class Items:
    """Items of mixed types (S, N int / decimal / 38 digits, B, BOOL, NULL, SS, NS, M, L).

    The numbers are per row (hashed from the key index and revision); the other attributes come
    from a pool of pre-rendered random fragments, so a million lines render in seconds rather than
    minutes. ``rev`` changes the values, as an update would; every attribute keeps its type, so
    batches never force a retype of the table (that is a different, rarer path).
    """

    POOL = 4096

    def __init__(self, seed: int = 7) -> None:
        rnd = Random(seed)
        self.fragments: list[str] = []
        for _ in range(self.POOL):
            attrs: dict[str, Any] = {
                "name": {"S": f"{rnd.choice(_WORDS)}{rnd.randrange(1000)}"},
                "active": {"BOOL": rnd.random() < 0.5},
                "created": {"S": f"2025-{rnd.randrange(1, 13):02d}-{rnd.randrange(1, 29):02d}T10:00:00Z"},
                "blob": {"B": base64.b64encode(rnd.randbytes(rnd.randrange(1, 24))).decode()},
                "tags": {"SS": sorted({f"t{rnd.randrange(20)}" for _ in range(rnd.randrange(1, 4))})},
                "scores": {"NS": sorted({str(rnd.randrange(100)) for _ in range(rnd.randrange(1, 4))})},
                "meta": {
                    "M": {"source": {"S": rnd.choice(_SOURCES)}, "version": {"N": str(rnd.randrange(100))}}
                },
                "hist": {"L": [{"N": str(rnd.randrange(1000))} for _ in range(rnd.randrange(0, 4))]},
            }
            roll = rnd.random()
            if roll < 0.3:
                attrs["note"] = {"NULL": True}
            elif roll < 0.6:
                attrs["note"] = {"S": rnd.choice(_WORDS)}
            self.fragments.append(_compact(attrs)[1:-1])

    def image(self, i: int, rev: int = 0) -> str:
        """Item ``i`` at revision ``rev`` as compact DynamoDB JSON text."""
        h = _mix(i, rev)
        price = f"{h % 1_000_000}.{(h >> 20) % 100:02d}"
        qty = (h >> 27) % 1_001_000 - 1000
        big = 10**37 + (h * 0x2545F4914F6CDD1D) % (9 * 10**37)
        return (
            f'{{"pk":{{"S":"customer#{i:08d}"}},"sk":{{"S":"profile"}},'
            f'"price":{{"N":"{price}"}},"qty":{{"N":"{qty}"}},"big":{{"N":"{big}"}},'
            f'"rev":{{"N":"{rev}"}},{self.fragments[(h >> 40) % self.POOL]}}}'
        )


def keys_json(i: int) -> str:
    """``keys_of(i)`` as compact JSON text."""
    return f'{{"pk":{{"S":"customer#{i:08d}"}},"sk":{{"S":"profile"}}}}'


def raw_line(
    table: str,
    op: str,
    i: int,
    image: str | None,
    event_id: str,
    time_us: int,
    *,
    seq: str | None = None,
    source: str = "streams",
    old: str | None = None,
) -> bytes:
    """One raw-log line (the fields of ``ChangeEvent.to_dict``) built from pre-rendered JSON text."""
    seq_json = "null" if seq is None else f'"{seq}"'
    return (
        f'{{"v":1,"op":"{op}","table":"{table}","keys":{keys_json(i)},"new":{image or "null"},'
        f'"old":{old or "null"},"event_id":"{event_id}","event_time_us":{time_us},"seq":{seq_json},'
        f'"source":"{source}","ttl":false,"ingested_us":{time_us}}}\n'
    ).encode()


def write_raw(
    storage: Storage, table: str, lines: Iterable[bytes], per_file: int, *, level: int = GZIP_LEVEL
) -> list[str]:
    """Write raw-log lines as gzip files of ``per_file`` lines under ``raw/<table>/YYYY/MM/DD/HH/``.

    The same layout and names as :class:`RawLogWriter` (capture's writer), in write order; the
    gzip level is a parameter only so that a bench's setup can spend less time compressing.
    """
    paths: list[str] = []
    last_us = 0
    buf: list[bytes] = []

    def flush() -> None:
        nonlocal last_us
        last_us = max(int(time.time() * 1_000_000), last_us + 1)
        path = raw_file_path(table, last_us)
        storage.write_atomic(path, gzip.compress(b"".join(buf), compresslevel=level, mtime=0))
        paths.append(path)
        buf.clear()

    for line in lines:
        buf.append(line)
        if len(buf) >= per_file:
            flush()
    if buf:
        flush()
    return paths


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MB.

    Linux's ``VmHWM`` (the high-water mark of this process image's memory). ``ru_maxrss`` is not
    used where VmHWM exists: after fork+exec it still holds the *parent's* RSS at fork time, so a
    small child of a big parent would report the parent's size.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(args: Sequence[str], timeout: float, *, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``python <args>`` in a fresh process; its last stdout line is a JSON object.

    Never raises for the child's failure: a crash (its signal named), a timeout or a non-zero
    exit come back as ``{"ok": False, "outcome": ...}`` so a bench can report it and go on.
    """
    cmd = [sys.executable, *args]
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return {"ok": False, "outcome": f"timeout after {timeout:.0f} s", "wall_s": timeout}
    wall = time.perf_counter() - started
    if proc.returncode < 0:
        name = signal.Signals(-proc.returncode).name
        return {"ok": False, "outcome": f"killed by {name}", "wall_s": wall}
    if proc.returncode != 0:
        tail = (err or "").strip().splitlines()[-1:] or ["(no stderr)"]
        return {"ok": False, "outcome": f"exit {proc.returncode}: {tail[0][:300]}", "wall_s": wall}
    lines = out.strip().splitlines()
    if not lines:
        return {"ok": False, "outcome": "no output", "wall_s": wall}
    result: dict[str, Any] = json.loads(lines[-1])
    result.setdefault("ok", True)
    result["wall_s"] = wall
    return result


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


T0_US = 1_764_316_800_000_000  # 2025-11-28T08:00:00Z: the event times of the per-batch benches


def write_changes(
    lake: Path,
    table: str,
    images: Sequence[dict[str, Any]],
    *,
    batch: int,
    first_us: int,
    step_us: int = 1000,
    op: str = "INSERT",
    per_file: int = 100_000,
) -> None:
    """``images`` as one batch's change events in the raw log (IDs ``e<batch>-<i>``, keyed by
    ``pk``, event times from ``first_us`` by ``step_us``), ``per_file`` events to a raw file."""
    from ddblake.changes.model import ChangeEvent
    from ddblake.lake.rawlog import RawLogWriter

    storage = Storage.from_uri(str(lake))
    for start in range(0, len(images), per_file):
        writer = RawLogWriter(storage, table, buffer_bytes=1 << 30, buffer_seconds=3600)
        for i, image in enumerate(images[start : start + per_file], start):
            event = ChangeEvent(
                op=op,  # type: ignore[arg-type]
                table=table,
                keys={"pk": image["pk"]},
                new_image=image,
                old_image=None,
                event_id=f"e{batch}-{i}",
                event_time_us=first_us + i * step_us,
                sequence=None,
                source="streams",
                ttl=False,
                ingested_us=T0_US,
            )
            writer.add(event.to_line())
        writer.flush()


def run_side(name: str, argv: Sequence[str], timeout: float = 3600) -> dict[str, Any]:
    """One side of a bench in a fresh process (:func:`run_child`), printed as it ends."""
    side = run_child(argv, timeout=timeout)
    side["wall_s"] = round(side["wall_s"], 1)
    print(f"{name}: {json.dumps(side)}", flush=True)
    return side


def side_ratio(ours: dict[str, Any], theirs: dict[str, Any], key: str) -> float | None:
    """``theirs[key] / ours[key]`` to two places (above 1: ddblake is ahead); None when a side failed."""
    if not (ours.get("ok") and theirs.get("ok")):
        return None
    return round(theirs[key] / ours[key], 2)


def built_sides(
    names: Sequence[str], build: Callable[[str], list[str]], run: Callable[[str], list[str]]
) -> dict[str, dict[str, Any]]:
    """Each side's lake built by ``build(name)``'s child, then measured by ``run(name)``'s (argv
    after the interpreter): each side its own lake, since a copied lake is refused."""
    sides = {}
    for name in names:
        built = run_child(build(name), timeout=3600)
        print(f"built for {name}: {json.dumps(built)}", flush=True)
        sides[name] = run_side(name, run(name))
    return sides


def same_digest(ours: dict[str, Any], theirs: dict[str, Any]) -> bool:
    """Whether both sides ended with the same rows (their count and SHA-256 digest)."""
    ok = bool(ours.get("ok") and theirs.get("ok"))
    return ok and (ours["rows"], ours["digest"]) == (theirs["rows"], theirs["digest"])
