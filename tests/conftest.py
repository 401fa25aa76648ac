"""Test fixtures: a loopback zenoh hub for the whole run, a realm per test, HEROs in subprocesses.

zenoh never scouts by multicast here: every process (this one, HERO servers, kernels) gets the
same HEROS_ZENOH_CONFIG through the environment, which connects to the hub on 127.0.0.1.
"""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


HUB_PORT = free_port()
# Set before any session opens, so this process and every child use the loopback config.
from heros.zenoh import loopback_config, open_hub  # noqa: E402

os.environ["HEROS_ZENOH_CONFIG"] = loopback_config(HUB_PORT)
# A realm per test: idle sessions of finished tests need not wait 30 s to close (test_sessions checks the default).
os.environ.setdefault("HEROS_SESSION_IDLE", "1")
os.environ.pop("HEROS_SEP_MULTICAST", None)
os.environ.setdefault("PYTHONPATH", "")
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), str(TESTS), os.environ["PYTHONPATH"]) if p)


@pytest.fixture(scope="session", autouse=True)
def hub() -> Iterator[object]:
    session = open_hub(HUB_PORT)
    yield session
    session.close()


@pytest.fixture
def realm() -> str:
    """A realm of its own for each test, so parallel runs and tests never cross."""
    return f"t{uuid.uuid4().hex[:12]}"


class HeroProcess:
    """A Python process serving HEROs; ``ready`` lines on stdout tell when it is up.

    ``prefix`` goes before the interpreter (``ip netns exec NS`` runs it on another "host"); ``python``
    replaces it (upstream's interpreter), ``base_env`` the environment it inherits.
    """

    def __init__(self, args: list[str], env: dict[str, str] | None = None, log_path: Path | None = None,
                 prefix: list[str] | None = None, python: str | Path | None = None, base_env: dict[str, str] | None = None) -> None:
        self.log_path = log_path
        self.proc = subprocess.Popen(
            [*(prefix or []), str(python or sys.executable), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(log_path, "w") if log_path else subprocess.DEVNULL,
            env={**(os.environ if base_env is None else base_env), **(env or {})},
            text=True,
            cwd=str(ROOT),
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read_stdout, daemon=True).start()

    def _read_stdout(self) -> None:
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def wait_line(self, expected: str, timeout: float = 30.0) -> str:
        """Read stdout until a line starting with ``expected`` (bounded by ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self._lines.get(timeout=max(remaining, 0))
            except queue.Empty:
                raise TimeoutError(f"no line {expected!r} within {timeout} s; log: {self.log()}") from None
            if line is None:
                raise RuntimeError(f"process exited (rc={self.proc.wait()}) before {expected!r}; log: {self.log()}")
            if line.startswith(expected):
                return line.strip()
            if line.startswith("ERR ") and expected == "OK":
                raise RuntimeError(f"the server could not evaluate the expression: {line.strip()}")

    def send(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def log(self) -> str:
        return self.log_path.read_text()[-3000:] if self.log_path and self.log_path.exists() else ""

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)

    def stop(self, timeout: float = 10.0) -> int:
        """Close stdin (servers exit gracefully on EOF) and wait; kill if it does not exit."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                raise
        return self.proc.returncode


def spawner(script: str, tmp_path: Path) -> Iterator[object]:
    """A fixture body: ``start(realm, "Class:name", ...)`` serves HEROs of ``tests/<script>`` in new processes."""
    procs: list[HeroProcess] = []

    def start(realm: str, *specs: str, env: dict[str, str] | None = None, wait: bool = True) -> HeroProcess:
        log = tmp_path / f"{Path(script).stem}{len(procs)}.log"
        p = HeroProcess([str(TESTS / script), realm, *specs], env=env, log_path=log)
        procs.append(p)
        if wait:
            p.wait_line("READY")
        return p

    yield start
    for p in procs:
        p.kill()


@pytest.fixture(scope="session")
def upstream_python() -> Path:
    """The interpreter of a cached virtualenv holding upstream HEROS 2026.2.2 (built on first use)."""
    from upstream import upstream_python as build

    return build()


@pytest.fixture
def spawn_upstream(tmp_path: Path, upstream_python: Path) -> Iterator[object]:
    """``spawn_upstream(realm, "UpDevice:name", ...)``: an upstream HEROS process (``tests/upstream_peer.py``),
    returned as an ``UpstreamPeer`` that evaluates expressions there."""
    from upstream import UpstreamPeer, upstream_env

    peers: list[UpstreamPeer] = []

    def start(realm: str, *specs: str) -> UpstreamPeer:
        log = tmp_path / f"upstream{len(peers)}.log"
        proc = HeroProcess([str(TESTS / "upstream_peer.py"), realm, *specs], log_path=log, python=upstream_python,
                           base_env=upstream_env())
        peer = UpstreamPeer(proc)
        peers.append(peer)
        proc.wait_line("READY", timeout=60)
        return peer

    yield start
    for peer in peers:
        peer.stop()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[object]:
    """``spawn(realm, "Class:name", ...)`` serves HEROs of ``tests/servers.py`` in a new process."""
    yield from spawner("servers.py", tmp_path)


@pytest.fixture
def run_script(tmp_path: Path) -> object:
    """Run a Python snippet in a fresh process; returns the CompletedProcess (bounded by timeout)."""

    def run(code: str, timeout: float = 60.0, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        script = tmp_path / f"script_{uuid.uuid4().hex[:6]}.py"
        script.write_text(code)
        return subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, timeout=timeout,
            env={**os.environ, **(env or {})}, cwd=str(ROOT),
        )

    return run
