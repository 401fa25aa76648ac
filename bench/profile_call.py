"""Where the time of one call goes: CPU per call in every process, next to the raw zenoh floor.

    python bench/profile_call.py [--calls 3000]

On a machine with few cores the latency of a round trip follows the CPU every process spends on
it, so this script measures, for ``add(1, 2)``, the median latency and the CPU per call of the
client's calling thread, the whole client process, the serving process (by thread name) and the
hub. Five servers answer `add(1, 2)`:

- ``floor``: raw zenoh, the reply sent inside zenoh's callback (what ``floor.py`` measures);
- ``floor-thread``: raw zenoh, the query taken from a channel by a Python thread, as our HEROs do
  (the cost of never running a call on zenoh's threads);
- ``floor-shaped``: raw zenoh shaped as a HERO must be, and nothing else: a wildcard queryable
  (``<name>/**``; the method's key anchored with a liveliness token, ``heros.zenoh.anchor_key``)
  drained by a Python thread, the request's bytes msgpack-decoded, ``add`` called, the result
  msgpack-encoded and replied with the encoding; the client encodes the arguments and decodes the
  reply (the floor any HERO on zenoh-python reaches);
- ``heros-raw``: our HERO, asked with the floor's raw ``session.get`` (the serving side alone);
- ``heros``: our HERO through ``RemoteHERO`` (both sides).

Every process gets the same loopback configuration (a hub on 127.0.0.1, multicast off). The five
take turns in blocks of 500 calls, so that they see the same machine load.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import zenoh  # noqa: E402
from _common import latency_stats, threads_cpu  # noqa: E402
from floor import CALL_REPLY, CALL_REQUEST, ENCODING  # noqa: E402

REALM = "profile"


def _cpu(pid: int) -> dict[str, float]:
    """CPU seconds used so far by each thread name of process ``pid``."""
    out: dict[str, float] = {}
    for (_, name), seconds in threads_cpu(pid).items():
        out[name] = out.get(name, 0.0) + seconds
    return out


def _serve_floor() -> None:
    session = zenoh.open(zenoh.Config.from_json5(os.environ["HEROS_ZENOH_CONFIG"]))
    encoding = zenoh.Encoding(ENCODING)
    inline = session.declare_queryable("profile/floor", lambda q: q.reply(q.key_expr, CALL_REPLY, encoding=encoding), complete=True)
    channel = session.declare_queryable("profile/thread", zenoh.handlers.RingChannel(1000), complete=True)

    def work() -> None:
        handler = channel.handler
        while True:
            try:
                q = handler.recv()
            except zenoh.ZError:  # undeclared
                return
            q.reply(q.key_expr, CALL_REPLY, encoding=encoding)
            q.drop()

    import msgpack

    shaped = session.declare_queryable("profile/shaped/**", zenoh.handlers.RingChannel(1000), complete=True)
    anchor = session.liveliness().declare_token("profile/shaped/add")
    methods = {"add": lambda a, b: a + b}

    def work_shaped() -> None:
        handler = shaped.handler
        while True:
            try:
                q = handler.recv()
            except zenoh.ZError:  # undeclared
                return
            key = q.key_expr
            args, kwargs = msgpack.unpackb(q.payload.to_bytes())
            result = methods[str(key).rsplit("/", 1)[1]](*args, **kwargs)
            q.reply(key, msgpack.packb(result), encoding=encoding)
            q.drop()

    threading.Thread(target=work, daemon=True).start()
    threading.Thread(target=work_shaped, daemon=True).start()
    print("READY", flush=True)
    sys.stdin.read()
    inline.undeclare()
    channel.undeclare()
    shaped.undeclare()
    anchor.undeclare()
    session.close()


def _serve_hero() -> None:
    from heros import LocalHERO

    class Bench(LocalHERO):
        def add(self, a: int, b: int) -> int:
            return a + b

    hero = Bench("bench0", realm=REALM)
    print("READY", flush=True)
    sys.stdin.read()
    hero._destroy_hero()


def _start(*args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, __file__, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if line.strip() != "READY":
        raise RuntimeError(f"{args[0]} did not start: {line!r}")
    return proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--port", type=int, default=17_990)
    parser.add_argument("--role", choices=["hub", "floor", "hero"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "hub":
        from heros.zenoh import open_hub

        hub = open_hub(args.port)
        print("READY", flush=True)
        sys.stdin.read()
        hub.close()
        return
    if args.role == "floor":
        return _serve_floor()
    if args.role == "hero":
        return _serve_hero()

    from heros.zenoh import loopback_config

    os.environ["HEROS_ZENOH_CONFIG"] = loopback_config(args.port)
    procs = {"hub": _start("--role", "hub", "--port", str(args.port))}
    procs["floor"] = _start("--role", "floor")
    procs["hero"] = _start("--role", "hero")
    from heros import HEROPeer, RemoteHERO

    keeper = HEROPeer(realm=REALM)
    proxy = RemoteHERO("bench0", realm=REALM, discovery_timeout=10)
    session = keeper._session
    encoding = zenoh.Encoding(ENCODING)

    def raw(key: str):
        return lambda: session.get(key, payload=CALL_REQUEST, encoding=encoding).recv().ok.payload.to_bytes()

    import msgpack

    def shaped() -> object:
        reply = session.get("profile/shaped/add", payload=msgpack.packb([[1, 2], {}]), encoding=encoding).recv()
        return msgpack.unpackb(reply.ok.payload.to_bytes())

    cases = {
        "floor": (raw("profile/floor"), "floor"),
        "floor-thread": (raw("profile/thread"), "floor"),
        "floor-shaped": (shaped, "floor"),
        "heros-raw": (raw(f"@object/{REALM}/bench0/add"), "hero"),
        "heros": (lambda: proxy.add(1, 2), "hero"),
    }
    for fn, _ in cases.values():
        for _ in range(300):
            fn()
    # The cases take turns in blocks (in reverse order every other round), so a change in the
    # machine's load during the run falls on all of them alike.
    block = min(500, args.calls)  # long enough for /proc's CPU ticks (10 ms) to average out
    samples: dict[str, list[int]] = {name: [] for name in cases}
    cpu: dict[str, dict[str, float]] = {name: {"thread": 0.0, "process": 0.0, "hub": 0.0} for name in cases}
    server_cpu: dict[str, dict[str, float]] = {name: {} for name in cases}
    names = list(cases)
    for turn in range(-(-args.calls // block)):
        for name in names if turn % 2 == 0 else names[::-1]:
            fn, server = cases[name]
            spid, hpid = procs[server].pid, procs["hub"].pid
            s0, h0 = _cpu(spid), sum(_cpu(hpid).values())
            c0, t0 = time.process_time(), time.thread_time()
            out = samples[name]
            for _ in range(block):
                start = time.perf_counter_ns()
                fn()
                out.append(time.perf_counter_ns() - start)
            t1, c1 = time.thread_time(), time.process_time()
            s1, h1 = _cpu(spid), sum(_cpu(hpid).values())
            c = cpu[name]
            c["thread"] += t1 - t0
            c["process"] += c1 - c0
            c["hub"] += h1 - h0
            for k, v in s1.items():
                server_cpu[name][k] = server_cpu[name].get(k, 0.0) + v - s0.get(k, 0.0)
    report: dict[str, dict[str, object]] = {}
    for name in names:
        per_call = 1e6 / len(samples[name])
        threads = {k: round(v * per_call) for k, v in server_cpu[name].items() if v > 0}
        report[name] = {
            "median_us": round(latency_stats(samples[name])["median_us"]),
            "client_thread_cpu_us": round(cpu[name]["thread"] * per_call),
            "client_process_cpu_us": round(cpu[name]["process"] * per_call),
            "server_process_cpu_us": sum(threads.values()),
            "server_threads_cpu_us": dict(sorted(threads.items(), key=lambda kv: -kv[1])),
            "hub_cpu_us": round(cpu[name]["hub"] * per_call),
        }
    proxy._destroy_hero()
    keeper._destroy_hero()
    for proc in procs.values():
        if proc.stdin:
            proc.stdin.close()
        proc.wait(10)
    print(f"{'server':13s} {'median':>7s} {'client thr':>10s} {'client proc':>11s} {'server proc':>11s} {'hub':>5s}   (µs per call)")
    for name, r in report.items():
        print(f"{name:13s} {r['median_us']:7d} {r['client_thread_cpu_us']:10d} {r['client_process_cpu_us']:11d} "
              f"{r['server_process_cpu_us']:11d} {r['hub_cpu_us']:5d}   server threads {r['server_threads_cpu_us']}")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
