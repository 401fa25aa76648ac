"""Every frontend the demo starts, in headless Chromium: ``heros demo --lab`` (the quickstart, its image,
a save that never touches the clone), ``heros demo --notebook`` (Notebook 7 on panels.ipynb) and
``heros demo --dashboard`` (the Voila dashboard). The panel checks every frontend passes, the
JupyterLab test's too, are ``browser_checks.check_every_frontend``; screenshots and timings land in
``test-artifacts/``.

VS Code's notebooks are not tested here (no VS Code on these machines).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from browser_checks import check_every_frontend, run_all_cells, wait_lab_kernel_idle, wait_notebook7_kernel_idle
from conftest import ROOT, free_port
from jupyter_helpers import ARTIFACTS
from lab_process import HerosProcess, start_demo

pytest_plugins = ["jupyter_fixtures"]
pytestmark = pytest.mark.browser

TOKEN = "heros-frontends"
#: Notebook 7.6.5's keyboard-shortcuts plugin throws this on every page load, its file browser (/tree)
#: included, with no notebook open: not ours, and harmless (shortcuts still work).
NOTEBOOK7_SHORTCUTS_ERROR = "Cannot read properties of undefined (reading 'schema')"


def _jupyter_env(tmp_path: Path) -> dict[str, str]:
    """Jupyter's folders in ``tmp_path`` (no settings or workspaces of the machine), HOME too (~/heros-demo)."""
    env = {var: str(tmp_path / var.lower()) for var in ("JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTERLAB_SETTINGS_DIR",
                                                        "JUPYTERLAB_WORKSPACES_DIR")}
    env["HOME"] = str(tmp_path / "home")
    settings = tmp_path / "jupyterlab_settings_dir" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    return env


def _wait_http(url: str, demo: HerosProcess, timeout: float = 90) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        assert demo.proc.poll() is None, f"heros demo exited: {demo.log()}"
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return time.monotonic() - t0
        except urllib.error.HTTPError:
            return time.monotonic() - t0
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout} s: {demo.log()}")


def _git_status() -> tuple[str, list[str]]:
    status = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return status, sorted(p.name for p in (ROOT / "heros" / "demo" / "notebooks").iterdir())


