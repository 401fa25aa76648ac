"""Fixtures for the Jupyter tests: HERO processes, a recording comm, a loop thread, nbclient kernels, JupyterLab + Chromium.

Test modules import what they use (``from jupyter_fixtures import jspawn, kernel``); the session
hub and ``realm`` come from ``conftest.py``. zenoh stays on loopback: kernels and the Jupyter
server inherit ``HEROS_ZENOH_CONFIG`` from this process's environment.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT, TESTS, HeroProcess, free_port

NOTEBOOKS = ROOT / "notebooks"
ARTIFACTS = ROOT / "test-artifacts"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def jspawn(tmp_path: Path) -> Iterator[Callable[..., HeroProcess]]:
    """``jspawn(realm, "Laser:laser", ...)`` serves HEROs of ``tests/jupyter_servers.py`` in a new process."""
    procs: list[HeroProcess] = []

    def start(realm: str, *specs: str, wait: bool = True) -> HeroProcess:
        p = HeroProcess([str(TESTS / "jupyter_servers.py"), realm, *specs], log_path=tmp_path / f"jserver{len(procs)}.log")
        procs.append(p)
        if wait:
            p.wait_line("READY")
        return p

    yield start
    for p in procs:
        p.kill()


class RecordingComm:
    """A comm that records every message a widget sends: ``(monotonic time, comm_id, data)``."""

    kernel = "recording"

    def __init__(self, log: list[tuple[float, str, Any]], **kwargs: Any) -> None:
        self.comm_id = kwargs.get("comm_id") or uuid.uuid4().hex
        self.log = log
        self.log.append((time.monotonic(), self.comm_id, {"method": "open", **(kwargs.get("data") or {})}))

    def send(self, data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        self.log.append((time.monotonic(), self.comm_id, data))

    def open(self, *args: Any, **kwargs: Any) -> None:
        pass

    def on_msg(self, callback: Any) -> None:
        pass

    def on_close(self, callback: Any) -> None:
        pass

    def close(self, *args: Any, **kwargs: Any) -> None:
        self.log.append((time.monotonic(), self.comm_id, {"method": "close"}))


@pytest.fixture
def comm_log(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, str, Any]]:
    """Every widget created in the test gets a RecordingComm; returns the shared message log."""
    import comm

    log: list[tuple[float, str, Any]] = []
    monkeypatch.setattr(comm, "create_comm", lambda **kwargs: RecordingComm(log, **kwargs))
    return log


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An asyncio loop running on its own thread, standing in for the kernel's loop."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="test-kernel-loop", daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def on_loop(loop: asyncio.AbstractEventLoop, fn: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Run ``fn`` on ``loop``'s thread and return its result (widgets belong to that thread)."""

    async def call() -> Any:
        return fn()

    return asyncio.run_coroutine_threadsafe(call(), loop).result(timeout)


class Kernel:
    """A real IPython kernel driven by nbclient, plus the comm messages a browser would send."""

    def __init__(self, client: Any, nb: Any) -> None:
        self.client = client
        self.nb = nb

    def run(self, code: str, timeout: float = 60) -> str:
        """Execute ``code`` as a new cell; returns its text output; fails the test on an error."""
        import nbformat

        cell = nbformat.v4.new_code_cell(code)
        self.nb.cells.append(cell)
        self.client.execute_cell(cell, len(self.nb.cells) - 1)
        errors = [o for o in cell.outputs if o.get("output_type") == "error"]
        if errors:
            pytest.fail(f"cell failed: {errors[0]['ename']}: {errors[0]['evalue']}\n{code}")
        return "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")

    def settle(self, condition: str, timeout: float = 15.0) -> None:
        """Let the kernel's loop run (an awaiting cell) until the Python expression ``condition`` is true."""
        steps = int(timeout / 0.05)
        out = self.run(
            "import asyncio as _a\n"
            f"for _i in range({steps}):\n"
            f"    if {condition}:\n"
            "        print('SETTLED'); break\n"
            "    await _a.sleep(0.05)\n"
            "else:\n"
            "    print('TIMEOUT')\n",
            timeout=timeout + 30,
        )
        if "SETTLED" not in out:
            pytest.fail(f"kernel never reached {condition!r} within {timeout} s")

    @property
    def state(self) -> dict[str, dict[str, Any]]:
        """Widget models the kernel sent so far: model id -> state."""
        return self.client.widget_state

    def models(self, css_class: str) -> list[str]:
        """Ids of the widget models carrying ``css_class``."""
        return [mid for mid, s in self.state.items() if css_class in (s.get("_dom_classes") or ())]

    def model(self, css_class: str) -> str:
        found = self.models(css_class)
        assert len(found) == 1, f"expected one widget with class {css_class!r}, found {len(found)}"
        return found[0]

    def children(self, model_id: str) -> list[str]:
        return [ref.removeprefix("IPY_MODEL_") for ref in self.state[model_id].get("children", [])]

    def send(self, model_id: str, data: dict[str, Any]) -> None:
        kc = self.client.kc
        kc.shell_channel.send(kc.session.msg("comm_msg", {"comm_id": model_id, "data": data}))

    def set_value(self, model_id: str, value: Any) -> None:
        """What the frontend sends when the user commits a value."""
        self.send(model_id, {"method": "update", "state": {"value": value}, "buffer_paths": []})

    def click(self, model_id: str) -> None:
        """What the frontend sends when the user clicks a button."""
        self.send(model_id, {"method": "custom", "content": {"event": "click"}})


