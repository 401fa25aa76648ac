"""What the multi-host tests run inside the processes on the hosts, through ``tests/servers.py``'s
``eval`` lines (``eval __import__('multihost_probe').start(...)``): a probe that follows one HERO
from another host (observer, calls in a loop, an event subscription, a call in flight) and keeps
when things happened, and an event emitter for the HERO's own process.

Times are ``time.time()``: the namespaces are on one machine, so every process shares the test's
clock and the test can subtract the moment it cut a link.
"""

from __future__ import annotations

import bisect
import threading
import time
from typing import Any

from heros import HEROObserver, RemoteHERO

__all__ = ["Probe", "emit", "probe", "start", "time_calls"]

#: Seconds between two calls of the probe's call loop.
CALL_PERIOD = 0.02


class Probe:
    """Follows HERO ``name`` of ``realm``: joins and leaves, each call's outcome, events, a call in flight."""

    def __init__(self, realm: str, name: str, timeout: float = 10.0) -> None:
        self.name = name
        self.membership: list[tuple[str, str, float]] = []
        self.observer = HEROObserver(realm)
        self.observer.register_object_added_callback(lambda n: self.membership.append(("+", n, time.time())))
        self.observer.register_object_removed_callback(lambda n: self.membership.append(("-", n, time.time())))
        self.proxy = RemoteHERO(name, realm=realm, timeout=timeout)
        self.events: list[tuple[float, Any]] = []
        self.proxy.changed.connect(lambda value: self.events.append((time.time(), value)))
        # (start, end, outcome) of each change of outcome of the call loop: "ok" or "<Error>: message"
        self.calls: list[tuple[float, float, str]] = []
        self.longest_call = 0.0
        self.in_flight: dict[str, Any] = {}
        self._stop = threading.Event()
        self._loop: threading.Thread | None = None

    def start_calls(self) -> bool:
        """Call ``add(1, 2)`` every ``CALL_PERIOD`` seconds on a thread, keeping each change of outcome."""
        self._loop = threading.Thread(target=self._call_loop, name="probe-calls", daemon=True)
        self._loop.start()
        return True

    def _call_loop(self) -> None:
        last = None
        while not self._stop.wait(CALL_PERIOD):
            t0 = time.time()
            try:
                outcome = "ok" if self.proxy.add(1, 2) == 3 else "wrong answer"
            except Exception as exc:  # every failure is an outcome to record
                outcome = f"{type(exc).__name__}: {exc}"
            t1 = time.time()
            self.longest_call = max(self.longest_call, t1 - t0)
            if outcome != last:
                self.calls.append((t0, t1, outcome))
                last = outcome

    def call_in_flight(self, seconds: float) -> bool:
        """Start ``sleep(seconds)`` on a thread; ``in_flight`` tells how it ended and when."""

        def run() -> None:
            t0 = time.time()
            try:
                self.proxy.sleep(seconds)
                outcome = "ok"
            except Exception as exc:  # the outcome is the point
                outcome = f"{type(exc).__name__}: {exc}"
            self.in_flight.update(start=t0, end=time.time(), outcome=outcome)

        threading.Thread(target=run, name="probe-in-flight", daemon=True).start()
        return True

    def summary(self) -> dict[str, Any]:
        """Everything recorded so far, as plain values."""
        return {
            "membership": list(self.membership),
            "known": sorted(self.observer.known_objects),
            "calls": list(self.calls),
            "longest_call": self.longest_call,
            "events": len(self.events),
            "in_flight": dict(self.in_flight),
        }

    def first_event_after(self, moment: float) -> float | None:
        """When the first event after ``moment`` arrived (None: none yet)."""
        times = [t for t, _ in self.events]  # a copy: the subscription's thread appends meanwhile
        i = bisect.bisect_right(times, moment)
        return times[i] if i < len(times) else None

    def close(self) -> None:
        self._stop.set()
        if self._loop is not None:
            self._loop.join(15)
        self.proxy._destroy_hero()
        self.observer._destroy_hero()


probe: Probe | None = None


def start(realm: str, name: str) -> bool:
    """Make this process's probe (``multihost_probe.probe``)."""
    global probe
    probe = Probe(realm, name)
    return True


def time_calls(realm: str, name: str, calls: int) -> dict[str, float]:
    """Call ``add(1, 2)`` of HERO ``name`` ``calls`` times in a row (after a warm-up): calls/s and latencies in µs."""
    with RemoteHERO(name, realm=realm) as proxy:
        for _ in range(min(calls, 200)):
            proxy.add(1, 2)
        samples = []
        t_start = time.perf_counter()
        for _ in range(calls):
            t0 = time.perf_counter_ns()
            proxy.add(1, 2)
            samples.append(time.perf_counter_ns() - t0)
        seconds = time.perf_counter() - t_start
    samples.sort()
    return {"calls_per_s": calls / seconds, "median_us": samples[len(samples) // 2] / 1000,
            "p99_us": samples[min(len(samples) - 1, round(0.99 * (len(samples) - 1)))] / 1000}


def emit(hero: Any, period: float) -> bool:
    """Emit ``hero.changed(time.time())`` every ``period`` seconds, on a daemon thread, until the process ends."""

    def run() -> None:
        while True:
            hero.changed(time.time())
            time.sleep(period)

    threading.Thread(target=run, name="emitter", daemon=True).start()
    return True
