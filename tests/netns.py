"""Hosts made of Linux network namespaces, for the multi-host tests and ``bench/multihost.py``.

A ``Network`` creates namespaces ("hosts"), point-to-point veth links between two of them, and
switches (a bridge in a namespace of its own, one veth per host), with addresses from
198.18.0.0/15, a range reserved for network tests that exists here only inside these namespaces.
Nothing is added to the host's own network namespace: veth ends are created directly inside their
namespaces, so zenoh traffic (multicast scouting included) never leaves them. Every name carries a
per-run prefix, so parallel runs never clash, and ``close`` removes everything (the processes still
inside first, then the namespaces, which take their interfaces with them).

Namespaces forward nothing (``net.ipv4.ip_forward`` starts at 0 in a new namespace): two hosts
linked only to a third cannot reach each other, which ``reachable`` shows.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field

__all__ = ["IP", "Link", "Network", "Switch", "refusal"]

IP = os.environ.get("IP_COMMAND", "ip")
#: Seconds any ``ip`` command may take (namespace creation is slow on a loaded machine).
IP_TIMEOUT = 30.0


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([IP, *args], capture_output=True, text=True, timeout=IP_TIMEOUT)
    if check and result.returncode != 0:
        raise RuntimeError(f"'ip {' '.join(args)}' failed: {result.stderr.strip() or result.stdout.strip()}")
    return result


def refusal() -> str | None:
    """Why namespaces cannot be made here (None: they can); tries to create and remove one."""
    probe = f"hxprobe{uuid.uuid4().hex[:8]}"
    try:
        result = subprocess.run([IP, "netns", "add", probe], capture_output=True, text=True, timeout=IP_TIMEOUT)
    except FileNotFoundError:
        return "the 'ip' command (iproute2) is not installed"
    except subprocess.TimeoutExpired:
        return "'ip netns add' did not return"
    if result.returncode != 0:
        return f"'ip netns add' is refused here ({result.stderr.strip() or 'no reason given'}); the multi-host tests need root"
    subprocess.run([IP, "netns", "del", probe], capture_output=True, timeout=IP_TIMEOUT)
    return None


@dataclass
class Link:
    """A veth pair between two hosts: ``a`` reaches ``b`` at ``addr_b`` and ``b`` reaches ``a`` at ``addr_a``."""

    a: str
    b: str
    dev_a: str
    dev_b: str
    addr_a: str
    addr_b: str


@dataclass
class Switch:
    """A bridge (in a namespace of its own) that the listed hosts hang on; ``addrs`` maps host -> address."""

    ns: str
    addrs: dict[str, str] = field(default_factory=dict)
    ports: dict[str, str] = field(default_factory=dict)


class Network:
    """Namespaces standing in for PCs; use as a context manager, or call ``close``."""

    def __init__(self) -> None:
        self.prefix = f"hx{os.getpid() % 100000}{uuid.uuid4().hex[:4]}"
        self.hosts: dict[str, str] = {}
        self._namespaces: list[str] = []
        self._subnets = 0

    def __enter__(self) -> Network:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _namespace(self, name: str) -> str:
        ns = f"{self.prefix}-{name}"
        _ip("netns", "add", ns)
        self._namespaces.append(ns)
        _ip("-n", ns, "link", "set", "lo", "up")  # kernels and local zenoh links use 127.0.0.1 inside
        return ns

    def add_host(self, name: str) -> str:
        """A new host; returns its namespace's name."""
        if name in self.hosts:
            raise ValueError(f"host {name!r} exists already")
        self.hosts[name] = self._namespace(name)
        return self.hosts[name]

    def _subnet(self) -> str:
        self._subnets += 1
        return f"198.18.{self._subnets}"

    def link(self, a: str, b: str) -> Link:
        """A point-to-point link between hosts ``a`` and ``b``, on a /24 of its own (.1 is ``a``, .2 is ``b``)."""
        ns_a, ns_b = self.hosts[a], self.hosts[b]
        net = self._subnet()
        dev_a, dev_b = f"to-{b}"[:15], f"to-{a}"[:15]
        _ip("-n", ns_a, "link", "add", dev_a, "type", "veth", "peer", "name", dev_b, "netns", ns_b)
        for ns, dev, addr in ((ns_a, dev_a, f"{net}.1"), (ns_b, dev_b, f"{net}.2")):
            _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")
        return Link(a, b, dev_a, dev_b, f"{net}.1", f"{net}.2")

    def switch(self, name: str, hosts: list[str]) -> Switch:
        """A bridge joining ``hosts`` on one /24 (a LAN): host ``i`` gets address ``.i+1``."""
        sw = Switch(self._namespace(name))
        _ip("-n", sw.ns, "link", "add", "br0", "type", "bridge")
        _ip("-n", sw.ns, "link", "set", "br0", "up")
        net = self._subnet()
        for i, host in enumerate(hosts, start=1):
            port = f"p-{host}"[:15]
            _ip("-n", sw.ns, "link", "add", port, "type", "veth", "peer", "name", "lan0", "netns", self.hosts[host])
            _ip("-n", sw.ns, "link", "set", port, "master", "br0")
            _ip("-n", sw.ns, "link", "set", port, "up")
            addr = f"{net}.{i}"
            _ip("-n", self.hosts[host], "addr", "add", f"{addr}/24", "dev", "lan0")
            _ip("-n", self.hosts[host], "link", "set", "lan0", "up")
            sw.addrs[host] = addr
            sw.ports[host] = port
        return sw

    def set_link(self, host: str, dev: str, up: bool) -> None:
        """``ip link set DEV up|down`` on ``host`` (a veth going down takes its peer's carrier with it)."""
        _ip("-n", self.hosts.get(host, host), "link", "set", dev, "up" if up else "down")

    def cut(self, link: Link) -> None:
        """Cut ``link`` at its ``b`` end (``ip link set ... down``); addresses and routes come back with ``heal``."""
        self.set_link(link.b, link.dev_b, False)

    def heal(self, link: Link) -> None:
        """Bring a cut link back up."""
        self.set_link(link.b, link.dev_b, True)

    def command(self, host: str, args: list[str]) -> list[str]:
        """``args`` run inside ``host``'s namespace."""
        return [IP, "netns", "exec", self.hosts[host], *args]

    def python(self, host: str, code: str, timeout: float = 30.0) -> str:
        """Run Python ``code`` inside ``host``; returns its stdout (a non-zero exit raises)."""
        result = subprocess.run(self.command(host, [sys.executable, "-c", code]), capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"python in {host} failed: {result.stderr.strip()}")
        return result.stdout

    def reachable(self, host: str, addr: str, timeout: float = 1.0) -> bool:
        """Whether ``host`` reaches ``addr`` over TCP: a refused connection (port 9, nobody listens) proves it does."""
        code = (
            "import socket, errno\n"
            f"s = socket.socket(); s.settimeout({timeout})\n"
            f"try: s.connect(({addr!r}, 9)); print('yes')\n"
            "except ConnectionRefusedError: print('yes')\n"
            "except OSError as e: print('no', e)\n"
        )
        return self.python(host, code).startswith("yes")

    def sysctl(self, host: str, key: str) -> str:
        """A sysctl value inside ``host`` (read from /proc, which ``ip netns exec`` gives the namespace's view of)."""
        path = "/proc/sys/" + key.replace(".", "/")
        return self.python(host, f"print(open({path!r}).read().strip())").strip()

    def close(self) -> None:
        """Kill what still runs inside, remove every namespace (idempotent; never raises)."""
        for ns in reversed(self._namespaces):
            pids = _ip("netns", "pids", ns, check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            deadline = time.monotonic() + 5
            while pids and time.monotonic() < deadline and _ip("netns", "pids", ns, check=False).stdout.split():
                time.sleep(0.05)
            _ip("netns", "del", ns, check=False)
        self._namespaces.clear()
        self.hosts.clear()
