"""Upstream HEROS for the interop tests: a cached virtualenv holding ``heros==2026.2.2``, and its processes.

    python tests/upstream.py        builds (or checks) the virtualenv; .ci/run calls it before the tests

The virtualenv lives in ``.cache/upstream-heros`` at the top of the repository (ignored by git) and
is rebuilt when the requirement changes; a file lock lets parallel test runs share it. Processes
run ``tests/upstream_peer.py`` with upstream's interpreter and without our ``PYTHONPATH``, so that
``import heros`` there is upstream's package, never ours.
"""

from __future__ import annotations

import ast
import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENT = "heros==2026.2.2"
VENV = ROOT / ".cache" / "upstream-heros"


def upstream_python() -> Path:
    """The interpreter of the upstream virtualenv, built on first use (pip needs the package index)."""
    python = VENV / "bin" / "python"
    stamp = VENV / ".requirement"
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(VENV.parent / "upstream-heros.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if python.exists() and stamp.exists() and stamp.read_text() == REQUIREMENT:
            return python
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True, timeout=300)
        proc = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", REQUIREMENT],
                              capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            raise RuntimeError(f"could not install {REQUIREMENT} into {VENV}: {proc.stderr[-2000:]}")
        stamp.write_text(REQUIREMENT)
        print(f"built the upstream virtualenv ({REQUIREMENT}) in {time.monotonic() - t0:.0f} s", file=sys.stderr)
        return python


def upstream_env() -> dict[str, str]:
    """The environment of an upstream process: ours (zenoh config included) minus our PYTHONPATH."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


class UpstreamError(Exception):
    """An expression evaluated in an upstream process raised; ``type`` names its class."""

    def __init__(self, type_: str, message: str) -> None:
        super().__init__(f"{type_}: {message}")
        self.type = type_
        self.message = message


class UpstreamPeer:
    """Drives a ``tests/upstream_peer.py`` process (``eval``/``exec`` lines) started by a ``HeroProcess``."""

    def __init__(self, process: Any) -> None:
        self.process = process

    def _answer(self, timeout: float) -> str:
        import queue

        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.process._lines.get(timeout=max(deadline - time.monotonic(), 0))
            except queue.Empty:
                raise TimeoutError(f"the upstream process did not answer within {timeout} s; log: {self.process.log()}") from None
            if line is None:
                raise RuntimeError(f"the upstream process exited; log: {self.process.log()}")
            if line.startswith(("OK", "ERR ")):
                return line.rstrip("\n")

    def eval(self, expr: str, timeout: float = 30.0) -> Any:
        """The value of ``expr`` in the upstream process (``ast.literal_eval`` of its repr, else the repr text)."""
        self.process.send(f"eval {expr}")
        line = self._answer(timeout)
        if line.startswith("ERR "):
            type_, _, message = line[4:].partition(": ")
            raise UpstreamError(type_, message)
        text = line[3:]
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text

    def exec(self, statement: str, timeout: float = 30.0) -> None:
        """Run ``statement`` in the upstream process."""
        self.process.send(f"exec {statement}")
        line = self._answer(timeout)
        if line.startswith("ERR "):
            type_, _, message = line[4:].partition(": ")
            raise UpstreamError(type_, message)

    def stop(self) -> None:
        """Ask it to exit; kill it if it does not (upstream processes with proxies left may hang at exit)."""
        try:
            self.process.stop(timeout=3)
        except subprocess.TimeoutExpired:
            pass


if __name__ == "__main__":
    print(upstream_python())
