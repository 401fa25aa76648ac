"""Where the time of one event goes: the emitter's and the subscriber's cost per event, next to raw zenoh.

    python bench/profile_events.py [--events 100000]

One process, one zenoh session with no network at all (no scouting, no endpoints): the
publications go to a subscriber of the same session, so what is measured is the Python work
per event and zenoh-python's own calls, without the other side competing for the CPU.

Emitter, per event (best of five runs):

- ``put``: ``publisher.put(payload)`` of ready bytes (what ``floor.py`` does);
- ``encode + put``: our codec's ``encode`` of the value, then ``put``;
- ``emit``: ``hero.tick(1.5)``, a LocalHERO ``@event`` (runs the method, encodes, publishes).

Subscriber, per sample (samples waiting in the channel are taken in one go):

- ``bare``: take a sample from a zenoh channel, read its payload bytes, count it;
- ``subscription``: our ``RemoteHERO`` event subscription (read payload and encoding, decode,
  run the connected callback), timed on its own thread.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

# a session that meets nobody: the publisher and subscribers live in this process
os.environ["HEROS_ZENOH_CONFIG"] = json.dumps({
    "mode": "peer",
    "scouting": {"multicast": {"enabled": False}, "gossip": {"enabled": False}},
    "listen": {"endpoints": []},
    "connect": {"endpoints": []},
})

import zenoh  # noqa: E402

from heros import LocalHERO, RemoteHERO, codec, event, keys  # noqa: E402
from heros import zenoh as z  # noqa: E402

REALM = "profile-events"


class Source(LocalHERO):
    @event
    def tick(self, x: float) -> float:
        return x


def _best(n: int, fn) -> float:
    """ns per call of ``fn(1.5)``, best of five runs of ``n`` calls."""
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter_ns()
        for _ in range(n):
            fn(1.5)
        best = min(best, (time.perf_counter_ns() - t0) / n)
    return best


def _drain_time(n: int, fill, start_draining) -> float:
    """ns per sample for a receiver that finds ``n`` samples waiting and takes them all."""
    fill(n)
    return start_draining(n) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000, help="events per run (at most 100000)")
    args = parser.parse_args()
    n = min(args.events, 100_000)

    hero = Source("source", realm=REALM)
    session = hero._session
    key = keys.event_key(REALM, "source", "tick")
    sink = session.declare_subscriber(key, zenoh.handlers.RingChannel(1))  # makes the event publish
    publisher = z.declare_publisher(session, f"{REALM}/raw", reliable=False, encoding=codec.ENCODING)
    raw_sink = session.declare_subscriber(f"{REALM}/raw", zenoh.handlers.RingChannel(1))
    deadline = time.monotonic() + 5
    while not (hero.tick._matching.matching or z.has_subscribers(hero.tick._publisher)):
        if time.monotonic() > deadline:
            raise SystemExit("the event's publisher never saw its subscriber")
        time.sleep(0.001)
    payload, _ = codec.encode(1.5)
    emitter = {
        "put": _best(n, lambda _x: publisher.put(payload)),
        "encode + put": _best(n, lambda x: publisher.put(codec.encode(x)[0])),
        "emit": _best(n, hero.tick),
    }
    sink.undeclare()
    raw_sink.undeclare()

    # bare: a zenoh channel drained by this thread
    bare_sub = session.declare_subscriber(f"{REALM}/bare", zenoh.handlers.RingChannel(n + 10))
    bare_pub = z.declare_publisher(session, f"{REALM}/bare", reliable=False, encoding=codec.ENCODING)

    def bare_fill(count: int) -> None:
        for _ in range(count):
            bare_pub.put(payload)

    def bare_drain(count: int) -> float:
        channel, seen = bare_sub.handler, []
        t0 = time.perf_counter_ns()
        sample = channel.try_recv()  # never waits: the samples were all put before
        while sample is not None:
            seen.append(sample.payload.to_bytes())
            sample = channel.try_recv()
        elapsed = time.perf_counter_ns() - t0
        if len(seen) != count:
            raise SystemExit(f"the bare channel held {len(seen)} of {count} samples")
        return elapsed

    # ours: the proxy's subscription thread, held in its first callback while the samples queue up
    proxy = RemoteHERO("source", realm=REALM)
    hold, done = threading.Event(), threading.Event()
    state = {"count": 0, "t0": 0}

    def on_tick(_value: float) -> None:
        if state["count"] == 0:
            hold.wait(30)
            state["t0"] = time.perf_counter_ns()
        state["count"] += 1
        if state["count"] == state["target"]:
            state["t1"] = time.perf_counter_ns()
            done.set()

    def ours_drain(count: int) -> float:
        hold.set()
        if not done.wait(60):
            raise SystemExit(f"the subscription took {state['count']} of {count} samples")
        return (state["t1"] - state["t0"]) * count / (count - 1)  # the first one waited for the rest

    results: dict[str, dict[str, float]] = {"emitter_ns": emitter, "subscriber_ns": {}}
    results["subscriber_ns"]["bare"] = _drain_time(n, bare_fill, bare_drain)
    state["target"] = n
    proxy.tick.connect(on_tick)
    deadline = time.monotonic() + 5
    while not z.has_subscribers(hero.tick._publisher):
        if time.monotonic() > deadline:
            raise SystemExit("the proxy's subscription never reached the event")
        time.sleep(0.001)
    results["subscriber_ns"]["subscription"] = _drain_time(n, lambda count: [hero.tick(1.5) for _ in range(count)], ours_drain)
    proxy._destroy_hero()
    hero._destroy_hero()

    print("emitter, ns per event:     " + "   ".join(f"{k} {v:.0f}" for k, v in emitter.items()))
    print("subscriber, ns per sample: " + "   ".join(f"{k} {v:.0f}" for k, v in results["subscriber_ns"].items()))
    print(json.dumps({k: {kk: round(vv) for kk, vv in v.items()} for k, v in results.items()}))


if __name__ == "__main__":
    main()
