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


def row_part(panel: Panel, name: str, css: str) -> Any:
    """The widget with class ``css`` in the row of attribute ``name`` (its line, or the message under it)."""
    row = next(c for c in panel.body.children if f"heros-attr-{name}" in c._dom_classes)
    line, state = row.children
    return next(c for c in (*line.children, state) if css in c._dom_classes)


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
    # changed with issue 14: the doc is a title on the name itself (ipywidgets' tooltip sat on a hidden
    # label), shown as text too when short, and the unit comes with the range
    assert row_part(panel, "power", "heros-name").value == "<span title='optical power'>power</span>"
    assert row_part(panel, "power", "heros-limits").value == "mW, 0..50"
    assert row_part(panel, "power", "heros-doc").value == "<span>optical power</span>"
    assert {"add", "signature_zoo", "fail", "sleep"} <= set(panel.forms)
    assert set(panel.events) == {"changed", "burst_item", "other_order"}
    assert not any(n.startswith("_") for n in [*panel.bindings, *panel.forms, *panel.events])
    assert "heros-panel-dev" in panel.widget._dom_classes
    assert panel.forms["add"].controls["b"].widget.value == 2  # defaults filled in


def test_method_inputs_put_required_parameters_first(spawn: Any, realm: str, make_panel: Any) -> None:
    spawn(realm, "Device:dev")
    form = make_panel("dev", realm).forms["signature_zoo"]
    labels = [row.children[0].value for row in form.widget.children if isinstance(row, w.HBox) and isinstance(row.children[0], w.HTML)]
    assert labels[:2] == ["<span><b>a</b></span>", "<span><b>b</b></span>"], labels  # required ones first, bold


def test_widget_write_is_pending_until_acknowledged(realm: str, jspawn: Any, loop: Any, ctx: PanelContext, make_panel: Any) -> None:
    server = jspawn(realm, "Laser:laser")
    pool = ManualPool()
    panel = make_panel("laser", realm, PanelContext(ctx.bridge, pool.submit, ctx.connect, call_timeout=5, poll_interval=0))
    binding = panel.bindings["power"]
    slider = binding.control.widget
    on_loop(loop, lambda: setattr(slider, "value", 12.5))
    assert binding.pending and "heros-pending" in slider._dom_classes and "setting 12.5 mW" not in binding.state.value
    assert "setting 12.5" in binding.state.value
    server.send("eval heroes['laser'].power")
    assert server.wait_line("OK") == "OK 0.0"  # not written yet
    pool.release()
    wait_until(lambda: not binding.pending, 5, "the write's acknowledgement")
    assert "heros-pending" not in slider._dom_classes and binding.state.value == ""
    server.send("eval heroes['laser'].power")
    assert server.wait_line("OK") == "OK 12.5"


def test_a_value_read_before_a_write_never_replaces_it(realm: str, jspawn: Any, loop: Any, ctx: PanelContext, make_panel: Any) -> None:
    """A poll sent before a write can answer after it (and an older publication can arrive while it
    is on its way): the widget keeps the written value, and the HERO's own value decides after."""
    server = jspawn(realm, "Laser:laser")
    pool = ManualPool()
    panel = make_panel("laser", realm, PanelContext(ctx.bridge, pool.submit, ctx.connect, call_timeout=5, poll_interval=0))
    binding = panel.bindings["power"]
    slider = binding.control.widget
    before = binding._writes_begun
    on_loop(loop, lambda: setattr(slider, "value", 12.5))
    on_loop(loop, lambda: binding._apply_read((0.0, before)))  # a read begun before the write, answered now
    on_loop(loop, lambda: binding._apply_remote(3.0))  # a value that came while the write was on its way
    assert slider.value == 12.5
    pool.release()
    wait_until(lambda: not binding.pending and binding.writes == 1, 5, "the write's acknowledgement")
    server.send("eval heroes['laser'].power")
    assert server.wait_line("OK") == "OK 12.5"
    # the value that came meanwhile is not shown: the binding asked the HERO again, which holds ours
    wait_until(lambda: on_loop(loop, lambda: slider.value) == 12.5 and binding.confirmed == 12.5, 5, "the HERO's value")
    on_loop(loop, lambda: binding._apply_read((0.0, before)))  # the stale read, once more, after the write
    assert on_loop(loop, lambda: slider.value) == 12.5


