"""How long a new process waits for its zenoh session and its first discovery, over many processes.

    .venv/bin/python bench/session_open.py [--processes 100] [--heros 50] [--impl ours,upstream]
                                           [--upstream-python PATH] [--out FILE]

``bench/run.py`` reports the median of a few new processes; this one looks at the tail. A server
process serves ``--heros`` HEROs in a realm of its own; then new processes, one after the other,
``--processes`` of each kind in turn, each the first user of zenoh in its process (the imports
are done before the clock starts):

1. ``open``: open a bare zenoh session with ``HEROS_ZENOH_CONFIG`` (``zenoh.open``);
2. ``discovery``: make a ``HEROObserver`` and wait until it lists every HERO (its session's
   opening included; an observer whose first snapshot misses HEROs is replaced after 2 s and
   counted, as in ``bench/heros_worker.py``).

Each process logs zenoh's warnings of its orchestrator: zenoh's ``open`` of a peer waits for its
start conditions (connected to the configured and gossiped peers, their first declarations
received) at most ``scouting/delay`` (500 ms by default) and says "Scouting delay elapsed before
start conditions are met" when it gave up waiting. The report counts those warnings next to the
slow ones. ``upstream`` runs the same on upstream HEROS 2026.2.2 and its own zenoh,
from the virtualenv that ``tests/upstream.py`` builds and caches in ``.cache/upstream-heros``
(``--upstream-python`` names another interpreter), without our ``PYTHONPATH``.

Multicast scouting stays off: this process opens a zenoh hub on a free loopback port and hands
``HEROS_ZENOH_CONFIG`` to every process.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from _common import free_port  # noqa: E402
from run import Worker  # noqa: E402

#: zenoh's warning when a session's open waited out ``scouting/delay``.
WARNING = "Scouting delay elapsed before start conditions are met"
#: An open or a discovery this slow (ms) is counted as slow (the median is a few ms).
SLOW_MS = 250.0

PROBE = r"""
import json, os, sys, time
import zenoh
zenoh.init_log_from_env_or("zenoh::net::runtime::orchestrator=warn")
sys.path.insert(0, sys.argv[4])
from heros_worker import _observer_seeing
t0 = time.perf_counter()
if sys.argv[1] == "open":
    session = zenoh.open(zenoh.Config.from_json5(os.environ["HEROS_ZENOH_CONFIG"]))
    misses = 0
else:
    observer, misses = _observer_seeing(sys.argv[2], int(sys.argv[3]))
t1 = time.perf_counter()
import heros
print("PROBE " + json.dumps({"ms": (t1 - t0) * 1e3, "misses": misses, "heros": heros.__file__}), flush=True)
session.close() if sys.argv[1] == "open" else observer._destroy_hero()
"""


def run(python: str | Path, processes: int, heros: int, env: dict[str, str]) -> dict[str, Any]:
    realm = f"open{secrets.token_hex(4)}"
    with tempfile.TemporaryDirectory(prefix="session-open-") as logs:
        server = Worker(str(python), "heros_worker.py", ["serve", realm, "--count", str(heros)], env, Path(logs), "server")
        try:
            server.wait_ready(60)
            rows: dict[str, list[dict[str, Any]]] = {"open": [], "discovery": []}
            for _ in range(processes):
                for step in rows:
                    out = subprocess.run([str(python), "-c", PROBE, step, realm, str(heros), str(HERE)], cwd=HERE, env=env, text=True,
                                         capture_output=True, timeout=120)
                    line = next((x for x in out.stdout.splitlines() if x.startswith("PROBE ")), None)
                    if line is None:
                        raise RuntimeError(f"a probe failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
                    rows[step].append({**json.loads(line[6:]), "warnings": out.stdout.count(WARNING)})
        finally:
            server.stop()
    return summarise(rows)


def summarise(rows: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    out: dict[str, Any] = {"processes": len(rows["open"]), "observer_misses": sum(r["misses"] for r in rows["discovery"]),
                           "heros_imported": sorted({r["heros"] for r in rows["discovery"]})}
    for key, measured in rows.items():
        values = sorted(r["ms"] for r in measured)
        out[key] = {"median": statistics.median(values), "p90": values[math.ceil(0.9 * len(values)) - 1], "max": values[-1],
                    "slow": sum(v > SLOW_MS for v in values), "slow_values": [round(v, 1) for v in values if v > SLOW_MS],
                    "warnings": sum(r["warnings"] for r in measured)}
    return out


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = [f"| implementation | what | median, ms | p90, ms | max, ms | over {SLOW_MS:.0f} ms | zenoh's warning |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for impl, r in results.items():
        for key, what in (("open", "zenoh.open"), ("discovery", "HEROObserver sees all")):
            s = r[key]
            lines.append(f"| {impl} | {what} | {s['median']:.1f} | {s['p90']:.1f} | {s['max']:.1f} | {s['slow']} of {r['processes']} | "
                         f"{s['warnings']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=100)
    parser.add_argument("--heros", type=int, default=50)
    parser.add_argument("--impl", default="ours,upstream")
    parser.add_argument("--upstream-python", help="upstream's interpreter (default: tests/upstream.py's cached virtualenv)")
    parser.add_argument("--out", default=str(HERE / "results" / "session_open.json"))
    args = parser.parse_args()
    from heros.zenoh import loopback_config, open_hub

    sys.path.insert(0, str(HERE.parent / "tests"))
    from upstream import upstream_python

    port = free_port()
    hub = open_hub(port)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RUST_LOG")}
    env.update(HEROS_ZENOH_CONFIG=loopback_config(port), PYTHONUNBUFFERED="1")
    results = {}
    try:
        for impl in args.impl.split(","):
            if impl == "ours":  # the heros next to this file, whatever the virtualenv holds
                results[impl] = run(sys.executable, args.processes, args.heros, {**env, "PYTHONPATH": str(HERE.parent)})
            elif impl == "upstream":
                results[impl] = run(args.upstream_python or upstream_python(), args.processes, args.heros, env)
            else:
                raise SystemExit(f"--impl: unknown implementation {impl!r} (ours, upstream)")
    finally:
        hub.close()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(table(results))


if __name__ == "__main__":
    main()
