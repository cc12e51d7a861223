"""The fault suite's shared machinery: strength knobs, the ledger, the oracle, real subprocesses.

* **Strength.** Every randomised test reads its trial count from the environment, so ``make test``
  runs a small slice and ``tools/verify.py`` the whole suite at full strength with the same code:
  ``DDBLAKE_VERIFY_TRIALS`` (trials per crash stage and per fault kind), ``DDBLAKE_VERIFY_WORKLOADS``
  (random workloads), ``DDBLAKE_VERIFY_GAP_TRIALS`` (stream gap + re-bootstrap runs, which wait for
  the clock), ``DDBLAKE_VERIFY_EXAMPLES`` (hypothesis examples per property), ``DDBLAKE_VERIFY_SEED``
  (base seed: the same seed gives the same workloads, kill plans and fault plans).
* **Ledger.** Each trial reports what it did — trials, faults injected, and what the oracle found
  (mismatched items, lost events, duplicated events) — as one JSON line appended to the file named
  by ``DDBLAKE_VERIFY_LEDGER``; ``tools/verify.py`` adds them up. Without the variable nothing is
  written. The tests assert zero losses themselves; the ledger is for the figures.
* **Oracle.** ``ddblake dump`` against a consistent Scan (every item, every byte), and the history
  against the stream: every stream event ID exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ddblake.aws.clients import DynamoClients
from ddblake.lake.catalog import LakeConfig, open_catalog
from ddblake.lake.report import dump_items
from ddblake.names import changes_identifier

REPO = Path(__file__).resolve().parents[2]
BIN = REPO / ".venv" / "bin"
DDBLAKE = BIN / "ddblake"
PYTHON = BIN / "python"
DEFAULT_SEED = 20261128


def strength(name: str, default: int) -> int:
    """``DDBLAKE_VERIFY_<NAME>`` as a positive int, else ``default``."""
    raw = os.environ.get(f"DDBLAKE_VERIFY_{name.upper()}", "").strip()
    return max(1, int(raw)) if raw else default


def base_seed() -> int:
    """The suite's base seed; each trial derives its own from it and its index."""
    raw = os.environ.get("DDBLAKE_VERIFY_SEED", "").strip()
    return int(raw) if raw else DEFAULT_SEED


def trial_seed(stage: str, index: int) -> int:
    """A seed per (stage, trial), stable across runs and processes (no hash randomisation)."""
    return base_seed() * 1_000_003 + sum(ord(c) * 31**i for i, c in enumerate(stage)) % 1_000_000 + index


# --- the ledger -------------------------------------------------------------------------------------


@dataclass
class Verdict:
    """What the oracle found in one comparison."""

    mismatches: int = 0
    lost: int = 0
    duplicated: int = 0
    details: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.mismatches or self.lost or self.duplicated)

    def __str__(self) -> str:
        shown = "; ".join(self.details[:8])
        return f"mismatches={self.mismatches} lost={self.lost} duplicated={self.duplicated}: {shown}"


def record(
    test: str, *, trials: int = 1, faults: int = 0, verdict: Verdict | None = None, **extra: Any
) -> None:
    """Append one trial's figures to the verify ledger (when ``DDBLAKE_VERIFY_LEDGER`` is set)."""
    path = os.environ.get("DDBLAKE_VERIFY_LEDGER")
    if not path:
        return
    v = verdict or Verdict()
    line = json.dumps(
        {
            "test": test,
            "trials": trials,
            "faults": faults,
            "mismatches": v.mismatches,
            "lost": v.lost,
            "duplicated": v.duplicated,
            **extra,
        }
    )
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())  # one small O_APPEND write: lines of workers never mix
    finally:
        os.close(fd)


# --- the oracle -------------------------------------------------------------------------------------


def item_key(item: dict[str, Any]) -> str:
    return f"{item['pk']['S']}/{item['sk']['S']}"


def dump_lake(lake: str, table: str) -> dict[str, dict[str, Any]]:
    """``dump`` of the lake by ``pk/sk``, sets order-free (in-process; same code as the CLI)."""
    from workload import dump_to_items

    config = LakeConfig.build(lake=lake)
    catalog = open_catalog(config, config.storage())
    return dump_to_items(list(dump_items(catalog, config.namespace, table)))


def history_rows(lake: str, table: str, columns: tuple[str, ...] = ("event_id",)) -> list[dict[str, Any]]:
    """Rows of the table's change history (empty before the first apply)."""
    from pyiceberg.exceptions import NoSuchTableError

    config = LakeConfig.build(lake=lake)
    catalog = open_catalog(config, config.storage())
    try:
        hist = catalog.load_table(f"{config.namespace}.{changes_identifier(table)}")
    except NoSuchTableError:
        return []
    if hist.current_snapshot() is None:
        return []
    rows: list[dict[str, Any]] = hist.scan(selected_fields=columns).to_arrow().to_pylist()
    return rows


def compare_items(expected: dict[str, dict[str, Any]], dumped: dict[str, dict[str, Any]]) -> Verdict:
    """Items that differ, are missing from the lake, or are in the lake but not the source."""
    v = Verdict()
    for key in sorted(set(expected) | set(dumped)):
        if expected.get(key) != dumped.get(key):
            v.mismatches += 1
            what = "missing" if key not in dumped else "extra" if key not in expected else "differs"
            v.details.append(f"item {key} {what}")
    return v


