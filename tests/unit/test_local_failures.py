"""DynamoDB Local's start and stop when the machine says no: one clear line, at once, no JVM left.

A fake ``java`` (a shell script found through ``JAVA_HOME``) stands in for the JVM, so a JVM that
answers nothing, or logs SQLite's ``unable to open database file``, costs no minute-long wait.
Tests run as root here, and root passes every permission check: where a user without rights is
needed, ``os.access`` (or a socket's ``bind``, ``os.kill``) says no for the one path (port, pid)
under test only.
"""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ddblake.cli.main import main
from ddblake.errors import ConfigError, TerminalError, UsageError
from ddblake.local import dynamodb_local, runtime
from ddblake.local.dynamodb_local import DynamoDBLocal

FAKE_JAVA = """#!/bin/sh
echo "$$" > "$FAKE_JAVA_STARTED"
if [ -n "$FAKE_JAVA_SAYS" ]; then printf '%s\\n' "$FAKE_JAVA_SAYS"; fi
exec sleep 30
"""


@pytest.fixture
def fake_java(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``java`` that records its start in the returned file, prints $FAKE_JAVA_SAYS, never answers."""
    home = tmp_path / "jdk"
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text(FAKE_JAVA)
    java.chmod(0o755)
    jar = tmp_path / "jar" / "DynamoDBLocal.jar"
    jar.parent.mkdir()
    jar.write_bytes(b"not a jar: the fake java never reads it")
    started = tmp_path / "java-started"
    monkeypatch.setenv("JAVA_HOME", str(home))
    monkeypatch.setenv("DDBLAKE_DYNAMODB_LOCAL_JAR", str(jar))
    monkeypatch.setenv("DDBLAKE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("FAKE_JAVA_STARTED", str(started))
    monkeypatch.setenv("FAKE_JAVA_SAYS", "")
    return started


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def _deny_access(monkeypatch: pytest.MonkeyPatch, *denied: Path) -> None:
    """``os.access`` says no for ``denied`` (as for a user without rights there), as before elsewhere."""
    real = os.access
    refused = {p.resolve() for p in denied}

    def access(path: Any, mode: int, **kwargs: Any) -> bool:
        if Path(path).resolve() in refused:
            return False
        return real(path, mode, **kwargs)

    monkeypatch.setattr(os, "access", access)


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr: {err!r}"
    assert "Traceback" not in err
    return lines[0]


# --- 1. a data directory DynamoDB Local cannot write --------------------------------------------------


def test_an_unwritable_data_dir_is_refused_before_the_jvm_starts(
    fake_java: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "ddb-data"
    data.mkdir()
    _deny_access(monkeypatch, data)
    code = main(["local", "start", "--data-dir", str(data)])
    line = _one_line(capsys.readouterr().err)
    assert code == 2
    assert f"data directory {data.resolve()} is not writable" in line
    assert "pass a writable --data-dir, or --in-memory" in line
    assert not fake_java.exists(), "no JVM was started"
    assert not dynamodb_local.state_path().exists()


def test_a_database_file_it_cannot_read_and_write_is_refused(
    fake_java: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "ddb-data"
    data.mkdir()
    db = data / "shared-local-instance.db"
    db.write_bytes(b"")
    _deny_access(monkeypatch, db)
    with pytest.raises(UsageError, match=r"shared-local-instance\.db is not readable and writable"):
        DynamoDBLocal(in_memory=False, data_dir=data).start()
    assert not fake_java.exists()


def test_sqlite_unable_to_open_the_database_fails_at_once(
    fake_java: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What DynamoDB Local logs when it cannot open its database (it then retries every 3 s)."""
    monkeypatch.setenv(
        "FAKE_JAVA_SAYS",
        "SEVERE: [sqlite] SQLiteQueue[shared-local-instance.db]: error running job queue\n"
        "com.almworks.sqlite4java.SQLiteException: [14] unable to open database file",
    )
    data = tmp_path / "ddb-data"
    ddb = DynamoDBLocal(in_memory=False, data_dir=data)
    assert ddb.startup_timeout == 60.0
    began = time.monotonic()
    with pytest.raises(UsageError) as raised:
        ddb.start()
    assert time.monotonic() - began < 15, "not the 60 s startup deadline"
    message = str(raised.value)
    assert f"cannot open its database in {data.resolve()}" in message
    assert "unable to open database file" in message and "--in-memory" in message
    assert _gone(int(fake_java.read_text())), "the JVM is stopped"


# --- 2. a JVM that does not answer in time ------------------------------------------------------------


@pytest.mark.parametrize("says", ["Initializing DynamoDB Local with the following configuration:", ""])
def test_a_startup_timeout_names_the_log_and_the_variable(
    fake_java: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, says: str
) -> None:
    monkeypatch.setenv("FAKE_JAVA_SAYS", says)
    monkeypatch.setenv("DDBLAKE_LOCAL_STARTUP_SECONDS", "1.5")  # time for the script to print
    ddb = DynamoDBLocal(in_memory=True)
    assert ddb.startup_timeout == 1.5
    with pytest.raises(TerminalError) as raised:
        ddb.start()
    message = str(raised.value)
    assert "did not answer within 1.5s" in message
    assert "DDBLAKE_LOCAL_STARTUP_SECONDS=N" in message
    assert "\n" not in message
    log = Path(message.split("its log: ", 1)[1].split(")", 1)[0])
    assert log.is_file(), "the log it names is kept"
    assert log.read_text().strip() == says
    assert (says in message) if says else "printed nothing" in message
    log.unlink()
    assert _gone(int(fake_java.read_text()))


@pytest.mark.parametrize("value", ["abc", "0", "-5", "inf", "nan", "1e999"])
def test_a_bad_startup_seconds_value_is_one_line_naming_it(
    fake_java: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    monkeypatch.setenv("DDBLAKE_LOCAL_STARTUP_SECONDS", value)
    with pytest.raises(ConfigError, match="DDBLAKE_LOCAL_STARTUP_SECONDS"):
        DynamoDBLocal(in_memory=True)
    code = main(["local", "start", "--in-memory"])
    line = _one_line(capsys.readouterr().err)
    assert code == 2
    assert f"DDBLAKE_LOCAL_STARTUP_SECONDS={value!r} is not a positive number of seconds" in line
    assert not fake_java.exists()


def test_startup_seconds_reads_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DDBLAKE_LOCAL_STARTUP_SECONDS", raising=False)
    assert runtime.startup_seconds() == 60.0
    monkeypatch.setenv("DDBLAKE_LOCAL_STARTUP_SECONDS", " 150 ")
    assert runtime.startup_seconds() == 150.0
    assert DynamoDBLocal(in_memory=True).startup_timeout == 150.0
    assert DynamoDBLocal(in_memory=True, startup_timeout=5).startup_timeout == 5


# --- 3. a privileged port ------------------------------------------------------------------------------


class _PrivilegedPortSocket:
    """A socket whose bind is refused as for a user without root (EACCES)."""

    def __init__(self, *args: Any) -> None:
        del args

    def __enter__(self) -> _PrivilegedPortSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def setsockopt(self, *args: Any) -> None:
        del args

    def bind(self, address: tuple[str, int]) -> None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))


