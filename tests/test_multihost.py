"""HEROS beyond one PC: hosts made of Linux network namespaces (``tests/netns.py``), zenoh routers between them.

The site: HEROs on host A, a client and a Jupyter kernel (nbclient, ``tests/kernel_driver.py``) on
host B, ``heros router`` on host C; A and B each have a link to C only, and C forwards nothing, so
A and B hear each other only through the router. Every process runs inside its host's namespace
(``ip netns exec``) and gets the line the router printed as ``HEROS_ZENOH_CONFIG``, with the lease
settings of ``heros router --lease``. Links are cut (``ip link set ... down``) and healed mid-run,
the router is killed and started again; the figures (time to notice, time to recover) are printed
and written to ``test-artifacts/multihost.json``. The LAN case runs zenoh's multicast scouting
between two namespaces on one bridge, which is the only place these tests scout by multicast.

Skipped, with the reason, only where ``ip netns add`` is refused (CI runs as root and runs them).
"""

from __future__ import annotations

import ast
import json
import re
import shlex
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import netns
import pytest
import zenoh
from conftest import TESTS, HeroProcess
from jupyter_helpers import ARTIFACTS

from heros.helper import generate_multicast_address

pytestmark = pytest.mark.multihost

#: The lease (seconds) of every process of the site: a lost link shows within about this long.
LEASE = 1.0
#: What "fast" means on this loaded machine: the lease, plus the keep-alive period, plus slack for
#: processes that wait for a CPU (the figures are printed and kept; these bounds only catch regressions).
NOTICE_BOUND = LEASE + 2.0
RECOVER_BOUND = 6.0
PANEL = "get_ipython()._heros_magics.panels[(get_ipython()._heros_magics.realm, 'dev')]"
FIGURES: dict[str, Any] = {}


@pytest.fixture(scope="module")
def allowed() -> None:
    reason = netns.refusal()
    if reason:
        pytest.skip(reason)


def parse_exports(line: str) -> dict[str, str]:
    """``VAR=value`` words of an ``export`` line (comments dropped)."""
    words = shlex.split(line.split("export ", 1)[1], comments=True)
    return dict(word.split("=", 1) for word in words)


def ev(proc: HeroProcess, expression: str, timeout: float = 60.0) -> Any:
    """Evaluate ``expression`` in a ``tests/servers.py`` process; its value, read back from its repr."""
    proc.send(f"eval {expression}")
    return ast.literal_eval(proc.wait_line("OK", timeout).removeprefix("OK").strip())


class Site:
    """Hosts A, B, C; ``heros router`` on C; ``config(host)`` is what the processes of a host use."""

    def __init__(self, net: netns.Network, tmp: Path) -> None:
        self.net = net
        self.tmp = tmp
        for host in ("a", "b", "c"):
            net.add_host(host)
        self.link_a = net.link("c", "a")
        self.link_b = net.link("c", "b")
        self.router: HeroProcess | None = None
        self.lines: dict[str, str] = {}
        self.procs: list[HeroProcess] = []

    def start_router(self) -> None:
        """``heros router`` on C, listening on its address on each link (multicast off: explicit endpoints only)."""
        args = ["-m", "heros", "router", "--listen", f"tcp/{self.link_a.addr_a}:7447", "--listen", f"tcp/{self.link_b.addr_a}:7447",
                "--lease", str(LEASE), "--config", '{"scouting": {"multicast": {"enabled": false}}}']
        self.router = HeroProcess(args, log_path=self.tmp / f"router{len(self.procs)}.log", prefix=self.net.command("c", []))
        self.procs.append(self.router)
        self.lines["head"] = self.router.wait_line("zenoh router", 60)
        self.lines["peer"] = self.router.wait_line("export HEROS_ZENOH_CONFIG=", 10)
        self.lines["client"] = self.router.wait_line("# clients", 10)

    def stop_router(self) -> None:
        if self.router is not None and self.router.proc.poll() is None:
            self.router.proc.terminate()
            self.router.proc.wait(20)

    def config(self, host: str, kind: str = "peer") -> str:
        """The router's printed line for ``kind``, pointed at C's address on ``host``'s link, multicast off."""
        config = json.loads(parse_exports(self.lines[kind])["HEROS_ZENOH_CONFIG"])
        mine = self.link_a.addr_a if host == "a" else self.link_b.addr_a
        config["connect"]["endpoints"] = [e for e in config["connect"]["endpoints"] if f"/{mine}:" in e]
        config.setdefault("scouting", {}).setdefault("multicast", {})["enabled"] = False
        return json.dumps(config)

    def start(self, host: str, args: list[str], env: dict[str, str], name: str) -> HeroProcess:
        proc = HeroProcess(args, env=env, log_path=self.tmp / f"{name}{len(self.procs)}.log", prefix=self.net.command(host, []))
        self.procs.append(proc)
        return proc