def test_failed_write_reverts_and_says_why(spawn: Any, realm: str, loop: Any, make_panel: Any) -> None:
    spawn(realm, "Device:dev")
    panel = make_panel("dev", realm)
    binding = panel.bindings["setpoint"]
    on_loop(loop, lambda: setattr(binding.control.widget, "value", 500.0))
    wait_until(lambda: "heros-error" in binding.state._dom_classes, 5, "the error to show")
    wait_until(lambda: binding.control.widget.value == 20.0, 5, "the widget to revert")
    assert "could not set 500: ValueError: setpoint 500.0 above the limit of 400 K" in binding.state.value
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
    assert row_part(panel, "temperature", "heros-limits").value == "K"


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
    assert "fail failed" in form.state.value and "ValueError: bad value 7" in form.state.value
    echo = panel.forms["echo"]
    on_loop(loop, echo.run)
    assert "parameter 'value' is required" in html.unescape(echo.state.value) and echo.calls == 0


def test_image_results_show_as_a_picture_and_a_summary(realm: str, jspawn: Any, loop: Any, make_panel: Any) -> None:
    jspawn(realm, "Camera:camera")
    form = make_panel("camera", realm).forms["snap"]
    on_loop(loop, form.run)
    wait_until(lambda: form.calls == 1, 5, "the call")
    assert form.last_result.shape == (48, 64)
    (picture,) = form.result.outputs  # changed with issue 14: colour-mapped, with a colour bar and the summary
    shown = picture["data"]["text/html"]
    assert "<img src='data:image/png;base64," in shown and "heros-colorbar" in shown
    assert "array float64 (48, 64)" in shown


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


def test_a_failed_rebind_is_tried_again_while_the_hero_is_there(realm: str, jspawn: Any, loop: Any, make_panel: Any) -> None:
    server = jspawn(realm, "Laser:laser")
    panel = make_panel("laser", realm)
    server.kill()
    on_loop(loop, lambda: panel.set_alive(False))
    on_loop(loop, lambda: panel.set_alive(True))  # said to be back, but nothing serves it yet: the new proxy fails
    wait_until(lambda: "trying again in 1 s" in panel.conn.value, 20, "the failed rebind")
    assert "could not be reconnected" in panel.conn.value and "heros-disconnected" in panel.widget._dom_classes
    wait_until(lambda: "trying again in 2 s" in panel.conn.value, 20, "the second attempt")
    on_loop(loop, lambda: panel.set_alive(False))  # gone: it says so, and is no longer tried
    assert "is gone" in panel.conn.value
    on_loop(loop, lambda: panel.set_alive(True))
    jspawn(realm, "Laser:laser")  # served again: an attempt succeeds
    wait_until(lambda: panel.rebinds == 1, 30, "the rebind, tried again")
    assert panel.alive and "heros-disconnected" not in panel.widget._dom_classes and "reconnected" in panel.conn.value


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


def test_a_rebind_that_fails_after_the_hero_went_again_says_it_is_gone(realm: str, jspawn: Any, loop: Any, ctx: PanelContext,
                                                                       make_panel: Any) -> None:
    server = jspawn(realm, "Laser:laser")
    pool = ManualPool()
    panel = make_panel("laser", realm, PanelContext(ctx.bridge, pool.submit, ctx.connect, call_timeout=5, poll_interval=0))
    server.kill()
    on_loop(loop, lambda: panel.set_alive(False))
    on_loop(loop, lambda: panel.set_alive(True))  # back: the rebind waits on the held pool
    on_loop(loop, lambda: panel.set_alive(False))  # gone again: the rebind, released, finds nobody
    assert "reconnecting" in panel.conn.value
    pool.release()
    wait_until(lambda: "is gone" in panel.conn.value, 20, "the failed rebind")
    assert not panel.alive and "heros-disconnected" in panel.widget._dom_classes and panel.rebinds == 0


