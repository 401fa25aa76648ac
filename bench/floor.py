"""The floor: raw zenoh-python with the same payloads as the HERO scenarios.

``floor.py serve REALM`` declares queryables that reply inside their zenoh callback and two
publishers (best effort and reliable); ``floor.py client REALM SCENARIO...`` measures against it.
Needs only zenoh and numpy (msgpack for the coded events), so it runs in our virtualenv and in
upstream's (other zenoh version).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import struct
import sys
import time
from typing import Any

import numpy as np
import zenoh
from _common import EventCounter, latency_stats, ready, result, timed

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

    # complete, as our HEROs' queryables are: a query then goes straight to this process, never
    # also through the hub (which costs a router hop per query)
    keep = [
        session.declare_queryable(f"{base}/call", on_call, complete=True),
        session.declare_queryable(f"{base}/array/*", on_array, complete=True),
        session.declare_queryable(f"{base}/upload", on_upload, complete=True),
    ]
    # the other way a call can go: the request published, the answer published back (heros.rpc);
    # answered inside zenoh's callback as the queryables are
    pong = session.declare_publisher(f"{base}/pong")
    keep.append(session.declare_subscriber(f"{base}/ping", lambda sample: pong.put(CALL_REPLY, encoding=ENCODING)))
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
            if cmd[3:] == ["encoded"]:  # each value packed as it is published, as an emitter must
                import msgpack  # not in upstream's virtualenv, which never asks for this

                for i in range(n):
                    pub.put(msgpack.packb(1.5 + i), encoding=ENCODING)
            else:
                for _ in range(n):
                    pub.put(EVENT_PAYLOAD, encoding=ENCODING)
            print(f"EMITTED {n} {time.perf_counter() - t0:.6f}", flush=True)
    del keep
    session.close()


class Floor:
    """Raw zenoh requests against ``floor.py serve REALM``, through any zenoh session."""

    def __init__(self, session: zenoh.Session, realm: str) -> None:
        self.session = session
        self.base = f"bench/{realm}"
        self.call_key = f"{self.base}/call"

    def wait(self, timeout: float = 10.0) -> None:
        """Until the server answers (the peers may still be finding each other through the hub)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.session.get(self.call_key, payload=CALL_REQUEST, encoding=ENCODING, timeout=1).recv().ok is not None:
                    return
            except zenoh.ZError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the floor server does not answer")
            time.sleep(0.05)

    def call(self) -> bytes:
        """One query round trip, first reply taken with ``recv()``."""
        return self.session.get(self.call_key, payload=CALL_REQUEST, encoding=ENCODING).recv().ok.payload.to_bytes()

    def exchange(self) -> Any:
        """One request published and its answer published back, taken from a channel: the raw
        zenoh floor of a call published to a HERO (``heros.rpc``). Made on first use."""
        ping = self.session.declare_publisher(f"{self.base}/ping")
        answers = self.session.declare_subscriber(f"{self.base}/pong", zenoh.handlers.FifoChannel(16))
        recv = answers.handler.recv
        deadline = time.monotonic() + 10
        while not ping.matching_status.matching:  # the server's subscriber is known here
            if time.monotonic() > deadline:
                raise RuntimeError("the floor server does not subscribe for exchanges")
            time.sleep(0.01)

        def exchange() -> bytes:
            ping.put(CALL_REQUEST, encoding=ENCODING)
            return recv().payload.to_bytes()

        exchange.keep = (ping, answers)  # type: ignore[attr-defined]
        return exchange

    def call_iter(self) -> None:
        """One query round trip, iterating the reply channel to its end."""
        for r in self.session.get(self.call_key, payload=CALL_REQUEST, encoding=ENCODING):
            r.ok.payload.to_bytes()

    def array_get(self, size: int) -> np.ndarray:
        data = self.session.get(f"{self.base}/array/{size}").recv().ok.payload.to_bytes()
        arr = np.frombuffer(data, dtype=np.uint8)
        assert arr.nbytes == size
        return arr

    def array_put(self, arr: np.ndarray) -> None:
        reply = self.session.get(f"{self.base}/upload", payload=zenoh.ZBytes(arr.tobytes()), encoding=ENCODING).recv()
        assert int(reply.ok.payload.to_bytes()) == arr.nbytes

    def events(self, mode: str, n: int, *, coded: bool = False, shaped: bool = False, asker: Any = None) -> dict[str, float]:
        """Raw pub/sub: samples taken by zenoh-python's callback thread; ``coded``: each value packed by
        the publisher and unpacked by the subscriber (msgpack), as a HEROS event must be; ``shaped``
        (coded too): the samples wait in a zenoh channel (FIFO of 1,024 samples when reliable, a ring
        otherwise, as a HERO subscription's) that a Python thread drains, as a HERO subscription
        must run so that no callback holds zenoh's own thread. The thread takes the waiting samples
        with ``try_recv`` and waits in ``recv`` only when there are none (a ``recv`` for every
        sample, as iterating the channel does, gave 4-6 % fewer events/s in alternating rounds)."""
        counter = EventCounter()
        if shaped:
            import threading

            import msgpack

            unpackb = msgpack.unpackb
            handler = zenoh.handlers.FifoChannel(1024) if mode == "reliable" else zenoh.handlers.RingChannel(100_000)
            sub = self.session.declare_subscriber(f"{self.base}/ev" if mode == "best" else f"{self.base}/evr", handler)

            channel = sub.handler  # not the subscriber: a thread waiting in its recv would keep it from undeclaring

            def drain() -> None:
                # what waits is taken without a wait (try_recv: no GIL released and taken back per
                # sample); recv only once the channel is empty, so the thread sleeps until the next
                try_recv, recv = channel.try_recv, channel.recv
                try:
                    while True:
                        sample = try_recv()
                        if sample is None:
                            sample = recv()
                        counter(unpackb(sample.payload.to_bytes()))
                except zenoh.ZError:  # undeclared
                    pass

            threading.Thread(target=drain, daemon=True).start()
        elif coded:
            import msgpack

            unpackb = msgpack.unpackb
            sub = self.session.declare_subscriber(f"{self.base}/ev" if mode == "best" else f"{self.base}/evr",
                                                  lambda sample: counter(unpackb(sample.payload.to_bytes())))
        else:
            sub = self.session.declare_subscriber(f"{self.base}/ev" if mode == "best" else f"{self.base}/evr",
                                                  lambda sample: counter(sample.payload.to_bytes()))
        time.sleep(0.3)  # let the subscription reach the publisher's session
        try:
            return counter.run("floor", f"{mode} encoded" if coded or shaped else mode, n, asker=asker)
        finally:
            sub.undeclare()


