"""Subscriptions: one dispatcher thread for all of them, order kept, slow callbacks bounded in samples
and bytes (best effort drops and counts, reliable pushes back), thread count independent of how many."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import numpy as np
import pytest

from heros import RemoteHERO, tools
from heros.subscription import Subscription


def os_threads() -> int:
    return len(os.listdir("/proc/self/task"))


def wait_until(predicate: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.01)


@pytest.fixture
def dev(realm: str, spawn: Any) -> Any:
    spawn(realm, "Device:dev")
    with RemoteHERO("dev", realm=realm) as proxy:
        yield proxy


def primed(dev: Any, sub_list: list, emit: Any, sentinel: Any) -> None:
    """Emit until the subscriptions hear it (they reach the HERO a little after they are declared)."""
    assert wait_until(lambda: (emit(sentinel), all(sentinel in seen for seen in sub_list))[1], 10)


def test_many_subscriptions_cost_no_thread_each(dev: Any) -> None:
    seen: list[list] = [[] for _ in range(60)]
    subs = [tools.subscribe(dev, "changed", s.append) for s in seen[:30]]
    before_attrs = os_threads()
    subs += [tools.watch_attribute(dev, "counter", s.append) for s in seen[30:]]
    primed(dev, seen[:30], dev.emit_changed, "ready")
    dev.counter = 5
    assert wait_until(lambda: all(5 in s for s in seen[30:]))
    grown = os_threads() - before_attrs
    print(f"60 subscriptions: threads grew by {grown} for the last 30")
    assert grown <= 3  # one thread per subscription before: 30 more
    for sub in subs:
        sub.close()


def test_each_subscription_keeps_its_order(dev: Any) -> None:
    a: list = []
    b: list = []
    sub_a = tools.subscribe(dev, "burst_item", a.append)
    sub_b = tools.subscribe(dev, "burst_item", b.append)
    primed(dev, [a, b], lambda v: dev.emit_burst(1), 0)
    dev.emit_burst(2000)  # reliable, one publisher: in order, after the priming ones
    assert wait_until(lambda: len(a) >= 2001 and len(b) >= 2001 and a[-1] == b[-1] == 1999)
    assert a[-2000:] == list(range(2000)) and b[-2000:] == list(range(2000))
    assert sub_a.dropped == sub_b.dropped == 0 and sub_a.received >= 2000
    sub_a.close()
    sub_b.close()


def test_a_worker_behind_a_stream_gives_its_turn_back_once_the_stream_stops(dev: Any) -> None:
    from heros import subscription

    got: list[int] = []
    sub = tools.subscribe(dev, "burst_item", got.append)
    primed(dev, [got], lambda v: dev.emit_burst(1), 0)
    for _ in range(3):  # bursts with pauses between them: the worker looks again, then lets go
        got.clear()
        dev.emit_burst(3000)
        assert wait_until(lambda: len(got) >= 3000, 20)
        assert got[-3000:] == list(range(3000))
        # looking again lasts well under a millisecond (LINGER_PAUSES); then the worker is free
        assert sum(subscription.LINGER_PAUSES) < 0.002
        assert wait_until(lambda: not sub._running, 2), "the worker kept the subscription's turn after the stream stopped"
    assert sub.dropped == 0
    sub.close()


def test_no_callback_runs_once_close_has_returned(dev: Any) -> None:
    got: list[int] = []
    recording = threading.Event()
    inside, release = threading.Event(), threading.Event()

    def callback(value: int) -> None:
        if not recording.is_set():
            return
        got.append(value)
        if len(got) == 50:  # hold the worker inside a callback, its batch of samples in hand
            inside.set()
            release.wait(10)

    seen: list[int] = []
    # reliable, 10 samples kept for a stuck callback: zenoh's channel behind them fills and zenoh waits for room
    sub = tools.subscribe(dev, "burst_item", lambda v: (seen.append(v), callback(v)), max_samples=10)
    primed(dev, [seen], lambda v: dev.emit_burst(1), 0)
    recording.set()
    done = threading.Event()
    threading.Thread(target=lambda: (dev.emit_burst.with_timeout(60)(3000), done.set()), daemon=True).start()
    assert inside.wait(10)
    assert wait_until(lambda: len(sub._pending) >= 10, 10)  # the queue is full: the rest waits in zenoh's channel
    sub.close()  # while the worker is inside the 50th callback
    release.set()
    assert wait_until(lambda: not sub._running, 5)  # the worker's turn is over: whatever it would run, it ran
    assert len(got) == 50, f"{len(got) - 50} callbacks ran after close() returned"
    # zenoh was waiting for room in the closed subscription's channel: close() gave it, so the link
    # lives on (else the emitter stalls and the HERO's replies never arrive)
    assert done.wait(30)
    assert dev.add(1) == 3


def test_a_stalled_best_effort_callback_is_bounded_in_bytes_and_counts_what_it_dropped(dev: Any) -> None:
    gate = threading.Event()
    got: list[int] = []

    def slow(value: Any) -> None:
        if isinstance(value, np.ndarray):
            gate.wait(60)
            got.append(int(value[0]))

    sub = tools.subscribe(dev, "changed", slow, max_bytes=4 * 2**20)
    assert wait_until(lambda: (dev.emit_changed("ping"), sub.received > 0)[1], 10)
    dev.emit_arrays(60, 2**20)  # 60 MiB while the callback is stuck on the first array
    assert wait_until(lambda: sub.dropped > 0, 20)
    held = sub._pending_bytes
    print(f"stalled callback: {sub.dropped} dropped, {held / 2**20:.1f} MiB held")
    assert held <= 4 * 2**20 + 2**20  # the bound, plus the array being handled
    gate.set()
    assert wait_until(lambda: got and got[-1] == 59, 20)  # the newest arrive, in order
    assert got == sorted(got) and len(got) + sub.dropped >= 58
    sub.close()


def test_a_stalled_reliable_callback_pushes_back_and_loses_nothing(dev: Any, caplog: Any) -> None:
    caplog.set_level(logging.WARNING, logger="heros.subscription")
    gate = threading.Event()
    got: list[int] = []

    def slow(value: int) -> None:
        gate.wait(60)
        got.append(value)

    sub = tools.subscribe(dev, "burst_item", slow, max_samples=50)
    assert wait_until(lambda: (dev.emit_burst(1), sub.received > 0 or sub._running)[1], 10)
    gate.set()
    assert wait_until(lambda: got, 10)
    got.clear()
    gate.clear()
    done = threading.Event()
    threading.Thread(target=lambda: (dev.emit_burst.with_timeout(60)(5000), done.set()), daemon=True).start()
    time.sleep(0.5)  # the emitter would finish 5000 events in well under this if nothing pushed back
    assert not done.is_set()
    warned = [r.getMessage() for r in caplog.records if "the publisher waits for it" in r.getMessage()]
    assert len(warned) == 1 and "event dev.burst_item" in warned[0]
    assert int(warned[0].split("(")[1].split()[0]) >= 50  # the queue's bound was reached (taken a few at a time)
    gate.set()
    assert done.wait(60)
    assert wait_until(lambda: len(got) >= 5000, 30)
    assert got[-5000:] == list(range(5000)) and sub.dropped == 0
    sub.close()


def test_a_reliable_callback_stuck_too_long_drops_the_oldest_and_the_link_lives(dev: Any, caplog: Any, monkeypatch: Any) -> None:
    """Pushing back stops zenoh's receiving thread for the whole link (replies too), and zenoh closes
    a link whose publisher waited 5 s: a callback that does not return for ``PUSH_BACK_SECONDS``
    makes the subscription drop the oldest instead, and every sample is accounted for."""
    from heros import subscription

    monkeypatch.setattr(subscription, "PUSH_BACK_SECONDS", 0.5)
    caplog.set_level(logging.WARNING, logger="heros.subscription")
    gate = threading.Event()
    got: list[int] = []
    stuck = threading.Event()

    def callback(value: int) -> None:
        if value == 1:  # the burst's second sample (priming emits only 0)
            stuck.set()
            gate.wait(60)
        got.append(value)

    primes = []  # priming emits until the subscription hears one (it reaches the HERO a little after)
    sub = tools.subscribe(dev, "burst_item", callback, max_samples=50)
    try:
        assert wait_until(lambda: (primes.append(dev.emit_burst(1)), got)[1], 10)
        done = threading.Event()
        threading.Thread(target=lambda: (dev.emit_burst.with_timeout(60)(20000), done.set()), daemon=True).start()
        assert stuck.wait(10)
        assert wait_until(lambda: sub.dropped > 0, 10), "the subscription kept pushing back"
        assert dev.add(1) == 3  # the link to the HERO lives while the callback is still stuck
        assert done.wait(20)  # and the emitter no longer waits for it
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1 and "event dev.burst_item: the callback has not returned" in errors[0]
        gate.set()
        assert wait_until(lambda: len(got) + sub.dropped >= len(primes) + 20000, 20)  # every sample: handed or dropped
        assert len(got) + sub.dropped == len(primes) + 20000
        burst = got[got.index(1):]  # from the sample it was stuck on: the newest, in order
        assert burst[-1] == 19999 and burst == sorted(set(burst))
    finally:
        gate.set()
        sub.close()


def test_a_slow_reliable_callback_that_gets_on_loses_nothing(dev: Any, monkeypatch: Any) -> None:
    """Slow is not stuck: a callback that returns, however slowly, keeps the push-back going."""
    from heros import subscription

    monkeypatch.setattr(subscription, "PUSH_BACK_SECONDS", 0.3)
    got: list[int] = []

    def slow(value: int) -> None:
        time.sleep(0.005)
        got.append(value)

    primes = []  # priming emits until the subscription hears one (each a 0)
    sub = tools.subscribe(dev, "burst_item", slow, max_samples=10)
    try:
        assert wait_until(lambda: (primes.append(dev.emit_burst(1)), got)[1], 10)
        assert dev.emit_burst.with_timeout(60)(400) == 400  # 2 s of callbacks: far longer than PUSH_BACK_SECONDS
        assert wait_until(lambda: len(got) >= len(primes) + 400, 30)
        assert got[len(primes):] == list(range(400)) and sub.dropped == 0
    finally:
        sub.close()


def test_one_subscription_watches_every_attribute(dev: Any) -> None:
    changes: list = []
    subscriptions = lambda: [entity for entity in dev._declared if isinstance(entity, Subscription)]
    before = len(subscriptions())
    sub = tools.watch_attributes(dev, lambda name, value: changes.append((name, value)))
    assert len(subscriptions()) == before + 1
    assert wait_until(lambda: (setattr(dev, "counter", 1), ("counter", 1) in changes)[1], 10)
    dev.label = "x"
    dev.gain = 2.5
    assert wait_until(lambda: ("label", "x") in changes and ("gain", 2.5) in changes)
    sub.close()
