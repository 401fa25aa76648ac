"""HERO scenarios, written once against the upstream HEROS API so that the same code runs with our
``heros`` and with upstream ``heros`` 2026.2.2 (each in its own virtualenv).

Roles: ``serve REALM --count K`` serves K ``Bench`` HEROs (``bench0`` ...); ``client REALM
SCENARIO...`` measures against ``bench0``; ``discovery REALM --count K`` times an observer finding
K HEROs from a fresh process; ``memory REALM --count K`` reports the RSS a served HERO costs.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import sys
import threading
import time
import tracemalloc

import numpy as np
from _common import EventCounter, ask, latency_stats, paired, ready, result, rss_bytes, wait_until
from floor import Floor, _session, mib_stats

import heros
from heros import HEROObserver, HEROPeer, LocalHERO, RemoteHERO, event
from heros.event import reliable

#: Whether msgpack is here for the coded floor (upstream's virtualenv, which runs this file too, lacks it).
_CODED = importlib.util.find_spec("msgpack") is not None


class Bench(LocalHERO):
    """What every HERO scenario talks to."""

    value: int = 41
    gain: float = 1.0

    def add(self, a: int, b: int) -> int:
        return a + b

    def array(self, nbytes: int) -> np.ndarray:
        arrays = self.__dict__.setdefault("_arrays", {})
        arr = arrays.get(nbytes)
        if arr is None:
            arr = arrays[nbytes] = np.full(nbytes, 7, dtype=np.uint8)
        return arr

    def upload(self, arr: np.ndarray) -> int:
        return int(arr.nbytes)

    @event
    def tick(self, x: float) -> float:
        return x

    @reliable
    @event
    def tick_r(self, x: float) -> float:
        return x

    def stream(self, rate_hz: float, seconds: float) -> int:
        """Emit ``tick`` at ``rate_hz`` for ``seconds`` on a thread; returns how many it will send."""
        n = int(rate_hz * seconds)
        self.__dict__["_streamed"] = 0

        def run() -> None:
            start = time.perf_counter()
            for i in range(n):
                delay = start + i / rate_hz - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                self.tick(float(i % 100))
                self.__dict__["_streamed"] += 1

        threading.Thread(target=run, daemon=True).start()
        return n

    def streamed(self) -> int:
        return self.__dict__.get("_streamed", 0)


def _implementation() -> dict[str, str]:
    return {"heros_file": os.path.dirname(heros.__file__), "heros_version": getattr(heros, "__version__", "?")}


def serve(realm: str, count: int) -> None:
    objs = [Bench(f"bench{i}", realm=realm) for i in range(count)]
    ready(_implementation())
    for line in sys.stdin:
        cmd = line.split()
        if cmd and cmd[0] == "emit":
            n, mode = int(cmd[1]), cmd[2]
            emit = objs[0].tick if mode == "best" else objs[0].tick_r
            t0 = time.perf_counter()
            for _ in range(n):
                emit(1.5)
            print(f"EMITTED {n} {time.perf_counter() - t0:.6f}", flush=True)
        elif cmd and cmd[0] == "memory":
            gc.collect()
            print(json.dumps(_memory()), flush=True)
    for obj in objs:
        obj._destroy_hero()


def connect_cold(realm: str) -> None:
    attempts = 0
    t0 = time.perf_counter_ns()
    while True:  # a fresh session may not know its peers yet; upstream then raises NameError at once
        attempts += 1
        try:
            proxy = RemoteHERO("bench0", realm=realm)
            break
        except NameError:
            if attempts >= 50:
                raise
    t1 = time.perf_counter_ns()
    assert proxy.add(1, 2) == 3
    result("connect_cold", {"seconds": (t1 - t0) / 1e9, "attempts": attempts})
    proxy._destroy_hero()


def _with_floor(ours: list[int], floor: list[int]) -> dict:
    return {**latency_stats(ours), "floor": latency_stats(floor)}


def _transfer(size: int, ours: list[int], floor: list[int]) -> dict:
    return {**mib_stats(size, ours), "floor": mib_stats(size, floor)}


def first_contact(realm: str, name: str = "bench0", timeout: float = 15.0) -> RemoteHERO:
    """A proxy of ``name``, asked for again until found: the peers may still be finding each other
    through the hub (upstream's RemoteHERO raises NameError at once then)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return RemoteHERO(name, realm=realm)
        except NameError:
            if time.monotonic() > deadline:
                raise


def client(realm: str, floor_realm: str, scenarios: list[str], n: int, sizes: list[int], transfers: dict[int, int], events: int,
           connects: int, rounds: int) -> None:
    # Holds the realm's session for the whole run: upstream's session manager counts referrers by
    # equality, so destroying a second proxy of bench0 would otherwise close the session under the first.
    keeper = HEROPeer(realm=realm)
    proxy = first_contact(realm)
    # the floor, measured in alternating blocks through this very session
    floor = Floor(keeper._session, floor_realm)
    floor.wait()
    # large payloads: the floor through a session of zenoh's own settings (HEROS sessions queue more
    # batches per link, which speeds up large messages over TCP: that is ours, not zenoh's floor)
    raw_floor = None
    if any(s in ("array_get", "array_put") for s in scenarios):
        raw_floor = Floor(_session(), floor_realm)
        raw_floor.wait()
    for scenario in scenarios:
        if scenario == "connect_warm":
            def connect() -> None:
                RemoteHERO("bench0", realm=realm)._destroy_hero()
            result(scenario, _with_floor(*paired(connects, connect, floor.call, block=max(1, connects // 10), warmup=2, floor_times=10)))
        elif scenario == "connect_observed":
            observer, misses = _observer_seeing(realm, 1)
            def connect_known() -> None:
                observer.get_object("bench0")._destroy_hero()
            stats = _with_floor(*paired(connects, connect_known, floor.call, block=max(1, connects // 10), warmup=2, floor_times=10))
            result(scenario, {**stats, "observer_misses": misses})
            observer._destroy_hero()
        elif scenario == "call":
            assert proxy.add(1, 2) == 3
            result(scenario, _with_floor(*paired(n, lambda: proxy.add(1, 2), floor.call)))
        elif scenario == "attr_get":
            assert proxy.value == 41
            result(scenario, _with_floor(*paired(n, lambda: proxy.value, floor.call)))
        elif scenario == "attr_set":
            def write() -> None:
                proxy.gain = 2.5
            result(scenario, _with_floor(*paired(n, write, floor.call)))
        elif scenario == "array_get":
            for size in sizes:
                def get(size: int = size) -> None:
                    assert proxy.array(size).nbytes == size
                ours, raw = paired(transfers[size], get, lambda size=size: raw_floor.array_get(size), block=1, warmup=1)
                result(f"{scenario}_{size}", _transfer(size, ours, raw))
        elif scenario == "array_put":
            for size in sizes:
                arr = np.full(size, 3, dtype=np.uint8)
                def put(arr: np.ndarray = arr) -> None:
                    assert proxy.upload(arr) == arr.nbytes
                ours, raw = paired(transfers[size], put, lambda arr=arr: raw_floor.array_put(arr), block=1, warmup=1)
                result(f"{scenario}_{size}", _transfer(size, ours, raw))
        elif scenario in ("events_best", "events_reliable"):
            mode = scenario.split("_")[1]
            ours, raw, coded, shaped = [], [], [], []
            order = [(ours, lambda: _events(proxy, mode, events)), (raw, lambda: floor.events(mode, events))]
            if _CODED:  # the floor coded as our events must be (msgpack each way), and also drained by a Python thread
                order.append((coded, lambda: floor.events(mode, events, coded=True)))
                order.append((shaped, lambda: floor.events(mode, events, shaped=True)))
            for i in range(rounds):
                for runs, fn in order if i % 2 == 0 else order[::-1]:
                    runs.append(fn())
            best = sorted(ours, key=lambda r: r["rate_per_s"])[len(ours) // 2]
            extra = {f"floor_{name}": {**sorted(runs, key=lambda r: r["rate_per_s"])[len(runs) // 2], "rounds": runs}
                     for name, runs in (("coded", coded), ("shaped", shaped)) if runs}
            result(scenario, {**best, "lost": sum(r["lost"] for r in ours), "sent": sum(r["sent"] for r in ours),
                              "loss": sum(r["lost"] for r in ours) / sum(r["sent"] for r in ours), "rounds": ours,
                              "floor": {**sorted(raw, key=lambda r: r["rate_per_s"])[len(raw) // 2], "rounds": raw}, **extra})
        else:
            raise SystemExit(f"unknown HERO scenario {scenario!r}")
    proxy._destroy_hero()
    keeper._destroy_hero()


def _events(proxy: RemoteHERO, mode: str, n: int) -> dict[str, float]:
    counter = EventCounter()
    handler = proxy.tick if mode == "best" else proxy.tick_r
    handler.connect(counter)
    time.sleep(0.3)  # let the subscription reach the HERO's session
    try:
        return counter.run("server", mode, n)
    finally:
        handler.disconnect(counter)


def _observer_seeing(realm: str, count: int, timeout: float = 2.0) -> tuple[HEROObserver, int]:
    """A HEROObserver that knows ``count`` HEROs, and how many observers before it missed some.

    An observer's initial snapshot can miss running HEROs (their liveliness tokens did not show in
    its first query, and they will not join again); such observers are counted and replaced.
    """
    misses = 0
    for _ in range(10):
        observer = HEROObserver(realm=realm)
        if wait_until(lambda: len(observer.known_objects) >= count, timeout, poll=0.0005):
            return observer, misses
        observer._destroy_hero()
        misses += 1
    raise RuntimeError(f"10 observers in a row did not find the {count} HEROs of realm {realm!r}")


def discovery(realm: str, count: int, repeats: int) -> None:
    t0 = time.perf_counter_ns()
    observer, misses = _observer_seeing(realm, count, timeout=30 if count > 1 else 10)
    t1 = time.perf_counter_ns()
    result("discovery_cold", {"seconds": (t1 - t0) / 1e9, "found": len(observer.known_objects), "observer_misses": misses})
    times, missed = [], 0
    for _ in range(repeats + 1):
        t0 = time.perf_counter_ns()
        other = HEROObserver(realm=realm)
        if wait_until(lambda: len(other.known_objects) >= count, 2.0, poll=0.0005):
            times.append(time.perf_counter_ns() - t0)
        else:
            missed += 1
        other._destroy_hero()
    if len(times) < 2:
        raise RuntimeError(f"warm observers found all {count} HEROs only {len(times)} times of {repeats + 1}")
    result("discovery_warm", {**latency_stats(times[1:]), "observer_misses": missed})
    observer._destroy_hero()


def _memory() -> dict[str, float]:
    """This process's resident memory in MiB: all, its own (anonymous) and mapped shared memory."""
    fields = {"VmRSS:": "rss", "RssAnon:": "anon", "RssShmem:": "shmem"}
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            name = line.split()[0] if line.strip() else ""
            if name in fields:
                out[fields[name]] = int(line.split()[1]) / 1024
    return out


def churn(realm: str, count: int, size: int) -> None:
    """``count`` transfers of ``size`` bytes (a get and a put in turn): this process's RSS, and its
    shared memory (ours only) before and after, after one warm-up transfer each way."""
    proxy = RemoteHERO("bench0", realm=realm)
    arr = np.full(size, 3, dtype=np.uint8)
    assert proxy.array(size).nbytes == size and proxy.upload(arr) == size
    gc.collect()
    before, server_before = _memory(), json.loads(ask("server", "memory"))
    t0 = time.perf_counter()
    for i in range(count):
        if i % 2:
            assert proxy.upload(arr) == size
        else:
            assert proxy.array(size).nbytes == size
    seconds = time.perf_counter() - t0
    gc.collect()
    after, server_after = _memory(), json.loads(ask("server", "memory"))
    shm: dict = {}
    try:
        import heros.zenoh as hz

        shm = hz.shared_memory()
    except (ImportError, AttributeError):  # upstream
        pass
    result("churn", {"transfers": count, "bytes": size, "seconds": seconds, "mib_s": count * size / 2**20 / seconds,
                     "client_rss_before_mib": before, "client_rss_after_mib": after, "client_shared_memory": shm,
                     "server_rss_before_mib": server_before, "server_rss_after_mib": server_after})
    proxy._destroy_hero()


def memory(realm: str, count: int) -> None:
    first = Bench("mem_first", realm=realm)
    gc.collect()
    time.sleep(0.3)
    before = rss_bytes()
    objs = [Bench(f"mem{i}", realm=realm) for i in range(count)]
    gc.collect()
    time.sleep(0.5)
    after = rss_bytes()
    # The RSS moves with where the allocator's pages happen to fill (by 0.1-0.3 MiB per 100 with the
    # same code at another path, bench/RESULTS.md); the Python heap that the same number of HEROs
    # more takes, traced, does not.
    tracemalloc.start()
    traced = tracemalloc.take_snapshot()
    more = [Bench(f"memh{i}", realm=realm) for i in range(count)]
    gc.collect()
    heap = sum(stat.size_diff for stat in tracemalloc.take_snapshot().compare_to(traced, "filename"))
    tracemalloc.stop()
    result("memory", {"heros": count, "rss_before_mib": before / 2**20, "rss_after_mib": after / 2**20,
                      "delta_per_100_mib": (after - before) / count * 100 / 2**20,
                      "per_hero_kib": (after - before) / count / 1024,
                      "heap_per_100_mib": heap / count * 100 / 2**20})
    for obj in [*objs, *more, first]:
        obj._destroy_hero()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("role", choices=["serve", "client", "connect_cold", "discovery", "memory", "churn"])
    parser.add_argument("realm")
    parser.add_argument("scenarios", nargs="*")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--connects", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", default="1048576,67108864")
    parser.add_argument("--transfers", default="100,8")
    parser.add_argument("--events", type=int, default=100000)
    parser.add_argument("--rounds", type=int, default=3, help="event runs per side, alternating with the floor")
    parser.add_argument("--floor-realm", help="realm of the floor.py server to pair the client scenarios with")
    args = parser.parse_args()
    if args.role == "serve":
        serve(args.realm, args.count)
    elif args.role == "client":
        sizes = [int(s) for s in args.sizes.split(",")]
        transfers = dict(zip(sizes, (int(t) for t in args.transfers.split(",")), strict=True))
        client(args.realm, args.floor_realm, args.scenarios, args.n, sizes, transfers, args.events, args.connects, args.rounds)
    elif args.role == "connect_cold":
        connect_cold(args.realm)
    elif args.role == "discovery":
        discovery(args.realm, args.count, args.repeats)
    elif args.role == "churn":
        churn(args.realm, args.count, int(args.sizes.split(",")[0]))
    else:
        memory(args.realm, args.count)
    # zenoh-python may keep non-daemon threads: leave promptly once everything is reported
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
