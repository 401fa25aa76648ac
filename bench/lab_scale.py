"""Lab scale: 1,000 HEROs in one realm, 50 clients calling at once, a kernel with 20 panels under 1 kHz events.

    python bench/lab_scale.py [--only discovery,calls,kernel] [--impl ours,upstream] [--runs 3]
                              [--seconds 10] [--quick] [--upstream-python PATH] [--out FILE]

Run it with the project's virtualenv (``.venv/bin/python bench/lab_scale.py``). Upstream HEROS
2026.2.2 runs from its own virtualenv (``tests/upstream.py`` builds and caches it in
``.cache/upstream-heros``; ``--upstream-python`` names another interpreter). Every worker process
runs this very file in a role (``serve``, ``observe``, ``client``), written once against the API
both implementations share, so the same code drives ours and upstream's. Ours is the ``heros``
next to this file (``PYTHONPATH``), whatever the virtualenv has installed.

- ``discovery``: 10 processes serve 100 HEROs each in one realm. A new process opens a
  ``HEROObserver`` and waits until ``known_objects`` lists all 1,000 (``--runs`` times; the time
  counts from just before the observer is made, the zenoh session's opening included). One more
  observer process reports its RSS before and after, per HERO, and the Python heap its observer
  holds (tracemalloc). OS threads (``/proc/PID/task``) of serving processes with 0 (a ``HEROPeer``
  only), 1, 10 and 100 HEROs, idle after start, and of the ten 100-HERO processes after the
  discovery runs.
- ``calls``: 5 processes serve 20 HEROs each; 50 client processes each make proxies to 20 of them
  (spread over the serving processes) and call ``echo(token)`` from 2 threads each
  for ``--seconds``, ``--runs`` windows with the same clients. Each token is unique in the run and
  the HERO answers ``[its name, token]``: a reply that carries another name or token went to the
  wrong caller and is counted as a mismatch. Per window total calls/s and latency percentiles over
  every call; mismatches, failures, and the serving processes' threads before, during and after.
- ``kernel`` (ours only: upstream has no panels): a real Jupyter kernel (``jupyter_client``) runs
  ``%load_ext heros_jupyter`` and ``%heros connect`` for 20 HEROs of a serving process (one panel
  each). Three windows of ``--seconds``: no events, one HERO emitting ``tick`` at 1 kHz, all 20
  emitting at 1 kHz each, each ``--runs`` times. Per window: the kernel's CPU (``/proc/PID/stat``
  utime+stime, % of one core), the messages it sent on iopub (what a frontend receives;
  ``comm_msg`` are widget updates) per second, its OS threads.

Two figures have a target (``targets``; the table's first rows): a serving process's OS threads do
not grow with its HEROs, and no reply reaches the wrong caller. ``--quick`` is a smoke run with
tiny counts (``tests/test_bench_lab_scale.py``): 4 processes of 10 HEROs, 4 clients, 3 panels.

Multicast scouting stays off everywhere: this process opens a zenoh hub on a free loopback port
(``heros.zenoh.open_hub``) and hands ``HEROS_ZENOH_CONFIG`` (``heros.zenoh.loopback_config``) to every
process, the kernel included; each scenario has a realm of its own. Every process is started in
a process group of its own and killed on the way out, errors included. The JSON goes to
``bench/results/lab_scale.json`` (``--out``), the Markdown table next to it and to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, ClassVar

from _common import free_port, process_cpu  # bench/, the script's own folder

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


# --- worker roles (run with ours' or upstream's interpreter: standard library and `heros` only) ------------------


def _emit(tag: str, payload: Any) -> None:
    sys.stdout.write(f"{tag} {json.dumps(payload)}\n")
    sys.stdout.flush()


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _threads(pid: int | str = "self") -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def _node_class() -> Any:
    from heros import LocalHERO, event

    class Node(LocalHERO):
        """A lab instrument stand-in: three attributes, a method that tells who answered, one event."""

        setpoint: float = 1.0
        enabled: bool = False
        label: str = "node"

        def echo(self, token: str) -> list:
            return [self._name, token]

        @event
        def tick(self, value: float) -> float:
            return value

    return Node


def serve(realm: str, count: int, prefix: str) -> None:
    """Serve ``count`` HEROs (none: a HEROPeer that only holds the session), then obey stdin:
    ``emit RATE K`` emits ``tick`` on the first K HEROs, RATE times a second each; ``stop`` ends it."""
    t0 = time.perf_counter()
    if count:
        node = _node_class()
        heroes = [node(f"{prefix}{i}", realm=realm) for i in range(count)]
    else:
        from heros import HEROPeer

        heroes = []
        keeper = HEROPeer(realm=realm)  # noqa: F841 - holds the session
    _emit("READY", {"pid": os.getpid(), "seconds": time.perf_counter() - t0, "heros": count})
    stop = threading.Event()
    emitted = [0, 0.0]

    def emitter(targets: list[Any], rate: float) -> None:
        start, i = time.perf_counter(), 0
        while not stop.is_set():
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            for hero in targets:
                hero.tick(float(i % 100))
            emitted[0] += len(targets)
            i += 1
        emitted[1] = time.perf_counter() - start

    thread: threading.Thread | None = None
    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "emit":
            stop.clear()
            emitted[:] = [0, 0.0]
            thread = threading.Thread(target=emitter, args=(heroes[:int(cmd[2])], float(cmd[1])), daemon=True)
            thread.start()
            _emit("OK", {})
        elif cmd[0] == "stop":
            stop.set()
            if thread is not None:
                thread.join(10)
            _emit("OK", {"emitted": emitted[0], "seconds": emitted[1]})
    os._exit(0)  # upstream's sessions may keep non-daemon threads: leave at once


def observe(realm: str, count: int, timeout: float, memory: bool, pause: float) -> None:
    """A new process: how long until a HEROObserver lists ``count`` HEROs, and what it costs."""
    import gc

    import heros
    from heros import HEROObserver, HEROPeer

    keeper = None
    if memory:  # the session opened first, so that the figures are the observer's own
        keeper = HEROPeer(realm=realm)
        time.sleep(pause)  # the session meets its peers
        import tracemalloc

        tracemalloc.start()
    gc.collect()
    rss0 = _rss()
    t0 = time.perf_counter()
    observer = HEROObserver(realm=realm)
    t_ctor = time.perf_counter() - t0
    at_ctor = len(observer.known_objects)
    everyone = threading.Event()

    def joined(name: str) -> None:
        if len(observer.known_objects) >= count:
            everyone.set()

    observer.register_object_added_callback(joined)  # both implementations call it for each join
    joined("")  # those listed before the callback was registered
    everyone.wait(max(0.0, t0 + timeout - time.perf_counter()))
    t_all = time.perf_counter() - t0
    found = len(observer.known_objects)
    out = {"ctor_s": t_ctor, "found_at_ctor": at_ctor, "all_s": t_all if found >= count else None, "found": found,
           "threads": _threads(), "heros_file": heros.__file__}
    if memory:
        time.sleep(pause)  # late joins and their descriptors
        gc.collect()
        import tracemalloc

        out["traced_bytes"] = tracemalloc.get_traced_memory()[0]
        out["found"] = len(observer.known_objects)
    gc.collect()
    out.update({"rss0": rss0, "rss1": _rss()})
    _emit("RESULT", out)
    del keeper
    os._exit(0)


def client(realm: str, names: list[str], threads: int, client_id: str, timeout: float) -> None:
    """Proxies to ``names``; on ``go START SECONDS`` every thread calls ``echo`` round the proxies."""
    from heros import RemoteHERO

    t0 = time.perf_counter()
    proxies = []
    deadline = time.monotonic() + timeout
    for name in names:
        while True:  # a young session may not know its peers yet (upstream then raises NameError at once)
            try:
                proxies.append((name, RemoteHERO(name, realm=realm)))
                break
            except NameError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    _emit("READY", {"pid": os.getpid(), "connect_s": time.perf_counter() - t0})
    for line in sys.stdin:  # one window per "go START SECONDS" line
        cmd = line.split()
        if not cmd or cmd[0] != "go":
            break
        _emit("RESULT", _calling_window(proxies, threads, client_id, float(cmd[1]), float(cmd[2])))
    os._exit(0)


def _calling_window(proxies: list[tuple[str, Any]], threads: int, client_id: str, start: float, seconds: float) -> dict[str, Any]:
    """``threads`` threads call ``echo`` round the proxies from ``start`` (wall clock) for ``seconds``."""
    results: list[dict[str, Any]] = []

    def run(t: int) -> None:
        latencies: list[int] = []
        mismatches: list[Any] = []
        errors: dict[str, int] = {}
        i, seq = t * 7, 0
        time.sleep(max(0.0, start - time.time()))  # every client process starts at the same wall-clock time
        end = start + seconds
        clock = time.perf_counter_ns
        while time.time() < end:
            name, proxy = proxies[i % len(proxies)]
            i += 1
            token = f"{client_id}.{t}.{start}.{seq}"  # unique in the whole run
            seq += 1
            c0 = clock()
            try:
                reply = proxy.echo(token)
            except Exception as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                continue
            latencies.append(clock() - c0)
            if list(reply) != [name, token]:
                mismatches.append([name, token, repr(reply)[:200]])
        results.append({"latencies": latencies, "mismatches": mismatches, "errors": errors})

    workers = [threading.Thread(target=run, args=(t,), daemon=True) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(max(0.0, start - time.time()) + seconds + 120)
    errors: dict[str, int] = {}
    for r in results:
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + v
    return {"latencies_us": [round(x / 1000, 1) for r in results for x in r["latencies"]],
            "mismatches": [m for r in results for m in r["mismatches"]], "errors": errors,
            "threads_reported": len(results), "os_threads": _threads()}


# --- the harness -------------------------------------------------------------------------------------------------


class BenchError(RuntimeError):
    """A process failed or did not answer in time."""


class Proc:
    """A worker in a process group of its own; its stdout lines are read by a thread, every wait is bounded."""

    live: ClassVar[list[Proc]] = []

    def __init__(self, python: str, args: list[str], env: dict[str, str], work: Path, label: str) -> None:
        self.label = label
        self.log_path = work / f"{label}.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen([python, str(Path(__file__).resolve()), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._log, env=env, text=True, cwd=str(work), start_new_session=True)
        Proc.live.append(self)
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, tag: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0))
            except queue.Empty:
                raise BenchError(f"{self.label}: no {tag} within {timeout:.0f} s; log: {self.log_tail()}") from None
            if line is None:
                raise BenchError(f"{self.label} exited (rc={self.proc.poll()}) before {tag}; log: {self.log_tail()}")
            if line.startswith(tag + " "):
                data: dict[str, Any] = json.loads(line[len(tag) + 1:])
                return data

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def ask(self, line: str, timeout: float = 30.0) -> dict[str, Any]:
        self.send(line)
        return self.expect("OK", timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()
        if self in Proc.live:
            Proc.live.remove(self)

    def log_tail(self) -> str:
        self._log.flush()
        return self.log_path.read_text()[-1500:]

    @classmethod
    def kill_all(cls) -> None:
        for proc in list(cls.live):
            proc.kill()


def _kill(procs: list[Proc]) -> None:
    for p in procs:
        p.kill()


def _stats(values: list[float]) -> dict[str, Any]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)} if values else {}


def _pct(sorted_values: list[float], p: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, max(0, round(p * (len(sorted_values) - 1))))]


class LabScale:
    """One run: the hub's configuration, the interpreters, the settings; a method per scenario."""

    def __init__(self, args: argparse.Namespace, work: Path, config: str) -> None:
        self.a = args
        self.work = work
        base = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HEROS_SEP_MULTICAST", "PYTHONHOME")}
        base["HEROS_ZENOH_CONFIG"] = config
        base["PYTHONUNBUFFERED"] = "1"
        # ours: the heros next to this file (a worktree's, not whatever the virtualenv installed);
        # upstream: its own virtualenv's, with nothing of ours on the path
        self.envs = {"ours": {**base, "PYTHONPATH": str(ROOT)}, "upstream": base}
        self.env = self.envs["ours"]
        self.python = {"ours": sys.executable}
        self._labels: dict[str, int] = {}

    def spawn(self, impl: str, label: str, *args: str) -> Proc:
        n = self._labels[label] = self._labels.get(label, 0) + 1
        return Proc(self.python[impl], list(args), self.envs[impl], self.work, f"{impl}-{label}{n}")

    @staticmethod
    def _realm(tag: str) -> str:
        return f"{tag}{uuid.uuid4().hex[:10]}"

    # --- 1. a thousand HEROs ---------------------------------------------------------------------------------

    def discovery(self, impl: str) -> dict[str, Any]:
        a = self.a
        out: dict[str, Any] = {"processes": a.procs, "heros_per_process": a.per_proc}
        total = a.procs * a.per_proc
        # threads with 0, 1, 10, 100 HEROs in one process (a realm of their own, nothing else happening)
        threads: dict[str, int] = {}
        for count in a.thread_counts:
            proc = self.spawn(impl, f"threads{count}-", "serve", self._realm("t"), "--count", str(count), "--prefix", "n")
            try:
                proc.expect("READY", 90)
                time.sleep(a.pause)
                threads[str(count)] = _threads(proc.pid)
            finally:
                proc.kill()
        out["threads_idle"] = threads
        realm = self._realm("d")
        servers = [self.spawn(impl, "serve", "serve", realm, "--count", str(a.per_proc), "--prefix", f"p{k}_") for k in range(a.procs)]
        try:
            t0 = time.monotonic()
            ready = [s.expect("READY", 110 - (time.monotonic() - t0)) for s in servers]
            out["serve_start_s"] = {"max": max(r["seconds"] for r in ready), "all_ready_s": time.monotonic() - t0}
            time.sleep(2 * a.pause)
            out["server_threads_before"] = [_threads(s.pid) for s in servers]
            runs = []
            for i in range(a.runs):
                runs.append(self.spawn(impl, "observe", "observe", realm, "--count", str(total), "--timeout", str(a.discovery_timeout))
                            .expect("RESULT", a.discovery_timeout + 60))
                print(f"    {impl} observer {i + 1}: {runs[-1]['found']}/{total} in "
                      f"{runs[-1]['all_s'] if runs[-1]['all_s'] is not None else 'timeout'} s", flush=True)
            mem = self.spawn(impl, "observe", "observe", realm, "--count", str(total), "--timeout", str(a.discovery_timeout),
                             "--memory", "--pause", str(a.pause)).expect("RESULT", a.discovery_timeout + 60)
            out["server_threads_after"] = [_threads(s.pid) for s in servers]
        finally:
            _kill(servers)
        complete = [r["all_s"] for r in runs if r["all_s"] is not None]
        out["runs"] = runs
        out["discovery_s"] = _stats(complete)
        out["incomplete_runs"] = len(runs) - len(complete)
        out["ctor_s"] = _stats([r["ctor_s"] for r in runs])
        out["found_at_ctor"] = _stats([r["found_at_ctor"] for r in runs])
        out["observer_rss_mib"] = {"before": statistics.median(r["rss0"] for r in runs) / 2**20,
                                   "after": statistics.median(r["rss1"] for r in runs) / 2**20}
        out["observer_threads"] = statistics.median(r["threads"] for r in runs)
        out["memory_run"] = mem
        out["rss_per_hero_kib"] = (mem["rss1"] - mem["rss0"]) / max(mem["found"], 1) / 1024
        out["traced_per_hero_kib"] = mem["traced_bytes"] / max(mem["found"], 1) / 1024
        return out

    # --- 2. fifty clients ------------------------------------------------------------------------------------

    def calls(self, impl: str) -> dict[str, Any]:
        a = self.a
        realm = self._realm("c")
        names = [f"s{k}_{i}" for k in range(a.call_servers) for i in range(a.heros_per_server)]
        out: dict[str, Any] = {"servers": a.call_servers, "heros_per_server": a.heros_per_server, "clients": a.clients,
                               "proxies_per_client": a.proxies, "threads_per_client": a.client_threads, "seconds": a.seconds}
        procs: list[Proc] = []
        windows: list[list[dict[str, Any]]] = []
        during: list[int] = []
        try:
            servers = [self.spawn(impl, "cserve", "serve", realm, "--count", str(a.heros_per_server), "--prefix", f"s{k}_")
                       for k in range(a.call_servers)]
            procs += servers
            for s in servers:
                s.expect("READY", 90)
            time.sleep(a.pause)
            out["server_threads_before"] = [_threads(s.pid) for s in servers]
            clients = []
            for c in range(a.clients):
                chosen = random.Random(c).sample(names, a.proxies)
                clients.append(self.spawn(impl, "client", "client", realm, "--names", ",".join(chosen), "--threads",
                                          str(a.client_threads), "--id", f"c{c}"))
            procs += clients
            t0 = time.monotonic()
            ready = [c.expect("READY", 120 - (time.monotonic() - t0)) for c in clients]
            out["clients_ready_s"] = time.monotonic() - t0
            out["client_connect_s"] = _stats([r["connect_s"] for r in ready])
            for _ in range(a.runs):  # the same clients, one window per run
                start = time.time() + 1.0
                for c in clients:
                    c.send(f"go {start!r} {a.seconds}")
                time.sleep(max(0.0, start - time.time()) + a.seconds / 2)
                during += [_threads(s.pid) for s in servers]
                windows.append([c.expect("RESULT", a.seconds + 60) for c in clients])
            out["server_threads_during_max"] = max(during)
            out["server_threads_after"] = [_threads(s.pid) for s in servers]
        finally:
            _kill(procs)
        runs = []
        errors: dict[str, int] = {}
        mismatches: list[Any] = []
        for results in windows:
            lat = sorted(x for r in results for x in r["latencies_us"])
            for r in results:
                mismatches += r["mismatches"]
                for k, v in r["errors"].items():
                    errors[k] = errors.get(k, 0) + v
            runs.append({"calls": len(lat), "calls_per_s": len(lat) / a.seconds,
                         "p50_us": _pct(lat, 0.5) if lat else None, "p99_us": _pct(lat, 0.99) if lat else None,
                         "max_us": lat[-1] if lat else None,
                         "calls_per_client": [len(r["latencies_us"]) for r in results],
                         "mismatches": sum(len(r["mismatches"]) for r in results)})
        out.update({
            "runs": runs,
            "calls": sum(r["calls"] for r in runs),
            "calls_per_s": _stats([r["calls_per_s"] for r in runs]),
            "p50_us": _stats([r["p50_us"] for r in runs if r["p50_us"] is not None]),
            "p99_us": _stats([r["p99_us"] for r in runs if r["p99_us"] is not None]),
            "max_us": max((r["max_us"] for r in runs if r["max_us"] is not None), default=None),
            "mismatches": len(mismatches),
            "mismatch_examples": mismatches[:10],
            "errors": errors,
            "client_threads_median": statistics.median(r["os_threads"] for results in windows for r in results),
            "calls_per_client": _stats([n for r in runs for n in r["calls_per_client"]]),
        })
        return out

    # --- 3. a kernel with 20 panels --------------------------------------------------------------------------

    def kernel(self) -> dict[str, Any]:
        from jupyter_client.manager import KernelManager

        a = self.a
        realm = self._realm("k")
        out: dict[str, Any] = {"panels": a.panels, "rate_hz": a.rate, "seconds": a.seconds}
        server = self.spawn("ours", "kserve", "serve", realm, "--count", str(a.panels), "--prefix", "inst")
        km = None
        kc = None
        try:
            server.expect("READY", 90)
            km = KernelManager(kernel_name="python3")
            km.start_kernel(env={**self.env, "HEROS_REALM": realm})
            kc = km.client()
            kc.start_channels()
            kc.wait_for_ready(timeout=60)
            iopub = _IopubCounter(kc)
            iopub.start()
            run = _Runner(kc, iopub)
            pid = int(run("import os; print(os.getpid())").strip())
            out["threads_start"] = _threads(pid)
            run("%load_ext heros_jupyter")
            t0 = time.monotonic()
            run(f"for i in range({a.panels}): get_ipython().run_line_magic('heros', f'connect inst{{i}}')", timeout=120)
            out["connect_s"] = time.monotonic() - t0
            out["heros_file"] = run("import heros; print(heros.__file__)").strip()
            time.sleep(2 * a.pause)  # the panels' first polls and renders are over
            out["threads_panels"] = _threads(pid)
            windows: dict[str, list[dict[str, Any]]] = {}
            for label, hot in (("no events", 0), (f"1 HERO at {a.rate:g} Hz", 1), (f"{a.panels} HEROs at {a.rate:g} Hz each", a.panels)):
                for _ in range(a.runs):
                    if hot:
                        server.ask(f"emit {a.rate} {hot}")
                        time.sleep(a.pause)  # the stream and the coalescing settle
                    window = _window(pid, iopub, a.seconds)
                    if hot:
                        window["emitter"] = server.ask("stop")
                        window["events_emitted_per_s"] = window["emitter"]["emitted"] / max(window["emitter"]["seconds"], 1e-9)
                    windows.setdefault(label, []).append(window)
                    print(f"    kernel, {label}: CPU {window['cpu_percent']:.1f} %, {window['iopub_per_s']:.1f} iopub msg/s "
                          f"({window['comm_msg_per_s']:.1f} comm_msg/s), {window['threads']} threads", flush=True)
            emitted = sum(w.get("emitter", {}).get("emitted", 0) for ws in windows.values() for w in ws)
            iopub.wait_counts(emitted, 10.0)  # the panels' last updates
            out["windows"] = {label: {
                "cpu_percent": _stats([w["cpu_percent"] for w in ws]),
                "iopub_per_s": _stats([w["iopub_per_s"] for w in ws]),
                "comm_msg_per_s": _stats([w["comm_msg_per_s"] for w in ws]),
                "events_emitted_per_s": _stats([w["events_emitted_per_s"] for w in ws if "events_emitted_per_s" in w]),
                "threads": max(w["threads"] for w in ws),
                "runs": ws,
            } for label, ws in windows.items()}
            out["threads_end"] = _threads(pid)
            out["events_counted_by_panels"] = iopub.event_counts()
            out["events_emitted"] = emitted
            out["rss_mib"] = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        finally:
            if kc is not None:
                kc.stop_channels()
            if km is not None:
                try:
                    km.shutdown_kernel(now=True)
                except Exception as exc:
                    print(f"  kernel shutdown: {exc}", file=sys.stderr)
            server.kill()
        return out


