"""``make verify``: the fault suite at full strength, and its figures in one line.

Runs tests/faults (and the older crash, gap and fuzz tests it builds on) with pytest at the strength
given here — by default 13 trials per crash stage (65 crash trials: capture, load, export load,
apply, sync), 20 random workloads, 13 trials of every stream fault, poison and concurrency kind,
3 stream-gap re-bootstraps and 500 examples per fuzzed property. Each trial appends its figures to a ledger
(``DDBLAKE_VERIFY_LEDGER``); this adds them up and ends with exactly one line::

    verify: trials=N faults=F mismatches=M lost=L duplicated=D

``trials`` counts randomised trials (crash trials, workloads, fault plans, races; not fuzz
examples, shown above it), ``faults`` the faults injected into them (kills, duplicated / reordered /
late / garbage records, expired iterators, shard splits, throttles and 5xx, poison lines,
commit races), and the last three what the oracles found: items where the lake differs from the
table, changes missing from the history, changes in it more than once.

Exit status 0 only when pytest passed, the oracles found nothing and the minimum strength (50 crash
trials whose process was killed mid-run, 20 workloads) was reached — or lowered on purpose with
``--quick``.

Usage: ``python tools/verify.py [--trials N] [--workloads N] [--gap-trials N] [--examples N]
[--seed S] [--workers W] [--quick] [--ledger PATH]``. The seed makes a run repeatable: the same seed
gives the same workloads, kill plans and fault plans (kill *instants* still depend on timing).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SUITE = ["tests/faults"]
ALSO = [  # the earlier crash, gap, apply and fuzz tests the suite extends: they must pass too
    "tests/functional/test_capture_crash.py",
    "tests/functional/test_capture_gaps.py",
    "tests/functional/test_capture_stubbed.py",
    "tests/functional/test_sync_workload.py",
    "tests/lake/test_apply.py",
    "tests/unit/test_changes_fuzz.py",
    "tests/unit/test_rawlog.py",
]
# capture, load, apply, sync (tests/faults/test_crash.py) and export-load (test_export_crash.py)
CRASH_STAGES = 5
MIN_CRASH_TRIALS = 50
MIN_WORKLOADS = 20
FIGURES = ("trials", "faults", "mismatches", "lost", "duplicated")


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=13, help="trials per crash stage and fault kind (13)")
    p.add_argument("--workloads", type=int, default=20, help="random workloads (20)")
    p.add_argument("--gap-trials", type=int, default=3, help="stream gap + re-bootstrap runs (3)")
    p.add_argument("--examples", type=int, default=500, help="hypothesis examples per property (500)")
    p.add_argument("--seed", type=int, default=None, help="base seed (default: the suite's fixed seed)")
    workers = int(os.environ.get("PYTEST_WORKERS", "2"))
    p.add_argument("--workers", type=int, default=workers, help="pytest -n (PYTEST_WORKERS, 2)")
    p.add_argument("--quick", action="store_true", help="accept less than the minimum strength")
    p.add_argument("--ledger", default=None, help="keep the per-trial ledger (JSON lines) here")
    p.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    return p.parse_args(argv)


def summarise(ledger: Path) -> tuple[dict[str, int], dict[str, dict[str, int]], int]:
    """Totals, totals per test, and the crash trials whose process was killed mid-run at least once."""
    killed = 0
    totals = dict.fromkeys((*FIGURES, "examples"), 0)
    by_test: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys((*FIGURES, "examples"), 0))
    if ledger.exists():
        for line in ledger.read_text().splitlines():
            if not line.strip():
                continue
            entry = json.loads(line)
            killed += int(entry["test"].startswith("crash/") and entry.get("faults", 0) > 0)
            for name in totals:
                value = int(entry.get(name, 0))
                totals[name] += value
                by_test[entry["test"]][name] += value
    return totals, by_test, killed


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    with tempfile.TemporaryDirectory(prefix="ddblake-verify-") as tmp:
        ledger = Path(args.ledger) if args.ledger else Path(tmp) / "ledger.jsonl"
        if ledger.exists():
            ledger.unlink()
        env = {
            **os.environ,
            "DDBLAKE_VERIFY_TRIALS": str(args.trials),
            "DDBLAKE_VERIFY_WORKLOADS": str(args.workloads),
            "DDBLAKE_VERIFY_GAP_TRIALS": str(args.gap_trials),
            "DDBLAKE_VERIFY_EXAMPLES": str(args.examples),
            "DDBLAKE_VERIFY_LEDGER": str(ledger),
        }
        if args.seed is not None:
            env["DDBLAKE_VERIFY_SEED"] = str(args.seed)
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=15"]
        if args.workers > 1:
            command += ["-n", str(args.workers)]
        command += [*SUITE, *ALSO, *args.pytest_args]
        print("verify:", " ".join(command[2:]), flush=True)
        began = time.monotonic()
        code = subprocess.run(command, cwd=REPO, env=env, check=False).returncode  # noqa: S603 - our pytest
        minutes = (time.monotonic() - began) / 60
        totals, by_test, killed_crash_trials = summarise(ledger)

    print(f"\n{'test':<32}" + "".join(f"{n:>12}" for n in (*FIGURES, "examples")))
    for test in sorted(by_test):
        print(f"{test:<32}" + "".join(f"{by_test[test][n]:>12}" for n in (*FIGURES, "examples")))
    crash = killed_crash_trials
    workloads = by_test.get("workload", {}).get("trials", 0)
    print(
        f"\n{crash} crash trials (killed mid-run at least once), {workloads} random workloads, "
        f"{totals['examples']} fuzz examples; pytest exit {code}; {minutes:.1f} min",
        flush=True,
    )
    problems = []
    if code != 0:
        problems.append(f"pytest failed (exit {code})")
    if totals["mismatches"] or totals["lost"] or totals["duplicated"]:
        problems.append("the oracles found differences")
    if not args.quick and (crash < MIN_CRASH_TRIALS or workloads < MIN_WORKLOADS):
        problems.append(
            f"below full strength ({crash} crash trials < {MIN_CRASH_TRIALS} or {workloads} workloads "
            f"< {MIN_WORKLOADS}); raise --trials/--workloads or pass --quick"
        )
    for problem in problems:
        print(f"verify: FAILED: {problem}", flush=True)
    print("verify: " + " ".join(f"{name}={totals[name]}" for name in FIGURES), flush=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
