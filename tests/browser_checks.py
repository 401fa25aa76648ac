"""What a user sees in a panel, checked in a real browser: one function per behaviour.

Each check takes a Playwright ``page`` and the locator of a panel (``page.locator(".heros-panel-laser")``),
and knows nothing of the frontend around it, so the same checks run in JupyterLab, Notebook 7
and Voila. They assert on the DOM: what a person would read or click (a check that writes or
watches a HERO as a third party takes its proxy). ``check_every_frontend`` is the sequence every
frontend's test runs on the demo lab's panels; a check added there runs in all of them.

At the end, what differs between the frontends: waiting for the kernel in JupyterLab and in
Notebook 7, and Run All (``research/browser_e2e.md`` measured both).
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import pytest
from jupyter_helpers import ARTIFACTS, wait_until

from heros import RemoteHERO


def entry_value(panel: Any, attribute: str) -> float:
    """The number shown in an attribute's entry (the box beside its slider)."""
    return float(panel.locator(f".heros-attr-{attribute} .heros-entry input").input_value())


def type_into_entry(panel: Any, attribute: str, text: str) -> None:
    """Type ``text`` into an attribute's number box and press Enter, as a user does."""
    box = panel.locator(f".heros-attr-{attribute} .heros-entry input")
    box.scroll_into_view_if_needed()
    box.fill(text)
    box.press("Enter")


def row_message(panel: Any, attribute: str) -> str:
    """The message line under an attribute's row ('' when hidden or empty)."""
    state = panel.locator(f".heros-attr-{attribute} .heros-attr-state")
    return str(state.inner_text()).strip() if state.is_visible() else ""


def check_typed_value_refused(page: Any, panel: Any, attribute: str, typed: str, range_text: str, before: float) -> None:
    """Typing an out-of-range value: a message names the range, the box goes back to the HERO's value."""
    type_into_entry(panel, attribute, typed)
    state = panel.locator(f".heros-attr-{attribute} .heros-attr-state")
    state.get_by_text(re.compile(re.escape(range_text))).wait_for(timeout=10_000)
    assert "nothing written" in state.inner_text()
    page.wait_for_function(
        "([sel, v]) => Number(document.querySelector(sel).value) === v",
        arg=[f"{_selector(panel)} .heros-attr-{attribute} .heros-entry input", before], timeout=10_000,
    )


def check_error_stays_in_its_row(panel: Any, attribute: str, text: str) -> None:
    """A refused write shows in its own row only; the header says only whether the HERO is there."""
    panel.locator(f".heros-attr-{attribute} .heros-attr-state.heros-error").get_by_text(re.compile(re.escape(text))).wait_for(timeout=10_000)
    assert text not in panel.locator(".heros-header").inner_text() + panel.locator(".heros-state").inner_text()
    others = panel.locator(".heros-attr-state.heros-error")
    assert others.count() == 1, f"{others.count()} rows show an error"


def check_error_cleared(page: Any, panel: Any, attribute: str) -> None:
    """After the row's next success its message is gone."""
    page.wait_for_function("(sel) => { const e = document.querySelector(sel); return !e || e.offsetParent === null || e.innerText.trim() === '' }",
                           arg=f"{_selector(panel)} .heros-attr-{attribute} .heros-attr-state", timeout=10_000)


def check_docs_and_limits(panel: Any, attribute: str, doc: str, limits: str) -> None:
    """The doc is on hover (a title on the name) and as text; unit and range stand beside the control."""
    assert panel.locator(f".heros-attr-{attribute} .heros-name span").get_attribute("title") == doc
    assert panel.locator(f".heros-attr-{attribute} .heros-doc").inner_text().strip() == doc
    assert panel.locator(f".heros-attr-{attribute} .heros-limits").inner_text().strip() == limits


def check_method_docs(panel: Any, method: str, signature: str, code: str) -> None:
    """A method shows its signature with units and limits, and its doc's inline code as code (no backticks)."""
    summary = panel.locator(f".heros-method-{method} .heros-signature")
    assert signature in summary.inner_text()
    assert summary.locator("code", has_text=code).count() >= 1
    tooltip = panel.locator(f".heros-run-{method}").get_attribute("title") or ""
    assert "``" not in tooltip and tooltip


