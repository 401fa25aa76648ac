"""What an event costs in CPU, in every thread of both processes: ours next to the shaped floor.

    .venv/bin/python bench/event_cpu.py [--mode reliable|best] [--rounds 3] [--events 200000] [--out FILE]

``bench/run.py`` compares event rates; on a machine with few cores those rates are bound by the
CPU that the emitter, zenoh's sending and receiving threads and the subscriber spend per event
together, so this measures that CPU instead. Two servers, each in its own process: a HERO
emitting ``tick`` (or the reliable ``tick_r``) through ``bench/heros_worker.py``, and the raw
publisher of ``bench/floor.py`` packing each value with msgpack. This process subscribes to one,
then the other, in alternating rounds of ``--events`` events:

- ours: a ``RemoteHERO`` event with one connected callback (a HERO subscription);
- shaped: the floor as our path must run (``Floor.events(shaped=True)``): a zenoh channel
  that a Python thread drains and decodes.

For each round: the rate the subscriber saw, and CPU in µs per event of the subscribing process
and of the emitting one, in all and per thread name (``/proc/<pid>/task``; zenoh names its threads
``rx-*``, ``tx-*``, ``net-*``; Python threads carry the interpreter's name). Rate times CPU per
event is the cores the path kept busy. The kernel counts CPU time in ticks (``SC_CLK_TCK``, 10 ms
here), so a round needs 100,000 events or more for figures to 0.1 µs.

Multicast scouting stays off: this process opens a zenoh hub on a free loopback port and hands
``HEROS_ZENOH_CONFIG`` to both servers.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from _common import EventCounter, free_port, process_cpu, threads_cpu  # noqa: E402
from floor import Floor  # noqa: E402
from heros_worker import first_contact  # noqa: E402

from heros.zenoh import loopback_config, open_hub  # noqa: E402


def by_name(before: dict[tuple[str, str], float], after: dict[tuple[str, str], float]) -> dict[str, float]:
    """CPU seconds spent between two ``threads_cpu`` readings, summed per thread name (its digits dropped)."""
    spent: dict[str, float] = {}
    for key, seconds in after.items():
        delta = seconds - before.get(key, 0.0)
        if delta > 0:
            name = re.sub(r"[-_]?\d+$", "", key[1]) or key[1]
            spent[name] = spent.get(name, 0.0) + delta
    return spent


class Server:
    """A server process speaking the line protocol of ``bench/_common.py`` (``READY``, ``emit``)."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([sys.executable, *args], cwd=HERE, env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            line = self.proc.stdout.readline() if self.proc.stdout else ""
            if line.startswith("READY"):
                return
            if not line or time.monotonic() > deadline:
                raise RuntimeError(f"{args[0]} did not start")

    def ask(self, _target: str, command: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


def measure(mode: str, rounds: int, events: int) -> dict[str, Any]:
    hub_port = free_port()
    hub = open_hub(hub_port)
    env = {**os.environ, "HEROS_ZENOH_CONFIG": loopback_config(hub_port), "PYTHONUNBUFFERED": "1"}
    os.environ["HEROS_ZENOH_CONFIG"] = env["HEROS_ZENOH_CONFIG"]
    realm, floor_realm = f"cpu{secrets.token_hex(4)}", f"cpuf{secrets.token_hex(4)}"
    hero_server = Server(["heros_worker.py", "serve", realm], env)
    floor_server = Server(["floor.py", "serve", floor_realm], env)
    try:
        proxy = first_contact(realm)
        floor = Floor(proxy._session, floor_realm)
        floor.wait()
        event = proxy.tick if mode == "best" else proxy.tick_r
        runs: dict[str, list[dict[str, Any]]] = {"ours": [], "shaped": []}
        for i in range(rounds):
            for side in ("ours", "shaped") if i % 2 == 0 else ("shaped", "ours"):
                server = hero_server if side == "ours" else floor_server
                pid = server.proc.pid
                counter = EventCounter()
                if side == "ours":
                    event.connect(counter)
                    time.sleep(0.3)  # the subscription reaches the HERO's session
                mine, theirs = threads_cpu(), threads_cpu(pid)
                mine_all, theirs_all = process_cpu(), process_cpu(pid)
                if side == "ours":
                    got = counter.run("server", mode, events, asker=server.ask)
                    event.disconnect(counter)
                else:  # (its 0.3 s wait for the subscription costs next to nothing)
                    got = floor.events(mode, events, shaped=True, asker=server.ask)
                per_event = 1e6 / got["received"] if got["received"] else 0.0
                runs[side].append({
                    "rate_per_s": got["rate_per_s"], "lost": got["lost"],
                    "subscriber_us": (process_cpu() - mine_all) * per_event,
                    "emitter_us": (process_cpu(pid) - theirs_all) * per_event,
                    "subscriber_threads_us": {k: v * per_event for k, v in by_name(mine, threads_cpu()).items()},
                    "emitter_threads_us": {k: v * per_event for k, v in by_name(theirs, threads_cpu(pid)).items()},
                })
        proxy._destroy_hero()
    finally:
        hero_server.stop()
        floor_server.stop()
        hub.close()
    summary = {}
    for side, rs in runs.items():
        summary[side] = {key: statistics.median(r[key] for r in rs) for key in ("rate_per_s", "subscriber_us", "emitter_us")}
        summary[side]["all_us"] = summary[side]["subscriber_us"] + summary[side]["emitter_us"]
        summary[side]["cores"] = summary[side]["rate_per_s"] * summary[side]["all_us"] / 1e6
    return {"mode": mode, "rounds": rounds, "events": events, "runs": runs, "median": summary}


def table(result: dict[str, Any]) -> str:
    lines = [f"{result['mode']} events, {result['rounds']} rounds of {result['events']:,} per side (medians; CPU in µs per event):", "",
             "| | rate | subscriber process | emitter process | all | rate × CPU (cores) |", "|---|---:|---:|---:|---:|---:|"]
    for side, m in result["median"].items():
        lines.append(f"| {side} | {m['rate_per_s'] / 1e3:,.0f}k | {m['subscriber_us']:.2f} | {m['emitter_us']:.2f} | "
                     f"{m['all_us']:.2f} | {m['cores']:.2f} |")
    lines += ["", "Per thread name, each round (µs per event):", ""]
    for side, rs in result["runs"].items():
        for r in rs:
            sub = ", ".join(f"{k} {v:.2f}" for k, v in sorted(r["subscriber_threads_us"].items(), key=lambda kv: -kv[1]) if v >= 0.05)
            emit = ", ".join(f"{k} {v:.2f}" for k, v in sorted(r["emitter_threads_us"].items(), key=lambda kv: -kv[1]) if v >= 0.05)
            lines.append(f"- {side}, {r['rate_per_s'] / 1e3:,.0f}k: subscriber {sub}; emitter {emit}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["reliable", "best"], default="reliable")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per side, alternating (default 3)")
    parser.add_argument("--events", type=int, default=200_000, help="events per round (default 200000)")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    result = measure(args.mode, args.rounds, args.events)
    print(table(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
