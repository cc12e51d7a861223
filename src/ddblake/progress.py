"""A plain-text progress line on stderr: counts, rate and ETA, never item data.

On a terminal the line is redrawn in place (carriage return) at most a few times a second;
elsewhere (CI logs, files) a full line is printed every ``interval`` seconds, so logs stay short,
and before this run has counted anything a status line holds only its text: a line of ``0 items,
0.0 items/s, ETA ?`` says nothing and stays in the log for good.
Nothing is drawn when ddblake's log level is set above INFO (``DDBLAKE_LOG_LEVEL=WARNING``: cron
and systemd runs stay quiet unless something is wrong).

A terminal's line has no newline while it is drawn, so anything else written to stderr would be
glued onto it: :class:`LineSafeHandler` (the CLI's log handler) clears it before each log record and
draws it again below, and :func:`end_line` ends it before a final line (an error, "stopped").
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TextIO

CLEAR: str = "\r\x1b[K"
"""Back to the line's start, and erase it."""

_screen = threading.RLock()  # held while anything writes to a terminal a progress line may be on
_on_screen: Progress | None = None  # the progress whose line is drawn, unended, on its terminal


def _count(n: float) -> str:
    return f"{int(n):,}"


def _rate(r: float) -> str:
    return f"{r:.1f}" if r < 10 else _count(r)


def quiet() -> bool:
    """Whether progress and summary lines are left out: ddblake's logger set above INFO.

    Only a level set on purpose counts (the CLI sets it from ``-v``/``DDBLAKE_LOG_LEVEL``); library
    use, which sets none, draws as asked.
    """
    level = logging.getLogger("ddblake").level
    return level != logging.NOTSET and level > logging.INFO


def format_eta(seconds: float | None) -> str:
    """``1:02:03`` or ``4:05``; ``?`` when unknown."""
    if seconds is None or seconds < 0 or seconds != seconds or seconds > 360_000:
        return "?"
    s = int(seconds + 0.5)
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


