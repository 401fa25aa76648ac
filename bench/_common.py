"""Helpers shared by every benchmark worker: timing statistics, RSS and CPU, free ports, and the line protocol.

Workers run in different virtualenvs (ours, upstream HEROS, Pyro5/RPyC), so this module uses
the standard library only. A worker talks to ``run.py`` in lines on stdout: ``READY <json>`` once
it serves, ``RESULT <json>`` per measured scenario, ``ASK <text>`` when it needs ``run.py`` to
relay a command to the server process (the answer comes back on the worker's stdin).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["EventCounter", "ask", "free_port", "latency_stats", "paired", "process_cpu", "rate", "ready", "result", "rss_bytes",
           "threads_cpu", "timed", "wait_until"]


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


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a zenoh hub)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def threads_cpu(pid: int | str = "self") -> dict[tuple[str, str], float]:
    """CPU seconds (user + system) of each live thread of ``pid``, by (thread id, name) (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        out[(task.name, name)] = (int(fields[11]) + int(fields[12])) / tick
    return out


def process_cpu(pid: int | str = "self") -> float:
    """CPU seconds (user + system) of ``pid`` in all, threads that ended included (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _line(tag: str, payload: Any) -> None:
    sys.stdout.write(f"{tag} {json.dumps(payload)}\n")
    sys.stdout.flush()


def ready(info: dict[str, Any] | None = None) -> None:
    """Tell run.py that this server is up."""
    _line("READY", info or {})


def result(scenario: str, data: dict[str, Any]) -> None:
    """Report one measured scenario."""
    _line("RESULT", {"scenario": scenario, **data})


def ask(target: str, command: str) -> str:
    """Have run.py send ``command`` to the server process ``target`` ("server" or "floor"); returns its answer line."""
    sys.stdout.write(f"ASK {target} {command}\n")
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


def timed(n: int, fn: Any, warmup: int | None = None) -> list[int]:
    """Run ``fn`` ``n`` times after a warm-up; the duration of each run in nanoseconds."""
    for _ in range(min(200, n) if warmup is None else warmup):
        fn()
    samples = []
    clock = time.perf_counter_ns
    for _ in range(n):
        t0 = clock()
        fn()
        samples.append(clock() - t0)
    return samples


def paired(n: int, fn: Any, floor_fn: Any, *, block: int = 250, warmup: int = 200,
           floor_times: int = 1) -> tuple[list[int], list[int]]:
    """Time ``fn`` and ``floor_fn`` in alternating blocks, so that both see the same machine load.

    Returns (samples of fn, samples of floor_fn), ``n`` and ``n * floor_times`` of them, in
    nanoseconds. ``floor_times`` > 1 steadies the floor of a scenario with few samples of its own
    (a connect takes a session's worth of work; its floor is one round trip).
    """
    timed(0, fn, warmup=warmup)
    timed(0, floor_fn, warmup=warmup)
    ours: list[int] = []
    floor: list[int] = []
    for i, start in enumerate(range(0, n, block)):
        k = min(block, n - start)
        order = [(ours, fn, k), (floor, floor_fn, k * floor_times)]
        if i % 2:
            order.reverse()
        for samples, func, count in order:
            samples.extend(timed(count, func, warmup=0))
    return ours, floor


class EventCounter:
    """Counts samples arriving on any thread, with the times of the first and the last one."""

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self.count = 0
        self.first = 0.0
        self.last = 0.0

    def __call__(self, *_: Any) -> None:
        now = time.perf_counter()
        with self._lock:
            if self.count == 0:
                self.first = now
            self.count += 1
            self.last = now

    def run(self, target: str, mode: str, n: int, idle: float = 1.0, asker: Any = None) -> dict[str, float]:
        """Ask ``target`` to emit ``n`` samples, wait until all arrived (or none for ``idle`` s), summarize.

        ``asker(target, command)`` relays the command (default ``ask``: through run.py)."""
        answer = (asker or ask)(target, f"emit {n} {mode}").split()
        sent, emit_seconds = int(answer[1]), float(answer[2])
        idle_since, seen = time.monotonic(), -1
        while True:
            with self._lock:
                count = self.count
            if count >= sent:
                break
            if count != seen:
                seen, idle_since = count, time.monotonic()
            elif time.monotonic() - idle_since > idle:
                break
            time.sleep(0.002)
        with self._lock:
            received, span = self.count, self.last - self.first
        return {
            "sent": sent,
            "received": received,
            "lost": sent - received,
            "loss": (sent - received) / sent if sent else 0.0,
            "rate_per_s": rate(received, span),
            "emit_rate_per_s": rate(sent, emit_seconds),
        }
