"""The floor: raw zenoh-python with the same payloads as the HERO scenarios.

``floor.py serve REALM`` declares queryables that reply inside their zenoh callback and two
publishers (best effort and reliable); ``floor.py client REALM SCENARIO...`` measures against it.
Needs only zenoh and numpy, so it runs in our virtualenv and in upstream's (other zenoh version).
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
import threading
import time

import numpy as np
import zenoh

from _common import ask, latency_stats, rate, ready, result

# The bytes our codec puts on the wire for ``add(1, 2)``: request [[1, 2], {}], reply 3.
CALL_REQUEST = b"\x92\x92\x01\x02\x80"
CALL_REPLY = b"\x03"
# One event sample: a msgpack float64.
EVENT_PAYLOAD = b"\xcb" + struct.pack(">d", 1.5)
ENCODING = "application/msgpack"


def _session() -> zenoh.Session:
    text = os.environ.get("HEROS_ZENOH_CONFIG")
    if not text:
        sys.exit("floor.py needs HEROS_ZENOH_CONFIG (run it through bench/run.py)")
    return zenoh.open(zenoh.Config.from_json5(text))


def serve(realm: str) -> None:
    session = _session()
    base = f"bench/{realm}"
    arrays: dict[int, np.ndarray] = {}

    def on_call(q: zenoh.Query) -> None:
        q.reply(q.key_expr, CALL_REPLY, encoding=ENCODING)

    def on_array(q: zenoh.Query) -> None:
        nbytes = int(str(q.key_expr).rsplit("/", 1)[1])
        arr = arrays.get(nbytes)
        if arr is None:
            arr = arrays.setdefault(nbytes, np.full(nbytes, 7, dtype=np.uint8))
        q.reply(q.key_expr, zenoh.ZBytes(arr.tobytes()), encoding=ENCODING)

    def on_upload(q: zenoh.Query) -> None:
        arr = np.frombuffer(q.payload.to_bytes(), dtype=np.uint8)
        q.reply(q.key_expr, str(arr.nbytes).encode(), encoding=ENCODING)

    keep = [
        session.declare_queryable(f"{base}/call", on_call),
        session.declare_queryable(f"{base}/array/*", on_array),
        session.declare_queryable(f"{base}/upload", on_upload),
    ]
    pubs = {
        "best": session.declare_publisher(f"{base}/ev", reliability=zenoh.Reliability.BEST_EFFORT, congestion_control=zenoh.CongestionControl.DROP),
        "reliable": session.declare_publisher(f"{base}/evr", reliability=zenoh.Reliability.RELIABLE, congestion_control=zenoh.CongestionControl.BLOCK),
    }
    ready({"zenoh": zenoh.__version__ if hasattr(zenoh, "__version__") else "?"})
    for line in sys.stdin:
        cmd = line.split()
        if cmd and cmd[0] == "emit":
            n, mode = int(cmd[1]), cmd[2]
            pub = pubs[mode]
            t0 = time.perf_counter()
            for _ in range(n):
                pub.put(EVENT_PAYLOAD, encoding=ENCODING)
            print(f"EMITTED {n} {time.perf_counter() - t0:.6f}", flush=True)
    del keep
    session.close()


def client(realm: str, scenarios: list[str], n: int, sizes: list[int], transfers: dict[int, int], events: int) -> None:
    session = _session()
    base = f"bench/{realm}"
    # first contact: the peers may still be finding each other through the hub
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if session.get(f"{base}/call", payload=CALL_REQUEST, encoding=ENCODING, timeout=1).recv().ok is not None:
                break
        except zenoh.ZError:
            time.sleep(0.05)
    for scenario in scenarios:
        if scenario == "rtt_recv":
            result(scenario, latency_stats(_timed(n, lambda: session.get(f"{base}/call", payload=CALL_REQUEST, encoding=ENCODING).recv().ok.payload.to_bytes())))
        elif scenario == "rtt_iter":
            def call_iter() -> None:
                for r in session.get(f"{base}/call", payload=CALL_REQUEST, encoding=ENCODING):
                    r.ok.payload.to_bytes()
            result(scenario, latency_stats(_timed(n, call_iter)))
        elif scenario == "array_get":
            for size in sizes:
                key = f"{base}/array/{size}"
                def get() -> None:
                    data = session.get(key).recv().ok.payload.to_bytes()
                    arr = np.frombuffer(data, dtype=np.uint8)
                    assert arr.nbytes == size
                samples = _timed(transfers[size], get, warmup=1)
                result(f"{scenario}_{size}", _mib(size, samples))
        elif scenario == "array_put":
            for size in sizes:
                arr = np.full(size, 3, dtype=np.uint8)
                def put() -> None:
                    reply = session.get(f"{base}/upload", payload=zenoh.ZBytes(arr.tobytes()), encoding=ENCODING).recv()
                    assert int(reply.ok.payload.to_bytes()) == size
                samples = _timed(transfers[size], put, warmup=1)
                result(f"{scenario}_{size}", _mib(size, samples))
        elif scenario in ("events_best", "events_reliable"):
            mode = scenario.split("_")[1]
            result(scenario, _events(session, f"{base}/ev" if mode == "best" else f"{base}/evr", mode, events))
        else:
            raise SystemExit(f"unknown floor scenario {scenario!r}")
    session.close()


def _timed(n: int, fn, warmup: int | None = None) -> list[int]:
    for _ in range(min(200, n) if warmup is None else warmup):
        fn()
    samples = []
    clock = time.perf_counter_ns
    for _ in range(n):
        t0 = clock()
        fn()
        samples.append(clock() - t0)
    return samples


def _mib(size: int, samples_ns: list[int]) -> dict[str, float]:
    stats = latency_stats(samples_ns)
    return {"bytes": size, "mib_s": size / 2**20 / (stats["median_us"] / 1e6), **stats}


def _events(session: zenoh.Session, key: str, mode: str, n: int) -> dict[str, float]:
    state = {"count": 0, "first": 0.0, "last": 0.0}
    lock = threading.Lock()

    def on_sample(sample: zenoh.Sample) -> None:
        sample.payload.to_bytes()
        now = time.perf_counter()
        with lock:
            if state["count"] == 0:
                state["first"] = now
            state["count"] += 1
            state["last"] = now

    sub = session.declare_subscriber(key, on_sample)
    time.sleep(0.3)  # let the subscription reach the publisher's session
    return _await_events(state, lock, mode, n, sub)


def _await_events(state: dict, lock: threading.Lock, mode: str, n: int, sub) -> dict[str, float]:
    answer = ask(f"emit {n} {mode}").split()
    sent, emit_seconds = int(answer[1]), float(answer[2])
    idle_since = time.monotonic()
    seen = -1
    while True:
        with lock:
            count = state["count"]
        if count >= sent:
            break
        if count != seen:
            seen, idle_since = count, time.monotonic()
        elif time.monotonic() - idle_since > 1.0:
            break
        time.sleep(0.002)
    sub.undeclare()
    with lock:
        received, span = state["count"], state["last"] - state["first"]
    return {
        "sent": sent,
        "received": received,
        "lost": sent - received,
        "loss": (sent - received) / sent if sent else 0.0,
        "rate_per_s": rate(received, span),
        "emit_rate_per_s": rate(sent, emit_seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("role", choices=["serve", "client"])
    parser.add_argument("realm")
    parser.add_argument("scenarios", nargs="*")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--sizes", default="1048576,67108864")
    parser.add_argument("--transfers", default="100,8", help="timed transfers per size")
    parser.add_argument("--events", type=int, default=100000)
    args = parser.parse_args()
    if args.role == "serve":
        serve(args.realm)
    else:
        sizes = [int(s) for s in args.sizes.split(",")]
        transfers = dict(zip(sizes, (int(t) for t in args.transfers.split(",")), strict=True))
        client(args.realm, args.scenarios, args.n, sizes, transfers, args.events)


if __name__ == "__main__":
    main()