class _IopubCounter:
    """Drains the kernel's iopub channel on a thread: (time, type) of every message, and the event
    counts the panels' event views last showed (from the widget updates' HTML)."""

    COUNT = re.compile(r"heros-event-count'>(\d+)<")

    def __init__(self, kc: Any) -> None:
        self.kc = kc
        self.log: list[tuple[float, str]] = []
        self.streams: dict[str, list[str]] = {}
        self.errors: dict[str, str] = {}
        self.idle: set[str] = set()
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._idle_changed = threading.Condition(self._lock)  # idle replies and event counts
        self._stop = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self.kc.get_iopub_msg(timeout=0.2)
            except queue.Empty:
                continue
            except Exception:
                return
            kind = msg["header"]["msg_type"]
            parent = msg.get("parent_header", {}).get("msg_id", "")
            with self._lock:
                self.log.append((time.monotonic(), kind))
                if kind == "stream":
                    self.streams.setdefault(parent, []).append(msg["content"].get("text", ""))
                elif kind == "error":
                    self.errors[parent] = f"{msg['content'].get('ename')}: {msg['content'].get('evalue')}"
                elif kind == "status" and msg["content"].get("execution_state") == "idle":
                    self.idle.add(parent)
                    self._idle_changed.notify_all()
                elif kind == "comm_msg":
                    value = msg["content"].get("data", {}).get("state", {}).get("value")
                    if isinstance(value, str):
                        m = self.COUNT.search(value)
                        if m:
                            self._counts[msg["content"]["comm_id"]] = int(m.group(1))
                            self._idle_changed.notify_all()

    def wait_idle(self, msg_id: str, timeout: float) -> bool:
        """Wait until the kernel reported idle for the request ``msg_id``; False after ``timeout`` seconds."""
        with self._idle_changed:
            return self._idle_changed.wait_for(lambda: msg_id in self.idle, timeout)

    def wait_counts(self, total: int, timeout: float) -> bool:
        """Wait until the panels' event views show ``total`` events in all; False after ``timeout`` seconds."""
        with self._idle_changed:
            return self._idle_changed.wait_for(lambda: sum(self._counts.values()) >= total, timeout)

    def between(self, t0: float, t1: float) -> dict[str, int]:
        kinds: dict[str, int] = {}
        with self._lock:
            for t, kind in self.log:
                if t0 <= t <= t1:
                    kinds[kind] = kinds.get(kind, 0) + 1
        return kinds

    def event_counts(self) -> int:
        with self._lock:
            return sum(self._counts.values())


