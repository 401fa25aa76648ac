"""The Jupyter layer on upstream HEROS HEROs: discovery beside ours, and panels that poll what upstream does not publish.

In a real kernel (nbclient, a frontend's messages stood in for) and in JupyterLab in headless
Chromium. The upstream HERO runs in upstream's own virtualenv (``tests/upstream.py``).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from jupyter_helpers import ARTIFACTS, wait_until

pytest_plugins = ["jupyter_fixtures"]

PANEL = "get_ipython()._heros_magics.panels[(get_ipython()._heros_magics.realm, {name!r})]"


def child_with(k: Any, parent_class: str, index: int) -> str:
    return k.children(k.model(parent_class))[index]


@pytest.mark.kernel
def test_discover_lists_upstream_heros_and_a_panel_polls_and_drives_one(kernel: Any, jspawn: Any, spawn_upstream: Any,
                                                                          realm: str) -> None:
    jspawn(realm, "Laser:laser")
    up = spawn_upstream(realm, "UpLaser:uplaser")
    panel = PANEL.format(name="uplaser")
    with kernel() as k:
        k.run("%load_ext heros_jupyter\n%config HerosMagics.poll_interval = 0.2")
        k.run("%heros discover")
        k.settle("{'laser', 'uplaser'} <= set(get_ipython()._heros_magics.tables[-1].rows)")
        listing = k.run("%heros list")
        assert "UpLaser (upstream HEROS)" in listing and "laser" in listing
        k.run("uplaser = %heros connect uplaser")
        assert "upstream HEROS" in k.state[k.model("heros-header")]["value"] if len(k.models("heros-header")) == 1 else True
        # (issue 14: the row is its line and a message line; the inputs carry heros-input-NAME)
        slider = next(m for m in k.models("heros-input-power") if k.state[m]["_model_name"] == "FloatSliderModel")
        assert k.state[slider]["max"] == 50.0  # limits from the type text
        assert k.state[k.model("heros-input-mode")]["_model_name"] == "DropdownModel"
        sources = {m: k.state[m]["_dom_classes"] for m in k.models("heros-attr-source")}
        assert sources and all("heros-polled" in c for c in sources.values())  # upstream publishes no changes: every row is polled

        k.set_value(slider, 12.5)  # the user releases the slider
        wait_until(lambda: up.eval("heroes['uplaser'].power") == 12.5, 10, "the write to reach the upstream HERO")
        k.settle(f"{panel}.bindings['power'].control.widget.value == 30.0",  # an upstream client writes: the poll shows it
                 action=lambda: up.exec("heroes['uplaser'].power = 30.0"))
        k.click(k.model("heros-run-pulse"))
        k.settle(f"{panel}.forms['pulse'].calls == 1")
        result = k.state[k.model("heros-result-pulse")]["outputs"]
        assert "pulse 1.0 mJ at 30.0 mW (cw)" in result[0]["data"]["text/plain"]
        k.settle(f"{panel}.events['fired'].count >= 1")  # the upstream event, heard in CBOR
        k.settle(f"{panel}.bindings['shots'].control.widget.value == 1")


@pytest.mark.browser
def test_an_upstream_hero_panel_in_jupyterlab(jupyter_lab: dict[str, Any], page: Any, spawn_upstream: Any, realm: str) -> None:
    import nbformat
    from browser_checks import run_all_cells
    from browser_checks import wait_lab_kernel_idle as wait_kernel_idle

    up = spawn_upstream(realm, "UpLaser:uplaser")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("%load_ext heros_jupyter\n%config HerosMagics.poll_interval = 0.3"),
                nbformat.v4.new_code_cell("uplaser = %heros connect uplaser")]
    nbformat.write(nb, str(jupyter_lab["root"] / "upstream.ipynb"))
    page.goto(f"{jupyter_lab['base']}/lab/tree/upstream.ipynb?token={jupyter_lab['token']}&reset")
    wait_kernel_idle(page)
    run_all_cells(page)
    panel = page.locator(".heros-panel-uplaser")
    panel.wait_for(timeout=90_000)
    assert "upstream HEROS" in panel.locator(".heros-header").inner_text()

    # a slider drag reaches the upstream HERO
    handle = panel.locator(".heros-attr-power .noUi-handle")
    handle.scroll_into_view_if_needed()
    track = panel.locator(".heros-attr-power .noUi-target").bounding_box()
    box = handle.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] / 2, y)
    page.mouse.down()
    page.mouse.move(track["x"] + track["width"] * 0.7, y, steps=20)
    page.mouse.up()
    shown = float(panel.locator(".heros-attr-power .widget-readout").inner_text())
    wait_until(lambda: up.eval("heroes['uplaser'].power") == pytest.approx(shown, abs=1e-6), 15, "the upstream HERO to take the drag")
    assert 25 < shown <= 50

    # a method runs
    panel.locator(".heros-run-pulse").click()
    page.wait_for_function("() => /pulse 1.0 mJ/.test(document.querySelector('.heros-panel-uplaser .heros-result-pulse').innerText)",
                           timeout=20_000)

    # a value changed by an upstream client appears (polled)
    up.exec("heroes['uplaser'].power = 7.25")
    page.wait_for_function(
        "() => document.querySelector('.heros-panel-uplaser .heros-attr-power .widget-readout').innerText.trim() === '7.25'",
        timeout=15_000)
    t0 = time.monotonic()
    up.exec("heroes['uplaser'].shots = 41")
    page.wait_for_function(
        "() => document.querySelector('.heros-panel-uplaser .heros-attr-shots input').value === '41'", timeout=15_000)
    print(f"upstream write -> page: {time.monotonic() - t0:.2f} s")
    ARTIFACTS.mkdir(exist_ok=True)
    panel.screenshot(path=str(ARTIFACTS / "panel-upstream-hero.png"))
    assert not page.errors, page.errors
