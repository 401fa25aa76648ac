"""Fixtures for the Jupyter tests: HERO processes, a recording comm, a loop thread, nbclient kernels, JupyterLab + Chromium.

Test modules load them with ``pytest_plugins = ["jupyter_fixtures"]``; helpers live in
``jupyter_helpers``. The session
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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import HeroProcess, free_port, spawner
from jupyter_helpers import NOTEBOOKS, Kernel, RecordingComm


@pytest.fixture(scope="module")
def close_widgets() -> Iterator[None]:
    """Close every widget a test module made (else ipywidgets complains while the interpreter exits)."""
    yield
    import ipywidgets

    ipywidgets.Widget.close_all()


@pytest.fixture
def jspawn(tmp_path: Path) -> Iterator[Callable[..., HeroProcess]]:
    """``jspawn(realm, "Laser:laser", ...)`` serves HEROs of ``tests/jupyter_servers.py`` in a new process."""
    yield from spawner("jupyter_servers.py", tmp_path)


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
    """JupyterLab on 127.0.0.1 serving a copy of the shipped notebooks; its kernels get this test's realm."""
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
