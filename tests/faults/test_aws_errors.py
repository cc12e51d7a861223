"""Transient AWS errors are retried with backoff and jitter; terminal ones stop at once, one line.

Real ``ddblake`` processes talk to DynamoDB Local through :class:`FlakyProxy`, which answers chosen
requests with throttling, 5xx or access denied as AWS would. Missing tables are DynamoDB Local's
own answer; bad configuration needs no AWS at all.
"""

from __future__ import annotations

import os
import random
import signal
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from capture_helpers import stream_event_ids
from faultlib import (
    DDBLAKE,
    check_lake,
    compare_history,
    load_argv,
    no_traceback,
    quiet_env,
    record,
    run,
    start,
    trial_seed,
    wait_for,
)
from flaky_proxy import TRANSIENT, Call, Fault, FlakyProxy, access_denied
from workload import Workload

from ddblake.aws.clients import DynamoClients
from ddblake.changes.model import ChangeEvent
from ddblake.lake.rawlog import iter_raw_files
from ddblake.lake.storage import Storage

pytestmark = [pytest.mark.faults, pytest.mark.functional]

ACCOUNT = "444455556666"
PRINCIPAL = "arn:aws:sts::111122223333:assumed-role/lake-reader/ddblake"


def transient_plan(rng: random.Random, rate: float) -> Callable[[Call], Fault | None]:
    """Throttling or a 5xx on a share of attempts — never the last one botocore will make."""

    def plan(call: Call) -> Fault | None:
        if call.attempt < call.max_attempts and rng.random() < rate:
            return rng.choice(TRANSIENT)
        return None

    return plan


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    assert lines[0].startswith("ddblake: error: ") and "Traceback" not in stderr
    return lines[0]


def raw_event_ids(lake: str, table: str) -> list[str]:
    return [
        ChangeEvent.from_line(line).event_id
        for content in iter_raw_files(Storage.from_uri(lake), table)
        for line in content.lines
    ]


@pytest.mark.long(35)
def test_throttling_and_5xx_are_retried_with_backoff_and_jitter(
    clients: DynamoClients,
    make_table: Callable[..., str],
    table_name: str,
    dynamodb_local_endpoint: str,
    tmp_path: Path,
) -> None:
    seed = trial_seed("throttle", 0)
    rng = random.Random(seed)
    table = make_table(table_name)
    lake = str(tmp_path / "lake")
    work = Workload(clients, table, seed, keys=30, hot_keys=2)
    with FlakyProxy(dynamodb_local_endpoint, transient_plan(rng, 0.5)) as proxy:
        sync = [str(DDBLAKE), "sync", "--table", table, "--lake", lake, "--endpoint-url", proxy.endpoint]
        wanted = {"ThrottlingException", "InternalServerError"}
        for _ in range(20):  # rounds until enough errors, of both kinds at least, were injected
            if len(proxy.injected()) >= 12 and {c.injected for c in proxy.injected()} >= wanted:
                break
            work.run(rng.randrange(20, 60))
            done = run([*sync, "--once", "--buffer-seconds", "0.05"])
            assert done.returncode == 0, done.stderr
            no_traceback(done.stderr)
        injected = proxy.injected()
        pauses = proxy.retry_pauses()
    assert len(injected) >= 8, "the plan injected errors"
    assert {c.injected for c in injected} >= wanted, "a throttle and a server error were both injected"
    # every injected error was followed by a retry, after a pause; the pauses differ (jitter)
    assert len(pauses) >= len(injected)
    assert all(0 <= p < 25 for p in pauses)
    assert statistics.pstdev(pauses) > 0.001, f"retries at fixed intervals (no jitter): {pauses}"
    verdict = check_lake(clients, table, lake)
    record("aws/transient", faults=len(injected), verdict=verdict, seed=seed)
    assert verdict.ok, str(verdict)


@pytest.mark.long(15)
def test_capture_rides_out_an_outage_longer_than_botocores_retries(
    clients: DynamoClients,
    make_table: Callable[..., str],
    table_name: str,
    dynamodb_local_endpoint: str,
    tmp_path: Path,
) -> None:
    """Every attempt fails for a while: continuous capture backs off (with jitter) and catches up;
    ``--once`` gives up with one line instead."""
    table = make_table(table_name)
    lake = str(tmp_path / "lake")
    work = Workload(clients, table, 3, keys=10)
    outage = threading.Event()
    rng = random.Random(trial_seed("outage", 0))

    def plan(call: Call) -> Fault | None:
        return rng.choice(TRANSIENT) if outage.is_set() else None

    with FlakyProxy(dynamodb_local_endpoint, plan) as proxy:
        argv = [str(DDBLAKE), "capture", "--table", table, "--lake", lake, "--endpoint-url", proxy.endpoint]
        outage.set()
        once = run([*argv, "--once"])
        line = one_error_line(once.stderr)
        assert once.returncode == 1 and table in line and "after retries" in line, line
        outage.clear()

        proc = start([*argv, "--buffer-seconds", "0.1"], quiet_env())
        work.run(10)
        wait_for(lambda: len(raw_event_ids(lake, table)) >= 10, "capture to start", timeout=60)
        outage.set()
        failed_before = len(proxy.injected())
        work.run(15)  # changes made while DynamoDB "fails"
        wait_for(lambda: len(proxy.injected()) >= failed_before + 8, "capture to hit the outage", timeout=60)
        outage.clear()
        wait_for(
            lambda: set(raw_event_ids(lake, table)) >= set(stream_event_ids(clients, table)),
            "capture to catch up after the outage",
            timeout=90,
        )
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        stderr = err.decode()
    assert proc.returncode == 0, stderr
    assert "retrying in" in stderr, "capture retried on its own, after botocore's attempts"
    verdict = compare_history(raw_event_ids(lake, table), stream_event_ids(clients, table), exact=True)
    verdict.duplicated = 0  # capture may repeat its unflushed tail; apply removes repeats
    record("aws/outage", faults=len(proxy.injected()), verdict=verdict)
    assert verdict.ok, str(verdict)


