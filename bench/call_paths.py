"""The two ways a call can go, side by side: ``python bench/call_paths.py [--runs 5]``.

A proxy of ours publishes its calls to a HERO of ours and gets the answer published back
(``heros.rpc``); upstream peers, and ours talking to them, use zenoh queries. This script times,
in alternating blocks in one client process (so that all four see the same machine load):

- ``query``: the raw zenoh query round trip (``floor.py``; the floor of ``bench/run.py``),
- ``exchange``: the raw request published and answer published back (the floor of the quick path),
- ``hero``: ``proxy.add(1, 2)`` on a HERO of ours, published (what a proxy does),
- ``hero_query``: the same call sent as a query (what it did before, and does with upstream HEROs).

Each run is a new client process against the same servers, on a loopback hub of its own. Prints
the medians and their ratios to the query floor, and writes JSON with ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

PATHS = ("query", "exchange", "hero", "hero_query")


def client(realm: str, rounds: int, block: int) -> None:
    from floor import Floor

    from heros import RemoteHERO

    deadline = time.monotonic() + 20
    while True:
        try:
            proxy = RemoteHERO("bench0", realm=realm)
            break
        except NameError:
            if time.monotonic() > deadline:
                raise
    floor = Floor(proxy._session, realm)
    floor.wait()
    server = proxy._heros_server

    def hero_query() -> None:
        proxy.__dict__["_heros_server"] = None  # this call goes as a query
        publisher = proxy.__dict__.pop("_heros_call_publisher", None)
        try:
            proxy.add(1, 2)
        finally:
            proxy.__dict__["_heros_server"] = server
            proxy.__dict__["_heros_call_publisher"] = publisher

    paths = {"query": floor.call, "exchange": floor.exchange(), "hero": lambda: proxy.add(1, 2), "hero_query": hero_query}
    from heros import rpc

    made = next(rpc._ids)
    assert proxy.add(1, 2) == 3 and next(rpc._ids) == made + 2, "the HERO is not called the quick way"
    for fn in paths.values():
        for _ in range(300):
            fn()
    samples: dict[str, list[int]] = {name: [] for name in paths}
    clock = time.perf_counter_ns
    for i in range(rounds):
        order = list(paths.items())
        if i % 2:
            order.reverse()
        for name, fn in order:
            out = samples[name]
            for _ in range(block):
                t0 = clock()
                fn()
                out.append(clock() - t0)
    print("RESULT", json.dumps({name: statistics.median(s) / 1000 for name, s in samples.items()}), flush=True)
    proxy._destroy_hero()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="client processes, one after the other")
    parser.add_argument("--rounds", type=int, default=20, help="alternating rounds per run")
    parser.add_argument("--block", type=int, default=250, help="calls per path per round")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()

    from heros import zenoh as hz

    port = 20000 + os.getpid() % 10000
    hub = hz.open_hub(port)
    env = {**os.environ, "HEROS_ZENOH_CONFIG": hz.loopback_config(port), "PYTHONPATH": str(BENCH.parent)}
    realm = f"paths{uuid.uuid4().hex[:8]}"
    servers = [subprocess.Popen([sys.executable, str(BENCH / script), *argv], env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, cwd=BENCH)
               for script, argv in (("floor.py", ["serve", realm]), ("heros_worker.py", ["serve", realm, "--count", "1"]))]
    runs = []
    try:
        for server in servers:
            line = server.stdout.readline() if server.stdout else ""
            if not line.startswith("READY"):
                raise SystemExit(f"a server did not start: {line!r}")
        for run in range(args.runs):
            proc = subprocess.run([sys.executable, __file__, "client", realm, str(args.rounds), str(args.block)],
                                  env=env, capture_output=True, text=True, timeout=600)
            line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
            if line is None:
                raise SystemExit(f"run {run + 1} failed: {proc.stderr[-2000:]}")
            medians = json.loads(line[7:])
            runs.append(medians)
            ratios = "  ".join(f"{name} {medians[name]:6.1f} µs ({medians[name] / medians['query']:.3f}x)" for name in PATHS)
            print(f"run {run + 1}: {ratios}", flush=True)
    finally:
        for server in servers:
            if server.stdin:
                server.stdin.close()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
        hub.close()
    summary = {name: [round(r[name] / r["query"], 3) for r in runs] for name in PATHS}
    print("ratios to the query floor, per run:")
    for name in PATHS[1:]:
        values = summary[name]
        print(f"  {name:11s} {min(values):.3f}-{max(values):.3f} (median {statistics.median(values):.3f})")
    if args.out:
        args.out.write_text(json.dumps({"runs": runs, "ratios": summary}, indent=1))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "client":
        client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        main()