def check_progress_and_result(page: Any, panel: Any, event: str, method: str, result: str) -> None:
    """A progress event shows a bar that reaches 100 %; the method's result reads with its unit."""
    page.wait_for_function(
        "(sel) => { const e = document.querySelector(sel); return e && /100 %/.test(e.innerText) }",
        arg=f"{_selector(panel)} .heros-progress-{event}", timeout=20_000,
    )
    page.wait_for_function("([sel, text]) => document.querySelector(sel).innerText.includes(text)",
                           arg=[f"{_selector(panel)} .heros-result-{method}", result], timeout=20_000)


def line_paths(panel: Any, event: str) -> list[str]:
    """The ``d`` of each drawn line of an event's plot (bqplot draws SVG paths)."""
    return [str(d) for d in panel.locator(f".heros-plot-{event} path.line").evaluate_all("els => els.map(e => e.getAttribute('d'))")]


def check_plot_updates(page: Any, panel: Any, event: str, unit_label: str | None = None) -> None:
    """The event's plot button opens a plot with axes whose line keeps changing (the data updates)."""
    panel.locator(f".heros-plot-button-{event}").click()
    plot = panel.locator(f".heros-plot-{event}")
    plot.locator("path.line").first.wait_for(timeout=20_000)
    first = line_paths(panel, event)
    page.wait_for_function(
        "([sel, before]) => [...document.querySelectorAll(sel)].map(e => e.getAttribute('d')).join('|') !== before",
        arg=[f"{_selector(panel)} .heros-plot-{event} path.line", "|".join(first)], timeout=20_000,
    )
    assert plot.locator(".axis").count() >= 2
    if unit_label is not None:
        assert unit_label in plot.inner_text()


def check_pause(page: Any, panel: Any, event: str) -> None:
    """Pause freezes the drawn line while samples still arrive; resume moves it again."""
    plot = panel.locator(f".heros-plot-{event}")
    plot.locator(".heros-plot-pause").click()
    plot.get_by_text("paused").wait_for(timeout=10_000)
    page.wait_for_timeout(300)  # a redraw in flight when pause was clicked may still land
    frozen = line_paths(panel, event)
    page.wait_for_timeout(1000)
    assert line_paths(panel, event) == frozen
    plot.locator(".heros-plot-pause").click()
    page.wait_for_function(
        "([sel, before]) => [...document.querySelectorAll(sel)].map(e => e.getAttribute('d')).join('|') !== before",
        arg=[f"{_selector(panel)} .heros-plot-{event} path.line", "|".join(frozen)], timeout=20_000,
    )


def check_live_image(page: Any, panel: Any, event: str) -> None:
    """An image event shows as a picture with a colour bar naming its min and max."""
    view = panel.locator(f".heros-event-view-{event}")
    view.locator("img.heros-image-frame").wait_for(timeout=20_000)  # the Image widget is the <img>
    assert view.locator(".heros-colorbar-max").inner_text().strip() and view.locator(".heros-colorbar-min").inner_text().strip()


def check_panel_shown(panel: Any, slider: str, method: str) -> None:
    """The panel appears and says its HERO is connected: ``slider`` (both limits known) has a slider, ``method`` a run button."""
    panel.wait_for(timeout=90_000)
    panel.locator(".heros-state").get_by_text(re.compile("^● connected")).wait_for(timeout=30_000)
    assert "heros-disconnected" not in (panel.get_attribute("class") or "")
    assert panel.locator(f".heros-attr-{slider} .noUi-handle").count() == 1
    assert panel.locator(f".heros-run-{method}").count() == 1


def _run(panel: Any, method: str) -> None:
    button = panel.locator(f".heros-run-{method}")
    button.scroll_into_view_if_needed()
    button.click()


def _returned(panel: Any, method: str) -> None:
    # the state line is a widget of its own: its update may land just after the result's
    panel.locator(f".heros-method-{method} .heros-call-state").get_by_text("returned in").wait_for(timeout=10_000)