# --- issue 14: what a user relies on -----------------------------------------------------------------


def server_eval(server: Any, expression: str) -> str:
    server.send(f"eval {expression}")
    return server.wait_line("OK").removeprefix("OK ")


def test_a_typed_value_outside_the_range_is_refused_and_nothing_is_written(realm: str, jspawn: Any, loop: Any, make_panel: Any) -> None:
    server = jspawn(realm, "Laser:laser")
    panel = make_panel("laser", realm)
    binding = panel.bindings["power"]
    entry = binding.control.entry
    for typed in (80.0, -5.0):
        on_loop(loop, lambda typed=typed: setattr(entry, "value", typed))  # what the browser sends for a typed value
        shown = html.unescape(binding.state.value)
        assert f"power must be within 0..50 mW, not {typed}" in shown and "nothing written" in shown
        assert entry.value == 0.0 and binding.control.widget.value == 0.0  # back to the HERO's value, not clamped
    assert binding.refused == 2 and not binding.pending
    assert server_eval(server, "(heroes['laser'].power_writes, heroes['laser'].power)") == "(0, 0.0)"
    on_loop(loop, lambda: setattr(entry, "value", 12.5))  # a value in range is written, and the refusal is gone
    wait_until(lambda: binding.writes == 1, 5, "the write")
    assert binding.state.value == "" and binding.control.widget.value == 12.5
    assert server_eval(server, "(heroes['laser'].power_writes, heroes['laser'].power)") == "(1, 12.5)"


def test_a_method_argument_outside_its_range_is_refused_and_nothing_is_called(realm: str, jspawn: Any, loop: Any, make_panel: Any) -> None:
    jspawn(realm, "Laser:laser")
    form = make_panel("laser", realm).forms["pulse"]
    duration = form.controls["duration"]
    on_loop(loop, lambda: setattr(duration.entry, "value", 20.0))
    assert "duration must be within 0.001..10 s, not 20.0" in html.unescape(form.state.value)
    assert duration.entry.value == 0.1 and duration.widget.value == 0.1  # back to the default
    assert form.calls == 0 and form.refused == 1  # nothing was called
    on_loop(loop, lambda: setattr(duration.entry, "value", 0.5))
    assert form.state.value == ""  # a good value clears the refusal
    star = make_panel("laser", realm).forms["pulse"]
    star.controls["duration"].check = lambda v: (_ for _ in ()).throw(ValueError(f"duration must be within 0.001..10 s, not {v}"))
    on_loop(loop, star.run)  # checked again when run: a value that got past the input is not sent either
    assert star.calls == 0 and not star.button.disabled and "refused, not called" in star.state.value


def test_errors_stay_in_their_row_and_clear_when_it_next_succeeds(realm: str, jspawn: Any, loop: Any, make_panel: Any) -> None:
    server = jspawn(realm, "Laser:laser")
    panel = make_panel("laser", realm)
    enabled = panel.bindings["enabled"]
    server_eval(server, "setattr(heroes['laser'], 'interlock_closed', False)")
    on_loop(loop, lambda: setattr(enabled.control.widget, "value", True))
    wait_until(lambda: "heros-error" in enabled.state._dom_classes, 5, "the refusal")
    assert "RuntimeError: the interlock is open" in enabled.state.value and enabled.state.layout.display == ""
    assert "interlock" not in panel.header.value + panel.conn.value  # the header says only the HERO's state
    assert all(b.state.value == "" for name, b in panel.bindings.items() if name != "enabled")  # no other row
    wait_until(lambda: enabled.control.widget.value is False, 5, "the revert")
    server_eval(server, "setattr(heroes['laser'], 'interlock_closed', True)")
    on_loop(loop, lambda: setattr(enabled.control.widget, "value", True))
    wait_until(lambda: enabled.writes == 1, 5, "the write to succeed")
    assert enabled.state.value == "" and "heros-error" not in enabled.state._dom_classes and enabled.state.layout.display == "none"


