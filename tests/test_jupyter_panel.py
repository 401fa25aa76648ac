"""Panels and two-way binding without a kernel: real HEROs in another process, an asyncio loop thread as the kernel's loop."""

from __future__ import annotations

import concurrent.futures
import html
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import ipywidgets as w
import pytest
from jupyter_helpers import ipython_shell, on_loop, wait_until

from heros import RemoteHERO
from heros_jupyter._bridge import LoopBridge
from heros_jupyter.panel import Panel, PanelContext

pytest_plugins = ["jupyter_fixtures"]
pytestmark = pytest.mark.usefixtures("close_widgets")


class ManualPool:
    """Worker submissions wait until the test releases them, so pending states can be seen."""

    def __init__(self) -> None:
        self.jobs: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...]]] = queue.Queue()
        self.held = True
        self._pool = concurrent.futures.ThreadPoolExecutor(4)

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        if self.held:
            self.jobs.put((fn, args))
        else:
            self._pool.submit(fn, *args)

    def release(self) -> None:
        self.held = False
        while not self.jobs.empty():
            fn, args = self.jobs.get()
            self._pool.submit(fn, *args)


@pytest.fixture
def ctx(loop: Any) -> Iterator[PanelContext]:
    ipython_shell()  # Output widgets format results with the process's IPython shell
    pool = concurrent.futures.ThreadPoolExecutor(4)
    bridge = LoopBridge(loop, rate=50)
    context = PanelContext(bridge, pool.submit, lambda name, realm: RemoteHERO(name, realm=realm), call_timeout=5, poll_interval=0.2)
    yield context
    bridge.close()
    pool.shutdown(wait=False, cancel_futures=True)


@pytest.fixture
def make_panel(loop: Any, ctx: PanelContext) -> Iterator[Callable[..., Panel]]:
    panels: list[Panel] = []

    def make(name: str, realm: str, context: PanelContext | None = None) -> Panel:
        proxy = RemoteHERO(name, realm=realm)
        panel = on_loop(loop, lambda: Panel(proxy, context or ctx))
        panels.append(panel)
        return panel

    yield make
    for p in panels:
        on_loop(loop, p.close)


def widget_type(panel: Panel, name: str) -> type:
    return type(panel.bindings[name].control.widget)


def test_panel_has_a_control_for_every_kind_of_attribute(spawn: Any, realm: str, make_panel: Any) -> None:
    spawn(realm, "Device:dev")
    panel = make_panel("dev", realm)
    expected = {
        "counter": w.IntText, "gain": w.FloatText, "power": w.FloatSlider, "wavelength": w.Dropdown, "mode": w.Dropdown,
        "flavour": w.Dropdown, "items": w.Text, "label": w.Text, "temperature": w.HTML, "setpoint": w.FloatText,
        "annotated_only": w.IntText,
    }
    assert {name: widget_type(panel, name) for name in expected} == expected
    assert panel.bindings["power"].control.widget.value == 1.0
    assert panel.bindings["mode"].control.widget.value == "fast"
    assert "20" in panel.bindings["temperature"].control.widget.value
    rows = {c._dom_classes[-1]: c for c in panel.body.children if "heros-attr" in c._dom_classes}
    power_row = rows["heros-attr-power"]
    assert power_row.children[0].tooltip == "optical power" and power_row.children[2].value == "mW"
    assert {"add", "signature_zoo", "fail", "sleep"} <= set(panel.forms)
    assert set(panel.events) == {"changed", "burst_item", "other_order"}
    assert not any(n.startswith("_") for n in [*panel.bindings, *panel.forms, *panel.events])
    assert "heros-panel-dev" in panel.widget._dom_classes
    assert panel.forms["add"].controls["b"].widget.value == 2  # defaults filled in


def test_method_inputs_put_required_parameters_first(spawn: Any, realm: str, make_panel: Any) -> None:
    spawn(realm, "Device:dev")
    form = make_panel("dev", realm).forms["signature_zoo"]
    labels = [row.children[0].value for row in form.widget.children if isinstance(row, w.HBox) and isinstance(row.children[0], w.HTML)]
    assert labels[:2] == ["<b>a</b>", "<b>b</b>"], labels  # required ones first, bold


def test_widget_write_is_pending_until_acknowledged(realm: str, jspawn: Any, loop: Any, ctx: PanelContext, make_panel: Any) -> None:
    server = jspawn(realm, "Laser:laser")
    pool = ManualPool()
    panel = make_panel("laser", realm, PanelContext(ctx.bridge, pool.submit, ctx.connect, call_timeout=5, poll_interval=0))
    binding = panel.bindings["power"]
    slider = binding.control.widget
    on_loop(loop, lambda: setattr(slider, "value", 12.5))
    assert binding.pending and "heros-pending" in slider._dom_classes and "setting 12.5" in binding.state.value
    server.send("eval heroes['laser'].power")
    assert server.wait_line("OK") == "OK 0.0"  # not written yet
    pool.release()
    wait_until(lambda: not binding.pending, 5, "the write's acknowledgement")
    assert "heros-pending" not in slider._dom_classes and binding.state.value == ""
    server.send("eval heroes['laser'].power")
    assert server.wait_line("OK") == "OK 12.5"


