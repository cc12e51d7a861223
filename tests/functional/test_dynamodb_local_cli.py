"""``ddblake local start|stop`` through the real CLI: idempotent, stoppable, clear when Java is missing."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from capture_helpers import ddblake

from ddblake.errors import PrerequisiteError
from ddblake.local import dynamodb_local
from ddblake.local.runtime import find_jar, pid_alive, ping

pytestmark = pytest.mark.functional


def _endpoint(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, f"stdout must hold only the endpoint: {result.stdout!r}"
    return lines[-1]


@pytest.fixture
def stop_afterwards() -> object:
    """Stop whatever ``local start`` left running in this test's state directory."""
    yield None
    dynamodb_local.stop()


def test_start_is_idempotent_and_stop_ends_the_process(stop_afterwards: object) -> None:
    endpoint = _endpoint(ddblake("local", "start", "--in-memory"))
    assert endpoint.startswith("http://127.0.0.1:")
    assert ping(endpoint)
    state = dynamodb_local.read_state()
    assert state is not None and state.endpoint == endpoint and state.in_memory

    again = _endpoint(ddblake("local", "start"))  # options may be omitted the second time
    assert again == endpoint
    assert dynamodb_local.read_state() == state

    conflict = ddblake("local", "start", "--port", str(state.port + 1))
    assert conflict.returncode == 2
    assert "already running" in conflict.stderr and "ddblake local stop" in conflict.stderr

    stopped = ddblake("local", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped DynamoDB Local" in stopped.stderr
    assert not pid_alive(state.pid)
    assert not ping(endpoint)
    assert not dynamodb_local.state_path().exists()

    idle = ddblake("local", "stop")
    assert idle.returncode == 0 and "was not running" in idle.stderr


def test_stale_state_file_is_replaced(tmp_path: Path, stop_afterwards: object) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path = dynamodb_local.state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    stale = {
        "pid": dead.pid,
        "port": 1,
        "endpoint": "http://127.0.0.1:1",
        "in_memory": True,
        "data_dir": None,
        "jar": "x",
        "log": "x",
        "started_at": "2020-01-01T00:00:00+00:00",
    }
    path.write_text(json.dumps(stale))

    data_dir = tmp_path / "ddb-data"
    endpoint = _endpoint(ddblake("local", "start", "--data-dir", str(data_dir)))
    assert endpoint != stale["endpoint"]
    state = dynamodb_local.read_state()
    assert state is not None and state.pid != dead.pid and pid_alive(state.pid)
    assert state.data_dir == str(data_dir.resolve()) and not state.in_memory
    assert any(data_dir.iterdir()), "DynamoDB Local keeps its database in --data-dir"
    assert dynamodb_local.stop() is True
    assert not pid_alive(state.pid)


def test_missing_java_is_one_clear_line(tmp_path: Path) -> None:
    env = {"PATH": str(tmp_path / "no-java-here"), "JAVA_HOME": ""}
    result = ddblake("local", "start", "--in-memory", env=env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Java 17+ is required to run DynamoDB Local" in lines[0]
    assert result.stdout == ""


def test_missing_jar_says_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(PrerequisiteError, match="make install"):
        find_jar(search_from=[tmp_path])
    monkeypatch.setenv("DDBLAKE_DYNAMODB_LOCAL_JAR", str(tmp_path / "nope.jar"))
    with pytest.raises(PrerequisiteError, match="DDBLAKE_DYNAMODB_LOCAL_JAR"):
        find_jar()
    result = ddblake("local", "start", "--in-memory")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "npm install" in result.stderr


def test_jar_found_from_package_tree_and_env_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # not under the checkout: found from the package's source tree
    jar = find_jar()
    assert jar.name == "DynamoDBLocal.jar" and (jar.parent / "DynamoDBLocal_lib").is_dir()
    monkeypatch.setenv("DDBLAKE_DYNAMODB_LOCAL_JAR", str(jar.parent))
    assert find_jar() == jar


def test_busy_port_is_reported(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = ddblake("local", "start", "--in-memory", "--port", str(port))
    assert result.returncode == 1
    assert f"port {port} is already in use" in result.stderr
    assert not dynamodb_local.state_path().exists()
    assert os.environ["DDBLAKE_STATE_DIR"].startswith(str(tmp_path))
