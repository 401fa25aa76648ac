"""Benchmarks: our HEROS next to the raw zenoh floor, upstream HEROS 2026.2.2, Pyro5 and RPyC.

Run from the repository root with the project's virtualenv::

    python bench/run.py [--quick] [--out bench/results/<date>.json] [--only floor,ours,...]

Everything talks over loopback zenoh: this process opens a hub (a zenoh router on 127.0.0.1)
and hands ``HEROS_ZENOH_CONFIG`` (multicast scouting off) to every worker. Servers and clients
are always separate processes. Upstream ``heros`` and Pyro5/RPyC are installed by this script
into throwaway virtualenvs under a temporary directory (``--venv-dir`` keeps them for reuse).
Results go to a JSON file and a Markdown table next to it; the table is printed too.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import selectors
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from _common import free_port  # noqa: E402
from report import compare, render_markdown, shm_rows  # noqa: E402

UPSTREAM_REQUIREMENT = "heros==2026.2.2"
RPC_REQUIREMENTS = ["Pyro5", "rpyc"]
GROUPS = ("floor", "ours", "upstream", "mixed", "shm", "rpc", "panel")
#: What the mixed group measures: our client with an upstream HERO, and upstream's client with ours.
MIXED_SCENARIOS = ["call", "attr_get", "array_get", "array_put", "events_best"]

PROFILES: dict[str, dict[str, Any]] = {
    "full": {"n": 5000, "connects": 100, "sizes": [2**20, 64 * 2**20], "transfers": [200, 12], "events": 200_000, "rounds": 3,
             "discovery_heros": 50, "discovery_runs": 5, "warm_repeats": 10, "cold_runs": 7, "memory_heros": 100,
             "panel_seconds": 10.0, "timeout": 900, "churn": 1000},
    "quick": {"n": 200, "connects": 5, "sizes": [2**20, 64 * 2**20], "transfers": [5, 1], "events": 3000, "rounds": 1,
              "discovery_heros": 50, "discovery_runs": 1, "warm_repeats": 2, "cold_runs": 1, "memory_heros": 100,
              "panel_seconds": 2.0, "timeout": 120, "churn": 20},
}

CLIENT_SCENARIOS = ["connect_warm", "connect_observed", "call", "attr_get", "attr_set", "array_get", "array_put",
                    "events_best", "events_reliable"]
FLOOR_SCENARIOS = ["rtt_recv", "rtt_iter", "array_get", "array_put", "events_best", "events_reliable"]


class BenchError(RuntimeError):
    """A worker failed or did not answer in time."""


class Worker:
    """One worker process; reads its ``READY``/``RESULT``/``ASK`` lines with a deadline."""

    def __init__(self, python: str, script: str, args: list[str], env: dict[str, str], log_dir: Path, label: str) -> None:
        self.label = label
        self.log_path = log_dir / f"{label}.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [python, str(BENCH / script), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
            env=env, text=True, cwd=str(log_dir),
        )
        self._sel = selectors.DefaultSelector()
        self._sel.register(self.proc.stdout, selectors.EVENT_READ)

    def read_line(self, deadline: float) -> str | None:
        """The next stdout line, None at end of output; BenchError past ``deadline``."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BenchError(f"{self.label}: no answer in time; log {self.log_path}: {self.log_tail()}")
            if self._sel.select(remaining):
                line = self.proc.stdout.readline()
                return line.rstrip("\n") if line else None

    def wait_ready(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            line = self.read_line(deadline)
            if line is None:
                raise BenchError(f"{self.label} exited (rc={self.proc.wait()}) before READY: {self.log_tail()}")
            if line.startswith("READY "):
                return json.loads(line[6:])

    def send(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def collect(self, timeout: float, servers: dict[str, Worker] | None = None) -> dict[str, Any]:
        """Every RESULT until the process exits, relaying ``ASK <server> <command>`` lines to ``servers``."""
        deadline = time.monotonic() + timeout
        results: dict[str, Any] = {}
        while True:
            line = self.read_line(deadline)
            if line is None:
                break
            if line.startswith("RESULT "):
                data = json.loads(line[7:])
                results[data.pop("scenario")] = data
            elif line.startswith("ASK "):
                target, _, command = line[4:].partition(" ")
                server = (servers or {}).get(target)
                if server is None:
                    raise BenchError(f"{self.label} asked {target!r} for {command!r}, but there is no such server")
                server.send(command)
                answer = server.read_line(deadline)
                if answer is None:
                    raise BenchError(f"{server.label} exited while answering {command!r}: {server.log_tail()}")
                self.send(answer)
        rc = self.proc.wait(30)
        if rc != 0:
            raise BenchError(f"{self.label} failed (rc={rc}): {self.log_tail()}")
        return results

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()

    def log_tail(self) -> str:
        self._log.flush()
        return self.log_path.read_text()[-2000:]


class Bench:
    """One run: the hub, the interpreters, the profile; each group of scenarios is a method."""

    def __init__(self, profile: dict[str, Any], work: Path, venv_dir: Path) -> None:
        self.p = profile
        self.work = work
        self.venv_dir = venv_dir
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HEROS_SEP_MULTICAST", "PYTHONHOME")}
        from heros.zenoh import loopback_config

        self.env["HEROS_ZENOH_CONFIG"] = loopback_config(self.port)
        self.env["PYTHONUNBUFFERED"] = "1"
        self.python = {"ours": sys.executable}
        self.meta: dict[str, Any] = {}

    # --- environment -----------------------------------------------------------------------

    def open_hub(self) -> Any:
        from heros.zenoh import open_hub

        return open_hub(self.port)

    def make_venv(self, name: str, requirements: list[str]) -> str:
        """A virtualenv holding ``requirements`` (reused when ``--venv-dir`` already has it)."""
        path = self.venv_dir / name
        python = path / "bin" / "python"
        stamp = path / ".bench-requirements"
        wanted = "\n".join(requirements)
        if not (python.exists() and stamp.exists() and stamp.read_text() == wanted):
            t0 = time.monotonic()
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(path)], check=True)
            proc = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *requirements],
                                  capture_output=True, text=True, timeout=600)
            if proc.returncode != 0:
                raise BenchError(f"pip install {' '.join(requirements)} failed: {proc.stderr[-2000:]}")
            stamp.write_text(wanted)
            print(f"  venv {name}: installed {' '.join(requirements)} in {time.monotonic() - t0:.1f} s", flush=True)
        freeze = subprocess.run([str(python), "-m", "pip", "freeze", "--disable-pip-version-check"], capture_output=True, text=True)
        self.meta.setdefault("venvs", {})[name] = sorted(line for line in freeze.stdout.splitlines() if line)
        return str(python)

    def worker(self, impl: str, script: str, args: list[str], label: str) -> Worker:
        return Worker(self.python[impl], script, args, self.env, self.work, label)

    def _common_args(self) -> list[str]:
        p = self.p
        return ["--n", str(p["n"]), "--sizes", ",".join(map(str, p["sizes"])), "--transfers", ",".join(map(str, p["transfers"])),
                "--events", str(p["events"])]

    # --- groups ------------------------------------------------------------------------------

    def floor(self, impl: str) -> dict[str, Any]:
        realm = _realm()
        server = self.worker(impl, "floor.py", ["serve", realm], f"floor-{impl}-server")
        try:
            info = server.wait_ready(60)
            client = self.worker(impl, "floor.py", ["client", realm, *self.p.get("floor_scenarios", FLOOR_SCENARIOS), *self._common_args()], f"floor-{impl}-client")
            results = client.collect(self.p["timeout"], {"floor": server})
        finally:
            server.stop()
        results["_info"] = info
        return results

    def heros(self, impl: str) -> dict[str, Any]:
        p = self.p
        realm, floor_realm = _realm(), _realm()
        server = self.worker(impl, "heros_worker.py", ["serve", realm], f"{impl}-server")
        floor = self.worker(impl, "floor.py", ["serve", floor_realm], f"{impl}-floor-server")
        try:
            info = server.wait_ready(60)
            floor.wait_ready(60)
            client = self.worker(impl, "heros_worker.py", ["client", realm, *p.get("client_scenarios", CLIENT_SCENARIOS), *self._common_args(),
                                                           "--connects", str(p["connects"]), "--rounds", str(p["rounds"]),
                                                           "--floor-realm", floor_realm], f"{impl}-client")
            results = client.collect(p["timeout"], {"server": server, "floor": floor})
            if not p.get("extras", True):
                return {**results, "_info": info}
            runs = [self.worker(impl, "heros_worker.py", ["connect_cold", realm], f"{impl}-cold{i}").collect(60)["connect_cold"]
                    for i in range(p["cold_runs"])]
            results["connect_cold"] = {**_seconds_stats([r["seconds"] for r in runs]),
                                       "failed_first_attempts": sum(r["attempts"] > 1 for r in runs)}
        finally:
            server.stop()
            floor.stop()
        results["_info"] = info
        results.update(self.discovery(impl))
        results.update(self.worker(impl, "heros_worker.py", ["memory", _realm(), "--count", str(p["memory_heros"])],
                                   f"{impl}-memory").collect(p["timeout"]))
        return results

    def discovery(self, impl: str) -> dict[str, Any]:
        p = self.p
        realm = _realm()
        server = self.worker(impl, "heros_worker.py", ["serve", realm, "--count", str(p["discovery_heros"])], f"{impl}-server50")
        try:
            server.wait_ready(120)
            cold, warm, misses = [], [], 0
            for i in range(p["discovery_runs"]):
                r = self.worker(impl, "heros_worker.py", ["discovery", realm, "--count", str(p["discovery_heros"]),
                                                          "--repeats", str(p["warm_repeats"])], f"{impl}-discovery{i}").collect(120)
                cold.append(r["discovery_cold"]["seconds"])
                warm.append(r["discovery_warm"]["median_us"] / 1e6)
                misses += r["discovery_cold"].get("observer_misses", 0) + r["discovery_warm"].get("observer_misses", 0)
        finally:
            server.stop()
        return {"discovery_cold": {**_seconds_stats(cold), "heros": p["discovery_heros"], "observer_misses": misses},
                "discovery_warm": {**_seconds_stats(warm), "heros": p["discovery_heros"]}}

    def mixed(self) -> dict[str, Any]:
        """A mixed lab: our client with an upstream HERO and upstream's client with ours (CBOR both ways),
        each next to the raw floor through the client's own session; 1 MiB arrays only."""
        p = self.p
        out: dict[str, Any] = {}
        for client_impl, server_impl in (("ours", "upstream"), ("upstream", "ours")):
            realm, floor_realm = _realm(), _realm()
            label = f"{client_impl}_to_{server_impl}"
            server = self.worker(server_impl, "heros_worker.py", ["serve", realm], f"mixed-{label}-server")
            floor = self.worker(client_impl, "floor.py", ["serve", floor_realm], f"mixed-{label}-floor")
            try:
                server.wait_ready(60)
                floor.wait_ready(60)
                args = ["client", realm, *MIXED_SCENARIOS, "--n", str(p["n"]), "--sizes", str(2**20), "--transfers", str(p["transfers"][0]),
                        "--events", str(min(p["events"], 50_000)), "--rounds", str(p["rounds"]), "--floor-realm", floor_realm]
                out[label] = self.worker(client_impl, "heros_worker.py", args, f"mixed-{label}-client").collect(
                    p["timeout"], {"server": server, "floor": floor})
            finally:
                server.stop()
                floor.stop()
        return out

    def shm(self) -> dict[str, Any]:
        """Large payloads on one host (``heros.bulk``): ours as in the ``ours`` group uses zenoh's shared
        memory; here the same scenarios run with shared memory off in every process (as between two
        hosts), each next to the raw floor through its client's session, which with shared memory off
        is the TCP floor; then ``churn`` transfers of 64 MiB with the RSS and /dev/shm use around them."""
        p = self.p
        off = self._env_shm_off()
        out: dict[str, Any] = {}
        realm, floor_realm = _realm(), _realm()
        server = Worker(self.python["ours"], "heros_worker.py", ["serve", realm], off, self.work, "shm-off-server")
        floor = Worker(self.python["ours"], "floor.py", ["serve", floor_realm], off, self.work, "shm-off-floor")
        try:
            server.wait_ready(60)
            floor.wait_ready(60)
            args = ["client", realm, "array_get", "array_put", *self._common_args(), "--floor-realm", floor_realm]
            out["shm_off"] = Worker(self.python["ours"], "heros_worker.py", args, off, self.work, "shm-off-client").collect(
                p["timeout"], {"server": server, "floor": floor})
        finally:
            server.stop()
            floor.stop()
        realm = _realm()
        server = self.worker("ours", "heros_worker.py", ["serve", realm], "churn-server")
        try:
            server.wait_ready(60)
            shm_before = _dev_shm_used_mib()
            churn = self.worker("ours", "heros_worker.py", ["churn", realm, "--count", str(p["churn"]), "--sizes", str(64 * 2**20)],
                                "churn-client").collect(p["timeout"], {"server": server})["churn"]
            shm_after = _dev_shm_used_mib()
        finally:
            server.stop()
        out["churn"] = {**churn, "dev_shm_before_mib": shm_before, "dev_shm_after_mib": shm_after}
        return out

    def _env_shm_off(self) -> dict[str, str]:
        config = json.loads(self.env["HEROS_ZENOH_CONFIG"])
        config["transport"] = {"shared_memory": {"enabled": False}}
        return {**self.env, "HEROS_ZENOH_CONFIG": json.dumps(config)}

    def rpc(self, kind: str) -> dict[str, Any]:
        server = self.worker("rpc", "rpc_worker.py", [f"{kind}-serve"], f"{kind}-server")
        try:
            info = server.wait_ready(60)
            results = self.worker("rpc", "rpc_worker.py", [f"{kind}-client", info["address"], "--n", str(self.p["n"])],
                                  f"{kind}-client").collect(self.p["timeout"])
        finally:
            server.stop()
        results["_info"] = info
        return results

    def panel(self) -> dict[str, Any]:
        try:
            import heros_jupyter.panel  # noqa: F401
        except ImportError:
            return {"status": "not measured", "reason": "heros_jupyter has no panel module on this branch yet"}
        realm = _realm()
        server = self.worker("ours", "heros_worker.py", ["serve", realm], "panel-server")
        try:
            server.wait_ready(60)
            return self.worker("ours", "panel_worker.py", [realm, "--seconds", str(self.p["panel_seconds"])],
                               "panel-client").collect(self.p["timeout"], {"server": server})
        finally:
            server.stop()


