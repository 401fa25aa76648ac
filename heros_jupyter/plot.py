"""Live time-series plots of numeric events and datasource observables.

A ``LivePlot`` keeps a bounded history per trace and draws the part inside its time window on the
kernel's loop thread, coalesced through the loop bridge: samples may arrive at 1 kHz on any
thread, the frontend gets at most ``update_rate`` redraws per second. The user picks the window
and can pause (samples keep being recorded; the view stands still until resumed).

Drawing uses bqplot (axes, a legend, several traces, one update message per trace, arrays sent
as binary buffers) when it is installed (``pip install heros-jupyter[plot]``); without it the same
plot shows as text and sparklines. ``EventPlot`` feeds a plot from one event of a HERO,
``DatasourcePlot`` from every datasource HERO of a realm (``observable_data`` events, as
upstream's ``DatasourceObserver`` receives them).
"""

from __future__ import annotations

import html
import importlib
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as w
import numpy as np

import heros
from heros import tools

from ._bridge import LoopBridge
from ._render import sparkline_svg
from .widgets import format_value

__all__ = ["DatasourcePlot", "EventPlot", "LivePlot", "datasource_samples", "have_bqplot", "numeric_samples"]

log = logging.getLogger("heros_jupyter")

#: The windows a user can pick, in seconds.
WINDOWS = (10.0, 30.0, 60.0, 300.0, 900.0)
#: Samples kept per trace (15 minutes at 10 Hz); the oldest go first.
HISTORY = 9000
#: Most points drawn per trace; a longer window is thinned evenly.
MAX_DRAWN = 1500
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def have_bqplot() -> bool:
    """Whether bqplot can be imported (the plots draw real axes; else text and sparklines)."""
    try:
        importlib.import_module("bqplot")
    except ImportError:
        return False
    return True


def _number(value: Any) -> float | None:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def numeric_samples(value: Any, name: str) -> list[tuple[str, float]]:
    """The numbers an event payload carries, as (trace, value): a number is the trace ``name``, a
    dict gives ``name.key`` per numeric key (``stage.progress.position``), a short list or 1-D
    array ``name[i]``; anything else none (bools are not plotted)."""
    number = _number(value)
    if number is not None:
        return [(name, number)]
    if isinstance(value, Mapping):
        found = [(f"{name}.{key}", _number(v)) for key, v in value.items()]
        return [(trace, v) for trace, v in found if v is not None]
    if isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray) and value.ndim == 1):
        if len(value) > 16:
            return []
        found = [(f"{name}[{i}]", _number(v)) for i, v in enumerate(value)]
        return [(trace, v) for trace, v in found if v is not None]
    return []


def datasource_samples(hero: str, data: Any) -> list[tuple[str, float, float | None, str]]:
    """The observables of one datasource publication as (trace, value, time, unit).

    ``data`` is what upstream's ``LocalDatasourceHERO.observable_data`` publishes: a list of
    dicts with ``id``, ``value``/``raw_value``, ``unit``/``raw_unit``, ``time`` (seconds since the
    epoch) and ``calibrated`` (the calibrated fields count only when it is true, as in upstream's
    ``DatasourceReturnValue``). A plain dict of id -> number works too.
    """
    if isinstance(data, Mapping) and "id" not in data:
        return [(f"{hero}.{key}", v, None, "") for key, raw in data.items() if (v := _number(raw)) is not None]
    items = [data] if isinstance(data, Mapping) else list(data) if isinstance(data, (list, tuple)) else []
    out = []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        calibrated = bool(item.get("calibrated"))
        value = _number(item.get("value") if calibrated else item.get("raw_value", item.get("value")))
        if value is None:
            continue
        unit = item.get("unit") if calibrated else item.get("raw_unit", item.get("unit"))
        stamp = _number(item.get("time"))
        out.append((f"{hero}.{item.get('id', '0')}", value, stamp, str(unit or "")))
    return out