def test_a_privileged_port_says_root_is_needed_not_in_use(
    fake_java: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_socket = types.SimpleNamespace(**{n: getattr(socket, n) for n in dir(socket) if n.isupper()})
    fake_socket.socket = _PrivilegedPortSocket
    monkeypatch.setattr(runtime, "socket", fake_socket)
    code = main(["local", "start", "--in-memory", "--port", "80"])
    line = _one_line(capsys.readouterr().err)
    assert code == 2
    assert "already in use" not in line
    assert "port 80" in line and "below 1024 need root privileges" in line and "1024 or above" in line
    assert not fake_java.exists()


# --- 4. stop by another user ---------------------------------------------------------------------------


@pytest.fixture
def foreign_jvm() -> Iterator[subprocess.Popen[bytes]]:
    """A process that looks like DynamoDB Local (its argv names it); always ended."""
    code = "import time; print('up', flush=True); time.sleep(60)"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "DynamoDBLocal.jar"], stdout=subprocess.PIPE, start_new_session=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"up\n"  # exec'd: /proc shows its argv, not pytest's
    yield proc
    proc.kill()
    proc.wait()
    proc.stdout.close()


def test_stop_by_another_user_names_the_pid_and_who_may_stop_it(
    foreign_jvm: subprocess.Popen[bytes],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DDBLAKE_STATE_DIR", str(tmp_path / "state"))
    pid = foreign_jvm.pid
    dynamodb_local.state_path().parent.mkdir(parents=True)
    dynamodb_local._write_state(
        dynamodb_local.LocalState(
            pid=pid,
            port=8000,
            endpoint="http://127.0.0.1:8000",
            in_memory=True,
            data_dir=None,
            jar="DynamoDBLocal.jar",
            log="dynamodb-local.log",
            started_at="2026-01-01T00:00:00+00:00",
        )
    )
    real_kill, real_killpg = os.kill, os.killpg

    def kill(target: int, sig: int) -> None:  # as for a process of another user: EPERM, even sig 0
        if target == pid:
            raise PermissionError(errno.EPERM, os.strerror(errno.EPERM))
        real_kill(target, sig)

    def killpg(group: int, sig: int) -> None:
        if group == pid:
            raise PermissionError(errno.EPERM, os.strerror(errno.EPERM))
        real_killpg(group, sig)

    with monkeypatch.context() as patched:  # undone before the fixture ends the process
        patched.setattr(os, "kill", kill)
        patched.setattr(os, "killpg", killpg)
        code = main(["local", "stop"])
    line = _one_line(capsys.readouterr().err)
    assert code == 1
    assert f"pid {pid}" in line and "as the user who started it" in line and "sudo" in line
    assert "Operation not permitted" not in line
    assert foreign_jvm.poll() is None, "still running: it was not ours to stop"
    assert dynamodb_local.state_path().exists(), "the record of a running instance is kept"


# --- 5. a demo lake in a folder that cannot be written -------------------------------------------------


def test_demo_refuses_an_unwritable_lake_folder_before_dynamodb_local_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import ddblake.cli.demo as demo

    def no_jvm(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("DynamoDB Local must not start")

    monkeypatch.setattr(demo, "DynamoDBLocal", no_jvm)
    folder = tmp_path / "read-only"
    folder.mkdir()
    _deny_access(monkeypatch, folder)

    code = main(["demo", "--lake", str(folder / "new" / "lake")])
    line = _one_line(capsys.readouterr().err)
    assert code == 2
    assert f"cannot be created: {folder} is not writable by this user" in line
    assert not (folder / "new").exists()

    code = main(["demo", "--lake", str(folder)])  # an empty lake folder of its own
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and f"demo lake {folder} is not writable by this user" in line

    afile = tmp_path / "afile"
    afile.write_text("")
    code = main(["demo", "--lake", str(afile / "lake")])
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and f"{afile} is not a directory" in line