def client(realm: str, scenarios: list[str], n: int, sizes: list[int], transfers: dict[int, int], events: int) -> None:
    session = _session()
    floor = Floor(session, realm)
    floor.wait()
    for scenario in scenarios:
        if scenario == "rtt_recv":
            result(scenario, latency_stats(timed(n, floor.call)))
        elif scenario == "rtt_iter":
            result(scenario, latency_stats(timed(n, floor.call_iter)))
        elif scenario == "array_get":
            for size in sizes:
                result(f"{scenario}_{size}", mib_stats(size, timed(transfers[size], lambda size=size: floor.array_get(size), warmup=1)))
        elif scenario == "array_put":
            for size in sizes:
                arr = np.full(size, 3, dtype=np.uint8)
                result(f"{scenario}_{size}", mib_stats(size, timed(transfers[size], lambda arr=arr: floor.array_put(arr), warmup=1)))
        elif scenario in ("events_best", "events_reliable"):
            result(scenario, floor.events(scenario.split("_")[1], events))
            if importlib.util.find_spec("msgpack"):  # not in upstream's virtualenv: its coded floor is ours
                result(f"{scenario}_coded", floor.events(scenario.split("_")[1], events, coded=True))
        else:
            raise SystemExit(f"unknown floor scenario {scenario!r}")
    session.close()


def mib_stats(size: int, samples_ns: list[int]) -> dict[str, float]:
    """Latency statistics of transfers of ``size`` bytes, with the MiB/s of the median transfer."""
    stats = latency_stats(samples_ns)
    return {"bytes": size, "mib_s": size / 2**20 / (stats["median_us"] / 1e6), **stats}


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