@dataclass
class _Trace:
    unit: str = ""
    times: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY))
    values: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY))


class _Bqplot:
    """The drawing: one bqplot Lines mark per trace against a date scale, a legend, units on the y axis."""

    def __init__(self) -> None:
        import bqplot as bq

        self._bq = bq
        self.x = bq.DateScale()
        self.y = bq.LinearScale()
        self.y_axis = bq.Axis(scale=self.y, orientation="vertical", label="", grid_lines="dashed", tick_format=".6~g")
        axes = [bq.Axis(scale=self.x, label="time", tick_format="%H:%M:%S", grid_lines="dashed"), self.y_axis]
        self.figure = bq.Figure(marks=[], axes=axes, legend_location="top-left", animation_duration=0,
                                fig_margin={"top": 20, "bottom": 40, "left": 60, "right": 20},
                                layout=w.Layout(width="100%", max_width="720px", height="280px"))
        self.figure.add_class("heros-plot-figure")
        self.lines: dict[str, Any] = {}
        self.widget: w.Widget = self.figure

    def draw(self, drawn: dict[str, tuple[np.ndarray, np.ndarray]], units: list[str]) -> None:
        new = [name for name in drawn if name not in self.lines]
        for name in new:
            color = _COLORS[len(self.lines) % len(_COLORS)]
            self.lines[name] = self._bq.Lines(x=np.array([], dtype="datetime64[ms]"), y=np.array([]), labels=[name],
                                              display_legend=True, colors=[color], scales={"x": self.x, "y": self.y})
        if new:
            self.figure.marks = list(self.lines.values())
        for name, (t, v) in drawn.items():
            line = self.lines[name]
            with line.hold_sync():
                line.x = (t * 1000.0).astype("datetime64[ms]")
                line.y = v
        label = ", ".join(units)
        if self.y_axis.label != label:
            self.y_axis.label = label

    def close(self) -> None:
        for line in self.lines.values():
            line.close()
        for axis in self.figure.axes:
            axis.close()
        for scale in (self.x, self.y):
            scale.close()
        self.figure.close()


class _Sparklines:
    """The drawing without bqplot: one line per trace, its last value and a sparkline of the window."""

    def __init__(self) -> None:
        self.widget = w.HTML()
        self.widget.add_class("heros-plot-sparklines")

    def draw(self, drawn: dict[str, tuple[np.ndarray, np.ndarray]], units: list[str]) -> None:
        rows = []
        for name, (_, v) in drawn.items():
            last = format_value(float(v[-1])) if len(v) else "-"
            rows.append(f"<div><b>{html.escape(name)}</b> <code>{html.escape(last)}</code> {sparkline_svg(list(v[-300:]), 240, 32)}</div>")
        note = "<small>(install bqplot for a plot with axes: <code>pip install heros-jupyter[plot]</code>)</small>"
        self.widget.value = "".join(rows) + note

    def close(self) -> None:
        self.widget.close()