def test_a_read_only_value_follows_the_event_that_publishes_it(realm: str, jspawn: Any, loop: Any, ctx: PanelContext, make_panel: Any) -> None:
    jspawn(realm, "TemperatureController:cryo")
    slow_polls = PanelContext(ctx.bridge, ctx.submit, ctx.connect, call_timeout=5, poll_interval=30)  # a poll would come too late
    panel = make_panel("cryo", realm, slow_polls)
    binding = panel.bindings["temperature"]
    assert binding.event == "temperature_changed" and "heros-pushed" in binding.source._dom_classes
    assert "follows the event temperature_changed" in binding.source.value
    label = binding.control.widget
    RemoteHERO("cryo", realm=realm).setpoint = 100.0
    wait_until(lambda: float(html.unescape(label.value).split(">")[1].split("<")[0]) < 150, 5, "the row to follow the event")
    assert binding.pushes > 3 and not binding.needs_poll(30)
    assert "heros-polled" in panel.bindings["ramp_rate"].source._dom_classes or panel.bindings["ramp_rate"].watched


def test_progress_events_show_a_bar_and_results_their_unit(realm: str, jspawn: Any, loop: Any, make_panel: Any) -> None:
    jspawn(realm, "Stage:stage")
    panel = make_panel("stage", realm)
    view, form = panel.events["progress"], panel.forms["move_to"]
    assert "move_to(x: float [mm, 0..50], steps: int = 5) -> float [mm]" in html.unescape(form.widget.children[0].value)
    wait_until(lambda: view._subscription is not None, 1, "the subscription")
    form.controls["x"].entry.value = 10.0
    on_loop(loop, form.run)
    wait_until(lambda: form.calls == 1, 10, "the move")
    wait_until(lambda: view.progress.value == 1.0, 5, "the last progress event")
    assert view.progress.layout.display == "" and view.progress.description == "100 %"
    assert "'position': 10.0" in html.unescape(view.html.value) and "fraction" not in view.html.value  # the rest as text
    assert form.result.outputs[0]["data"]["text/plain"] == "10 mm"


def test_docs_show_on_hover_and_as_text_with_inline_code(realm: str, jspawn: Any, make_panel: Any) -> None:
    jspawn(realm, "Laser:laser")
    form = make_panel("laser", realm).forms["pulse"]
    assert form.button.tooltip == "Fire one pulse of duration seconds at the set power.\n\nNeeds enabled and a power above 0 mW."
    summary = form.widget.children[0].value
    assert "pulse(duration: float [s, 0.001..10] = 0.1) -> str" in html.unescape(summary)
    assert "Fire one pulse of <code>duration</code> seconds" in summary and "``" not in summary.split("</code>", 1)[1]
    row = form.widget.children[1]
    assert "title='how long the pulse lasts'" in row.children[0].value
    assert [c.value for c in row.children[2:]] == ["s, 0.001..10", "<span>how long the pulse lasts</span>"]


