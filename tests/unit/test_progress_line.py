"""The progress line on a terminal is never glued to what else goes to stderr: a log record (a
throttling retry's WARNING) clears it and draws it again below, and the final "stopped"/error line
starts a line of its own (the load ends the line when it stops or fails, the CLI's error printer too).

The terminal is a StringIO rendered as a terminal shows it (``\\r``, ``\\x1b[K``, ``\\n``), or a real
pseudo-terminal for the CLI."""

from __future__ import annotations

import io
import itertools
import logging
import os
import select
import subprocess
import sys
import textwrap
import threading
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ddblake import progress as progress_module
from ddblake.cli import main as cli_main
from ddblake.errors import StoppedError, TransientError
from ddblake.load import LoadConfig, service
from ddblake.load.table import Page, TableInfo
from ddblake.progress import LineSafeHandler, Progress, end_line

REPO = Path(__file__).resolve().parents[2]


def screen(written: str) -> list[str]:
    """The lines a terminal shows after ``written``: ``\\r`` goes back to the line's start, ``\\x1b[K``
    erases to its end, anything else overwrites from the cursor on."""
    lines = [""]
    col = 0
    i = 0
    while i < len(written):
        if written.startswith("\x1b[K", i):
            lines[-1] = lines[-1][:col]
            i += 3
            continue
        ch = written[i]
        if ch == "\r":
            col = 0
        elif ch == "\n":
            lines.append("")
            col = 0
        else:
            row = lines[-1]
            lines[-1] = row[:col] + ch + row[col + 1 :]
            col += 1
        i += 1
    return lines[:-1] if lines[-1] == "" else lines


@pytest.fixture(autouse=True)
def _nothing_on_screen() -> Iterator[None]:
    yield
    progress_module._on_screen = None  # a failed test leaves no line for the next one


def _terminal_progress(stream: io.StringIO, label: str = "load t") -> Progress:
    """A terminal's progress line that draws at every update (a clock a second on at each look)."""
    ticks = itertools.count()
    return Progress(label, 100, stream=stream, tty=True, clock=lambda: float(next(ticks)))


def _logger(stream: io.StringIO) -> logging.Logger:
    handler = LineSafeHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("ddblake.test_progress_line")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def test_a_log_record_goes_on_its_own_line_and_the_progress_line_is_drawn_again_below() -> None:
    out = io.StringIO()
    bar, log = _terminal_progress(out), _logger(out)
    bar.add(10)
    log.warning("load t: segment 3: throttled; retry 1 in 0.1 s")
    assert screen(out.getvalue()) == [
        "WARNING ddblake.test_progress_line: load t: segment 3: throttled; retry 1 in 0.1 s",
        bar._last_text,
    ]
    assert bar._last_text.startswith("load t: 10 / ~100 items (10%)")
    bar.add(10)
    log.warning("second")
    shown = screen(out.getvalue())
    assert shown[:2] == [
        "WARNING ddblake.test_progress_line: load t: segment 3: throttled; retry 1 in 0.1 s",
        "WARNING ddblake.test_progress_line: second",
    ]
    assert len(shown) == 3 and shown[2].startswith("load t: 20 / ~100 items (20%)")


def test_a_record_with_no_line_drawn_is_written_as_it_is() -> None:
    out = io.StringIO()
    _logger(out).warning("alone")
    assert out.getvalue() == "WARNING ddblake.test_progress_line: alone\n"
    bar = _terminal_progress(out)
    bar.add(5)
    bar.finish(complete=True)  # an ended line is not drawn again after the next record
    _logger(out).warning("after")
    shown = screen(out.getvalue())
    assert shown[0] == "WARNING ddblake.test_progress_line: alone"
    assert shown[1].startswith("load t: done, 5 items")
    assert shown[2:] == ["WARNING ddblake.test_progress_line: after"]


def test_end_line_keeps_the_last_state_and_the_final_line_stands_alone() -> None:
    out = io.StringIO()
    bar = _terminal_progress(out)
    bar.add(30)
    end_line()
    out.write("ddblake: stopped: load t: stopped with 4 segment(s) unfinished\n")
    end_line()  # nothing drawn any more: nothing written
    shown = screen(out.getvalue())
    assert len(shown) == 2 and shown[0].startswith("load t: 30 / ~100 items (30%)")
    assert shown[1] == "ddblake: stopped: load t: stopped with 4 segment(s) unfinished"
    other = _terminal_progress(out, "load u")
    bar.end_line()  # another progress's line: not this one's to end
    other.add(1)
    bar.end_line()
    assert screen(out.getvalue())[-1].startswith("load u: 1 / ~100 items")