@pytest.fixture(scope="module")
def site(allowed: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    net = netns.Network()
    try:
        s = Site(net, tmp_path_factory.mktemp("site"))
        s.start_router()
        yield s
        s.stop_router()
    finally:
        net.close()
        if FIGURES:
            ARTIFACTS.mkdir(exist_ok=True)
            (ARTIFACTS / "multihost.json").write_text(json.dumps(FIGURES, indent=1))


@pytest.fixture
def on(site: Site, realm: str) -> Iterator[Callable[..., HeroProcess]]:
    """``on(host, "Class:name", ..., kind="peer")``: serve HEROs of ``tests/servers.py`` on a host of the site."""
    started: list[HeroProcess] = []

    def start(host: str, *specs: str, kind: str = "peer", wait: bool = True) -> HeroProcess:
        proc = site.start(host, [str(TESTS / "servers.py"), realm, *specs], {"HEROS_ZENOH_CONFIG": site.config(host, kind)}, f"{host}-")
        started.append(proc)
        if wait:
            proc.wait_line("READY", 60)
        return proc

    yield start
    for proc in started:
        proc.kill()


@pytest.fixture
def kernel_b(site: Site, realm: str) -> Iterator[HeroProcess]:
    """A Jupyter kernel on B, driven by ``tests/kernel_driver.py`` there; wait for its READY line before use."""
    env = {"HEROS_ZENOH_CONFIG": site.config("b"), "HEROS_REALM": realm}
    proc = site.start("b", [str(TESTS / "kernel_driver.py")], env, "kernel")
    yield proc
    try:
        proc.stop(60)  # EOF: the driver shuts its kernel down
    except Exception:
        proc.kill()  # what is left in the namespace goes with it at the end of the module


def kev(kernel: HeroProcess, expression: str, timeout: float = 60.0) -> Any:
    """Evaluate ``expression`` in the kernel driver (``k`` is its ``jupyter_helpers.Kernel``)."""
    kernel.send(f"eval {expression}")
    return json.loads(kernel.wait_line("OK", timeout).removeprefix("OK").strip())


def wait_cell(condition: str, marker: Path, timeout: float) -> str:
    """A cell that touches ``marker``, then awaits ``condition`` and writes ``time.time()`` into
    ``marker`` once it holds ("timeout" if it never does).

    Widget messages sent while it awaits are kept by nbclient, and the marker tells the test the
    cell is running before it changes the network. The answer goes through a file, not the cell's
    output, which nbclient now and then drops (see ``tests/kernel_driver.py``).
    """
    steps = int(timeout / 0.02)
    return (
        f"open({str(marker)!r}, 'w').close()\n"
        "import asyncio as _a, time as _t\n"
        "_at = 'timeout'\n"
        f"for _i in range({steps}):\n"
        f"    if {condition}:\n"
        "        _at = repr(_t.time()); break\n"
        "    await _a.sleep(0.02)\n"
        f"open({str(marker)!r} + '.tmp', 'w').write(_at)\n"
        f"__import__('os').replace({str(marker)!r} + '.tmp', {str(marker)!r} + '.at')\n"
    )


def until(predicate: Callable[[], Any], timeout: float, what: str, pause: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(pause)


def dom_classes(kernel: HeroProcess, css_class: str) -> list[str]:
    return kev(kernel, f"k.state[k.model({css_class!r})].get('_dom_classes', [])")


def control(kernel: HeroProcess, attr: str) -> str:
    """The model id of the first input in the panel's current row for ``attr`` (rows closed by a rebind stay in nbclient's state).

    nbclient now and then drops the widget messages of a cell (``tests/kernel_driver.py``); when
    the row is missing, every widget sends its state again (``Kernel.resync``) and it is looked
    for once more. A row the panel really lacks is still missing then.
    """
    rows = "k.children(k.model('heros-body'))"
    find = f"[k.descendants(r, 'heros-input-{attr}')[0] for r in {rows} if 'heros-attr-{attr}' in k.state[r].get('_dom_classes', [])][0]"
    try:
        return kev(kernel, find)
    except RuntimeError as exc:
        if "IndexError" not in str(exc) and "AssertionError" not in str(exc):  # (no such row, no panel body)
            raise
    kev(kernel, "k.resync()")
    return kev(kernel, find)


def cell_time(kernel: HeroProcess, marker: Path, what: str) -> float:
    """The time a ``wait_cell`` wrote (the condition's moment, on the kernel's clock, which is the test's)."""
    kernel.wait_line("OK", 90)  # the cell has ended
    answer = Path(f"{marker}.at").read_text()
    if answer == "timeout":
        pytest.fail(f"the kernel never saw {what}")
    return float(answer)


def test_the_zenohd_recipe_of_the_readme_is_a_valid_router_configuration() -> None:
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = re.search(r"`zenohd` instead of ours.*?```json5\n(.*?)```", text, re.DOTALL)
    assert block, "README has no zenohd configuration"
    config = zenoh.Config.from_json5(block.group(1))
    assert json.loads(config.get_json("mode")) == "router"
    assert json.loads(config.get_json("scouting/multicast/address")) == f"{generate_multicast_address('lab')}:7446"
    assert json.loads(config.get_json("transport/link/tx/lease")) == LEASE * 1000
    assert len(json.loads(config.get_json("gateway"))["south"]) == 3


def test_a_and_b_reach_each_other_only_through_c(site: Site) -> None:
    net, a, b = site.net, site.link_a, site.link_b
    assert net.reachable("a", a.addr_a) and net.reachable("b", b.addr_a)  # each host reaches C
    assert not net.reachable("a", b.addr_b) and not net.reachable("b", a.addr_b)  # but not the other host
    assert net.sysctl("c", "net.ipv4.ip_forward") == "0"  # and C forwards nothing
    assert site.lines["head"].startswith("zenoh router ") and f"tcp/{a.addr_a}:7447, tcp/{b.addr_a}:7447" in site.lines["head"]
    peer = json.loads(parse_exports(site.lines["peer"])["HEROS_ZENOH_CONFIG"])
    assert peer["mode"] == "peer" and peer["transport"]["link"]["tx"]["lease"] == LEASE * 1000
    client = json.loads(parse_exports(site.lines["client"])["HEROS_ZENOH_CONFIG"])
    assert client["mode"] == "client" and client["scouting"]["multicast"]["enabled"] is False


def test_discovery_calls_writes_events_and_callbacks_cross_the_router(site: Site, on: Callable[..., HeroProcess], realm: str) -> None:
    a = on("a", "Device:dev")
    b = on("b", "Recorder:rec", kind="client")  # a client: it talks to the router only
    ev(b, f"__import__('multihost_probe').start({realm!r}, 'dev')")
    summary = ev(b, "__import__('multihost_probe').probe.summary()")
    assert summary["known"] == ["dev", "rec"]  # the observer on B sees the HERO on A (and B's own)
    assert ev(b, "__import__('multihost_probe').probe.proxy.add(40, 2)") == 42
    assert ev(b, "setattr(__import__('multihost_probe').probe.proxy, 'gain', 7.25)") is None
    assert ev(a, "heroes['dev'].gain") == 7.25  # the write arrived on A, acknowledged before setattr returned
    assert ev(b, "__import__('multihost_probe').probe.proxy.gain") == 7.25
    # an event of A's HERO reaches a callable on B, and a method of B's HERO connected as callback (called by A)
    ev(b, f"__import__('multihost_probe').probe.proxy.changed.connect(RemoteHERO('rec', realm={realm!r}).record)")

    def both_heard() -> bool:  # the subscriptions may be on their way still: emit until both saw one
        ev(a, "heroes['dev'].emit_changed('ping')")
        return bool(ev(b, "__import__('multihost_probe').probe.summary()['events']") and ev(b, "heroes['rec'].records"))

    until(both_heard, 15, "an event and a remote callback across the router", pause=0.1)
    assert set(ev(b, "heroes['rec'].records")) == {"ping"}
    # a HERO reference goes to A and comes back: A reaches B's HERO through the router to decode it
    assert ev(b, f"RemoteHERO('dev', realm={realm!r}).echo(RemoteHERO('rec', realm={realm!r})).seen()") == ev(b, "heroes['rec'].records")


def test_a_cut_link_is_noticed_within_the_lease_and_everything_resumes_when_it_heals(
        site: Site, kernel_b: HeroProcess, on: Callable[..., HeroProcess], realm: str) -> None:
    kernel = kernel_b  # the slowest to start: first
    a = on("a", "Device:dev")
    b = on("b", "Recorder:rec")
    probe = "__import__('multihost_probe').probe"
    ev(b, f"__import__('multihost_probe').start({realm!r}, 'dev')")
    ev(b, f"{probe}.proxy.changed.connect(RemoteHERO('rec', realm={realm!r}).record)")
    ev(a, "__import__('multihost_probe').emit(heroes['dev'], 0.05)")
    ev(b, f"{probe}.start_calls()")
    kernel.wait_line("READY", 120)
    kev(kernel, "k.run('%load_ext heros_jupyter\\ndev = %heros connect dev')")
    power = control(kernel, "power")
    assert kev(kernel, f"k.state[{power!r}]['value']") == 1.0  # the panel shows A's value
    kev(kernel, f"k.set_value({power!r}, 12.5)")  # the user moves the slider on B: A's HERO gets the write
    until(lambda: ev(a, "heroes['dev'].power") == 12.5, 15, "the panel's write to reach A")
    until(lambda: ev(b, f"{probe}.summary()['events']") and ev(b, "heroes['rec'].records"), 15, "events and callbacks to flow")

    # cut A's link: B's observer, B's calls, a call in flight and the panel on B all notice
    marker = site.tmp / f"grey-{realm}"
    kernel.send("eval k.run(" + json.dumps(wait_cell(f"not {PANEL}.alive", marker, 20)) + ", timeout=60)")
    until(marker.exists, 60, "the kernel's waiting cell to start")
    ev(b, f"{probe}.call_in_flight(5)")
    until(lambda: ev(a, "heroes['dev'].in_flight()"), 15, "the call to run on A: it is in flight when the link goes")
    t_cut = time.time()
    site.net.cut(site.link_a)
    greyed = cell_time(kernel, marker, "the panel greyed out")
    gone = until(lambda: [t for s, n, t in ev(b, f"{probe}.summary()['membership']") if s == "-" and n == "dev" and t > t_cut], 15,
                 "B's observer to see the HERO gone")[0]
    in_flight = until(lambda: ev(b, f"{probe}.summary()['in_flight']"), 15, "the call in flight to end")
    calls = ev(b, f"{probe}.summary()['calls']")
    failed = [(t0, t1, outcome) for t0, t1, outcome in calls if t1 > t_cut and outcome != "ok"]
    assert failed and failed[0][2].startswith("RemoteTransportError: HERO 'dev'"), calls
    assert "is not reachable: nobody answered 'add'" in failed[0][2]
    assert in_flight["outcome"].startswith("RemoteTransportError: HERO 'dev'"), in_flight
    assert "heros-disconnected" in dom_classes(kernel, "heros-panel-dev")  # as the frontend was told while the cell waited
    kev(kernel, "k.resync()")
    assert "is gone" in kev(kernel, "k.state[k.model('heros-state')]['value']")
    assert kev(kernel, f"k.state[{power!r}]['disabled']") is True
    events_before = ev(b, f"{probe}.summary()['events']")
    assert ev(a, "heroes['dev'].add(1, 1)") == 2  # A itself never stopped

    # heal: the same processes resume, subscriptions and remote callbacks included
    marker = site.tmp / f"rebind-{realm}"
    kernel.send("eval k.run(" + json.dumps(wait_cell(f"{PANEL}.alive and {PANEL}.rebinds == 1", marker, 30)) + ", timeout=60)")
    until(marker.exists, 60, "the kernel's waiting cell to start")
    t_heal = time.time()
    site.net.heal(site.link_a)
    rebound = cell_time(kernel, marker, "the panel rebound")
    back = until(lambda: [t for s, n, t in ev(b, f"{probe}.summary()['membership']") if s == "+" and n == "dev" and t > t_heal], 15,
                 "B's observer to see the HERO again")[0]
    first_ok = until(lambda: [t1 for t0, t1, outcome in ev(b, f"{probe}.summary()['calls']") if outcome == "ok" and t0 > t_heal], 15,
                     "a call to succeed again")[0]
    first_event = until(lambda: ev(b, f"{probe}.first_event_after({t_heal!r})"), 15, "events to flow again")
    first_callback = until(lambda: [t for t in ev(b, "heroes['rec'].records") if isinstance(t, float) and t > t_heal], 30,
                           "A's remote callback to reach B again")[0]  # (the value is its event's time of emission)
    assert ev(b, f"{probe}.summary()['events']") > events_before
    kev(kernel, "k.resync()")
    assert "heros-disconnected" not in dom_classes(kernel, "heros-panel-dev")
    assert "reconnected at" in kev(kernel, "k.state[k.model('heros-state')]['value']")
    power = control(kernel, "power")  # in the rebuilt row
    assert kev(kernel, f"k.state[{power!r}]['value']") == 12.5 and not kev(kernel, f"k.state[{power!r}]['disabled']")
    kev(kernel, f"k.set_value({power!r}, 20.0)")  # and it writes again
    until(lambda: ev(a, "heroes['dev'].power") == 20.0, 15, "the rebound panel's write to reach A")
    longest = ev(b, f"{probe}.summary()['longest_call']")
    figures = {
        "lease_s": LEASE,
        "notice_observer_s": round(gone - t_cut, 3),
        "notice_first_failed_call_s": round(failed[0][1] - t_cut, 3),
        "in_flight_call_failed_after_cut_s": round(in_flight["end"] - t_cut, 3),
        "notice_panel_greyed_s": round(greyed - t_cut, 3),
        "longest_call_s": round(longest, 3),
        "recover_first_call_s": round(first_ok - t_heal, 3),
        "recover_observer_s": round(back - t_heal, 3),
        "recover_first_event_s": round(first_event - t_heal, 3),
        "recover_remote_callback_s": round(first_callback - t_heal, 3),
        "recover_panel_rebound_s": round(rebound - t_heal, 3),
    }
    FIGURES["link_cut"] = figures
    print("link cut and healed:", figures)
    assert max(figures[k] for k in figures if k.startswith("notice_")) < NOTICE_BOUND, figures
    assert figures["in_flight_call_failed_after_cut_s"] < NOTICE_BOUND and longest < NOTICE_BOUND, figures  # nobody waited 10 s
    assert max(figures[k] for k in figures if k.startswith("recover_")) < RECOVER_BOUND, figures


def test_peers_reconnect_by_themselves_after_the_router_restarts(site: Site, on: Callable[..., HeroProcess], realm: str) -> None:
    a = on("a", "Device:dev")
    b = on("b", "Recorder:rec")
    probe = "__import__('multihost_probe').probe"
    ev(b, f"__import__('multihost_probe').start({realm!r}, 'dev')")
    ev(a, "__import__('multihost_probe').emit(heroes['dev'], 0.05)")
    ev(b, f"{probe}.start_calls()")
    until(lambda: ev(b, f"{probe}.summary()['events']"), 15, "events to flow")
    t_kill = time.time()
    site.router.kill()  # SIGKILL: no goodbye to anyone
    gone = until(lambda: [t for s, n, t in ev(b, f"{probe}.summary()['membership']") if s == "-" and t > t_kill], 15,
                 "B to see the HERO gone with the router")[0]
    until(lambda: [c for c in ev(b, f"{probe}.summary()['calls']") if c[1] > t_kill and c[2] != "ok"], 15, "calls to fail")
    t_restart = time.time()
    site.start_router()
    back = until(lambda: [t for s, n, t in ev(b, f"{probe}.summary()['membership']") if s == "+" and t > t_restart], 15,
                 "B to see the HERO again")[0]
    first_ok = until(lambda: [c[1] for c in ev(b, f"{probe}.summary()['calls']") if c[2] == "ok" and c[0] > t_restart], 15,
                     "calls to succeed again")[0]
    first_event = until(lambda: ev(b, f"{probe}.first_event_after({t_restart!r})"), 15, "events to flow again")
    figures = {
        "notice_router_killed_s": round(gone - t_kill, 3),
        "recover_first_call_after_restart_s": round(first_ok - t_restart, 3),
        "recover_observer_after_restart_s": round(back - t_restart, 3),
        "recover_first_event_after_restart_s": round(first_event - t_restart, 3),
    }
    FIGURES["router_restart"] = figures
    print("router killed and restarted:", figures)
    assert figures["notice_router_killed_s"] < NOTICE_BOUND and ev(b, f"{probe}.summary()['longest_call']") < NOTICE_BOUND, figures
    assert max(v for k, v in figures.items() if k.startswith("recover_")) < RECOVER_BOUND, figures


def test_two_routers_link_two_sites(allowed: None, tmp_path: Path, realm: str) -> None:
    """Site 1 (A and its router R1) and site 2 (B and its router R2), linked router to router only."""
    with netns.Network() as net:
        for host in ("a", "r1", "r2", "b"):
            net.add_host(host)
        site1, wan, site2 = net.link("r1", "a"), net.link("r1", "r2"), net.link("r2", "b")
        procs: list[HeroProcess] = []

        def run(host: str, args: list[str], env: dict[str, str] | None = None) -> HeroProcess:
            proc = HeroProcess(args, env=env, log_path=tmp_path / f"{host}-{len(procs)}.log", prefix=net.command(host, []))
            procs.append(proc)
            return proc

        def router(host: str, *args: str) -> dict[str, str]:
            proc = run(host, ["-m", "heros", "router", *args, "--lease", str(LEASE), "--config", '{"scouting": {"multicast": {"enabled": false}}}'])
            config = json.loads(parse_exports(proc.wait_line("export HEROS_ZENOH_CONFIG=", 60))["HEROS_ZENOH_CONFIG"])
            config["connect"]["endpoints"] = config["connect"]["endpoints"][:1]  # the site's own address comes first
            config["scouting"] = {"multicast": {"enabled": False}}
            return {"HEROS_ZENOH_CONFIG": json.dumps(config)}

        try:
            at_a = router("r1", "--listen", f"tcp/{site1.addr_a}:7447", f"tcp/{wan.addr_a}:7447")
            at_b = router("r2", "--listen", f"tcp/{site2.addr_a}:7447", "--connect", f"tcp/{wan.addr_a}:7447")
            a = run("a", [str(TESTS / "servers.py"), realm, "Device:dev"], at_a)
            b = run("b", [str(TESTS / "servers.py"), realm, "Recorder:rec"], at_b)
            a.wait_line("READY", 60)
            b.wait_line("READY", 60)
            assert not net.reachable("a", site2.addr_b) and not net.reachable("a", wan.addr_b)  # A knows site 1 only
            assert ev(b, f"RemoteHERO('dev', realm={realm!r}, discovery_timeout=10).add(20, 22)") == 42
            assert ev(b, f"sorted(__import__('heros').HEROObserver({realm!r}).known_objects)") == ["dev", "rec"]
            assert ev(a, f"RemoteHERO('rec', realm={realm!r}).seen()") == []  # and the other way round
        finally:
            for proc in procs:
                proc.kill()


SNIFFER = """
import socket, sys, threading, time
groups = sys.argv[1].split(",")
seen = {g: set() for g in groups}
def listen(group):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((group, 7446))  # bound to the group: only datagrams sent to it
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton(group) + socket.inet_aton(sys.argv[2]))
    while True:
        seen[group].add(s.recvfrom(65536)[1][0])
for g in groups:
    threading.Thread(target=listen, args=(g,), daemon=True).start()
print("READY", flush=True)
for line in sys.stdin:
    if line.startswith("eval "):
        print("OK", repr({g: sorted(v) for g, v in seen.items()}), flush=True)
"""


def test_lan_multicast_scouting_and_a_group_per_realm(allowed: None, tmp_path: Path, realm: str) -> None:
    """Two PCs on one LAN (a bridge): zenoh's multicast scouting with nothing configured, then with
    ``HEROS_SEP_MULTICAST`` each realm scouting on its own group, unheard by the others."""
    other = realm + "x"
    mine_group, other_group = generate_multicast_address(realm), generate_multicast_address(other)
    assert len({mine_group, other_group, "224.0.0.224"}) == 3
    with netns.Network() as net:
        net.add_host("l1")
        net.add_host("l2")
        lan = net.switch("sw", ["l1", "l2"])
        procs: list[HeroProcess] = []

        def run(host: str, args: list[str], env: dict[str, str]) -> HeroProcess:
            # "" is zenoh's defaults: peer mode, multicast scouting on 224.0.0.224:7446
            proc = HeroProcess(args, env={"HEROS_ZENOH_CONFIG": "", **env}, log_path=tmp_path / f"{host}-{len(procs)}.log",
                               prefix=net.command(host, []))
            procs.append(proc)
            return proc

        try:
            sniffer = run("l2", ["-c", SNIFFER, f"224.0.0.224,{mine_group},{other_group}", lan.addrs["l2"]], {})
            run("l1", [str(TESTS / "servers.py"), realm, "Device:plain"], {})
            run("l1", [str(TESTS / "servers.py"), realm, "Device:separate"], {"HEROS_SEP_MULTICAST": "1"})
            client_plain = run("l2", [str(TESTS / "servers.py"), realm, "Recorder:c1"], {})
            client_mine = run("l2", [str(TESTS / "servers.py"), realm, "Recorder:c2"], {"HEROS_SEP_MULTICAST": "1"})
            client_other = run("l2", [str(TESTS / "servers.py"), other, "Recorder:c3"], {"HEROS_SEP_MULTICAST": "1"})
            for proc in procs:
                proc.wait_line("READY", 60)
            # with nothing configured, the client on l2 finds the HERO on l1 by multicast scouting
            assert ev(client_plain, f"RemoteHERO('plain', realm={realm!r}, discovery_timeout=10).add(1, 2)") == 3
            # HEROS_SEP_MULTICAST: the realm's own group, where its client finds it; the default group never hears it
            assert ev(client_mine, f"RemoteHERO('separate', realm={realm!r}, discovery_timeout=10).add(2, 2)") == 4
            observed = f"sorted(__import__('heros').HEROObserver({realm!r}).known_objects)"
            assert ev(client_mine, observed) == ["c2", "separate"]
            assert ev(client_plain, observed) == ["c1", "plain"]
            # a realm on another group hears nobody: its session has no peer at all
            assert ev(client_other, "list(heroes['c3']._session.info.peers_zid())") == []
            heard = ev(sniffer, "groups")
            print("scouting heard on l2, by group:", heard)
            l1 = lan.addrs["l1"]
            assert l1 in heard["224.0.0.224"] and l1 in heard[mine_group], heard  # each l1 process scouts on its group
            assert l1 not in heard[other_group], heard  # and nothing of l1 reaches the other realm's group
            assert ev(client_other, "list(heroes['c3']._session.info.peers_zid())") == []
        finally:
            for proc in procs:
                proc.kill()