def check_method_result(panel: Any, method: str, pattern: str) -> None:
    """The run button calls the method on the HERO: its result (matching the regex ``pattern``) shows, and how long it took."""
    _run(panel, method)
    panel.locator(f".heros-result-{method}").get_by_text(re.compile(pattern)).first.wait_for(timeout=20_000)
    _returned(panel, method)


def check_method_image(panel: Any, method: str) -> None:
    """The run button calls a method returning a 2-D array: it shows as a picture with a colour scale beside it."""
    _run(panel, method)
    panel.locator(f".heros-result-{method} img").wait_for(timeout=20_000)
    assert panel.locator(f".heros-result-{method} .heros-colorbar").count() == 1
    _returned(panel, method)


def check_slider_writes_once(page: Any, panel: Any, attribute: str, hero: Any, within: tuple[float, float], to: float = 0.8) -> float:
    """Dragging an attribute's slider to ``to`` of its track writes the value it lands on to ``hero``, once,
    on release; the entry beside it shows what the HERO holds then. Returns that value."""
    assert entry_value(panel, attribute) == pytest.approx(getattr(hero, attribute), abs=1e-6)
    writes: list[float] = []
    seen = threading.Event()
    watch = hero._watch_attribute(attribute, lambda v: (writes.append(v), seen.set()))
    try:
        start = getattr(hero, attribute)
        wait_until(lambda: (setattr(hero, attribute, start), seen.wait(0.2))[1], 10, "the watch to see a write")
        writes.clear()
        seen.clear()
        handle = panel.locator(f".heros-attr-{attribute} .noUi-handle")
        handle.scroll_into_view_if_needed()
        track = panel.locator(f".heros-attr-{attribute} .noUi-target").bounding_box()
        box = handle.bounding_box()
        y = box["y"] + box["height"] / 2
        page.mouse.move(box["x"] + box["width"] / 2, y)
        page.mouse.down()
        page.mouse.move(track["x"] + track["width"] * to, y, steps=25)
        page.mouse.up()
        assert seen.wait(10), "the drag never reached the HERO"
        # the entry beside the slider follows the drag through the kernel: await it showing what the HERO holds
        wait_until(lambda: entry_value(panel, attribute) == pytest.approx(getattr(hero, attribute), abs=1e-6), 10,
                   f"the entry to show the HERO's {attribute}")
        shown = entry_value(panel, attribute)
        time.sleep(0.5)  # an absence cannot be awaited: further writes of this drag would have arrived by now
        assert within[0] < shown <= within[1] and len(writes) == 1, (shown, writes)
        return shown
    finally:
        watch.close()


def check_remote_write_shown(page: Any, panel: Any, attribute: str, hero: Any, value: float) -> None:
    """A value written elsewhere (``hero``, a third party's proxy) shows in the attribute's entry."""
    setattr(hero, attribute, value)
    page.wait_for_function("([sel, v]) => Number(document.querySelector(sel).value) === v",
                           arg=[f"{_selector(panel)} .heros-attr-{attribute} .heros-entry input", value], timeout=10_000)


def check_event_view_live(page: Any, panel: Any, event: str, more: int = 3) -> None:
    """An event's view counts on while the HERO emits (``more`` events at least), with a sparkline of the values."""
    view = panel.locator(f".heros-event-{event}")
    view.locator(".heros-sparkline").wait_for(timeout=20_000)
    first = int(view.locator(".heros-event-count").inner_text())
    page.wait_for_function("([sel, n]) => Number(document.querySelector(sel).textContent) >= n",
                           arg=[f"{_selector(panel)} .heros-event-{event} .heros-event-count", first + more], timeout=15_000)