@pytest.fixture
def demo_frontend(tmp_path: Path, realm: str) -> Iterator[Any]:
    """``start(option, *jupyter_args)``: ``heros demo OPTION ... -- --no-browser --port=P ...`` from the clone; stopped after the test."""
    demos: list[HerosProcess] = []

    def start(option: str, *args: str, loopback: bool = False) -> dict[str, Any]:
        port = free_port()
        server = [f"--port={port}"]
        if option == "--dashboard":
            server.append("--Voila.ip=127.0.0.1")
        else:
            server += ["--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={TOKEN}", "--ServerApp.password="]
        if option == "--lab":
            server += ["--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        # never zenoh's default multicast scouting: the demo's own loopback hub, or the test run's (conftest.py)
        assert loopback or "127.0.0.1" in os.environ.get("HEROS_ZENOH_CONFIG", ""), "no loopback zenoh configuration"
        network = ["--loopback", str(free_port())] if loopback else []
        t0 = time.monotonic()
        demo = start_demo(realm, tmp_path / "demo.log", option, *network, *args, "--", "--no-browser", *server, env=_jupyter_env(tmp_path))
        demos.append(demo)
        base = f"http://127.0.0.1:{port}"
        _wait_http(f"{base}/voila/static/" if option == "--dashboard" else f"{base}/api/status", demo)
        return {"base": base, "demo": demo, "startup": round(time.monotonic() - t0, 2), "workdir": tmp_path / "home" / "heros-demo"}

    yield start
    for demo in demos:
        rc = demo.terminate(40)
        assert rc == 0, demo.log()


def _save_timings(frontend: str, timings: dict[str, float]) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "frontend-timings.json"
    try:
        everything = json.loads(path.read_text())
    except (OSError, ValueError):
        everything = {}
    everything[frontend] = timings
    path.write_text(json.dumps(everything, indent=1, sort_keys=True))
    print(f"{frontend} timings:", timings)


def test_quickstart_in_jupyterlab_from_the_demo(demo_frontend: Any, page: Any) -> None:
    """README's first command, from the clone: JupyterLab on the quickstart, whose image shows; saving it
    writes the working folder's copy and leaves ``git status`` as it was."""
    before = _git_status()
    lab = demo_frontend("--lab", loopback=True)
    timings = {"demo_and_jupyterlab_startup": lab["startup"]}
    t = time.monotonic()
    page.goto(f"{lab['base']}/lab/tree/quickstart.ipynb?token={TOKEN}&reset")
    wait_lab_kernel_idle(page)
    run_all_cells(page)
    image = page.locator(".jp-OutputArea-output.jp-RenderedImage img")  # matplotlib's figure of camera.snap()
    # attached, not visible: JupyterLab lays out cells far outside the viewport lazily
    image.wait_for(state="attached", timeout=120_000)
    page.get_by_text("done", exact=True).wait_for(state="attached", timeout=60_000)  # the last cell ran
    wait_lab_kernel_idle(page)
    timings["run_all_until_done"] = round(time.monotonic() - t, 2)
    box = image.bounding_box()
    assert box["width"] > 200 and box["height"] > 150, box
    image.scroll_into_view_if_needed()
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator(".jp-Cell").filter(has=image).screenshot(path=str(ARTIFACTS / "jupyterlab-quickstart-image.png"))
    page.screenshot(path=str(ARTIFACTS / "jupyterlab-quickstart.png"))

    # File > Save: JupyterLab writes the copy in the working folder, outputs included
    page.get_by_role("menuitem", name="File", exact=True).click()
    page.get_by_role("menuitem", name=re.compile(r"^Save Notebook(?! As)")).click()  # its name ends with the shortcut
    saved = lab["workdir"] / "quickstart.ipynb"
    deadline = time.monotonic() + 20
    while not _has_image(saved):
        assert time.monotonic() < deadline, "the saved quickstart has no image"
        page.wait_for_timeout(200)  # not time.sleep: the page's requests pass the route filter only while Playwright runs
    assert lab["demo"].terminate(40) == 0
    assert _git_status() == before, "the demo wrote into the clone"
    assert not page.errors, page.errors
    _save_timings("jupyterlab-quickstart", timings)


def _has_image(path: Path) -> bool:
    """Whether the notebook at ``path`` holds a PNG output (False while JupyterLab is still writing it)."""
    try:
        nb = nbformat.read(path, as_version=4)
    except (OSError, nbformat.reader.NotJSONError, json.JSONDecodeError):
        return False
    return any(o.get("data", {}).get("image/png") for c in nb.cells for o in c.get("outputs", []))


def test_panels_in_notebook7(demo_frontend: Any, page: Any, realm: str) -> None:
    """``heros demo --notebook``: panels.ipynb in Jupyter Notebook 7, Run All, then the checks every frontend passes."""
    nb7 = demo_frontend("--notebook")
    timings = {"demo_and_notebook7_startup": nb7["startup"]}
    t = time.monotonic()
    page.goto(f"{nb7['base']}/notebooks/panels.ipynb?token={TOKEN}")
    wait_notebook7_kernel_idle(page)
    run_all_cells(page)
    page.locator(".heros-panel-camera").wait_for(timeout=90_000)
    # the notebook's last cells switch the laser off and on: its panel greys out, then rebinds
    page.wait_for_function("() => /reconnected/.test(document.querySelector('.heros-panel-laser .heros-state').textContent)",
                           timeout=60_000)
    wait_notebook7_kernel_idle(page)
    timings["run_all_until_panels_shown"] = round(time.monotonic() - t, 2)
    timings.update(check_every_frontend(page, realm, "notebook7"))
    page.locator(".heros-panel-laser").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "notebook7-panels.png"))
    assert not [e for e in page.errors if e != NOTEBOOK7_SHORTCUTS_ERROR], page.errors
    _save_timings("notebook7", timings)


def test_dashboard_in_voila(demo_frontend: Any, page: Any, realm: str) -> None:
    """``heros demo --dashboard``: it prints the dashboard's address; the Voila page shows the discovery
    table and the instruments' panels, which pass the checks every frontend passes."""
    page.set_viewport_size({"width": 1400, "height": 1400})
    voila = demo_frontend("--dashboard")
    line = voila["demo"].wait_line("dashboard: ", timeout=60)
    assert line == f"dashboard: {voila['base']}/", line
    timings = {"demo_and_voila_startup": voila["startup"]}
    t = time.monotonic()
    page.goto(line.split(" ", 1)[1])  # Voila runs dashboard.ipynb in a kernel of its own for this page
    page.locator(".heros-discover .heros-row-laser").wait_for(timeout=90_000)
    timings["page_load_until_table_shown"] = round(time.monotonic() - t, 2)
    timings.update(check_every_frontend(page, realm, "voila"))
    assert page.locator(".jp-InputArea-editor, .cm-editor").count() == 0  # a dashboard: outputs only, no code
    assert page.get_by_text("%heros panel laser").count() == 0
    page.locator(".widget-gridbox").screenshot(path=str(ARTIFACTS / "voila-dashboard-panels.png"))
    page.screenshot(path=str(ARTIFACTS / "voila-dashboard.png"))
    assert not page.errors, page.errors
    _save_timings("voila", timings)