@pytest.fixture
def kernel(realm: str) -> Iterator[Callable[..., Kernel]]:
    """``with kernel() as k:``... a fresh kernel whose HEROS_REALM is this test's realm."""
    import contextlib

    import nbformat
    from nbclient import NotebookClient

    @contextlib.contextmanager
    def start(**env: str) -> Iterator[Kernel]:
        nb = nbformat.v4.new_notebook()
        client = NotebookClient(nb, timeout=120, kernel_name="python3")
        with client.setup_kernel(env={**os.environ, "HEROS_REALM": realm, **env}):
            yield Kernel(client, nb)

    yield start


def run_notebook(path: Path, realm: str, timeout: float = 240) -> Any:
    """Execute a notebook top to bottom in a fresh kernel (HEROS_REALM=realm); returns the executed notebook."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    old = os.environ.get("HEROS_REALM")
    os.environ["HEROS_REALM"] = realm
    try:
        client.execute()
    finally:
        if old is None:
            os.environ.pop("HEROS_REALM", None)
        else:
            os.environ["HEROS_REALM"] = old
    return nb


CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROME_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage"]
TOKEN = "heros-e2e"
_LOCAL_URL = re.compile(r"^(https?|wss?)://(127\.0\.0\.1|localhost|\[::1\])[:/]")


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 90) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with rc={proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return time.monotonic() - t0
        except urllib.error.HTTPError:
            return time.monotonic() - t0
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"jupyter lab did not answer {url} within {timeout} s")


@pytest.fixture
def jupyter_lab(tmp_path: Path, realm: str) -> Iterator[dict[str, Any]]:
    """JupyterLab on 127.0.0.1 serving a copy of ``notebooks/``; its kernels get this test's realm."""
    root = tmp_path / "lab"
    shutil.copytree(NOTEBOOKS, root)
    settings = tmp_path / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    port = free_port()
    env = dict(os.environ, HEROS_REALM=realm, JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"), JUPYTER_RUNTIME_DIR=str(tmp_path / "rt"),
               JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"), JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "ws"))
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
           f"--IdentityProvider.token={TOKEN}", "--ServerApp.password=", f"--ServerApp.root_dir={root}",
           "--LabApp.news_url=None", "--LabApp.extension_manager=readonly",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    log_path = tmp_path / "lab.log"
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=open(log_path, "w"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        startup = _wait_http(f"{base}/api/status?token={TOKEN}", proc)
        yield {"base": base, "token": TOKEN, "root": root, "log": log_path, "startup": startup}
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium driven by Playwright; FAILS in CI (CI set) when chromium is missing."""
    if not Path(CHROMIUM).exists():
        message = "chromium is not installed (apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A page that may only talk to loopback; page errors are collected in ``page.errors``."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    ctx.route(lambda url: not (_LOCAL_URL.match(url) or url.startswith(("data:", "blob:", "about:"))), lambda route: route.abort())
    pg = ctx.new_page()
    pg.errors = []
    pg.on("pageerror", lambda exc: pg.errors.append(str(exc)))
    yield pg
    ctx.close()
