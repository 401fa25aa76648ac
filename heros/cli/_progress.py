"""Progress display for operations that take time: a status line on terminals, plain lines elsewhere.

On a terminal, ``Progress`` redraws one line on stderr (a spinner, the elapsed time and the
latest progress report) and erases it when done. When stderr is not a terminal (pipes, CI
logs) nothing is drawn, and progress reports become plain lines, at most two per second plus
the final one.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, TextIO

__all__ = ["Progress", "describe_progress"]

_FRAMES = "|/-\\"
#: Seconds between plain progress lines when stderr is not a terminal.
PLAIN_INTERVAL = 0.5


def describe_progress(value: Any) -> str:
    """A short text for a progress report: a fraction (0..1) becomes a bar, other fields follow."""
    if isinstance(value, dict):
        fraction = value.get("fraction")
        rest = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in value.items() if k != "fraction")
        if isinstance(fraction, (int, float)) and not isinstance(fraction, bool):
            return f"{_bar(float(fraction))} {rest}".rstrip()
        return rest
    if isinstance(value, float) and 0.0 <= value <= 1.0:
        return _bar(value)
    return str(value)


def _bar(fraction: float, width: int = 20) -> str:
    fraction = min(max(fraction, 0.0), 1.0)
    filled = round(fraction * width)
    return f"[{'#' * filled}{'.' * (width - filled)}] {fraction * 100:3.0f} %"


class Progress:
    """Shows that ``text`` is under way until the ``with`` block ends; ``report(value)`` adds details."""

    def __init__(self, text: str, stream: TextIO | None = None) -> None:
        self.text = text
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._detail = ""
        self._last_plain = 0.0
        self._pending_plain: str | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._start = time.monotonic()

    def __enter__(self) -> Progress:
        self._start = time.monotonic()
        if self.tty:
            self._thread = threading.Thread(target=self._spin, name="heros-cli-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(1)
            with self._lock:
                self.stream.write("\r\033[K")
                self.stream.flush()
        elif self._pending_plain is not None:
            self._write_plain(self._pending_plain)

    def report(self, value: Any, final: bool = False) -> None:
        """Show a progress report (any value; see ``describe_progress``)."""
        if self._done.is_set():
            return
        detail = describe_progress(value)
        with self._lock:
            self._detail = detail
        if self.tty:
            return
        now = time.monotonic()
        if final or now - self._last_plain >= PLAIN_INTERVAL:
            self._last_plain = now
            self._pending_plain = None
            self._write_plain(detail)
        else:
            self._pending_plain = detail

    def _write_plain(self, detail: str) -> None:
        with self._lock:
            self.stream.write(f"{self.text}: {detail}\n")
            self.stream.flush()

    def _spin(self) -> None:
        i = 0
        while not self._done.wait(0.1):
            with self._lock:
                elapsed = time.monotonic() - self._start
                line = f"{_FRAMES[i % len(_FRAMES)]} {self.text} {elapsed:4.1f} s  {self._detail}"
                self.stream.write("\r\033[K" + line[:200])
                self.stream.flush()
            i += 1