class LivePlot:
    """A live time-series view: traces against wall-clock time, a changeable time window, pause.

    Parameters
    ----------
    bridge
        Draws happen on its loop thread, coalesced to its rate.
    title
        Shown above the plot.
    window
        Seconds shown at first (the user changes it with the window menu).
    backend
        ``"bqplot"`` or ``"sparklines"``; default: bqplot when it is installed.
    """

    def __init__(self, bridge: LoopBridge, title: str = "", window: float = 60.0, *, backend: str | None = None) -> None:
        self._bridge = bridge
        self._lock = threading.Lock()
        self._traces: dict[str, _Trace] = {}
        self._closed = False
        self.samples = 0
        self.renders = 0
        use_bqplot = have_bqplot() if backend is None else backend == "bqplot"
        self._drawing: _Bqplot | _Sparklines = _Bqplot() if use_bqplot else _Sparklines()
        self.backend = "bqplot" if use_bqplot else "sparklines"
        options = sorted({*WINDOWS, float(window)})
        self.window = w.Dropdown(options=[(_window_text(s), s) for s in options], value=float(window), description="window",
                                 layout=w.Layout(width="12em"))
        self.window.add_class("heros-plot-window")
        self.pause = w.ToggleButton(description="pause", icon="pause", tooltip="freeze the view (samples are still recorded)",
                                    layout=w.Layout(width="7em"))
        self.pause.add_class("heros-plot-pause")
        self.status = w.HTML()
        self.status.add_class("heros-plot-status")
        self.title = w.HTML(f"<b>{html.escape(title)}</b>")
        self.window.observe(lambda _change: self.redraw(), names="value")
        self.pause.observe(self._paused, names="value")
        self.widget = w.VBox([w.HBox([self.title, self.window, self.pause, self.status]), self._drawing.widget])
        self.widget.add_class("heros-plot")
        self.widget.add_class(f"heros-plot-{self.backend}")
        self._status()

    @property
    def paused(self) -> bool:
        return bool(self.pause.value)

    def add(self, trace: str, value: float, when: float | None = None, unit: str = "") -> None:
        """Any thread: one sample of ``trace`` (``when`` in seconds since the epoch, default now)."""
        self.extend([(trace, value, when, unit)])

    def extend(self, samples: list[tuple[str, float, float | None, str]]) -> None:
        """Any thread: several samples (trace, value, time or None, unit) at once; one redraw."""
        if self._closed or not samples:
            return
        now = time.time()
        with self._lock:
            for name, value, when, unit in samples:
                trace = self._traces.get(name)
                if trace is None:
                    trace = self._traces[name] = _Trace(unit)
                elif unit and not trace.unit:
                    trace.unit = unit
                trace.times.append(now if when is None else when)
                trace.values.append(value)
                self.samples += 1
        self.redraw()

    def redraw(self) -> None:
        """Any thread: draw again at the next flush (the window slides even without new samples)."""
        if not self._closed:
            self._bridge.post(("plot", id(self)), self._render, None)

    def data(self, trace: str) -> tuple[list[float], list[float]]:
        """The recorded (times, values) of ``trace`` (for tests and for saving)."""
        with self._lock:
            found = self._traces.get(trace)
            return ([], []) if found is None else (list(found.times), list(found.values))

    @property
    def traces(self) -> list[str]:
        with self._lock:
            return list(self._traces)

    def _render(self, _: Any) -> None:
        if self._closed:
            return
        if self.paused:
            self._status()
            return
        window = float(self.window.value)
        drawn: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        with self._lock:
            newest = max((t.times[-1] for t in self._traces.values() if t.times), default=time.time())
            start = max(time.time(), newest) - window
            units = sorted({t.unit for t in self._traces.values() if t.unit})
            for name, trace in self._traces.items():
                times = np.fromiter(trace.times, float, len(trace.times))
                values = np.fromiter(trace.values, float, len(trace.values))
                keep = times >= start
                times, values = times[keep], values[keep]
                if len(times) > MAX_DRAWN:
                    step = math.ceil(len(times) / MAX_DRAWN)
                    times, values = times[::-step][::-1], values[::-step][::-1]  # thinned, the newest kept
                drawn[name] = (times, values)
        self._drawing.draw(drawn, units)
        self.renders += 1
        self._status()

    def _paused(self, change: dict[str, Any]) -> None:
        self.pause.description = "resume" if change["new"] else "pause"
        self.pause.icon = "play" if change["new"] else "pause"
        self.redraw()

    def _status(self) -> None:
        with self._lock:
            count = len(self._traces)
        text = f"{count} trace{'s' if count != 1 else ''} · {self.samples} samples"
        if self.paused:
            text += " · <b>paused</b>"
        elif not count:
            text = "waiting for numeric values …"
        self.status.value = text

    def close(self) -> None:
        """Stop drawing and close the widgets."""
        self._closed = True
        self._drawing.close()
        for widget in (self.window, self.pause, self.status, self.title, self.widget):
            widget.close()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, **kwargs: Any) -> dict[str, Any]:
        bundle = dict(self.widget._repr_mimebundle_(**kwargs) or {})
        bundle["text/plain"] = repr(self)
        return bundle

    def __repr__(self) -> str:
        return f"<LivePlot {self.title.value!r}: {len(self.traces)} traces, {self.samples} samples>"