class _Runner:
    """Executes code in the kernel and waits (bounded) for it to finish; errors raise."""

    def __init__(self, kc: Any, iopub: _IopubCounter) -> None:
        self.kc = kc
        self.iopub = iopub

    def __call__(self, code: str, timeout: float = 60.0) -> str:
        msg_id = self.kc.execute(code)
        if not self.iopub.wait_idle(msg_id, timeout):
            raise BenchError(f"the kernel did not finish {code[:60]!r} within {timeout} s")
        if msg_id in self.iopub.errors:
            raise BenchError(f"the kernel raised on {code[:60]!r}: {self.iopub.errors[msg_id]}")
        return "".join(self.iopub.streams.get(msg_id, []))


def _window(pid: int, iopub: _IopubCounter, seconds: float) -> dict[str, Any]:
    """The kernel's CPU, iopub messages and threads over ``seconds``."""
    t0, c0 = time.monotonic(), process_cpu(pid)
    peak = 0
    while time.monotonic() - t0 < seconds:
        time.sleep(0.25)
        peak = max(peak, _threads(pid))
    t1, c1 = time.monotonic(), process_cpu(pid)
    span = t1 - t0
    kinds = iopub.between(t0, t1)
    return {"seconds": span, "cpu_percent": 100.0 * (c1 - c0) / span,
            "iopub_per_s": sum(kinds.values()) / span, "comm_msg_per_s": kinds.get("comm_msg", 0) / span,
            "iopub_by_type": kinds, "threads": peak}


