"""Long-running ``heros`` subcommands in subprocesses (the demo lab, serve, watch) for the tests.

Lines of stdout are read by a thread into a queue, so ``wait_line`` never misses a line that
arrived together with the previous one.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from conftest import ROOT

READY = "demo lab ready"


def heros_command() -> list[str]:
    """How the tests run the ``heros`` command: this interpreter, ``-m heros``."""
    return [sys.executable, "-m", "heros"]


class HerosProcess:
    """``heros ARGS`` running in the background; stderr goes to ``log_path``."""

    def __init__(self, args: list[str], log_path: Path, *, env: dict[str, str] | None = None, cwd: Path = ROOT) -> None:
        self.log_path = log_path
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.proc = subprocess.Popen(
            [*heros_command(), *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=open(log_path, "w"),
            text=True, cwd=str(cwd), env={**os.environ, **(env or {})},
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_line(self, prefix: str = "", timeout: float = 30.0) -> str:
        """The next stdout line starting with ``prefix`` (others are skipped), within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0))
            except queue.Empty:
                raise TimeoutError(f"no line {prefix!r} within {timeout} s; log: {self.log()}") from None
            if line is None:
                self.lines.put(None)
                raise RuntimeError(f"heros exited (rc={self.proc.wait()}) before a line {prefix!r}; log: {self.log()}")
            if line.startswith(prefix):
                return line

    def log(self) -> str:
        return self.log_path.read_text()[-4000:] if self.log_path.exists() else ""

    def terminate(self, timeout: float = 20.0) -> int:
        """SIGTERM (what Ctrl-C does too), then wait; kill if it does not exit in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def start_demo(realm: str, log_path: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60.0) -> HerosProcess:
    """Start ``heros demo --realm REALM ARGS`` and wait until it says the lab is ready."""
    proc = HerosProcess(["demo", "--realm", realm, *args], log_path, env=env)
    try:
        proc.wait_line(READY, timeout)
    except BaseException:
        proc.kill()
        raise
    return proc
