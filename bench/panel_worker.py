"""The Jupyter panel under a 1 kHz event stream: messages sent to the frontend per second, and CPU.

Runs like a kernel without a frontend: an asyncio loop on its own thread stands in for the
kernel's loop, and every widget gets a comm that records what it would send to the browser.
A ``Bench`` HERO in another process (``heros_worker.py serve``) emits ``tick`` at 1 kHz; the
panel's event view counts every event and redraws at most ``update_rate`` times per second.
``panel_worker.py REALM [--seconds S] [--rate HZ] [--update-rate R]``.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import threading
import time
import uuid
from typing import Any

import comm
from _common import result, wait_until

from heros import RemoteHERO


class RecordingComm:
    """Records every message a widget sends: ``(monotonic time, comm_id, data)``."""

    kernel = "recording"

    def __init__(self, log: list[tuple[float, str, Any]], **kwargs: Any) -> None:
        self.comm_id = kwargs.get("comm_id") or uuid.uuid4().hex
        self.log = log

    def send(self, data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        self.log.append((time.monotonic(), self.comm_id, data))

    def open(self, *args: Any, **kwargs: Any) -> None:
        pass

    def on_msg(self, callback: Any) -> None:
        pass

    def on_close(self, callback: Any) -> None:
        pass

    def close(self, *args: Any, **kwargs: Any) -> None:
        pass


def on_loop(loop: asyncio.AbstractEventLoop, fn: Any) -> Any:
    async def call() -> Any:
        return fn()

    return asyncio.run_coroutine_threadsafe(call(), loop).result(10)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("realm")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--update-rate", type=float, default=10.0)
    args = parser.parse_args()

    log: list[tuple[float, str, Any]] = []
    comm.create_comm = lambda **kwargs: RecordingComm(log, **kwargs)
    from heros_jupyter._bridge import LoopBridge
    from heros_jupyter.panel import EventView

    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="kernel-loop", daemon=True).start()
    proxy = RemoteHERO("bench0", realm=args.realm, timeout=30)
    bridge = LoopBridge(loop, rate=args.update_rate)
    view = on_loop(loop, lambda: EventView(proxy, proxy._heros_caps["tick"], bridge))
    time.sleep(0.3)  # let the subscription reach the HERO's session

    lags: list[float] = []
    cpu0, t0 = cpu_seconds(), time.monotonic()
    expected = proxy.stream(args.rate, args.seconds)
    while time.monotonic() - t0 < args.seconds:
        started = time.monotonic()
        on_loop(loop, lambda: None)
        lags.append(time.monotonic() - started)
        time.sleep(0.05)
    wait_until(lambda: proxy.streamed() >= expected, 30, poll=0.05)
    wait_until(lambda: view.count >= expected, 10, poll=0.01)
    time.sleep(2 / args.update_rate)  # the last coalesced redraw
    t1, cpu1 = time.monotonic(), cpu_seconds()
    comm_id = view.html.comm.comm_id
    messages = [t for t, cid, data in log if cid == comm_id and isinstance(data, dict) and data.get("method") == "update" and t0 <= t <= t1]
    seconds = t1 - t0
    result("panel_1khz", {
        "events_sent": expected,
        "events_received": view.count,
        "events_per_s": view.count / seconds,
        "messages": len(messages),
        "messages_per_s": len(messages) / seconds,
        "update_rate": args.update_rate,
        "kernel_cpu_percent": 100.0 * (cpu1 - cpu0) / seconds,
        "max_loop_lag_ms": 1000.0 * max(lags),
        "seconds": seconds,
    })
    bridge.close()
    on_loop(loop, view.close)
    proxy._destroy_hero()


if __name__ == "__main__":
    main()
