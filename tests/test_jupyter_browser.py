"""panels.ipynb (heros/demo/notebooks/) in a real browser: JupyterLab, headless Debian Chromium driven by Playwright.

The demo lab runs in another process; the test process talks to it as a third party (writes,
watches) and kills and restarts it. What every frontend must show is in ``browser_checks.py``
(``tests/test_frontends.py`` runs the same in Notebook 7 and Voila). Timings and screenshots land
in ``test-artifacts/``.
"""

from __future__ import annotations

import json
import time
from typing import Any

import browser_checks as check
import nbformat
import pytest
from browser_checks import run_all_cells, wait_lab_kernel_idle
from jupyter_helpers import ARTIFACTS, wait_until
from lab_process import start_demo

from heros import RemoteHERO

pytest_plugins = ["jupyter_fixtures"]
pytestmark = pytest.mark.browser


def test_panels_notebook_in_jupyterlab(jupyter_lab: dict[str, Any], page: Any, realm: str, tmp_path: Any) -> None:
    timings: dict[str, float] = {"jupyterlab_startup": round(jupyter_lab["startup"], 2)}
    t = time.monotonic()

    def lap(name: str) -> None:
        nonlocal t
        timings[name] = round(time.monotonic() - t, 2)
        t = time.monotonic()

    lab = start_demo(realm, tmp_path / "demo.log")  # `heros demo`, in another process
    page.goto(f"{jupyter_lab['base']}/lab/tree/panels.ipynb?token={jupyter_lab['token']}&reset")
    wait_lab_kernel_idle(page)
    lap("open_notebook_until_kernel_idle")
    run_all_cells(page)
    laser_panel = page.locator(".heros-panel-laser")
    laser_panel.wait_for(timeout=90_000)
    page.locator(".heros-panel-camera").wait_for(timeout=60_000)
    page.locator(".heros-discover .heros-row-laser").wait_for(timeout=30_000)
    # the notebook's last cells switch the laser off and on (lab.switch_off/switch_on): its panel has rebound
    laser_panel.locator(".heros-state").get_by_text("reconnected").wait_for(state="attached", timeout=60_000)
    wait_lab_kernel_idle(page)
    lap("run_all_until_panels_shown")

    # what every frontend shows: panels, a picture, a slider's one write, a write from elsewhere, a result, live views
    timings.update(check.check_every_frontend(page, realm, "jupyterlab"))
    t = time.monotonic()

    # the HERO process dies: the panels grey out and say so
    lab.kill()
    page.wait_for_selector(".heros-panel-laser.heros-disconnected", timeout=20_000)
    assert "is gone" in laser_panel.locator(".heros-state").inner_text()
    # each widget's update reaches the page as its own message: await the button's, with a bound
    page.wait_for_selector(".heros-panel-laser .heros-run-pulse:disabled", timeout=10_000)
    assert laser_panel.locator(".heros-run-pulse").is_disabled()
    page.wait_for_function("() => !document.querySelector('.heros-discover .heros-row-laser')", timeout=20_000)
    lap("kill_until_greyed_out")
    ARTIFACTS.mkdir(exist_ok=True)
    laser_panel.screenshot(path=str(ARTIFACTS / "jupyterlab-panel-disconnected.png"))

    # it comes back: the panels rebind by themselves
    lab = start_demo(realm, tmp_path / "demo2.log")
    try:
        page.wait_for_selector(".heros-panel-laser:not(.heros-disconnected)", timeout=30_000)
    except Exception:  # (CI saw this once: say what the page and the lab said)
        pytest.fail("the laser panel did not rebind within 30 s\n" + check.what_the_page_says(page, laser_panel, tmp_path / "demo2.log"))
    page.wait_for_function("() => /reconnected/.test(document.querySelector('.heros-panel-laser .heros-state').innerText)",
                           timeout=30_000)
    lap("restart_until_rebound")
    laser = RemoteHERO("laser", realm=realm)
    check.check_remote_write_shown(page, laser_panel, "power", laser, 7.25)
    assert not laser_panel.locator(".heros-run-pulse").is_disabled()
    laser._destroy_hero()
    lap("write_after_rebind_until_page_updated")

    page.screenshot(path=str(ARTIFACTS / "jupyterlab-panels.png"), full_page=True)
    (ARTIFACTS / "browser-timings.json").write_text(json.dumps(timings, indent=1))
    print("browser timings:", timings)
    assert not page.errors, page.errors
    assert lab.terminate() == 0


ISSUE14_CELLS = [
    "%load_ext heros_jupyter",
    "laser = %heros connect laser",
    "cryostat = %heros connect cryostat",
    "stage = %heros connect stage",
    "camera = %heros connect camera",
]


