"""``heros_jupyter`` in real IPython kernels (nbclient): HEROs in other processes, widget state as a frontend sees it.

A browser is stood in for by the comm messages it would send (a committed value, a click). Widget
updates made on the kernel's loop are captured by nbclient while a cell awaits (``Kernel.settle``).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from jupyter_helpers import ARTIFACTS, NOTEBOOKS, run_notebook, wait_until
from lab_process import start_demo

pytest_plugins = ["jupyter_fixtures"]
pytestmark = pytest.mark.kernel

PANEL = "get_ipython()._heros_magics.panels[(get_ipython()._heros_magics.realm, {name!r})]"
VIEW = "application/vnd.jupyter.widget-view+json"


def rows_shown(k: Any) -> set[str]:
    """HERO names of the rows the discovery table's grid holds now (what a frontend renders)."""
    grid = k.model("heros-discover-rows")
    classes = [k.state[c].get("_dom_classes", ()) for c in k.children(grid)]
    return {c.removeprefix("heros-row-") for cls in classes for c in cls if c.startswith("heros-row-")}


def child_with(k: Any, parent_class: str, index: int) -> str:
    return k.children(k.model(parent_class))[index]


def input_of(k: Any, attribute: str, model: str) -> str:
    """The input of an attribute row with this model name (the slider, or the number box beside it)."""
    found = [m for m in k.models(f"heros-input-{attribute}") if k.state[m]["_model_name"] == model]
    assert len(found) == 1, (attribute, model, [k.state[m]["_model_name"] for m in k.models(f"heros-input-{attribute}")])
    return found[0]


def row_state(k: Any, attribute: str) -> dict[str, Any]:
    """The message line under an attribute row (errors, pending writes)."""
    return k.state[child_with(k, f"heros-attr-{attribute}", 1)]


def server_eval(server: Any, expression: str) -> str:
    server.send(f"eval {expression}")
    return server.wait_line("OK").removeprefix("OK ")


def test_discover_follows_heroes_joining_and_leaving(kernel: Any, jspawn: Any, realm: str) -> None:
    jspawn(realm, "Laser:laser")
    with kernel() as k:
        k.run("%load_ext heros_jupyter")
        k.run("%heros discover")
        outputs = k.nb.cells[-1].outputs
        assert VIEW in outputs[0]["data"] and "laser" in outputs[0]["data"]["text/plain"]
        assert rows_shown(k) == {"laser"}
        started = []
        k.settle("'late' in get_ipython()._heros_magics.tables[-1].rows", action=lambda: started.append(jspawn(realm, "Camera:late")))
        assert rows_shown(k) == {"laser", "late"}
        k.settle("'late' not in get_ipython()._heros_magics.tables[-1].rows", action=started[0].kill)
        assert rows_shown(k) == {"laser"}
        assert "laser" in k.run("%heros list") and "late" not in k.run("%heros list")

        k.click(k.model("heros-connect-laser"))  # the row's connect button
        k.settle("'laser' in globals() and len(get_ipython()._heros_magics.tables[-1].panels.children) == 1")
        k.resync()
        shown = k.children(k.model("heros-discover-panels"))
        assert len(shown) == 1 and "heros-panel-laser" in k.state[shown[0]]["_dom_classes"]
        assert k.run("print(type(laser).__name__, laser.wavelength)").split() == ["RemoteHERO", "532"]


def test_hero_names_complete_in_the_kernel(kernel: Any, jspawn: Any, realm: str) -> None:
    jspawn(realm, "Laser:laser", "Camera:camera")
    with kernel() as k:
        k.run("%load_ext heros_jupyter")
        k.settle("len(get_ipython()._heros_magics.registry(get_ipython()._heros_magics.realm).names()) == 2")
        assert "laser" in k.complete("%heros connect la")
        assert "camera" in k.complete("cam = %heros connect c")
        assert "connect" in k.complete("%heros co")
        assert k.complete("%heros connect ") == ["camera", "laser"]  # HERO names first: no Python keywords before them
        assert k.completion_types("%heros connect ") == ["HERO (Camera)", "HERO (Laser)"]


def test_connect_binds_both_ways_and_runs_methods(kernel: Any, jspawn: Any, realm: str) -> None:
    server = jspawn(realm, "Laser:laser")
    panel = PANEL.format(name="laser")
    with kernel() as k:
        k.run("%load_ext heros_jupyter")
        k.run("laser = %heros connect laser")
        assert VIEW in k.nb.cells[-1].outputs[0]["data"]
        assert "RemoteHERO 'laser'" in k.nb.cells[-1].outputs[0]["data"]["text/plain"]
        slider = input_of(k, "power", "FloatSliderModel")
        assert k.state[slider]["max"] == 50.0 and k.state[slider]["continuous_update"] is False
        assert k.state[slider]["readout"] is False  # its readout would clamp a typed value: the entry beside it takes typing

        k.set_value(slider, 12.5)  # the user releases the slider
        wait_until(lambda: server_eval(server, "heroes['laser'].power") == "12.5", 10, "the write to reach the HERO")
        assert server_eval(server, "heroes['laser'].power_writes") == "1"

        k.settle(f"{panel}.bindings['power'].control.widget.value == 20.0",  # the HERO's own code writes
                 action=lambda: server_eval(server, "setattr(heroes['laser'], 'power', 20.0)"))
        assert k.state[slider]["value"] == 20.0
        assert server_eval(server, "heroes['laser'].power_writes") == "2"  # no echo write

        k.set_value(k.model("heros-input-enabled"), True)
        wait_until(lambda: server_eval(server, "heroes['laser'].enabled") == "True", 10, "enabled")
        k.click(k.model("heros-run-pulse"))
        k.settle(f"{panel}.forms['pulse'].calls == 1")
        result = k.state[k.model("heros-result-pulse")]["outputs"]
        assert "mJ at 532 nm (20 mW for 0.1 s)" in result[0]["data"]["text/plain"]
        states = [s["value"] for s in k.state.values() if "heros-call-state" in (s.get("_dom_classes") or ())]
        assert any(v.startswith("returned in") for v in states)


