"""Calls through a zenoh router against direct peer-to-peer, and how fast a lost link is noticed and a healed one used again.

    python bench/multihost.py [--calls 3000] [--lease 1] [--outage 3] [--cuts 3] [--skip-default] [--out FILE]

Needs root: the hosts are Linux network namespaces (``tests/netns.py``), with addresses that exist
only inside them, so nothing leaves the machine. A serves ``Device:dev`` (``tests/servers.py``), B
calls it (``tests/multihost_probe.py``):

- ``direct``: A and B on one LAN (a bridge), B connecting straight to A's endpoint;
- ``router``: A and B on two subnets joined by ``heros router`` on C (A and B cannot reach each
  other), B a peer; ``router, B client``: the same with B in client mode.

Then, in the router topology, A's link is cut (``ip link set ... down``) for ``--outage`` seconds,
``--cuts`` times, with ``heros router --lease S`` and the same lease on A and B; and once with
zenoh's defaults (a 10 s lease; ``--skip-default`` leaves that out, it takes about 30 s). Each cut
gives the time until B's observer sees the HERO gone, until B's calls fail, when a call in flight
ended, and after healing, until the first call succeeds, the observer sees the HERO again and
events arrive again. Multicast scouting stays off everywhere (explicit endpoints).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import queue
import shlex
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
sys.path.insert(0, str(TESTS))
sys.path.insert(0, str(ROOT))

import netns  # noqa: E402

from heros.zenoh import config_text, link_settings  # noqa: E402

NO_MULTICAST = {"scouting/multicast/enabled": False}
PROBE = "__import__('multihost_probe').probe"


class Proc:
    """A Python process inside a host's namespace, driven by ``eval`` lines as ``tests/servers.py`` reads them."""

    def __init__(self, net: netns.Network, host: str, args: list[str], env: dict[str, str], log: Path) -> None:
        base = {k: v for k, v in os.environ.items() if k not in ("HEROS_ZENOH_CONFIG", "HEROS_SEP_MULTICAST")}
        base["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(TESTS)])
        self.log = log
        self.proc = subprocess.Popen(net.command(host, [sys.executable, *args]), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=open(log, "w"), env={**base, **env}, text=True, cwd=str(ROOT))
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def line(self, prefix: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0))
            except queue.Empty:
                raise TimeoutError(f"no line {prefix!r} within {timeout} s: {self.log.read_text()[-2000:]}") from None
            if line is None:
                raise RuntimeError(f"process exited before {prefix!r}: {self.log.read_text()[-2000:]}")
            if line.startswith("ERR "):
                raise RuntimeError(line)
            if line.startswith(prefix):
                return line

    def ev(self, expression: str, timeout: float = 120.0) -> Any:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"eval {expression}\n")
        self.proc.stdin.flush()
        return ast.literal_eval(self.line("OK", timeout).removeprefix("OK").strip())

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def until(predicate: Any, timeout: float, what: str) -> Any:
    """Poll ``predicate`` every 20 ms until it returns something true."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {timeout} s")
        time.sleep(0.02)


def serve(net: netns.Network, host: str, realm: str, spec: str, config: str, tmp: Path) -> Proc:
    proc = Proc(net, host, [str(TESTS / "servers.py"), realm, spec], {"HEROS_ZENOH_CONFIG": config}, tmp / f"{host}-{spec.split(':')[1]}.log")
    proc.line("READY")
    return proc


def start_router(net: netns.Network, listen: list[str], lease: float | None, tmp: Path) -> tuple[Proc, dict[str, Any], dict[str, Any]]:
    """``heros router`` on host c; returns it with the peer and client configurations it printed."""
    args = ["-m", "heros", "router", *(a for e in listen for a in ("--listen", e)), "--config", config_text(NO_MULTICAST)]
    if lease is not None:
        args += ["--lease", str(lease)]
    router = Proc(net, "c", args, {}, tmp / "router.log")
    configs = []
    for prefix in ("export HEROS_ZENOH_CONFIG=", "# clients"):
        words = shlex.split(router.line(prefix).split("export ", 1)[1], comments=True)
        configs.append(json.loads(dict(w.split("=", 1) for w in words)["HEROS_ZENOH_CONFIG"]))
    return router, configs[0], configs[1]


def towards(config: dict[str, Any], address: str) -> str:
    """A printed configuration, connecting only to the router's address on one link, multicast off."""
    config = json.loads(json.dumps(config))
    config["connect"]["endpoints"] = [e for e in config["connect"]["endpoints"] if f"/{address}:" in e]
    config.setdefault("scouting", {})["multicast"] = {"enabled": False}
    return json.dumps(config)


