"""The real ``ddblake`` under interrupts and a stolen port: no DynamoDB Local JVM is ever left behind.

Each test marks the processes it starts with a unique environment variable (the JVM inherits the
CLI's environment) and finds them through /proc, so it sees exactly its own JVMs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from capture_helpers import DDBLAKE, REPO, ddblake

from ddblake.errors import TerminalError
from ddblake.local import dynamodb_local
from ddblake.local.dynamodb_local import DynamoDBLocal

pytestmark = [
    pytest.mark.functional,
    pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads the process table from /proc"),
]
MARK_ENV = "DDBLAKE_TEST_PROCESS_MARK"


def _marked_jvms(mark: str) -> list[int]:
    """Live (non-zombie) DynamoDB Local JVMs whose environment holds ``mark``."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            marked = mark.encode() in (proc / "environ").read_bytes()
            jvm = b"DynamoDBLocal" in (proc / "cmdline").read_bytes()
            state = (proc / "status").read_text()
        except OSError:
            continue
        if marked and jvm and "\nState:\tZ" not in state:
            found.append(int(proc.name))
    return found


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _kill_marked(mark: str) -> None:
    for pid in _marked_jvms(mark):  # only if a test failed: never leave our JVMs behind
        os.killpg(pid, signal.SIGKILL)


@pytest.fixture
def mark() -> Iterator[str]:
    value = f"robustness-{uuid.uuid4().hex}"
    yield value
    _kill_marked(value)


def _interrupt_while_starting(
    argv: list[str], mark: str, sig: signal.Signals
) -> subprocess.CompletedProcess[str]:
    """Run ``ddblake ARGV``, send ``sig`` once its JVM exists (before it answers), wait for the exit."""
    env = {**os.environ, MARK_ENV: mark}
    proc = subprocess.Popen(
        [str(DDBLAKE), *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO
    )
    try:
        _wait_for(lambda: bool(_marked_jvms(mark)) or proc.poll() is not None, "the JVM to be started")
        assert proc.poll() is None, "the command ended before its JVM could be interrupted"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_local_start_leaves_no_jvm(sig: signal.Signals, code: int, mark: str) -> None:
    result = _interrupt_while_starting(["local", "start", "--in-memory"], mark, sig)
    assert result.returncode == code, result.stderr
    assert result.stdout == ""  # no endpoint: it did not start
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr and len(lines) == 1, result.stderr
    _wait_for(lambda: not _marked_jvms(mark), "the interrupted start's JVM to end", timeout=25)
    assert not dynamodb_local.state_path().exists()

    stopped = ddblake("local", "stop")
    assert stopped.returncode == 0 and "was not running" in stopped.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_before_popen_returns_still_stops_the_jvm(
    sig: signal.Signals, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The JVM exists before Popen returns its handle: a Ctrl-C in between must not orphan it."""
    from ddblake.cli.signals import Terminated, sigterm_unwinds

    real_popen = subprocess.Popen
    started: list[subprocess.Popen[bytes]] = []

    def popen(*args: object, **kwargs: object) -> subprocess.Popen[bytes]:
        proc = real_popen(*args, **kwargs)  # type: ignore[call-overload]
        started.append(proc)
        os.kill(os.getpid(), sig)  # delivered before the handle is returned
        return proc  # type: ignore[no-any-return]

    monkeypatch.setattr(dynamodb_local.subprocess, "Popen", popen)
    instance = DynamoDBLocal(in_memory=True, log_path=tmp_path / "ddb.log")
    try:
        with pytest.raises((KeyboardInterrupt, Terminated)), sigterm_unwinds():
            instance.start()
        assert len(started) == 1
        assert started[0].poll() is not None, "the JVM was left running"
    finally:
        for proc in started:  # only if the test failed: never leave a JVM behind
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def test_sigterm_during_demo_startup_leaves_no_jvm(tmp_path: Path, mark: str) -> None:
    result = _interrupt_while_starting(["demo", "--lake", str(tmp_path / "lake")], mark, signal.SIGTERM)
    assert result.returncode == 143, result.stderr
    assert "Traceback" not in result.stderr
    _wait_for(lambda: not _marked_jvms(mark), "the demo's JVM to end", timeout=25)


def test_a_port_taken_before_the_jvm_binds_is_not_reported_as_ready(
    dynamodb_local_endpoint: str, mark: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """free_port() hands out a port another DynamoDB Local takes before ours binds it."""
    other = int(dynamodb_local_endpoint.rsplit(":", 1)[1])
    monkeypatch.setenv(MARK_ENV, mark)
    monkeypatch.setattr(dynamodb_local, "free_port", lambda: other)
    instance = DynamoDBLocal(in_memory=True, log_path=tmp_path / "ddb.log")
    with pytest.raises(TerminalError, match=rf"could not bind port {other}: another process took it"):
        instance.start()
    assert instance.pid is None and instance.port is None
    assert not _marked_jvms(mark)


def test_a_requested_port_taken_meanwhile_names_the_port(
    dynamodb_local_endpoint: str, mark: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    other = int(dynamodb_local_endpoint.rsplit(":", 1)[1])
    monkeypatch.setenv(MARK_ENV, mark)
    monkeypatch.setattr(dynamodb_local, "port_in_use", lambda port: False)  # free at the check, taken at bind
    instance = DynamoDBLocal(port=other, in_memory=True, log_path=tmp_path / "ddb.log")
    with pytest.raises(TerminalError, match=rf"port {other}.*choose another with --port"):
        instance.start()
    assert not _marked_jvms(mark)


@pytest.mark.parametrize(
    ("argv", "env", "code", "needle"),
    [
        (["local", "start", "--port", "70000"], {}, 2, "1-65535"),
        (["local", "start", "--port", "-1"], {}, 2, "1-65535"),
        (["local", "stop"], {"DDBLAKE_LOG_LEVEL": "bogus"}, 2, "DDBLAKE_LOG_LEVEL"),
        (["local", "stop"], {"DDBLAKE_STATE_DIR": "/proc/nope"}, 2, "/proc/nope"),
        (["local", "start", "--data-dir", "/proc/nope/x"], {}, 2, "/proc/nope/x"),
        (["local", "start", "--in-memory", "--data-dir", "/tmp/x"], {}, 2, "--data-dir"),
        (["load", "--segments", "abc"], {}, 2, "--segments"),
    ],
)
def test_bad_input_is_one_line_never_a_traceback(
    argv: list[str], env: dict[str, str], code: int, needle: str
) -> None:
    result = ddblake(*argv, env=env)
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr and len(lines) == 1, result.stderr
    assert needle in lines[0]


def test_status_of_a_lake_that_is_a_file(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("not a lake")
    result = ddblake("status", "--lake", str(afile))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and str(afile) in result.stderr.strip()