def test_the_cli_error_printer_ends_the_line_first(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    bar = _terminal_progress(out)
    bar.add(7)
    cli_main._error_line(StoppedError("load t: stopped"), kind="stopped")
    shown = screen(out.getvalue())
    assert len(shown) == 2 and shown[0].startswith("load t: 7 / ~100 items")
    assert shown[1] == "ddblake: stopped: load t: stopped"


def test_records_from_many_threads_never_land_inside_a_progress_line() -> None:
    out = io.StringIO()
    bar, log = _terminal_progress(out), _logger(out)

    def work(n: int) -> None:
        for i in range(100):
            bar.add(1)
            log.warning("worker %d record %d", n, i)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    shown = screen(out.getvalue())
    records = [line for line in shown if line.startswith("WARNING ")]
    assert len(records) == 400 and len(shown) == 401
    assert all(line.split(": ", 1)[1].startswith("worker ") for line in records)
    assert shown[-1].startswith("load t: ") and "WARNING" not in shown[-1]


class _Reader:
    """Two segments of 5-item pages; the second page fails (or asks the load to stop)."""

    where = "endpoint memory"

    def __init__(self, fail: BaseException | None, stop: threading.Event | None = None) -> None:
        self.fail, self.stop, self.calls = fail, stop, 0

    def describe(self) -> TableInfo:
        return TableInfo(
            name="t",
            arn="",
            key_names=("pk",),
            item_count=100,
            size_bytes=10_000,
            provisioned_rcu=0.0,
            on_demand=True,
        )

    def scan_page(self, **kw: Any) -> Page:
        self.calls += 1
        if self.calls > 1:
            if self.fail is not None:
                raise self.fail
            assert self.stop is not None
            self.stop.set()
        items = [{"pk": {"S": f"k{self.calls}-{i}"}} for i in range(5)]
        return Page(items=items, last_key=items[-1], consumed=0.5)


@pytest.mark.parametrize("stopped", [False, True])
def test_a_load_that_fails_or_stops_ends_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stopped: bool
) -> None:
    out = io.StringIO()
    stop = threading.Event()
    reader = _Reader(None if stopped else TransientError("throttled, 10 attempts"), stop)
    monkeypatch.setattr(service, "TableReader", lambda *a: reader)
    monkeypatch.setattr("ddblake.load.scan.MAX_ATTEMPTS", 1)
    config = LoadConfig(table="t", lake=str(tmp_path), segments=1, workers=1)
    bar = _terminal_progress(out)
    fake_clients: Any = types.SimpleNamespace(dynamodb=None)
    with pytest.raises(StoppedError if stopped else TransientError):
        service.run_load(config, clients=fake_clients, progress=bar, stop=stop)
    assert out.getvalue().endswith("\n"), "the line is ended: what comes next starts a line"
    out.write("ddblake: error: …\n")
    shown = screen(out.getvalue())
    read = 10 if stopped else 5  # stopped after its second page; failed at it
    assert shown[-2].startswith(f"load t: {read} / ~100 items") and shown[-1] == "ddblake: error: …"


DRIVER = textwrap.dedent(
    """
    import itertools, logging, sys
    import ddblake.load
    from ddblake.errors import StoppedError
    from ddblake.progress import Progress

    def run_load(config):
        ticks = itertools.count()
        bar = Progress(f"load {config.table}", 100, clock=lambda: float(next(ticks)))
        bar.add(10)
        logging.getLogger("ddblake.load.scan").warning("load tbl: segment 1: throttled; retry 1 in 0.1 s")
        bar.add(10)
        raise StoppedError("load tbl: stopped with 1 segment(s) unfinished; run the same command again")

    ddblake.load.run_load = run_load
    from ddblake.cli.main import main
    sys.exit(main(["load", "--table", "tbl", "--lake", sys.argv[1]]))
    """
)


def test_on_a_terminal_the_cli_keeps_log_lines_and_the_stopped_line_whole(tmp_path: Path) -> None:
    """``ddblake load`` with stderr on a pseudo-terminal: its progress line, a WARNING and the final
    ``stopped`` line each on a line of their own."""
    import pty

    env = {k: v for k, v in os.environ.items() if not k.startswith("DDBLAKE_")}
    main_fd, sub_fd = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", DRIVER, str(tmp_path / "lake")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=sub_fd,
            cwd=REPO,
            env=env,
        )
    finally:
        os.close(sub_fd)
    written = b""
    try:
        while True:
            ready, _, _ = select.select([main_fd], [], [], 60)
            assert ready, "no output from the CLI within a minute"
            try:
                chunk = os.read(main_fd, 65536)
            except OSError:  # EIO: the process closed its end
                break
            if not chunk:
                break
            written += chunk
        assert proc.wait(timeout=60) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(main_fd)
    shown = screen(written.decode())  # the terminal writes each newline as \r\n: the same lines
    assert len(shown) == 3, shown
    assert " WARNING ddblake.load.scan: load tbl: segment 1: throttled; retry 1 in 0.1 s" in shown[0]
    assert shown[1].startswith("load tbl: 20 / ~100 items (20%)")
    assert (
        shown[2]
        == "ddblake: stopped: load tbl: stopped with 1 segment(s) unfinished; run the same command again"
    )