def three_hosts(net: netns.Network) -> tuple[netns.Link, netns.Link]:
    for host in ("a", "b", "c"):
        net.add_host(host)
    return net.link("c", "a"), net.link("c", "b")


def bench_calls(args: argparse.Namespace, tmp: Path) -> dict[str, dict[str, float]]:
    """calls/s and latencies of ``add(1, 2)`` from B to A: direct, through the router (B a peer, then a client)."""
    results: dict[str, dict[str, float]] = {}
    settings = link_settings(args.lease)
    with netns.Network() as net:
        net.add_host("a")
        net.add_host("b")
        lan = net.switch("sw", ["a", "b"])
        endpoint = f"tcp/{lan.addrs['a']}:7447"
        a = serve(net, "a", "direct", "Device:dev", config_text({"mode": "peer", "listen/endpoints": [endpoint], **NO_MULTICAST, **settings}), tmp)
        b = serve(net, "b", "direct", "Recorder:rec", config_text({"mode": "peer", "connect/endpoints": [endpoint], **NO_MULTICAST, **settings}), tmp)
        results["direct (one LAN, peer to peer)"] = b.ev(f"__import__('multihost_probe').time_calls('direct', 'dev', {args.calls})")
        a.kill()
        b.kill()
    with netns.Network() as net:
        to_a, to_b = three_hosts(net)
        router, peer, client = start_router(net, [f"tcp/{to_a.addr_a}:7447", f"tcp/{to_b.addr_a}:7447"], args.lease, tmp)
        a = serve(net, "a", "routed", "Device:dev", towards(peer, to_a.addr_a), tmp)
        for label, config in (("through the router, B a peer", peer), ("through the router, B a client", client)):
            b = serve(net, "b", "routed", "Recorder:rec", towards(config, to_b.addr_a), tmp)
            results[label] = b.ev(f"__import__('multihost_probe').time_calls('routed', 'dev', {args.calls})")
            b.kill()
        a.kill()
        router.kill()
    return results


def cut_and_heal(net: netns.Network, link: netns.Link, a: Proc, b: Proc, outage: float, call_timeout: float) -> dict[str, float]:
    """One cut of ``link`` for ``outage`` seconds; the times B saw things happen, from the cut and from the heal."""
    running = a.ev("heroes['dev'].in_flight()")
    b.ev(f"{PROBE}.call_in_flight({call_timeout * 3})")  # a call that is still running on A when the link goes
    until(lambda: a.ev("heroes['dev'].in_flight()") > running, 15, "the call to run on A")
    t_cut = time.time()
    net.cut(link)
    wait = outage + call_timeout + 15
    gone = until(lambda: [t for s, _, t in b.ev(f"{PROBE}.summary()['membership']") if s == "-" and t > t_cut], wait, "leave")[0]
    failed = until(lambda: [c for c in b.ev(f"{PROBE}.summary()['calls']") if c[1] > t_cut and c[2] != "ok"], wait, "failed call")[0]
    in_flight = until(lambda: (lambda f: f if f.get("end", 0) > t_cut else None)(b.ev(f"{PROBE}.summary()['in_flight']")), wait, "end")
    time.sleep(max(0.0, t_cut + outage - time.time()))
    t_heal = time.time()
    net.heal(link)
    back = until(lambda: [t for s, _, t in b.ev(f"{PROBE}.summary()['membership']") if s == "+" and t > t_heal], 30, "return")[0]
    ok = until(lambda: [c[1] for c in b.ev(f"{PROBE}.summary()['calls']") if c[2] == "ok" and c[0] > t_heal], 30, "good call")[0]
    event = until(lambda: b.ev(f"{PROBE}.first_event_after({t_heal!r})"), 30, "event")
    return {
        "notice_observer_s": gone - t_cut,
        "notice_failed_call_s": failed[1] - t_cut,
        "in_flight_call_ended_s": in_flight["end"] - t_cut,
        "in_flight_outcome": in_flight["outcome"].split(":")[0],
        "recover_first_call_s": ok - t_heal,
        "recover_observer_s": back - t_heal,
        "recover_first_event_s": event - t_heal,
    }


