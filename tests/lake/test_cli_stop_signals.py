"""A reading command stopped by SIGTERM or Ctrl-C in the middle of a statement: one line, 143 or
130, at once.

Python's default SIGTERM ends the process with no word (a shell shows exit -15): a scheduler's
timeout on a long ``query`` left nothing in its log. And a Python handler alone runs only when
DuckDB checks for signals, which a hash join and its aggregate do not: such a statement ran on for
minutes after the signal, past any scheduler's grace period. The statement here reads a FIFO first,
so the test knows DuckDB is inside it (our open for writing returns once DuckDB opened it for
reading), then joins what it read into billions of rows: no sleeps, and without the fix the
process would outlive the test's timeout.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads CPU times from /proc")
DDBLAKE = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "ddblake"


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _wait_for_cpu(pid: int, seconds: float) -> None:
    """Until process ``pid`` has spent ``seconds`` more CPU time: a statement that read three rows
    and then works that long is in its join (a condition polled, not a guess at a duration)."""
    start, deadline = _cpu_seconds(pid), time.monotonic() + 60
    while _cpu_seconds(pid) - start < seconds:
        if time.monotonic() > deadline:
            raise AssertionError(f"process {pid} did not work {seconds} s of CPU in 60 s")
        time.sleep(0.01)


@pytest.mark.parametrize(
    ("sig", "code", "line"),
    [(signal.SIGTERM, 143, "ddblake: terminated (SIGTERM)"), (signal.SIGINT, 130, "ddblake: interrupted")],
)
def test_a_query_stopped_mid_statement_says_so_in_one_line(
    tmp_path: Path, sig: signal.Signals, code: int, line: str
) -> None:
    fifo, lake = tmp_path / "rows.csv", tmp_path / "lake"
    os.mkfifo(fifo)
    lake.mkdir()  # an empty directory: query runs the statement (no tables needed)
    rows = f"read_csv('{fifo}', columns={{'a': 'BIGINT'}}, header=false)"
    sql = (
        f"select a.a % 3 k, count(*) from (select a + range as a from {rows}, range(30000)) a, "  # noqa: S608
        "range(30000) b, range(20) r where a.a % 3 = b.range % 3 group by 1"
    )
    scratch = tmp_path / "tmp"  # where DuckDB's spill folder goes (TMPDIR): gone after the stop
    scratch.mkdir()
    proc = subprocess.Popen(  # noqa: S603 - our own console script, fixed arguments
        [str(DDBLAKE), "query", "--lake", str(lake), sql],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(scratch)},
    )

    def release_if_it_ends() -> None:
        """Should the command end before opening the FIFO, open it here so our open returns."""
        proc.wait()
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))

    threading.Thread(target=release_if_it_ends, daemon=True).start()
    try:
        fd = os.open(fifo, os.O_WRONLY)  # returns once DuckDB has the FIFO open: inside the statement
        try:
            os.write(fd, b"1\n2\n3\n")
        finally:
            os.close(fd)  # DuckDB reads to the end and goes on to the join
        _wait_for_cpu(proc.pid, 1.0)  # then it is in the join, which checks for no signal
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)  # the join alone takes minutes
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, err
    assert err.strip().splitlines() == [line]
    assert out == ""
    assert list(scratch.iterdir()) == [], "DuckDB's scratch folder is deleted"