def _dev_shm_used_mib() -> float:
    st = os.statvfs("/dev/shm")
    return (st.f_blocks - st.f_bfree) * st.f_frsize / 2**20


def _realm() -> str:
    return f"b{uuid.uuid4().hex[:10]}"


def _seconds_stats(values: list[float]) -> dict[str, Any]:
    s = sorted(values)
    return {"median_s": s[len(s) // 2] if len(s) % 2 else (s[len(s) // 2 - 1] + s[len(s) // 2]) / 2,
            "min_s": s[0], "max_s": s[-1], "n": len(s)}


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        kib = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        mem = f"{kib / 2**20:.1f} GiB"
    except (OSError, IndexError, ValueError):
        pass
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    import zenoh

    return {"cpu": cpu, "cores": os.cpu_count(), "memory": mem, "kernel": platform.release(), "python": platform.python_version(),
            "zenoh_ours": getattr(zenoh, "__version__", None) or _dist_version("eclipse-zenoh"),
            "commit": commit + ("+dirty" if dirty else ""), "date": dt.datetime.now().astimezone().isoformat(timespec="seconds")}


def _dist_version(dist: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny iteration counts (a smoke run, numbers are noisy)")
    parser.add_argument("--out", type=Path, help="JSON result file (default bench/results/<date>.json); the table goes next to it as .md")
    parser.add_argument("--only", default=",".join(GROUPS), help=f"comma-separated groups to run, of {', '.join(GROUPS)}")
    parser.add_argument("--venv-dir", type=Path, help="keep the upstream and RPC virtualenvs here and reuse them")
    parser.add_argument("--iterations", type=int, help="override the number of timed calls per latency scenario")
    parser.add_argument("--events", type=int, help="override the number of events per event scenario")
    parser.add_argument("--rounds", type=int, help="override the event rounds per side (alternating with the floors; median reported)")
    parser.add_argument("--transfers", help="override the timed transfers per array size, e.g. 200,12")
    parser.add_argument("--scenarios", help="comma-separated client scenarios to keep (default: all), e.g. call,attr_get,rtt_recv")
    args = parser.parse_args(argv)
    groups = [g.strip() for g in args.only.split(",") if g.strip()]
    unknown = sorted(set(groups) - set(GROUPS))
    if unknown:
        parser.error(f"unknown group(s) {', '.join(unknown)}; choose from {', '.join(GROUPS)}")
    profile = dict(PROFILES["quick" if args.quick else "full"])
    if args.iterations:
        profile["n"] = args.iterations
    if args.events:
        profile["events"] = args.events
    if args.rounds:
        profile["rounds"] = args.rounds
    if args.transfers:
        profile["transfers"] = [int(t) for t in args.transfers.split(",")]
    if args.scenarios:
        keep = {s.strip() for s in args.scenarios.split(",")}
        profile["client_scenarios"] = [s for s in CLIENT_SCENARIOS if s in keep]
        profile["floor_scenarios"] = [s for s in FLOOR_SCENARIOS if s in keep]
        profile["extras"] = bool(keep & {"connect_cold", "discovery", "memory"})
    stamp = dt.datetime.now().strftime("%Y-%m-%d_%H%M%S")
    out = args.out or BENCH / "results" / f"{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="heros-bench-") as tmp:
        work = Path(tmp)
        venv_dir = args.venv_dir.resolve() if args.venv_dir else work / "venvs"
        venv_dir.mkdir(parents=True, exist_ok=True)
        bench = Bench(profile, work, venv_dir)
        data: dict[str, Any] = {"machine": machine(), "profile": {"name": "quick" if args.quick else "full", **profile},
                                "results": {}, "errors": {}}
        t_start = time.monotonic()
        if "upstream" in groups or "mixed" in groups:
            print("installing upstream heros into a throwaway virtualenv ...", flush=True)
            bench.python["upstream"] = bench.make_venv("upstream", [UPSTREAM_REQUIREMENT])
        if "rpc" in groups:
            print("installing Pyro5 and RPyC into a throwaway virtualenv ...", flush=True)
            bench.python["rpc"] = bench.make_venv("rpc", RPC_REQUIREMENTS)
        hub = bench.open_hub()
        try:
            steps = []
            if "floor" in groups:
                steps.append(("floor", lambda: bench.floor("ours")))
            if "ours" in groups:
                steps.append(("ours", lambda: bench.heros("ours")))
            if "upstream" in groups:
                steps.append(("upstream", lambda: bench.heros("upstream")))
                steps.append(("floor_upstream_zenoh", lambda: bench.floor("upstream")))
            if "mixed" in groups:
                steps.append(("mixed", bench.mixed))
            if "shm" in groups:
                steps.append(("shm", bench.shm))
            if "rpc" in groups:
                steps.append(("pyro5", lambda: bench.rpc("pyro")))
                steps.append(("rpyc", lambda: bench.rpc("rpyc")))
            if "panel" in groups:
                steps.append(("panel", bench.panel))
            for name, step in steps:
                print(f"measuring {name} ...", flush=True)
                t0 = time.monotonic()
                try:
                    data["results"][name] = step()
                except BenchError as exc:
                    data["errors"][name] = str(exc)
                    print(f"  {name} FAILED: {exc}", flush=True)
                else:
                    print(f"  {name}: {time.monotonic() - t0:.1f} s", flush=True)
        finally:
            hub.close()
        data["machine"]["venvs"] = bench.meta.get("venvs", {})
        data["seconds"] = round(time.monotonic() - t_start, 1)
    data["comparisons"] = compare(data["results"])
    data["shm"] = shm_rows(data["results"])
    out.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    table = render_markdown(data)
    out.with_suffix(".md").write_text(table)
    print(table)
    print(f"results: {out} and {out.with_suffix('.md')}")
    return 1 if data["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