def check_every_frontend(page: Any, realm: str, frontend: str) -> dict[str, float]:
    """What every frontend shows of the demo lab's panels (the laser's, the cryostat's and the camera's on
    ``page``, HEROs of ``realm``): connected panels, a picture returned by a method, a slider's single
    write, a write made elsewhere, a text result, a live event view, a live plot. Screenshots go to
    ``test-artifacts/<frontend>-panel-<hero>.png``; returns the seconds each step took."""
    timings: dict[str, float] = {}
    t = time.monotonic()

    def lap(name: str) -> None:
        nonlocal t
        timings[name] = round(time.monotonic() - t, 2)
        t = time.monotonic()

    def shot(locator: Any, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        locator.screenshot(path=str(ARTIFACTS / f"{frontend}-{name}.png"))

    laser, cryostat, camera = (page.locator(f".heros-panel-{name}") for name in ("laser", "cryostat", "camera"))
    for panel, slider, method in ((laser, "power", "pulse"), (cryostat, "setpoint", "ramp"), (camera, "exposure", "snap")):
        check_panel_shown(panel, slider, method)
    lap("panels_shown")
    check_method_image(camera, "snap")
    shot(camera, "panel-camera")
    lap("snap_until_image")
    proxy = RemoteHERO("laser", realm=realm)
    try:
        check_slider_writes_once(page, laser, "power", proxy, within=(30, 50))
        lap("slider_drag_until_one_write")
        check_remote_write_shown(page, laser, "power", proxy, 12.5)
        lap("remote_write_until_shown")
        proxy.enabled = True  # the laser starts disabled, and pulse refuses then
        check_method_result(laser, "pulse", r"mJ at \d+ nm")
        shot(laser, "panel-laser")
        lap("pulse_until_result")
    finally:
        proxy._destroy_hero()
    check_event_view_live(page, cryostat, "temperature_changed")
    lap("event_view_live")
    check_plot_updates(page, cryostat, "temperature_changed", unit_label="K")
    shot(cryostat, "panel-cryostat")
    lap("plot_until_redrawn")
    return timings


def _selector(panel: Any) -> str:
    """The CSS selector a panel locator was made from (for checks that run in the page)."""
    text = str(panel)
    found = re.search(r"selector='([^']+)'", text)
    return found.group(1) if found else text


# What differs between the frontends: getting a notebook running.


def what_the_page_says(page: Any, panel: Any, *logs: Any) -> str:
    """For a failure's message: the panel's state line, what the kernel wrote to stderr (its
    warnings land in the page), and the ends of ``logs`` (paths)."""
    parts = []
    try:
        parts.append("panel state: " + panel.locator(".heros-state").inner_text(timeout=2_000))
        stderr = page.locator("[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts()
        parts.append("kernel stderr: " + ("\n".join(stderr)[-3000:] or "(none)"))
    except Exception as exc:  # the message says what could not be read
        parts.append(f"(page not readable: {exc})")
    for path in logs:
        try:
            parts.append(f"{path}: ...{path.read_text(errors='replace')[-3000:]}")
        except OSError as exc:
            parts.append(f"{path}: {exc}")
    return "\n".join(parts)


def wait_lab_kernel_idle(page: Any) -> None:
    """JupyterLab: the kernel is connected and idle (the status bar, not the notebook's execution
    indicator, which reads idle before the kernel exists)."""
    page.locator("#jp-main-statusbar").get_by_text("(ipykernel) | Idle").wait_for(timeout=90_000)


def wait_notebook7_kernel_idle(page: Any) -> None:
    """Notebook 7 (no status bar): its kernel-status widget fades out once the kernel reports busy or
    idle (while the kernel starts it shows an info text), then the execution indicator says idle."""
    page.wait_for_selector(".jp-NotebookKernelStatus-fade:not(.jp-NotebookKernelStatus-info)", state="attached", timeout=90_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", state="attached", timeout=90_000)


def run_all_cells(page: Any, tries: int = 4) -> None:
    """Run > Run All Cells (the same menu in JupyterLab and Notebook 7), again if no prompt starts."""
    for _ in range(tries):
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        try:
            page.wait_for_function(
                "() => [...document.querySelectorAll('.jp-InputPrompt')].some(e => /\\[(\\*|\\d+)\\]/.test(e.textContent))",
                timeout=5_000,
            )
            return
        except Exception:
            page.keyboard.press("Escape")
    raise AssertionError("Run All Cells never started execution")