def compare_history(
    history_ids: Iterable[str], expected_ids: Iterable[str], *, exact: bool = True
) -> Verdict:
    """Every expected event in the history exactly once (and, ``exact``, nothing else)."""
    v = Verdict()
    seen = Counter(history_ids)
    expected = set(expected_ids)
    lost = expected - set(seen)
    v.lost = len(lost)
    v.duplicated = sum(n - 1 for n in seen.values() if n > 1)
    if lost:
        v.details.append(f"lost events {sorted(lost)[:3]}...")
    if v.duplicated:
        v.details.append(f"duplicated events {[e for e, n in seen.items() if n > 1][:3]}")
    if exact:
        extra = set(seen) - expected
        if extra:
            v.mismatches += len(extra)
            v.details.append(f"history holds {len(extra)} unknown event(s) {sorted(extra)[:3]}")
    return v


def merge(*verdicts: Verdict) -> Verdict:
    out = Verdict()
    for v in verdicts:
        out.mismatches += v.mismatches
        out.lost += v.lost
        out.duplicated += v.duplicated
        out.details.extend(v.details)
    return out


def check_lake(
    clients: DynamoClients,
    table: str,
    lake: str,
    *,
    stream_ids: Iterable[str] | None = None,
    also_ids: Iterable[str] = (),
    other_prefixes: tuple[str, ...] = ("load-", "rebootstrap-", "absent-", "export-"),
) -> Verdict:
    """The whole oracle: dump equals a Scan, and the history holds each stream event exactly once.

    Args:
        stream_ids: the events the history must hold; by default everything the stream holds now.
        also_ids: further events that must be there (injected ones).
        other_prefixes: event IDs of loads, re-bootstraps and reconciles, not stream events; they may
            appear in the history but must not appear twice.
    """
    from capture_helpers import stream_event_ids
    from workload import scan_items

    items = compare_items(scan_items(clients, table), dump_lake(lake, table))
    ids = [r["event_id"] for r in history_rows(lake, table)]
    expected = set(stream_event_ids(clients, table) if stream_ids is None else stream_ids) | set(also_ids)
    stream_part = [i for i in ids if not i.startswith(other_prefixes)]
    load_part = [i for i in ids if i.startswith(other_prefixes)]
    history = compare_history(stream_part, expected)
    loads = compare_history(load_part, set(load_part))
    return merge(items, history, loads)


# --- processes --------------------------------------------------------------------------------------


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0, every: float = 0.02) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds (never a blind sleep)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def quiet_env(**extra: str) -> dict[str, str]:
    """The environment for a ddblake subprocess: this one, warnings only, plus ``extra``."""
    return {**os.environ, "DDBLAKE_LOG_LEVEL": "WARNING", **extra}


def load_argv() -> list[str]:
    """How to run ``load``: ``ddblake load``, as a person runs it."""
    return [str(DDBLAKE), "load"]


def start(argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a ddblake process; stderr is kept for the verdict, stdout dropped."""
    return subprocess.Popen(
        argv, cwd=REPO, env=env or quiet_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def kill(proc: subprocess.Popen[bytes]) -> tuple[bool, str]:
    """SIGKILL (if still running); returns whether it was killed mid-run and its stderr."""
    was_running = proc.poll() is None
    if was_running:
        proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    return was_running and proc.returncode == -signal.SIGKILL, err.decode("utf-8", "replace")


def run(
    argv: list[str], env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run a ddblake command to its end and capture its output."""
    return subprocess.run(
        argv, cwd=REPO, env=env or quiet_env(), capture_output=True, text=True, timeout=timeout, check=False
    )


def no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr[-3000:]


def python() -> str:
    return sys.executable


def kill_at_random_instant(
    proc: subprocess.Popen[bytes],
    rng: Any,
    *,
    counter: Callable[[], int],
    delay: tuple[float, float],
    steps: tuple[int, int] = (1, 4),
    cap: float = 20.0,
) -> tuple[bool, str, str]:
    """SIGKILL ``proc`` at an instant the seeded ``rng`` picks; returns (killed mid-run, plan, stderr).

    Two plans, chosen at random: after a random delay (the delay only picks the instant), or as soon
    as ``counter()`` (files the process wrote: raw files, applied-file records...) has grown by a
    random step — which lands the kill right after a write, before whatever follows it. A counter
    that stops growing (the process caught up) is given ``cap`` seconds, then the kill happens anyway.
    """
    if rng.random() < 0.5:
        plan = "delay"
        time.sleep(rng.uniform(*delay))  # choosing the instant, not waiting for a condition
    else:
        plan = "files"
        target = counter() + rng.randrange(*steps)
        deadline = time.monotonic() + cap
        while counter() < target and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)  # polling the condition, bounded by the deadline
    killed, err = kill(proc)
    return killed, plan, err


class LambdaContext:
    """What Powertools reads from a Lambda context (for calling the transform ``handler``)."""

    function_name = "ddblake-firehose-transform"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:111111111111:function:ddblake-firehose-transform"
    memory_limit_in_mb = 512
    aws_request_id = "00000000-0000-4000-8000-000000000000"
    log_group_name = "/aws/lambda/ddblake-firehose-transform"
    log_stream_name = "2026/11/28/[$LATEST]faults"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000