def test_what_a_user_relies_on_in_jupyterlab(jupyter_lab: dict[str, Any], page: Any, realm: str, tmp_path: Any) -> None:
    """Issue 14 in JupyterLab: refused typed values, errors that stay in their row and go, docs and
    limits, rows following events, progress bars, units, live plots and images."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in ISSUE14_CELLS],
                                  metadata={"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}})
    nbformat.write(nb, jupyter_lab["root"] / "issue14.ipynb")
    lab = start_demo(realm, tmp_path / "demo.log")
    laser = RemoteHERO("laser", realm=realm)
    writes: list[float] = []
    watch = laser._watch_attribute("power", writes.append)
    page.goto(f"{jupyter_lab['base']}/lab/tree/issue14.ipynb?token={jupyter_lab['token']}&reset")
    wait_lab_kernel_idle(page)
    run_all_cells(page)
    panels = {name: page.locator(f".heros-panel-{name}") for name in ("laser", "cryostat", "stage", "camera")}
    for panel in panels.values():
        panel.wait_for(timeout=90_000)
    wait_lab_kernel_idle(page)
    ARTIFACTS.mkdir(exist_ok=True)
    laser_panel = panels["laser"]

    # never a value the user did not ask for
    check.check_typed_value_refused(page, laser_panel, "power", "80", "must be within 0..50 mW, not 80", before=0.0)
    laser_panel.screenshot(path=str(ARTIFACTS / "jupyterlab-refused-value.png"))
    check.check_typed_value_refused(page, laser_panel, "power", "-5", "must be within 0..50 mW, not -5", before=0.0)
    assert laser.power == 0.0 and writes == []
    check.type_into_entry(laser_panel, "power", "12.5")
    wait_until(lambda: laser.power == 12.5, 10, "the typed value in range to be written")
    check.check_error_cleared(page, laser_panel, "power")

    # a refused write's error stays in its row and goes with the next success
    laser.interlock_closed = False
    page.wait_for_function("() => !document.querySelector('.heros-panel-laser .heros-attr-interlock_closed input').checked", timeout=10_000)
    laser_panel.locator(".heros-attr-enabled input[type=checkbox]").click()
    check.check_error_stays_in_its_row(laser_panel, "enabled", "the interlock is open")
    laser_panel.screenshot(path=str(ARTIFACTS / "jupyterlab-error-in-row.png"))
    laser.interlock_closed = True
    page.wait_for_function("() => document.querySelector('.heros-panel-laser .heros-attr-interlock_closed input').checked", timeout=10_000)
    page.wait_for_function("() => !document.querySelector('.heros-panel-laser .heros-attr-enabled input').checked", timeout=10_000)
    laser_panel.locator(".heros-attr-enabled input[type=checkbox]").click()
    wait_until(lambda: laser.enabled, 10, "the laser to be enabled")
    check.check_error_cleared(page, laser_panel, "enabled")

    # what each control is
    check.check_docs_and_limits(laser_panel, "power", "optical output power", "mW, 0..50")
    check.check_method_docs(laser_panel, "pulse", "pulse(duration: float [s, 0.001..10] = 0.1) -> str", "duration")

    # live values follow the event that publishes them; a plot of it, with pause
    cryostat = panels["cryostat"]
    assert cryostat.locator(".heros-attr-temperature .heros-pushed").count() == 1
    check.check_plot_updates(page, cryostat, "temperature_changed", unit_label="K")
    check.check_pause(page, cryostat, "temperature_changed")
    cryostat.screenshot(path=str(ARTIFACTS / "jupyterlab-plot.png"))

    # progress as a bar, results with their unit
    stage = panels["stage"]
    box = stage.locator(".heros-method-move_to .heros-entry input, .heros-method-move_to .heros-arg-move_to-x input").last
    box.fill("20")
    box.press("Enter")
    stage.locator(".heros-run-move_to").click()
    check.check_progress_and_result(page, stage, "progress", "move_to", "20 mm")
    stage.screenshot(path=str(ARTIFACTS / "jupyterlab-progress.png"))

    # image events as a live picture with a colour scale
    camera_proxy = RemoteHERO("camera", realm=realm)
    for _ in range(3):
        camera_proxy.snap()
    check.check_live_image(page, panels["camera"], "frame")
    panels["camera"].screenshot(path=str(ARTIFACTS / "jupyterlab-image-event.png"))
    page.screenshot(path=str(ARTIFACTS / "jupyterlab-issue14.png"), full_page=True)
    watch.close()
    assert not page.errors, page.errors
    assert lab.terminate() == 0