def bench_partitions(lease: float | None, cuts: int, outage: float, tmp: Path) -> list[dict[str, float]]:
    """``cuts`` cuts of A's link in the router topology, every process with ``lease`` (None: zenoh's defaults)."""
    with netns.Network() as net:
        to_a, to_b = three_hosts(net)
        router, peer, _ = start_router(net, [f"tcp/{to_a.addr_a}:7447", f"tcp/{to_b.addr_a}:7447"], lease, tmp)
        a = serve(net, "a", "cut", "Device:dev", towards(peer, to_a.addr_a), tmp)
        b = serve(net, "b", "cut", "Recorder:rec", towards(peer, to_b.addr_a), tmp)
        b.ev("__import__('multihost_probe').start('cut', 'dev')")
        a.ev("__import__('multihost_probe').emit(heroes['dev'], 0.05)")
        b.ev(f"{PROBE}.start_calls()")
        until(lambda: b.ev(f"{PROBE}.summary()['events']"), 15, "first event")
        runs = [cut_and_heal(net, to_a, a, b, outage, 10.0) for _ in range(cuts)]
        for proc in (a, b, router):
            proc.kill()
    return runs


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = [k for k in runs[0] if isinstance(runs[0][k], float)]
    out: dict[str, Any] = {k: (round(min(r[k] for r in runs), 3), round(statistics.median(r[k] for r in runs), 3), round(max(r[k] for r in runs), 3))
                           for k in keys}
    out["in_flight_outcome"] = sorted({r["in_flight_outcome"] for r in runs})
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000, help="timed calls per topology (default 3000)")
    parser.add_argument("--lease", type=float, default=1.0, help="lease (s) of heros router --lease and of A and B (default 1)")
    parser.add_argument("--outage", type=float, default=3.0, help="seconds each cut lasts (default 3; at least the lease + 2 s)")
    parser.add_argument("--cuts", type=int, default=3, help="cuts with --lease (default 3)")
    parser.add_argument("--skip-default", action="store_true", help="leave out the cut with zenoh's default lease (10 s)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "multihost.json")
    args = parser.parse_args()
    reason = netns.refusal()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    tmp = Path(subprocess.check_output(["mktemp", "-d"], text=True).strip())
    report: dict[str, Any] = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cores": os.cpu_count(), "lease_s": args.lease}
    report["calls"] = bench_calls(args, tmp)
    for label, figures in report["calls"].items():
        print(f"{label:34s} {figures['calls_per_s']:8.0f} calls/s  median {figures['median_us']:7.0f} µs  p99 {figures['p99_us']:7.0f} µs", flush=True)
    outage = max(args.outage, args.lease + 2)
    report[f"cuts, lease {args.lease:g} s"] = summarize(bench_partitions(args.lease, args.cuts, outage, tmp))
    if not args.skip_default:
        report["cut, zenoh defaults (lease 10 s)"] = summarize(bench_partitions(None, 1, 12.0, tmp))
    for label in [k for k in report if k.startswith("cut")]:
        print(f"{label}: (min, median, max) s")
        for key, value in report[label].items():
            print(f"  {key:28s} {value}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"written to {args.out} (logs in {tmp})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