def test_a_refused_write_reverts_says_why_in_its_row_and_clears_on_success(kernel: Any, jspawn: Any, realm: str) -> None:
    server = jspawn(realm, "Laser:laser")
    panel = PANEL.format(name="laser")
    with kernel() as k:
        k.run("%load_ext heros_jupyter")
        k.run("laser = %heros connect laser")
        checkbox = k.model("heros-input-enabled")
        k.settle(f"not {panel}.bindings['interlock_closed'].control.widget.value",
                 action=lambda: server_eval(server, "setattr(heroes['laser'], 'interlock_closed', False)"))
        k.set_value(checkbox, True)
        k.settle(f"'interlock is open' in {panel}.bindings['enabled'].state.value and not {panel}.bindings['enabled'].pending")
        k.settle(f"{panel}.bindings['enabled'].control.widget.value is False")
        k.resync()
        assert k.state[checkbox]["value"] is False
        state = row_state(k, "enabled")
        assert "heros-error" in state["_dom_classes"] and "could not set True: RuntimeError: the interlock is open" in state["value"]
        # changed with issue 14: no panel-wide status line; the header carries only the HERO's state
        assert not k.models("heros-status") and "interlock" not in k.state[k.model("heros-header")]["value"]
        assert all("interlock" not in k.state[m]["value"] for m in k.models("heros-state"))
        k.settle(f"{panel}.bindings['interlock_closed'].control.widget.value",
                 action=lambda: server_eval(server, "setattr(heroes['laser'], 'interlock_closed', True)"))
        k.set_value(checkbox, True)
        k.settle(f"{panel}.bindings['enabled'].writes == 1 and {panel}.bindings['enabled'].state.value == ''")
        k.resync()
        state = row_state(k, "enabled")
        assert state["value"] == "" and "heros-error" not in state["_dom_classes"]  # the error did not stick
        assert server_eval(server, "heroes['laser'].enabled") == "True"


def test_a_typed_value_out_of_range_is_refused_and_never_written(kernel: Any, jspawn: Any, realm: str) -> None:
    server = jspawn(realm, "Laser:laser")
    panel = PANEL.format(name="laser")
    with kernel() as k:
        k.run("%load_ext heros_jupyter")
        k.run("laser = %heros connect laser")
        entry = input_of(k, "power", "FloatTextModel")
        for typed in (80, -5):
            k.set_value(entry, typed)  # what the browser sends when the user types it and presses Enter
            k.settle(f"{panel}.bindings['power'].refused >= {1 if typed == 80 else 2}")
        k.resync()
        state = row_state(k, "power")
        assert "refused, nothing written: power must be within 0..50 mW, not -5" in state["value"] and "heros-error" in state["_dom_classes"]
        assert k.state[entry]["value"] == 0.0 and k.state[input_of(k, "power", "FloatSliderModel")]["value"] == 0.0
        assert server_eval(server, "(heroes['laser'].power_writes, heroes['laser'].power)") == "(0, 0.0)"
        duration = next(m for m in k.models("heros-arg-pulse-duration") if k.state[m]["_model_name"] == "FloatTextModel")
        k.set_value(duration, 20)
        k.settle(f"{panel}.forms['pulse'].refused == 1")
        k.resync()
        shown = [k.state[m]["value"] for m in k.models("heros-call-state")]
        assert any("refused, not called: duration must be within 0.001..10 s, not 20" in v for v in shown)
        assert k.state[duration]["value"] == 0.1


