"""The coalescing buffer: updates from foreign threads reach widgets at a bounded rate, and the latest value always lands."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from jupyter_helpers import ARTIFACTS, on_loop, wait_until

from heros import RemoteHERO
from heros_jupyter._bridge import LoopBridge
from heros_jupyter.panel import EventView

pytest_plugins = ["jupyter_fixtures"]
pytestmark = pytest.mark.usefixtures("close_widgets")


def test_posts_are_coalesced_to_the_rate_and_the_latest_value_lands(loop: Any) -> None:
    bridge = LoopBridge(loop, rate=20)
    applied: dict[str, list[int]] = {"a": [], "b": []}
    n = 20_000
    t0 = time.monotonic()

    def flood() -> None:
        for i in range(n):
            bridge.post("a", applied["a"].append, i)
            if i % 2000 == 0:
                bridge.post("b", applied["b"].append, i)
            if i % 200 == 0:
                time.sleep(0.01)

    thread = threading.Thread(target=flood)
    thread.start()
    thread.join(30)
    wait_until(lambda: applied["a"] and applied["a"][-1] == n - 1, 5, "the last value")
    elapsed = time.monotonic() - t0
    assert applied["b"][-1] == 18_000
    assert bridge.flushes <= elapsed * 20 + 3, (bridge.flushes, elapsed)
    assert len(applied["a"]) <= bridge.flushes
    assert applied["a"] == sorted(applied["a"])


def test_calls_run_in_order_on_the_loop_thread(loop: Any) -> None:
    bridge = LoopBridge(loop)
    seen: list[tuple[int, str]] = []
    threads = [threading.Thread(target=lambda: [bridge.call(lambda i=i: seen.append((i, threading.current_thread().name))) for i in range(100)])]
    for t in threads:
        t.start()
        t.join()
    wait_until(lambda: len(seen) == 100, 5, "the calls")
    assert [i for i, _ in seen] == list(range(100))
    assert {name for _, name in seen} == {"test-kernel-loop"}


def test_closed_bridge_drops_everything(loop: Any) -> None:
    bridge = LoopBridge(loop)
    seen: list[int] = []
    bridge.close()
    bridge.call(seen.append, 1)
    bridge.post("k", seen.append, 2)
    on_loop(loop, lambda: None)
    assert seen == []


def test_a_1khz_event_stream_does_not_flood_the_frontend(realm: str, jspawn: Any, loop: Any, comm_log: list[Any]) -> None:
    jspawn(realm, "Streamer:streamer")
    proxy = RemoteHERO("streamer", realm=realm)
    rate = 10.0
    bridge = LoopBridge(loop, rate=rate)
    view = on_loop(loop, lambda: EventView(proxy, proxy._heros_caps["tick"], bridge))
    comm_id = view.html.comm.comm_id
    wait_until(lambda: (proxy.ping(), view.count)[1], 10, "the subscription to reach the HERO")
    proxy.ping(-2)  # pings sent while the subscription was on its way may still be in flight: the marker comes after them
    wait_until(lambda: view.last == -2.0, 5, "the marker tick")
    wait_until(lambda: f">{view.count}</span> events" in view.html.value, 5, "the priming render")
    primed = view.count
    seconds = 3.0
    t0 = time.monotonic()
    expected = proxy.stream(1000, seconds)
    lags = []
    while time.monotonic() - t0 < seconds:
        started = time.monotonic()
        on_loop(loop, lambda: None)
        lags.append(time.monotonic() - started)
        time.sleep(0.1)
    wait_until(lambda: proxy.total() == expected, 10, "the HERO to finish streaming")
    wait_until(lambda: view.count - primed >= expected and f">{view.count}</span> events" in view.html.value, 5, "the final render")
    t1 = time.monotonic()
    updates = [t for t, cid, data in comm_log if cid == comm_id and data.get("method") == "update"]
    during = [t for t in updates if t0 <= t <= t1]
    per_second = len(during) / (t1 - t0)
    measured = {"events_sent": expected, "events_received": view.count - primed, "seconds": round(t1 - t0, 2),
                "frontend_messages": len(during), "messages_per_second": round(per_second, 2), "update_rate": rate,
                "bridge_posts": bridge.posted, "bridge_flushes": bridge.flushes, "max_loop_lag_s": round(max(lags), 4)}
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "coalescing.json").write_text(json.dumps(measured, indent=1))
    print("coalescing:", measured)
    assert per_second <= rate * 1.2 + 1, measured
    assert view.count - primed == expected, measured  # every event counted, on a worker thread
    assert max(lags) < 0.25, measured  # the loop stays responsive
    bridge.close()
    on_loop(loop, view.close)