@pytest.mark.parametrize("command", ["capture", "sync", "load"])
def test_access_denied_stops_at_once_with_one_line(
    command: str,
    make_table: Callable[..., str],
    table_name: str,
    dynamodb_local_endpoint: str,
    tmp_path: Path,
) -> None:
    table = make_table(table_name)
    lake = str(tmp_path / "lake")

    def deny(call: Call) -> Fault:
        return access_denied(call.target.rsplit(".", 1)[-1], table, ACCOUNT, PRINCIPAL)

    with FlakyProxy(dynamodb_local_endpoint, deny) as proxy:
        common = ["--table", table, "--lake", lake, "--endpoint-url", proxy.endpoint]
        argv = {
            "capture": [str(DDBLAKE), "capture", *common, "--once"],
            "sync": [str(DDBLAKE), "sync", *common, "--once"],
            "load": [*load_argv(), *common],
        }[command]
        began = time.monotonic()
        done = run(argv)
        took = time.monotonic() - began
        calls = list(proxy.calls)
    assert done.returncode == 1, done.stderr
    line = one_error_line(done.stderr)
    assert "access denied" in line.lower() and table in line and ACCOUNT in line, line
    assert "111122223333" in line or "lake-reader" in line, f"names the principal: {line}"
    assert took < 20, f"stopped at once, not after {took:.0f} s of retries"
    assert all(c.attempt == 1 for c in calls), "access denied is never retried"
    record("aws/terminal", faults=1)


@pytest.mark.parametrize("command", ["capture", "sync", "load"])
def test_missing_table_stops_at_once_with_one_line(
    command: str, dynamodb_local_endpoint: str, tmp_path: Path
) -> None:
    table = "no-such-table-anywhere"
    common = ["--table", table, "--lake", str(tmp_path / "lake"), "--endpoint-url", dynamodb_local_endpoint]
    argv = {
        "capture": [str(DDBLAKE), "capture", *common, "--once"],
        "sync": [str(DDBLAKE), "sync", *common, "--once"],
        "load": [*load_argv(), *common],
    }[command]
    began = time.monotonic()
    done = run(argv)
    assert done.returncode == 1
    line = one_error_line(done.stderr)
    assert table in line and ("not found" in line or "does not exist" in line), line
    assert dynamodb_local_endpoint in line, f"names where it looked: {line}"
    assert time.monotonic() - began < 20
    record("aws/terminal", faults=1)


NO_AWS = {
    "AWS_CONFIG_FILE": "/nonexistent/ddblake-faults",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/ddblake-faults",
    "AWS_REGION": "",
    "AWS_DEFAULT_REGION": "",
    "AWS_ENDPOINT_URL": "",
    "AWS_ENDPOINT_URL_DYNAMODB": "",
    "AWS_PROFILE": "",
}


@pytest.mark.parametrize(
    ("args", "env", "code", "names"),
    [
        (["capture", "--table", "t-x", "--lake", "{lake}", "--once"], NO_AWS, 2, "AWS_REGION"),
        (["sync", "--table", "t-x", "--lake", "{lake}", "--once"], NO_AWS, 2, "AWS_REGION"),
        (
            ["capture", "--table", "t-x", "--lake", "{lake}", "--endpoint-url", "{ep}"],
            {"DDBLAKE_BUFFER_SECONDS": "soon"},
            2,
            "DDBLAKE_BUFFER_SECONDS",
        ),
        (
            ["capture", "--table", "t-x", "--lake", "ftp://lake/x", "--endpoint-url", "{ep}", "--once"],
            {},
            2,
            "ftp",
        ),
        (["apply", "--table", "t-x", "--lake", "{lake}", "--once", "--buckets", "0"], {}, 2, "bucket"),
        (
            ["apply", "--table", "t-x", "--lake", "{lake}", "--once"],
            {"DDBLAKE_CATALOG": "hive"},
            2,
            "DDBLAKE_CATALOG",
        ),
        (["sync", "--table", "t-x", "--once"], {}, 2, "--lake"),
        (
            [
                "capture",
                "--table",
                "t-x",
                "--lake",
                "{lake}",
                "--endpoint-url",
                "http://127.0.0.1:{closed}",
                "--once",
            ],
            {},
            1,
            "DynamoDB Local running",
        ),
    ],
)
def test_bad_configuration_stops_at_once_with_one_line(
    args: list[str], env: dict[str, str], code: int, names: str, dynamodb_local_endpoint: str, tmp_path: Path
) -> None:
    from ddblake.local.runtime import free_port

    values = {"lake": str(tmp_path / "lake"), "ep": dynamodb_local_endpoint, "closed": str(free_port())}
    argv = [str(DDBLAKE), *(a.format(**values) for a in args)]
    environment = {k: v for k, v in quiet_env(**env).items() if v != ""}
    began = time.monotonic()
    done = run(argv, environment)
    assert done.returncode == code, done.stderr
    line = one_error_line(done.stderr)
    assert names in line, line
    assert time.monotonic() - began < 30
    record("aws/config", faults=1)
