"""notebooks/panels.ipynb in a real browser: JupyterLab, headless Debian Chromium driven by Playwright.

The demo lab runs in another process; the test process talks to it as a third party (writes,
watches) and kills and restarts it. Timings and screenshots land in ``test-artifacts/``.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import browser_checks as check
import nbformat
import pytest
from jupyter_helpers import ARTIFACTS, wait_until
from lab_process import start_demo

from heros import RemoteHERO

pytest_plugins = ["jupyter_fixtures"]
pytestmark = pytest.mark.browser


def wait_kernel_idle(page: Any) -> None:
    # the status bar, not the notebook's execution indicator (idle before the kernel exists)
    page.locator("#jp-main-statusbar").get_by_text("(ipykernel) | Idle").wait_for(timeout=90_000)


def run_all_cells(page: Any, tries: int = 4) -> None:
    for _ in range(tries):
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        try:
            page.wait_for_function(
                "() => [...document.querySelectorAll('.jp-InputPrompt')].some(e => /\\[(\\*|\\d+)\\]/.test(e.innerText))",
                timeout=5_000,
            )
            return
        except Exception:
            page.keyboard.press("Escape")
    raise AssertionError("Run All Cells never started execution")


def readout(page: Any, attribute: str) -> float:
    # the slider's own readout is hidden (it clamps what is typed): the entry beside it shows the value
    return float(page.locator(f".heros-panel-laser .heros-attr-{attribute} .heros-entry input").input_value())


def test_panels_notebook_in_jupyterlab(jupyter_lab: dict[str, Any], page: Any, realm: str, tmp_path: Any) -> None:
    timings: dict[str, float] = {"jupyterlab_startup": round(jupyter_lab["startup"], 2)}
    t = time.monotonic()

    def lap(name: str) -> None:
        nonlocal t
        timings[name] = round(time.monotonic() - t, 2)
        t = time.monotonic()

    lab = start_demo(realm, tmp_path / "demo.log")  # `heros demo`, in another process
    page.goto(f"{jupyter_lab['base']}/lab/tree/panels.ipynb?token={jupyter_lab['token']}&reset")
    wait_kernel_idle(page)
    lap("open_notebook_until_kernel_idle")
    run_all_cells(page)
    laser_panel = page.locator(".heros-panel-laser")
    laser_panel.wait_for(timeout=90_000)
    page.locator(".heros-panel-camera").wait_for(timeout=60_000)
    page.locator(".heros-discover .heros-row-laser").wait_for(timeout=30_000)
    wait_kernel_idle(page)
    lap("run_all_until_panels_shown")

    # a method button: the result shows in the panel
    laser_panel.locator(".heros-run-pulse").click()
    page.wait_for_function(
        "() => /mJ at 633 nm/.test(document.querySelector('.heros-panel-laser .heros-result-pulse').innerText)", timeout=20_000
    )
    # the state line is a widget of its own: its update may land just after the result's
    laser_panel.locator(".heros-method-pulse .heros-call-state").get_by_text("returned in").wait_for(timeout=10_000)
    lap("click_pulse_until_result")
    camera_panel = page.locator(".heros-panel-camera")
    camera_panel.locator(".heros-run-snap").click()
    camera_panel.locator(".heros-result-snap img").wait_for(timeout=20_000)
    assert camera_panel.locator(".heros-result-snap .heros-colorbar").count() == 1  # a colour scale beside the picture
    lap("click_snap_until_image")
    ARTIFACTS.mkdir(exist_ok=True)
    camera_panel.screenshot(path=str(ARTIFACTS / "panel-camera-snap.png"))
    cryostat_panel = page.locator(".heros-panel-cryostat")
    cryostat_panel.locator(".heros-event-temperature_changed .heros-sparkline").wait_for(timeout=20_000)
    assert "events" in cryostat_panel.locator(".heros-event-temperature_changed").inner_text()

    # a slider drag: the HERO's attribute changes, with one write
    laser = RemoteHERO("laser", realm=realm)
    assert laser.power == 5.0 and readout(page, "power") == 5.0
    writes: list[float] = []
    seen = threading.Event()
    watch = laser._watch_attribute("power", lambda v: (writes.append(v), seen.set()))
    wait_until(lambda: (setattr(laser, "power", 5.0), seen.wait(0.2))[1], 10, "the watch to see a write")
    writes.clear()
    seen.clear()
    handle = laser_panel.locator(".heros-attr-power .noUi-handle")
    handle.scroll_into_view_if_needed()
    track = laser_panel.locator(".heros-attr-power .noUi-target").bounding_box()
    box = handle.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] / 2, y)
    page.mouse.down()
    page.mouse.move(track["x"] + track["width"] * 0.8, y, steps=25)
    page.mouse.up()
    assert seen.wait(10), "the drag never reached the HERO"
    # the entry beside the slider follows the drag through the kernel: await it showing what the HERO holds
    wait_until(lambda: readout(page, "power") == pytest.approx(laser.power, abs=1e-6), 10, "the HERO's power to match the slider")
    shown = readout(page, "power")
    time.sleep(0.5)  # an absence cannot be awaited: further writes of this drag would have arrived by now
    assert 30 < shown <= 50 and len(writes) == 1, (shown, writes)
    lap("drag_slider_until_hero_changed")

    # a change made elsewhere reaches the page
    laser.power = 12.5
    page.wait_for_function("() => Number(document.querySelector('.heros-panel-laser .heros-attr-power .heros-entry input').value) === 12.5",
                           timeout=10_000)
    lap("remote_write_until_page_updated")
    watch.close()

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
    laser_panel.screenshot(path=str(ARTIFACTS / "panel-disconnected.png"))

    # it comes back: the panels rebind by themselves
    lab = start_demo(realm, tmp_path / "demo2.log")
    page.wait_for_selector(".heros-panel-laser:not(.heros-disconnected)", timeout=30_000)
    page.wait_for_function("() => /reconnected/.test(document.querySelector('.heros-panel-laser .heros-state').innerText)",
                           timeout=30_000)
    lap("restart_until_rebound")
    RemoteHERO("laser", realm=realm).power = 7.25
    page.wait_for_function("() => Number(document.querySelector('.heros-panel-laser .heros-attr-power .heros-entry input').value) === 7.25",
                           timeout=10_000)
    assert not laser_panel.locator(".heros-run-pulse").is_disabled()
    lap("write_after_rebind_until_page_updated")

    page.screenshot(path=str(ARTIFACTS / "panels-jupyterlab.png"), full_page=True)
    laser_panel.screenshot(path=str(ARTIFACTS / "panel-laser.png"))
    cryostat_panel.screenshot(path=str(ARTIFACTS / "panel-cryostat.png"))
    camera_panel.screenshot(path=str(ARTIFACTS / "panel-camera.png"))
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
    wait_kernel_idle(page)
    run_all_cells(page)
    panels = {name: page.locator(f".heros-panel-{name}") for name in ("laser", "cryostat", "stage", "camera")}
    for panel in panels.values():
        panel.wait_for(timeout=90_000)
    wait_kernel_idle(page)
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