def test_failed_write_reverts_and_says_why(spawn: Any, realm: str, loop: Any, make_panel: Any) -> None:
    spawn(realm, "Device:dev")
    panel = make_panel("dev", realm)
    binding = panel.bindings["setpoint"]
    on_loop(loop, lambda: setattr(binding.control.widget, "value", 500.0))
    wait_until(lambda: "heros-error" in binding.state._dom_classes, 5, "the error to show")
    wait_until(lambda: binding.control.widget.value == 20.0, 5, "the widget to revert")
    assert "ValueError: setpoint 500.0 above the limit of 400 K" in binding.state.value
    assert "could not set setpoint to 500.0" in panel.status.value
    assert not binding.pending


def test_remote_changes_reach_the_widget_without_echo(spawn: Any, realm: str, make_panel: Any) -> None:
    server = spawn(realm, "Device:dev")
    panel = make_panel("dev", realm)
    binding = panel.bindings["gain"]
    server.send("eval setattr(heroes['dev'], 'gain', 7.25)")  # the HERO's own code
    server.wait_line("OK")
    wait_until(lambda: binding.control.widget.value == 7.25, 3, "the publication")
    RemoteHERO("dev", realm=realm).label = "from another client"
    wait_until(lambda: panel.bindings["label"].control.widget.value == "from another client", 3, "the other client's write")
    assert binding.writes == 0 and panel.bindings["label"].writes == 0  # nothing was written back


def test_a_burst_of_changes_becomes_at_most_two_writes(realm: str, jspawn: Any, loop: Any, ctx: PanelContext, make_panel: Any) -> None:
    server = jspawn(realm, "Laser:laser")
    pool = ManualPool()
    panel = make_panel("laser", realm, PanelContext(ctx.bridge, pool.submit, ctx.connect, call_timeout=5, poll_interval=0))
    slider = panel.bindings["power"].control.widget

    def drag() -> None:
        for i in range(1, 51):
            slider.value = i * 0.5

    on_loop(loop, drag)
    pool.release()
    wait_until(lambda: not panel.bindings["power"].pending, 5, "the writes")
    server.send("eval (heroes['laser'].power_writes, heroes['laser'].power)")
    assert server.wait_line("OK") == "OK (2, 25.0)"  # the first value, then the latest one


def test_read_only_values_are_polled(realm: str, jspawn: Any, make_panel: Any) -> None:
    jspawn(realm, "TemperatureController:cryo")
    panel = make_panel("cryo", realm)
    label = panel.bindings["temperature"].control.widget

    def shown() -> float:
        return float(label.value.removeprefix("<code>").removesuffix("</code>"))

    assert shown() == pytest.approx(300, abs=1)
    RemoteHERO("cryo", realm=realm).setpoint = 100.0
    wait_until(lambda: shown() < 200, 5, "the polled temperature to fall")
    row = next(c for c in panel.body.children if "heros-attr-temperature" in c._dom_classes)
    assert row.children[2].value == "K"


def test_method_form_runs_off_the_loop_thread(spawn: Any, realm: str, loop: Any, make_panel: Any) -> None:
    spawn(realm, "Device:dev")
    form = make_panel("dev", realm).forms["sleep"]
    form.controls["seconds"].widget.value = 0.5
    loop_thread: list[threading.Thread] = []
    on_loop(loop, lambda: (loop_thread.append(threading.current_thread()), form.run()))
    assert form.button.disabled and "running" in form.state.value
    assert on_loop(loop, lambda: 1 + 1) == 2  # the loop stays free while the call runs
    wait_until(lambda: form.calls == 1, 5, "the call")
    assert form.last_result == 0.5 and not form.button.disabled and "returned in" in form.state.value
    assert form.result.outputs[0]["data"]["text/plain"] == "0.5"


def test_method_form_arguments_of_every_kind(spawn: Any, realm: str, loop: Any, make_panel: Any) -> None:
    spawn(realm, "Device:dev")
    form = make_panel("dev", realm).forms["signature_zoo"]
    values = {"a": "'first'", "b": 2, "args": "(3.0, 4.0)", "c": "why", "kwargs": "{'k': 1}"}
    for name, value in values.items():
        form.controls[name].widget.value = value
    assert form.arguments() == (["first", 2, 3.0, 4.0], {"c": "why", "d": None, "k": 1})
    on_loop(loop, form.run)
    wait_until(lambda: form.calls == 1, 5, "the call")
    assert form.last_result == {"a": "first", "b": 2, "args": [3.0, 4.0], "c": "why", "d": None, "kwargs": {"k": 1}}