def _window_text(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


class EventPlot:
    """A live plot of one event of a HERO (``%heros plot NAME.EVENT``): its numbers, a trace each.

    Parameters
    ----------
    proxy
        The RemoteHERO.
    event
        The event; its numeric payload (a number, or the numbers of a dict) is plotted.
    bridge
        The loop bridge the plot draws through.
    unit
        The values' unit (default: that of the attribute the event publishes, if any).
    """

    def __init__(self, proxy: Any, event: str, bridge: LoopBridge, unit: str | None = None) -> None:
        self.name = f"{proxy._name}.{event}"
        self.unit = _published_unit(proxy, event) if unit is None else unit
        self.plot = LivePlot(bridge, self.name)
        self.plot.widget.add_class(f"heros-plot-{proxy._name}-{event}")
        self._subscription = tools.subscribe(proxy, event, self.on_event)

    def on_event(self, value: Any) -> None:
        """A subscription worker: one publication."""
        self.plot.extend([(trace, v, None, self.unit) for trace, v in numeric_samples(value, self.name)])

    @property
    def widget(self) -> w.Widget:
        return self.plot.widget

    def close(self) -> None:
        self._subscription.close()
        self.plot.close()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, **kwargs: Any) -> dict[str, Any]:
        return self.plot._repr_mimebundle_(include, exclude, **kwargs)

    def __repr__(self) -> str:
        return f"<EventPlot {self.name}: {self.plot.samples} samples>"


def _published_unit(proxy: Any, event: str) -> str:
    """The unit of the attribute whose new values ``event`` publishes (``temperature`` for ``temperature_changed``)."""
    for cap in tools.capabilities(proxy):
        if cap.flavor == "attribute" and tools.value_event(proxy, cap.name) == event:
            return str(cap.extra.get("unit") or "")
    return ""


class DatasourcePlot:
    """Every observable of the datasource HEROs of a realm, a trace each (``%heros plot --datasource``).

    Uses ``heros.DatasourceObserver`` where the core has it, else an ``EventObserver`` of the
    ``observable_data`` event (which is what a DatasourceObserver is); no proxy is built per HERO.

    Parameters
    ----------
    realm
        The realm to observe.
    bridge
        The loop bridge the plot draws through.
    selector
        Which HEROs: a name or a zenoh wildcard (default every HERO of the realm).
    """

    def __init__(self, realm: str, bridge: LoopBridge, selector: str = "*") -> None:
        observer_class = getattr(heros, "DatasourceObserver", None)
        if observer_class is not None:
            self.observer = observer_class(selector, realm=realm)
        else:
            self.observer = heros.EventObserver(selector, "observable_data", realm=realm)
        self.plot = LivePlot(bridge, f"observables of {selector} in realm {realm}")
        self.plot.widget.add_class("heros-plot-datasource")
        self.observer.register_callback(self.on_data)

    def on_data(self, hero: str, data: Any) -> None:
        """The observer's thread: one datasource publication."""
        self.plot.extend(datasource_samples(hero, data))

    @property
    def widget(self) -> w.Widget:
        return self.plot.widget

    def close(self) -> None:
        self.observer.remove_callback(self.on_data)
        self.observer._destroy_hero()
        self.plot.close()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, **kwargs: Any) -> dict[str, Any]:
        return self.plot._repr_mimebundle_(include, exclude, **kwargs)

    def __repr__(self) -> str:
        return f"<DatasourcePlot {self.plot.title.value}: {len(self.plot.traces)} traces>"