def test_an_event_plot_follows_the_events_at_the_bridge_rate(realm: str, jspawn: Any, loop: Any, make_panel: Any) -> None:
    jspawn(realm, "TemperatureController:cryo")
    panel = make_panel("cryo", realm)
    view = panel.events["temperature_changed"]
    on_loop(loop, lambda: setattr(view.plot_button, "value", True))
    plot = view.plot
    assert plot is not None and plot.backend == "bqplot" and plot.widget in view.extra.children
    wait_until(lambda: plot.samples >= 5 and plot.renders >= 2, 5, "samples and redraws")
    line = plot._drawing.lines["cryo.temperature_changed"]
    assert len(line.y) >= 3 and line.y[-1] in plot.data("cryo.temperature_changed")[1]
    on_loop(loop, lambda: setattr(plot.pause, "value", True))
    frozen = len(line.y)
    wait_until(lambda: plot.samples >= frozen + 5, 5, "more samples while paused")
    assert len(line.y) == frozen and "paused" in plot.status.value  # the view stands still, samples are kept
    on_loop(loop, lambda: setattr(plot.pause, "value", False))
    wait_until(lambda: len(line.y) > frozen, 5, "the view to resume")
    on_loop(loop, lambda: setattr(plot.window, "value", 10.0))
    on_loop(loop, lambda: setattr(view.plot_button, "value", False))
    assert plot.widget.layout.display == "none"


def test_image_events_show_as_a_live_picture(realm: str, jspawn: Any, loop: Any, make_panel: Any) -> None:
    jspawn(realm, "Camera:camera")
    panel = make_panel("camera", realm)
    view = panel.events["frame"]
    proxy = RemoteHERO("camera", realm=realm)
    wait_until(lambda: (proxy.snap(), view.count)[1], 10, "the subscription to reach the HERO")
    proxy.stream(20, 0.002)  # frames ten times faster than the bridge flushes (50/s)
    wait_until(lambda: view.image is not None and view.image.frames >= 20, 10, "the frames")
    image = view.image
    wait_until(lambda: image.drawn >= 1 and image.image.value[:4] == b"\x89PNG", 5, "a drawn frame")
    assert image.drawn < image.frames  # coalesced: not every frame is drawn
    assert "heros-colorbar-max" in image.colorbar.value and "frame" in image.summary.value


def test_a_datasource_plot_draws_every_observable_of_the_realm(realm: str, jspawn: Any, loop: Any, ctx: PanelContext) -> None:
    from heros_jupyter.plot import DatasourcePlot

    jspawn(realm, "Sensors:vacuum", "Sensors:cooling")
    plot = on_loop(loop, lambda: DatasourcePlot(realm, ctx.bridge))
    try:
        for name in ("vacuum", "cooling"):
            proxy = RemoteHERO(name, realm=realm)
            wait_until(lambda proxy=proxy, name=name: (proxy.publish(1), f"{name}.flow" in plot.plot.traces)[1], 10, "the observer")
            proxy.publish(5, 0.01)
        wait_until(lambda: len(plot.plot.data("cooling.pressure")[1]) >= 5, 5, "the readings")
        assert sorted(plot.plot.traces) == ["cooling.flow", "cooling.pressure", "vacuum.flow", "vacuum.pressure"]
        assert plot.plot.data("vacuum.flow")[1][-1] == 2.0 + 4  # calibrated: the value, not the raw one
        wait_until(lambda: plot.plot._drawing.y_axis.label == "l/min, mbar", 5, "the units on the axis")
    finally:
        on_loop(loop, plot.close)


def test_without_bqplot_a_plot_degrades_to_sparklines(loop: Any, ctx: PanelContext, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from heros_jupyter.plot import LivePlot, have_bqplot

    monkeypatch.setitem(sys.modules, "bqplot", None)  # import bqplot now raises ImportError
    assert not have_bqplot()
    plot = on_loop(loop, lambda: LivePlot(ctx.bridge, "x"))
    assert plot.backend == "sparklines"
    for v in (1.0, 2.0, 3.0):
        plot.add("x", v)
    wait_until(lambda: "<svg class='heros-sparkline'" in plot._drawing.widget.value, 5, "the sparkline")
    assert "<code>3</code>" in plot._drawing.widget.value
    on_loop(loop, plot.close)