class Progress:
    """Thread-safe progress of long work (a load, an apply backlog): units done against a total.

    Args:
        label: what is working (e.g. ``load example-ddb-table``).
        total: the expected count (a load: DescribeTable's ItemCount, up to 6 h stale), if known.
        stream: where to draw (stderr by default).
        tty: redraw in place; by default, whether ``stream`` is a terminal.
        interval: seconds between lines when not a terminal.
        clock: monotonic seconds (injectable for tests).
        unit: what is counted (``items``; apply counts ``raw files``).
    """

    def __init__(
        self,
        label: str,
        total: int | None = None,
        *,
        stream: TextIO | None = None,
        tty: bool | None = None,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        unit: str = "items",
    ) -> None:
        """Start counting now; nothing is drawn until the first update."""
        self.label = label
        self.unit = unit
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.interval = 0.25 if self.tty else interval
        self.clock = clock
        self.done = 0
        self.base = 0
        self.parts_done = 0
        self.parts_total = 0
        self.note = ""
        self._start = clock()
        self._last_draw = self._start
        self._lock = threading.Lock()
        self._drawn = False
        self._last_text = ""

    def resume_from(self, done: int, parts_done: int = 0) -> None:
        """Count work a previous run did (it counts toward done, not toward the rate)."""
        with self._lock:
            self.done = self.base = done
            self.parts_done = parts_done

    def set_parts(self, total: int) -> None:
        """How many segments or files the load has."""
        with self._lock:
            self.parts_total = total

    def add(self, items: int, *, part_done: bool = False) -> None:
        """Count ``items`` more; draw if it is time."""
        with self._lock:
            self.done += items
            if part_done:
                self.parts_done += 1
            now = self.clock()
            if now - self._last_draw >= self.interval:
                self._last_draw = now
                self._draw(now)

    def status(self, note: str) -> None:
        """Show a free-text status (e.g. an export's state while waiting); drawn at once."""
        with self._lock:
            self.note = note
            now = self.clock()
            self._last_draw = now
            self._draw(now)

    def line(self, now: float | None = None) -> str:
        """The current progress text."""
        elapsed = max(1e-9, (now if now is not None else self.clock()) - self._start)
        rate = (self.done - self.base) / elapsed
        parts = [f"{self.label}:"]
        if self.note:
            parts.append(self.note)
        if self.total and self.done > self.total:  # past an estimate (ItemCount is hours old)
            parts.append(f"{_count(self.done)} {self.unit} (past the estimate of ~{_count(self.total)})")
            parts.append(f"{_rate(rate)} {self.unit}/s")
        elif self.total:
            pct = min(100.0, 100.0 * self.done / self.total)
            parts.append(f"{_count(self.done)} / ~{_count(self.total)} {self.unit} ({pct:.0f}%)")
            eta = (self.total - self.done) / rate if rate > 0 and self.done < self.total else None
            parts.append(
                f"{_rate(rate)} {self.unit}/s, ETA {format_eta(eta) if self.done < self.total else '0:00'}"
            )
        else:
            parts.append(f"{_count(self.done)} {self.unit}, {_rate(rate)} {self.unit}/s")
        if self.parts_total:
            parts.append(f"parts {self.parts_done}/{self.parts_total}")
        return " ".join(parts)

    def _draw(self, now: float) -> None:
        global _on_screen
        if quiet():
            return
        if self.tty:
            with _screen:  # a log record being written waits, and this line goes below it
                self._last_text = self.line(now)
                self.stream.write(CLEAR + self._last_text)
                self.stream.flush()
                _on_screen = self
        else:
            # Printed lines stay: until this run counts something, only a status's own text is news
            # (no zero counts, no rate or ETA yet), and the same text once.
            started = self.done != self.base
            text = self.line(now) if started else (f"{self.label}: {self.note}" if self.note else "")
            if not text or (not started and text == self._last_text):
                return
            self._last_text = text
            self.stream.write(text + "\n")
            self.stream.flush()
        self._drawn = True

    def completed_line(self, now: float | None = None) -> str:
        """The text for work that is over: the count, time taken, rate and parts; no estimate.

        The total is an estimate (a load's ItemCount is hours old): once the work is done it says
        nothing, and a percentage or an ETA against it would only mislead.
        """
        elapsed = max(1e-9, (now if now is not None else self.clock()) - self._start)
        rate = (self.done - self.base) / elapsed
        text = (
            f"{self.label}: done, {_count(self.done)} {self.unit} in {format_eta(elapsed)}, "
            f"{_rate(rate)} {self.unit}/s"
        )
        return f"{text}, parts {self.parts_done}/{self.parts_total}" if self.parts_total else text

    def finish(self, *, complete: bool = False) -> None:
        """Draw the final state and end the line; ``complete``: the work is all done (see
        :meth:`completed_line`)."""
        if quiet():
            return
        with self._lock:
            now = self.clock()
            text = self.completed_line(now) if complete else self.line(now)
            with _screen:
                self._forget()
                self.stream.write((CLEAR if self.tty else "") + text + "\n")
                self.stream.flush()

    def end_line(self) -> None:
        """End this progress's line if it is still drawn without a newline (a load stopped or
        failed): it stays as it was, and what is written next starts on a line of its own."""
        with _screen:
            if _on_screen is self:
                end_line()

    def _forget(self) -> None:
        global _on_screen
        if _on_screen is self:
            _on_screen = None


def end_line() -> None:
    """End the progress line on the terminal, if one is drawn there (it stays, as last drawn), so
    that a final line (``ddblake: error: …``) starts a line of its own."""
    global _on_screen
    with _screen:
        shown, _on_screen = _on_screen, None
        if shown is not None:
            shown.stream.write("\n")
            shown.stream.flush()


@contextlib.contextmanager
def line_cleared() -> Iterator[None]:
    """Clear the progress line on the terminal (if one is drawn) for the block, which writes whole
    lines to the same terminal (a log record), then draw it again below them."""
    global _on_screen
    with _screen:
        shown, _on_screen = _on_screen, None
        if shown is not None:
            shown.stream.write(CLEAR)
            shown.stream.flush()
        try:
            yield
        finally:
            if shown is not None and _on_screen is None:
                shown.stream.write(CLEAR + shown._last_text)
                shown.stream.flush()
                _on_screen = shown


class LineSafeHandler(logging.StreamHandler[TextIO]):
    """A stream handler whose records never land on the end of a progress line: the line is cleared
    first and drawn again after the record."""

    def emit(self, record: logging.LogRecord) -> None:
        """Write the record on a line of its own."""
        with line_cleared():
            super().emit(record)


class NoProgress(Progress):
    """Counts without drawing (library use, tests, ``sync`` when it draws its own)."""

    def _draw(self, now: float) -> None:
        return

    def finish(self, *, complete: bool = False) -> None:
        """Nothing to end."""
        return
