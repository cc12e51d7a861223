"""A reading command stopped by SIGTERM or Ctrl-C in the middle of a statement: one line, 143 or 130.

Python's default SIGTERM ends the process with no word (a shell shows exit -15): a scheduler's
timeout on a long ``query`` left nothing in its log. The statement reads a FIFO, so the test knows
DuckDB is inside it (our open for writing returns once DuckDB opened it for reading) and keeps it
busy with rows until the process ends: no sleeps.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from pathlib import Path

import pytest

DDBLAKE = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "ddblake"
ROWS = b"1\n" * 10_000


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
    sql = f"select count(*) from read_csv('{fifo}', columns={{'a': 'BIGINT'}}, header=false)"  # noqa: S608 - a test path
    proc = subprocess.Popen(  # noqa: S603 - our own console script, fixed arguments
        [str(DDBLAKE), "query", "--lake", str(lake), sql],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
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
            os.write(fd, ROWS * 10)
            proc.send_signal(sig)
            for _ in range(100_000):  # bounded: about 2 GB of rows, far more than a stop takes
                if proc.poll() is not None:
                    break
                os.write(fd, ROWS)
        except BrokenPipeError:
            pass  # the reader went away: the process is ending
        finally:
            os.close(fd)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, err
    assert err.strip().splitlines() == [line]
    assert out == ""
