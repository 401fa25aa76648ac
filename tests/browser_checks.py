"""What a user sees in a panel, checked in a real browser: one function per behaviour of issue 14.

Each takes a Playwright ``page`` and the locator of a panel (``page.locator(".heros-panel-laser")``),
and knows nothing of the frontend around it, so the same checks run in JupyterLab, Notebook 7
and Voila. They assert on the DOM only: what a person would read or click.
"""

from __future__ import annotations

import re
from typing import Any


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


def _selector(panel: Any) -> str:
    """The CSS selector a panel locator was made from (for checks that run in the page)."""
    text = str(panel)
    found = re.search(r"selector='([^']+)'", text)
    return found.group(1) if found else text