def test_method_errors_show_in_the_panel(spawn: Any, realm: str, loop: Any, make_panel: Any) -> None:
    spawn(realm, "Device:dev")
    panel = make_panel("dev", realm)
    form = panel.forms["fail"]
    on_loop(loop, form.run)
    wait_until(lambda: form.calls == 1, 5, "the call")
    assert isinstance(form.last_error, ValueError)
    assert "ValueError: bad value 7" in form.state.value and "fail failed" in panel.status.value
    echo = panel.forms["echo"]
    on_loop(loop, echo.run)
    assert "parameter 'value' is required" in html.unescape(echo.state.value) and echo.calls == 0


def test_image_results_show_as_a_picture_and_a_summary(realm: str, jspawn: Any, loop: Any, make_panel: Any) -> None:
    jspawn(realm, "Camera:camera")
    form = make_panel("camera", realm).forms["snap"]
    on_loop(loop, form.run)
    wait_until(lambda: form.calls == 1, 5, "the call")
    assert form.last_result.shape == (48, 64)
    picture, summary = form.result.outputs
    assert picture["data"]["image/png"]
    assert summary["text"].startswith("ndarray float64 (48, 64)")


def test_events_show_last_value_count_and_a_sparkline(spawn: Any, realm: str, make_panel: Any) -> None:
    spawn(realm, "Device:dev")
    panel = make_panel("dev", realm)
    view = panel.events["changed"]
    proxy = RemoteHERO("dev", realm=realm)
    wait_until(lambda: (proxy.emit_changed("ready"), view.count)[1], 10, "the subscription to reach the HERO")
    proxy.emit_changed("primed")  # follows every "ready" still in flight
    wait_until(lambda: view.last == "primed", 5, "the marker event")
    primed = view.count
    for value in (1.0, 3.0, 2.0):
        proxy.emit_changed(value)
    wait_until(lambda: f">{primed + 3}</span> events" in view.html.value, 5, "the event view")
    assert "last <code class='heros-event-last'>2</code>" in view.html.value
    assert "<svg class='heros-sparkline'" in view.html.value


def test_gone_greys_out_and_rebinds_to_a_new_proxy(realm: str, jspawn: Any, loop: Any, make_panel: Any) -> None:
    server = jspawn(realm, "Laser:laser")
    panel = make_panel("laser", realm)
    first = panel.proxy
    server.kill()
    on_loop(loop, lambda: panel.set_alive(False))
    assert "heros-disconnected" in panel.widget._dom_classes and "is gone" in panel.conn.value
    assert panel.bindings["power"].control.widget.disabled and panel.forms["pulse"].button.disabled
    server = jspawn(realm, "Laser:laser")
    on_loop(loop, lambda: panel.set_alive(True))
    wait_until(lambda: panel.rebinds == 1, 10, "the rebind")
    assert panel.proxy is not first and "heros-disconnected" not in panel.widget._dom_classes
    assert not panel.bindings["power"].control.widget.disabled
    RemoteHERO("laser", realm=realm).power = 4.0
    wait_until(lambda: panel.bindings["power"].control.widget.value == 4.0, 3, "the rebound binding")


def test_close_releases_subscriptions_and_widgets(spawn: Any, realm: str, loop: Any, make_panel: Any) -> None:
    server = spawn(realm, "Device:dev")
    panel = make_panel("dev", realm)
    binding, slider = panel.bindings["gain"], panel.bindings["gain"].control.widget
    on_loop(loop, panel.close)
    assert panel.closed and panel.widget.comm is None and slider.comm is None
    assert binding._subscription is None
    server.send("eval setattr(heroes['dev'], 'gain', 9.0)")
    server.wait_line("OK")
    assert binding.confirmed == 1.5


def test_a_hero_gone_again_during_the_rebind_stays_greyed_out(realm: str, jspawn: Any, loop: Any, ctx: PanelContext, make_panel: Any) -> None:
    jspawn(realm, "Laser:laser")
    pool = ManualPool()
    panel = make_panel("laser", realm, PanelContext(ctx.bridge, pool.submit, ctx.connect, call_timeout=5, poll_interval=0))
    on_loop(loop, lambda: panel.set_alive(False))
    on_loop(loop, lambda: panel.set_alive(True))  # back: the rebind waits on the held pool
    assert "reconnecting" in panel.conn.value
    on_loop(loop, lambda: panel.set_alive(False))  # and gone again before the new proxy is ready
    pool.release()
    wait_until(lambda: panel.rebinds == 1, 10, "the rebind to finish")
    assert not panel.alive and "heros-disconnected" in panel.widget._dom_classes and "is gone" in panel.conn.value
