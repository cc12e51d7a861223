"""Helpers shared by bench/apply.py and bench/freshness.py: items, raw files, child processes, RSS.

Nothing here is timed on its own; the benches time what they compare.
"""

from __future__ import annotations

import base64
import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from random import Random
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from ddblake.changes.model import ChangeEvent  # noqa: E402
from ddblake.lake.rawlog import RawLogWriter  # noqa: E402
from ddblake.lake.storage import Storage  # noqa: E402

_WORDS = ("alpha", "beta", "", "Zoë", "日本語", "emoji 🎉", "O'Brien", 'quote " and \\ slash')
_SOURCES = ("web", "app", "api")


def keys_of(i: int) -> dict[str, Any]:
    """The DynamoDB key of item ``i``: ``pk`` (S) and ``sk`` (S), as a table with a sort key has."""
    return {"pk": {"S": f"customer#{i:08d}"}, "sk": {"S": "profile"}}


def make_item(rnd: Random, i: int, rev: int = 0) -> dict[str, Any]:
    """An item of mixed types (S, N int/decimal/38 digits, B, BOOL, NULL, SS, NS, M, L) for key ``i``.

    ``rev`` changes the values, as an update would; every attribute keeps its type, so batches
    never force a retype of the table (that is a different, rarer path).
    """
    item: dict[str, Any] = {
        **keys_of(i),
        "name": {"S": f"{rnd.choice(_WORDS)}{rnd.randrange(1000)}"},
        "price": {"N": f"{rnd.randrange(10**6)}.{rnd.randrange(100):02d}"},
        "qty": {"N": str(rnd.randrange(-1000, 10**6))},
        "big": {"N": str(rnd.randrange(10**37, 10**38))},
        "rev": {"N": str(rev)},
        "active": {"BOOL": rnd.random() < 0.5},
        "created": {"S": f"2025-{rnd.randrange(1, 13):02d}-{rnd.randrange(1, 29):02d}T10:00:00Z"},
        "blob": {"B": base64.b64encode(rnd.randbytes(rnd.randrange(1, 24))).decode()},
        "tags": {"SS": sorted({f"t{rnd.randrange(20)}" for _ in range(rnd.randrange(1, 4))})},
        "scores": {"NS": sorted({str(rnd.randrange(100)) for _ in range(rnd.randrange(1, 4))})},
        "meta": {
            "M": {
                "source": {"S": rnd.choice(_SOURCES)},
                "version": {"N": str(rnd.randrange(100))},
            }
        },
        "hist": {"L": [{"N": str(rnd.randrange(1000))} for _ in range(rnd.randrange(0, 4))]},
    }
    roll = rnd.random()
    if roll < 0.3:
        item["note"] = {"NULL": True}
    elif roll < 0.6:
        item["note"] = {"S": rnd.choice(_WORDS)}
    return item


def write_raw(
    storage: Storage, table: str, events: Iterable[ChangeEvent | bytes], per_file: int
) -> list[str]:
    """Write events (or ready raw lines) as raw files of ``per_file`` lines, as capture would."""
    writer = RawLogWriter(storage, table, buffer_bytes=1 << 40, buffer_seconds=3600)
    paths: list[str] = []
    for ev in events:
        writer.add(ev if isinstance(ev, bytes) else ev.to_line())
        if writer.buffered_records >= per_file:
            written = writer.flush()
            assert written is not None
            paths.append(written.path)
    written = writer.flush()
    if written is not None:
        paths.append(written.path)
    return paths


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MB (Linux reports KiB)."""
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
    last = out.strip().splitlines()[-1]
    result: dict[str, Any] = json.loads(last)
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