# --- the table -----------------------------------------------------------------------------------------------------


def _f(value: Any, fmt: str = "{:,.0f}") -> str:
    return "–" if value is None else fmt.format(value)


def _range(stats: dict[str, Any], fmt: str, scale: float = 1.0) -> str:
    if not stats:
        return "–"
    return f"{fmt.format(stats['median'] * scale)} ({fmt.format(stats['min'] * scale)}–{fmt.format(stats['max'] * scale)})"


#: A serving process's OS threads count as O(1) in its HEROs when its largest count of HEROs serves
#: with at most this many more threads than one HERO does (a bounded pool may grow that much), and
#: fewer than one more per two HEROs (so that a quick run's 10 HEROs cannot pass with one each).
THREADS_SLACK = 10


def _threads_met(idle: dict[str, int]) -> bool:
    most = max(idle, key=int)
    return idle[most] - idle["1"] <= min(THREADS_SLACK, (int(most) - 1) // 2)


def targets(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The figures with a target, per implementation: the value shown and whether it met the target."""
    rows: list[dict[str, Any]] = []
    d = data["results"].get("discovery", {})
    if d:
        row: dict[str, Any] = {"target": f"OS threads per serving process O(1) in HEROs: with N HEROs at most "
                                         f"min({THREADS_SLACK}, (N − 1)/2) more than with 1 (idle after start)"}
        for impl, r in d.items():
            idle = r["threads_idle"]
            most = max(idle, key=int)
            row[impl] = {"value": f"{idle['1']} → {idle[most]} (1 → {most} HEROs)", "met": _threads_met(idle)}
        rows.append(row)
    c = data["results"].get("calls", {})
    if c:
        row = {"target": "no reply to the wrong caller: every reply carries the caller's HERO and token (0 mismatches)"}
        for impl, r in c.items():
            row[impl] = {"value": f"{r['mismatches']} of {r['calls']:,} calls", "met": r["mismatches"] == 0 and r["calls"] > 0}
        rows.append(row)
    return rows


def render(data: dict[str, Any]) -> str:
    m = data["machine"]
    lines = [f"{m['date']} · {m['cpu']} · {m['cores']} cores · {m['memory']} · Linux {m['kernel']} · Python {m['python']} · "
             f"zenoh {m['zenoh_ours']} (ours) · commit {m['commit']} · upstream heros 2026.2.2", ""]
    runs = data["settings"]["runs"]
    rows = targets(data)
    if rows:
        lines += ["| target | ours | upstream | met (ours / upstream) |", "|---|---:|---:|---|"]

        def met(r: dict[str, Any] | None) -> str:
            return "–" if r is None else ("met" if r["met"] else "**not met**")

        for t in rows:
            o, u = t.get("ours"), t.get("upstream")
            lines.append(f"| {t['target']} | {o['value'] if o else '–'} | {u['value'] if u else '–'} | {met(o)} / {met(u)} |")
        lines.append("")
    d = data["results"].get("discovery", {})
    if d:
        o, u = d.get("ours", {}), d.get("upstream", {})
        first = o or u
        total = first.get("processes", 0) * first.get("heros_per_process", 0)
        lines += [f"**1. {total:,} HEROs in one realm** ({first.get('processes')} processes of {first.get('heros_per_process')}; "
                  f"median (min–max) over {runs} observer processes)", "",
                  "| figure | ours | upstream |", "|---|---:|---:|"]

        def row(label: str, fn: Any) -> None:
            lines.append(f"| {label} | {fn(o) if o else '–'} | {fn(u) if u else '–'} |")

        row(f"discovery from a new process: observer lists all {total:,}, s",
            lambda r: _range(r["discovery_s"], "{:.2f}") + (f", {r['incomplete_runs']} of {len(r['runs'])} runs incomplete" if r["incomplete_runs"] else ""))
        row("observer constructor returned after, s", lambda r: _range(r["ctor_s"], "{:.2f}"))
        row("HEROs listed when the constructor returned", lambda r: _range(r["found_at_ctor"], "{:,.0f}"))
        row("observer process RSS before → after, MiB (session opening included; medians)",
            lambda r: f"{r['observer_rss_mib']['before']:.1f} → {r['observer_rss_mib']['after']:.1f}")
        row("observer RSS per HERO listed, KiB (session opened before)", lambda r: f"{r['rss_per_hero_kib']:.1f}")
        row("observer Python heap per HERO listed (tracemalloc), KiB", lambda r: f"{r['traced_per_hero_kib']:.1f}")
        row("observer process OS threads (median)", lambda r: f"{r['observer_threads']:.0f}")
        for n in first.get("threads_idle", {}):
            row(f"OS threads of a serving process with {n} HERO{'s' if n != '1' else ''} (idle after start)"
                + (" (a session only)" if n == "0" else ""), lambda r, n=n: str(r["threads_idle"][n]))
        row(f"OS threads of each {first.get('heros_per_process')}-HERO process, after start → after the discovery runs (max)",
            lambda r: f"{max(r['server_threads_before'])} → {max(r['server_threads_after'])}")
        row(f"time to start {first.get('processes')} serving processes at once, s", lambda r: f"{r['serve_start_s']['all_ready_s']:.1f}")
        lines.append("")
    c = data["results"].get("calls", {})
    if c:
        o, u = c.get("ours", {}), c.get("upstream", {})
        first = o or u
        lines += [f"**2. {first.get('clients')} client processes × {first.get('proxies_per_client')} proxies, "
                  f"{first.get('threads_per_client')} calling threads each** ({first.get('servers')} serving processes of "
                  f"{first.get('heros_per_server')} HEROs; median (min–max) over {runs} windows of {first.get('seconds'):g} s)", "",
                  "| figure | ours | upstream |", "|---|---:|---:|"]

        def crow(label: str, fn: Any) -> None:
            lines.append(f"| {label} | {fn(o) if o else '–'} | {fn(u) if u else '–'} |")

        crow("calls completed, total per second", lambda r: _range(r["calls_per_s"], "{:,.0f}"))
        crow("latency p50, µs", lambda r: _range(r["p50_us"], "{:,.0f}"))
        crow("latency p99, µs", lambda r: _range(r["p99_us"], "{:,.0f}"))
        crow("latency max over all windows, µs", lambda r: _f(r["max_us"]))
        crow("replies with another HERO's name or another caller's token (must be 0)", lambda r: f"**{r['mismatches']}**")
        crow("calls that raised", lambda r: (", ".join(f"{k} {v}" for k, v in r["errors"].items()) or "0"))
        crow("calls per client per window (min–max)", lambda r: f"{r['calls_per_client']['min']:,}–{r['calls_per_client']['max']:,}")
        crow("OS threads per serving process: before → during → after the load (max)",
             lambda r: f"{max(r['server_threads_before'])} → {r['server_threads_during_max']} → {max(r['server_threads_after'])}")
        crow("OS threads per client process (median)", lambda r: f"{r['client_threads_median']:.0f}")
        crow("all clients connected (proxies made), s", lambda r: f"{r['clients_ready_s']:.1f}")
        lines.append("")
    k = data["results"].get("kernel", {}).get("ours")
    if k:
        lines += [f"**3. A Jupyter kernel with {k['panels']} panels** (one per HERO; ours only: upstream HEROS has no panels; "
                  f"median (min–max) over {runs} windows of {k['seconds']:g} s each)", "",
                  "| window | kernel CPU, % of a core | iopub messages/s | of which comm_msg/s | events emitted/s | kernel OS threads (max) |",
                  "|---|---:|---:|---:|---:|---:|"]
        for label, w in k["windows"].items():
            lines.append(f"| {label} | {_range(w['cpu_percent'], '{:.1f}')} | {_range(w['iopub_per_s'], '{:.1f}')} | "
                         f"{_range(w['comm_msg_per_s'], '{:.1f}')} | {_range(w['events_emitted_per_s'], '{:,.0f}')} | {w['threads']} |")
        lines += ["", f"Kernel OS threads: {k['threads_start']} before `%load_ext heros_jupyter`, {k['threads_panels']} with the "
                      f"{k['panels']} panels open, {k['threads_end']} at the end; connecting the {k['panels']} panels took "
                      f"{k['connect_s']:.1f} s; events counted by the panels {k['events_counted_by_panels']:,} of "
                      f"{k['events_emitted']:,} emitted; kernel RSS {k['rss_mib']:.0f} MiB.", ""]
    for name, err in data.get("errors", {}).items():
        lines.append(f"- {name} FAILED: {err[:500]}")
    return "\n".join(lines) + "\n"


# --- main -----------------------------------------------------------------------------------------------------------


def _on_signal(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("role", nargs="?", default="measure", choices=["measure", "serve", "observe", "client"])
    parser.add_argument("realm", nargs="?")
    parser.add_argument("--only", default="discovery,calls,kernel", help="scenarios to run (default: all three)")
    parser.add_argument("--impl", default="ours,upstream", help="implementations to run (default: ours,upstream)")
    parser.add_argument("--runs", type=int, default=3, help="discovery runs per implementation (default 3)")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of each calling and kernel window (default 10)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 40 HEROs, 4 clients, 3 panels, 3 s windows at most")
    parser.add_argument("--upstream-python", help="upstream's interpreter (default: tests/upstream.py's cached virtualenv)")
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "lab_scale.json")
    # worker arguments
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--prefix", default="n")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--pause", type=float, default=1.0)
    parser.add_argument("--names", default="")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--id", default="c")
    args = parser.parse_args()
    if args.role == "serve":
        serve(args.realm, args.count, args.prefix)
        return 0
    if args.role == "observe":
        observe(args.realm, args.count, args.timeout, args.memory, args.pause)
        return 0
    if args.role == "client":
        client(args.realm, args.names.split(","), args.threads, args.id, args.timeout)
        return 0

    q = args.quick
    args.procs, args.per_proc = (4, 10) if q else (10, 100)
    args.thread_counts = (0, 1, 10) if q else (0, 1, 10, 100)
    args.pause = 0.3 if q else 1.0  # idle seconds before threads are counted
    args.discovery_timeout = 5.0 if q else 60.0  # upstream's observer never lists a HERO its first discovery missed
    args.call_servers, args.heros_per_server = (3, 5) if q else (5, 20)
    args.clients, args.proxies, args.client_threads = (4, 5, 2) if q else (50, 20, 2)
    args.panels, args.rate = (3, 1000.0) if q else (20, 1000.0)
    if q:
        args.seconds = min(args.seconds, 3.0)
        args.runs = min(args.runs, 2)
    scenarios = [s.strip() for s in args.only.split(",") if s.strip()]
    impls = [s.strip() for s in args.impl.split(",") if s.strip()]
    bad = sorted(set(scenarios) - {"discovery", "calls", "kernel"}) + sorted(set(impls) - {"ours", "upstream"})
    if bad:
        parser.error(f"unknown scenario or implementation: {', '.join(bad)}")

    sys.path.insert(0, str(BENCH))
    sys.path.insert(0, str(ROOT))  # the heros next to this file, also when the virtualenv installed another
    from run import machine

    from heros.zenoh import loopback_config, open_hub

    signal.signal(signal.SIGTERM, _on_signal)
    work = Path(subprocess.check_output(["mktemp", "-d", "/tmp/lab-scale-XXXXXX"], text=True).strip())
    port = free_port()
    bench = LabScale(args, work, loopback_config(port))
    if "upstream" in impls and set(scenarios) - {"kernel"}:
        if args.upstream_python:
            bench.python["upstream"] = args.upstream_python
        else:
            sys.path.insert(0, str(ROOT / "tests"))
            from upstream import upstream_python

            bench.python["upstream"] = str(upstream_python())
    data: dict[str, Any] = {"machine": machine(), "settings": {k: v for k, v in vars(args).items() if k not in ("role", "realm", "out")},
                            "results": {}, "errors": {}}
    data["settings"]["out"] = str(args.out)
    hub = open_hub(port)
    t_start = time.monotonic()
    try:
        for scenario in scenarios:
            for impl in (["ours"] if scenario == "kernel" else impls):
                print(f"measuring {scenario}, {impl} ...", flush=True)
                t0 = time.monotonic()
                try:
                    result = bench.kernel() if scenario == "kernel" else getattr(bench, scenario)(impl)
                except BenchError as exc:
                    data["errors"][f"{scenario}, {impl}"] = str(exc)
                    print(f"  FAILED: {exc}", flush=True)
                else:
                    data["results"].setdefault(scenario, {})[impl] = result
                    print(f"  {scenario}, {impl}: {time.monotonic() - t0:.0f} s", flush=True)
                finally:
                    Proc.kill_all()
    finally:
        Proc.kill_all()
        hub.close()
    data["seconds"] = round(time.monotonic() - t_start, 1)
    data["targets"] = targets(data)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=1) + "\n")
    table = render(data)
    args.out.with_suffix(".md").write_text(table)
    print(table)
    print(f"results: {args.out} and {args.out.with_suffix('.md')} (logs in {work})")
    return 1 if data["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
