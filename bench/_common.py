"""Helpers shared by every benchmark worker: timing statistics, RSS, and the line protocol.

Workers run in different virtualenvs (ours, upstream HEROS, Pyro5/RPyC), so this module uses
the standard library only. A worker talks to ``run.py`` in lines on stdout: ``READY <json>`` once
it serves, ``RESULT <json>`` per measured scenario, ``ASK <text>`` when it needs ``run.py`` to
relay a command to the server process (the answer comes back on the worker's stdin).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

__all__ = ["ask", "latency_stats", "rate", "ready", "result", "rss_bytes", "wait_until"]


def latency_stats(samples_ns: list[int]) -> dict[str, float]:
    """Median, p99, mean and min of latencies given in nanoseconds, reported in microseconds."""
    if not samples_ns:
        raise ValueError("no samples to summarize")
    s = sorted(samples_ns)
    n = len(s)

    def pct(p: float) -> float:
        return s[min(n - 1, max(0, round(p * (n - 1))))] / 1000.0

    return {"median_us": pct(0.5), "p99_us": pct(0.99), "mean_us": sum(s) / n / 1000.0, "min_us": s[0] / 1000.0, "n": n}


def rate(count: int, seconds: float) -> float:
    """Items per second (0 when nothing was timed)."""
    return count / seconds if seconds > 0 else 0.0


def rss_bytes() -> int:
    """Resident set size of this process, in bytes (Linux)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def _line(tag: str, payload: Any) -> None:
    sys.stdout.write(f"{tag} {json.dumps(payload)}\n")
    sys.stdout.flush()


def ready(info: dict[str, Any] | None = None) -> None:
    """Tell run.py that this server is up."""
    _line("READY", info or {})


def result(scenario: str, data: dict[str, Any]) -> None:
    """Report one measured scenario."""
    _line("RESULT", {"scenario": scenario, **data})


def ask(command: str) -> str:
    """Have run.py send ``command`` to the server process; returns the server's answer line."""
    sys.stdout.write(f"ASK {command}\n")
    sys.stdout.flush()
    line = sys.stdin.readline()
    if not line:
        raise RuntimeError(f"run.py closed the channel while waiting for the answer to {command!r}")
    return line.strip()


def wait_until(predicate: Any, timeout: float, poll: float = 0.001) -> bool:
    """Poll ``predicate()`` until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)
    return True