def test_live_rows_plots_progress_and_units_in_a_kernel(kernel: Any, jspawn: Any, realm: str) -> None:
    jspawn(realm, "TemperatureController:cryo", "Stage:stage")
    cryo, stage = PANEL.format(name="cryo"), PANEL.format(name="stage")
    with kernel() as k:
        k.run("%load_ext heros_jupyter\n%config HerosMagics.poll_interval = 30")  # no poll could keep up: the event does
        k.run("cryo = %heros connect cryo")
        k.run("stage = %heros connect stage")
        k.run("cryo.setpoint = 100.0")
        k.settle(f"float({cryo}.bindings['temperature'].confirmed) < 150")
        k.set_value(k.model("heros-plot-button-temperature_changed"), True)  # the plot button
        k.settle(f"{cryo}.events['temperature_changed'].plot is not None and {cryo}.events['temperature_changed'].plot.renders >= 2")
        first = k.run(f"print(len({cryo}.events['temperature_changed'].plot._drawing.lines['cryo.temperature_changed'].y))")
        k.settle(f"len({cryo}.events['temperature_changed'].plot._drawing.lines['cryo.temperature_changed'].y) > {int(first) + 2}")
        # (the plot was made in answer to a frontend message, between cells: nbclient kept none of its models)
        shown = k.run(f"view = {cryo}.events['temperature_changed']\n"
                      "print(view.plot.backend, view.plot.widget in view.extra.children, [a.label for a in view.plot._drawing.figure.axes])")
        assert shown.strip() == "bqplot True ['time', 'K']"  # the unit of the attribute the event publishes

        k.set_value(next(m for m in k.models("heros-arg-move_to-x") if k.state[m]["_model_name"] == "FloatTextModel"), 10)
        k.click(k.model("heros-run-move_to"))
        k.settle(f"{stage}.forms['move_to'].calls == 1 and {stage}.events['progress'].progress.value == 1.0")
        k.resync()
        bar = k.state[k.model("heros-progress-progress")]
        assert bar["value"] == 1.0 and bar["description"] == "100 %"
        result = k.state[k.model("heros-result-move_to")]["outputs"]
        assert result[0]["data"]["text/plain"] == "10 mm"
        k.run("plot = %heros plot cryo.temperature_changed")
        k.settle("plot.plot.samples >= 3")
        assert "K" in k.run("print(plot.plot._drawing.y_axis.label)")


def test_a_proxy_displays_its_panel_and_reconnecting_replaces_it(kernel: Any, jspawn: Any, realm: str) -> None:
    jspawn(realm, "Laser:laser")
    with kernel() as k:
        k.run("%load_ext heros_jupyter\nfrom heros import RemoteHERO\nimport os")
        k.run("RemoteHERO('laser', realm=os.environ['HEROS_REALM'])")
        data = k.nb.cells[-1].outputs[0]["data"]
        assert VIEW in data and "attributes:" in data["text/plain"]
        first = k.model("heros-panel-laser")
        k.run("laser = %heros connect laser")
        out = k.run(f"print({PANEL.format(name='laser')}.closed, len(get_ipython()._heros_magics.panels))")
        assert out.split() == ["False", "1"]
        assert len(k.models("heros-panel-laser")) == 2 and first in k.models("heros-panel-laser")


def test_a_1khz_event_stream_neither_floods_the_frontend_nor_slows_the_kernel(kernel: Any, jspawn: Any, realm: str) -> None:
    jspawn(realm, "Streamer:streamer")
    with kernel() as k:
        k.run("%load_ext heros_jupyter\n%config HerosMagics.update_rate = 10")
        k.run("streamer = %heros connect streamer")
        k.run("import time\nview = " + PANEL.format(name="streamer") + ".events['tick']")
        k.settle("view.count or streamer.ping()")  # the subscription reaches the HERO
        k.run("streamer.ping(-2)")  # pings sent while the subscription was on its way may be in flight: the marker follows them
        k.settle("view.last == -2.0")
        k.run("primed = view.count; started = time.monotonic(); renders0 = view.renders; n = streamer.stream(1000, 3)")
        latencies = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < 3:
            t = time.monotonic()
            k.run("1 + 1")
            latencies.append(time.monotonic() - t)
        k.settle("view.count - primed >= n and f'>{view.count}</span>' in view.html.value", timeout=20)
        out = k.run("print(view.count - primed, n, view.renders - renders0, round(time.monotonic() - started, 2))")
        count, sent, renders, seconds = out.split()
        per_second = int(renders) / float(seconds)
        print(f"kernel: {sent} events in, {count} counted, {renders} renders in {seconds} s = {per_second:.1f}/s; "
              f"cell round trip max {max(latencies):.3f} s median {sorted(latencies)[len(latencies) // 2]:.3f} s")
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "kernel-flood.txt").write_text(
            f"events={sent} counted={count} renders={renders} seconds={seconds} renders_per_second={per_second:.2f} "
            f"cell_rtt_max={max(latencies):.3f} cell_rtt_median={sorted(latencies)[len(latencies) // 2]:.3f}\n")
        assert int(count) == int(sent)
        assert per_second <= 12
        assert max(latencies) < 1.0


def test_panels_notebook_runs_top_to_bottom(realm: str, tmp_path: Any) -> None:
    lab = start_demo(realm, tmp_path / "demo.log")
    nb = run_notebook(NOTEBOOKS / "panels.ipynb", realm)
    assert lab.terminate() == 0
    text = {i: "".join(o.get("text", "") for o in c.get("outputs", [])) for i, c in enumerate(nb.cells) if c.cell_type == "code"}
    assert not [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert any("mJ at 633 nm" in t for t in text.values())
    views = [c for c in nb.cells if c.cell_type == "code" and any(VIEW in o.get("data", {}) for o in c.outputs)]
    assert len(views) >= 4  # the table and the panels
