"""The panel generated for one HERO: attributes bound both ways, method forms, live event views, connection state.

Everything a panel shows is built from the proxy's capabilities through the widget registry
(``heros_jupyter.widgets``). Blocking work (reads, writes, calls, polls) runs on worker threads;
widgets change only on the kernel's loop thread, through the loop bridge. When the HERO's
liveliness goes the panel greys out and says so; when a HERO of that name comes back it rebinds
by itself to a new proxy (the capabilities may have changed).
"""

from __future__ import annotations

import html
import inspect
import logging
import math
import numbers
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as w
from IPython.display import Pretty

from heros import tools
from heros.capabilities import AttributeCapability, EventCapability, MethodCapability
from heros.render import doc_html, doc_line, doc_text, limits_text, signature_text
from heros.tools import is_upstream

from ._bridge import LoopBridge
from ._render import sparkline_svg
from .binding import AttributeBinding, error_text
from .image import ImageView, image_html, is_image
from .plot import LivePlot, numeric_samples
from .widgets import Control, Spec, WidgetRegistry, format_value
from .widgets import registry as default_widgets

__all__ = ["EventView", "MethodForm", "Panel", "PanelContext", "display_result", "doc_html", "fetch_values", "progress_of",
           "signature_text"]

log = logging.getLogger("heros_jupyter")

#: Styling for states the core widgets cannot express; plain CSS in an HTML widget, no JavaScript.
PANEL_CSS = """<style>
.heros-disconnected .heros-body { opacity: 0.45; filter: grayscale(1); pointer-events: none; }
.heros-disconnected .heros-state { color: #b00; font-weight: bold; }
.heros-pending input, .heros-pending .widget-readout { color: #c60 !important; }
.heros-section { font-weight: bold; margin: 0.4em 0 0.1em 0; border-bottom: 1px solid #ddd; }
.heros-limits, .heros-doc { color: #666; font-size: 0.9em; white-space: nowrap; }
.heros-doc { overflow: hidden; text-overflow: ellipsis; }
.heros-attr-state, .heros-call-state { white-space: normal; overflow-wrap: anywhere; }
</style>"""

#: Docs up to this many characters are shown as text beside the control; longer ones on hover only.
SHORT_DOC = 72
#: Seconds before a failed rebind (the HERO came back, the new proxy could not be built) is tried
#: again, while its liveliness says it is there; the last one repeats.
REBIND_RETRY_PAUSES = (1.0, 2.0, 5.0, 10.0)


@dataclass
class PanelContext:
    """What panels share: the loop bridge, the worker pool, the widget registry and the settings.

    ``connect(name, realm)`` builds a new proxy (used to rebind); settings are read each time they
    are needed, so ``%config`` changes apply to open panels.
    """

    bridge: LoopBridge
    submit: Callable[..., Any]
    connect: Callable[[str, str], Any]
    widgets: WidgetRegistry = field(default_factory=lambda: default_widgets)
    call_timeout: float = 10.0
    poll_interval: float = 1.0
    poller: Poller = field(init=False)

    def __post_init__(self) -> None:
        self.poller = Poller(self)


class Poller:
    """One thread for every panel of a context: at ``poll_interval`` it hands each live panel's poll
    (its unpublished attributes read again, its event rates refreshed) to the worker pool, one at a
    time per panel, so a panel whose HERO answers slowly never holds up the others."""

    def __init__(self, ctx: PanelContext) -> None:
        self._ctx = ctx
        self._panels: dict[int, Panel] = {}
        self._busy: set[int] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def add(self, panel: Panel) -> None:
        with self._lock:
            self._panels[id(panel)] = panel
            thread = None
            if self._thread is None:
                self._thread = thread = threading.Thread(target=self._run, name="heros-panel-poller", daemon=True)
        if thread is not None:  # with the lock released: a finalizer run on the new thread may remove a panel
            thread.start()

    def remove(self, panel: Panel) -> None:
        with self._lock:
            self._panels.pop(id(panel), None)

    def _run(self) -> None:
        while not self._stop.wait(max(self._ctx.poll_interval, 0.05) if self._ctx.poll_interval > 0 else 1.0):
            if self._ctx.poll_interval <= 0:
                continue
            with self._lock:
                due = [(key, p) for key, p in self._panels.items() if key not in self._busy]
                self._busy.update(key for key, _ in due)
            for key, panel in due:
                self._ctx.submit(self._poll, key, panel)

    def _poll(self, key: int, panel: Panel) -> None:
        try:
            panel.poll_once()
        finally:
            with self._lock:
                self._busy.discard(key)


def _close_tree(widget: w.Widget) -> None:
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    widget.close()


def _section(title: str) -> w.HTML:
    header = w.HTML(f"{html.escape(title)}")
    header.add_class("heros-section")
    return header


def _name_label(name: str, doc: str, required: bool = False) -> w.HTML:
    """The member's name; its whole doc shows on hover (a title on the text itself: ipywidgets'
    ``tooltip`` goes to the description label, which an HTML widget without a description hides)."""
    text = f"<b>{html.escape(name)}</b>" if required else html.escape(name)
    title = f" title='{html.escape(doc_text(doc))}'" if doc else ""
    label = w.HTML(f"<span{title}>{text}</span>", layout=w.Layout(width="10em", flex="0 0 auto"))
    label.add_class("heros-name")
    return label


def _limits_label(extra: Mapping[str, Any], *, choices: bool = False) -> w.HTML:
    """Unit and range as text beside the control (``mW, 0..50``), as the CLI shows them."""
    shown = {k: v for k, v in extra.items() if choices or k != "choices"}
    label = w.HTML(html.escape(limits_text(shown)), layout=w.Layout(flex="0 0 auto", margin="0 0.6em"))
    label.add_class("heros-limits")
    return label


def _doc_label(doc: str) -> w.HTML:
    """The doc's first line as text when it is short (inline code rendered); long docs show on hover only."""
    line = doc_line(doc)
    label = w.HTML(f"<span>{doc_html(line)}</span>" if line and len(line) <= SHORT_DOC else "",
                   layout=w.Layout(flex="1 1 auto", min_width="0"))
    label.add_class("heros-doc")
    return label


def fetch_values(proxy: Any) -> dict[str, Any]:
    """Blocking: the current value of each public attribute (the exception where a read fails)."""
    values: dict[str, Any] = {}
    for cap in tools.capabilities(proxy):
        if isinstance(cap, AttributeCapability):
            try:
                values[cap.name] = getattr(proxy, cap.name)
            except Exception as exc:  # noqa: BLE001 - shown in that row
                values[cap.name] = exc
    return values


def display_result(out: w.Output, result: Any, unit: str = "") -> None:
    """Show a call result in ``out``: numbers with their unit (``heros.render.value_text``), a 2-D
    numeric array as a colour-mapped image with a colour bar, anything else with rich display."""
    if is_image(result):  # static display data, not a widget: nothing to close later
        # a bundle of its own: the HTML whatever mime types the shell's formatter has switched on
        bundle = {"text/html": image_html(result, unit), "text/plain": format_value(result, unit)}
        out.outputs += ({"output_type": "display_data", "data": bundle, "metadata": {}},)
    elif (isinstance(result, numbers.Real) and not isinstance(result, bool)) or unit:
        out.append_display_data(Pretty(format_value(result, unit)))
    else:
        out.append_display_data(result)


class MethodForm:
    """A form for one remote method: an input per parameter, a run button, a result area.

    An argument the HERO would refuse (out of range, wrong type, not one of the choices) is refused
    in the form, when it is typed and again when run: no call is made, the input goes back to its
    last good value and the form says which limit it broke.
    """

    def __init__(self, proxy: Any, cap: MethodCapability, ctx: PanelContext) -> None:
        self.proxy = proxy
        self.cap = cap
        self._ctx = ctx
        self._lock = threading.Lock()
        self.calls = 0
        self.refused = 0
        self.last_result: Any = None
        self.last_error: BaseException | None = None
        self.controls: dict[str, Control] = {}
        self._refusal = False
        required: list[w.HBox] = []
        optional: list[w.HBox] = []
        for p in cap.parameters:
            control = self._control_for(p)
            self.controls[p.name] = control
            doc = str(p.extra.get("doc") or "")
            row = w.HBox([_name_label(p.name, doc, not p.has_default_value()), control.view, _limits_label(p.extra), _doc_label(doc)])
            row.add_class("heros-param")
            row.add_class(f"heros-param-{p.name}")
            for widget in control.inputs:
                widget.add_class(f"heros-arg-{cap.name}-{p.name}")
            if control.editable:
                control.watch(self._accepted, self._refused_input)
            (optional if p.has_default_value() else required).append(row)
        self.button = w.Button(description=cap.name, tooltip=doc_text(cap.doc or "") or None, button_style="primary")
        self.button.add_class("heros-run")
        self.button.add_class(f"heros-run-{cap.name}")
        self.button.on_click(lambda _b: self.run())
        self.state = w.HTML(layout=w.Layout(flex="1 1 auto", min_width="0"))
        self.state.add_class("heros-call-state")
        self.result = w.Output()
        self.result.add_class("heros-result")
        self.result.add_class(f"heros-result-{cap.name}")
        doc = (cap.doc or "").strip()
        first = doc.split("\n\n")[0].replace("\n", " ")  # the first paragraph as text; the whole doc on hover
        summary = w.HTML(f"<code title='{html.escape(doc_text(doc))}'>{html.escape(signature_text(cap))}</code>"
                         + (f" <span class='heros-doc'>{doc_html(first)}</span>" if first else ""))
        summary.add_class("heros-signature")
        self.widget = w.VBox([summary, *required, *optional, w.HBox([self.button, self.state]), self.result])
        self.widget.add_class("heros-method")
        self.widget.add_class(f"heros-method-{cap.name}")

    def _control_for(self, p: Any) -> Control:
        if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            star = "*" if p.kind == inspect.Parameter.VAR_POSITIONAL else "**"
            spec = Spec(p.name, "tuple" if star == "*" else "dict", {}, True, None, "parameter")
            control = default_widgets.control_for(spec)
            control.widget.placeholder = f"{star}{p.name}: {'(1, 2)' if star == '*' else '{' + repr('key') + ': 1}'}"
            return control
        known = p.has_default_value() and not p.extra.get("default_repr")
        spec = Spec(p.name, p.type, p.extra, True, p.default if known else None, "parameter", has_value=known)
        control = self._ctx.widgets.control_for(spec)
        if known:
            try:
                control.show(p.default)  # the default is the value an input goes back to
            except Exception:  # noqa: BLE001 - a default the widget cannot hold stays unset
                pass
        if p.extra.get("default_repr") and hasattr(control.widget, "placeholder"):
            control.widget.placeholder = f"default: {p.default}"
        return control

    def _accepted(self, value: Any) -> None:
        """Loop thread: an input took a value the HERO accepts; a refusal shown earlier is over."""
        if self._refusal:
            self._refusal = False
            self._show("")

    def _refused_input(self, text: str) -> None:
        """Loop thread: an input was refused (and went back to its last good value)."""
        self.refused += 1
        self._refusal = True
        self._show(f"refused, not called: {text}", error=True)

    def arguments(self) -> tuple[list[Any], dict[str, Any]]:
        """The call's positional and keyword arguments from the inputs (``ValueError`` with a sentence,
        also for a value outside the HERO's limits)."""
        params = self.cap.parameters
        star = [p for p in params if p.kind == inspect.Parameter.VAR_POSITIONAL]
        extra_args = list(self._read_literal(star[0], tuple)) if star else []
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for p in params:
            if p.kind == inspect.Parameter.VAR_POSITIONAL:
                continue
            if p.kind == inspect.Parameter.VAR_KEYWORD:
                kwargs.update(self._read_literal(p, dict))
                continue
            control = self.controls[p.name]
            if isinstance(control.widget, w.Text) and control.widget.value == "" and Spec(p.name, p.type).base_type != "str":
                if p.has_default_value():
                    continue  # keep the HERO's default (e.g. one that cannot travel)
                raise ValueError(f"{self.cap.name}: parameter {p.name!r} is required")
            value = control.read()
            try:
                control.validate(value)
            except ValueError:
                control.revert()
                raise
            if p.kind == inspect.Parameter.POSITIONAL_ONLY or (p.kind == inspect.Parameter.POSITIONAL_OR_KEYWORD and extra_args):
                args.append(value)
            else:
                kwargs[p.name] = value
        return args + extra_args, kwargs

    def _read_literal(self, p: Any, kind: type) -> Any:
        control = self.controls[p.name]
        if control.widget.value.strip() == "":
            return kind()
        value = control.read()
        if kind is tuple and isinstance(value, (list, tuple)):
            return tuple(value)
        if not isinstance(value, kind):
            raise ValueError(f"{self.cap.name}: {p.name!r} takes a {kind.__name__} literal, not {type(value).__name__}")
        return value

    def run(self) -> None:
        """Start the call on a worker thread (a second click while it runs does nothing)."""
        with self._lock:  # clicks may arrive on a kernel subshell thread, concurrently with cells
            if self.button.disabled:
                return
            try:
                args, kwargs = self.arguments()
            except ValueError as exc:
                self.refused += 1
                self._show(f"refused, not called: {exc}", error=True)
                return
            self.button.disabled = True
        self._show("running …")
        self._ctx.submit(self._call, args, kwargs, time.monotonic())

    def _call(self, args: list[Any], kwargs: dict[str, Any], started: float) -> None:
        """Worker thread: the blocking call."""
        try:
            result = getattr(self.proxy, self.cap.name).with_timeout(self._ctx.call_timeout)(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - shown in the panel
            self._ctx.bridge.call(self._failed, exc, time.monotonic() - started)
        else:
            self._ctx.bridge.call(self._done, result, time.monotonic() - started)

    def _done(self, result: Any, seconds: float) -> None:
        self.last_result, self.last_error = result, None
        self.button.disabled = False
        self.result.outputs = ()
        if result is not None:
            display_result(self.result, result, str(self.cap.extra.get("return_unit") or ""))
        self._show(f"returned {'None ' if result is None else ''}in {seconds:.3g} s")
        self.calls += 1

    def _failed(self, exc: BaseException, seconds: float) -> None:
        self.last_result, self.last_error = None, exc
        self.button.disabled = False
        self.result.outputs = ()
        self._show(f"{self.cap.name} failed after {seconds:.3g} s: {error_text(exc)}", error=True)
        self.calls += 1

    def _show(self, text: str, *, error: bool = False) -> None:
        self.state.value = f"<span style='color:#b00'>{html.escape(text)}</span>" if error else html.escape(text)
        (self.state.add_class if error else self.state.remove_class)("heros-error")

    def set_enabled(self, enabled: bool) -> None:
        self.button.disabled = not enabled

    def close(self) -> None:
        for control in self.controls.values():
            control.unwatch()


def progress_of(value: Any) -> tuple[float, dict[str, Any]] | None:
    """A progress payload's fraction done (0..1) and the rest of it: a dict with ``fraction`` (0..1)
    or ``percent``/``progress`` (0..100); None for anything else."""
    if not isinstance(value, Mapping):
        return None
    for key, scale in (("fraction", 1.0), ("percent", 100.0), ("progress", 100.0)):
        raw = value.get(key)
        if isinstance(raw, (int, float)) and not isinstance(raw, bool) and math.isfinite(raw):
            rest = {k: v for k, v in value.items() if k != key}
            return min(max(float(raw) / scale, 0.0), 1.0), rest
    return None


class EventView:
    """A live view of one event: last value, count, rate and a sparkline for numbers; a progress bar
    for progress payloads, a picture for 2-D arrays (camera frames), and a button that opens a live
    plot of its numbers."""

    HISTORY = 120

    def __init__(self, proxy: Any, cap: EventCapability, bridge: LoopBridge, unit: str = "") -> None:
        self.name = cap.name
        self.unit = unit
        self._proxy_name: str = proxy._name
        self._bridge = bridge
        self._lock = threading.Lock()
        self.count = 0
        self.last: Any = None
        self._values: deque[float] = deque(maxlen=self.HISTORY)
        self._marks: deque[tuple[float, int]] = deque()
        self.renders = 0
        self.plot: LivePlot | None = None
        self.image: ImageView | None = None
        self.html = w.HTML(self._text(0.0), layout=w.Layout(flex="1 1 auto", min_width="0"))
        self.html.add_class("heros-event")
        self.html.add_class(f"heros-event-{cap.name}")
        doc = doc_text(cap.doc or "")
        if doc:
            self.html.tooltip = doc
        self.progress = w.FloatProgress(min=0.0, max=1.0, layout=w.Layout(display="none", width="14em", flex="0 0 auto"))
        self.progress.add_class("heros-progress")
        self.progress.add_class(f"heros-progress-{cap.name}")
        self.plot_button = w.ToggleButton(description="plot", icon="line-chart", tooltip=f"a live plot of {cap.name}",
                                          layout=w.Layout(width="6em", flex="0 0 auto"))
        self.plot_button.add_class("heros-plot-button")
        self.plot_button.add_class(f"heros-plot-button-{cap.name}")
        self.plot_button.observe(self._toggle_plot, names="value")
        self.extra = w.VBox()
        self.widget = w.VBox([w.HBox([self.html, self.progress, self.plot_button]), self.extra])
        self.widget.add_class("heros-event-view")
        self.widget.add_class(f"heros-event-view-{cap.name}")
        self.closed = False
        self._subscription = tools.subscribe(proxy, cap.name, self._on_event)

    def _on_event(self, value: Any) -> None:
        """Dispatcher thread: count, remember, and hand a render to the coalescing buffer."""
        if self.closed:
            return
        with self._lock:
            self.count += 1
            self.last = value
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self._values.append(float(value))
        plot = self.plot
        if plot is not None:
            plot.extend([(trace, v, None, self.unit) for trace, v in numeric_samples(value, f"{self._proxy_name}.{self.name}")])
        if is_image(value):
            self._bridge.call(self._show_image, value)
        self._bridge.post(("event", id(self)), self._render, None)

    def _show_image(self, frame: Any) -> None:
        """Loop thread: frames go to the image view (made for the first one)."""
        if self.closed:  # a frame that was on its way when the view closed
            return
        if self.image is None:
            self.image = ImageView(self._bridge)
            self.extra.children = (*self.extra.children, self.image.widget)
        self.image.update(frame)

    def _toggle_plot(self, change: dict[str, Any]) -> None:
        """Loop thread: the plot button opens the live plot (made on first use) or hides it."""
        if change["new"] and self.plot is None:
            self.plot = LivePlot(self._bridge, f"{self._proxy_name}.{self.name}")
            self.plot.widget.add_class(f"heros-plot-{self.name}")
            self.extra.children = (self.plot.widget, *self.extra.children)
        if self.plot is not None:
            self.plot.widget.layout.display = "" if change["new"] else "none"

    def tick(self) -> None:
        """Any thread: render again so the rate decays when the stream stops (and an open plot slides)."""
        if self.count:
            self._bridge.post(("event", id(self)), self._render, None)
        if self.plot is not None and self.plot_button.value:
            self.plot.redraw()

    def _render(self, _: Any) -> None:
        if self.closed:
            return
        now = time.monotonic()
        with self._lock:
            count, last = self.count, self.last
            self._marks.append((now, count))
            while len(self._marks) > 2 and self._marks[1][0] <= now - 2.0:
                self._marks.popleft()
            t0, c0 = self._marks[0]
            rate = (count - c0) / (now - t0) if now - t0 > 0.05 else 0.0
        progress = progress_of(last)
        if progress is not None:
            self.progress.value = progress[0]
            self.progress.description = f"{progress[0] * 100:.0f} %"
            self.progress.layout.display = ""
        self.renders += 1
        self.html.value = self._text(rate)

    def _text(self, rate: float) -> str:
        with self._lock:
            count, last, values = self.count, self.last, list(self._values)
        if not count:
            return f"<b>{html.escape(self.name)}</b> <i>no events yet</i>"
        progress = progress_of(last)
        shown = format_value(progress[1]) if progress is not None else format_value(last)
        return (
            f"<b>{html.escape(self.name)}</b> last <code class='heros-event-last'>{html.escape(shown)}</code>"
            f" · <span class='heros-event-count'>{count}</span> events · {rate:.1f}/s {sparkline_svg(values)}"
        )

    def close(self) -> None:
        self.closed = True
        self._subscription.close()
        if self.plot is not None:
            self.plot.close()
        if self.image is not None:
            self.image.close()


class Panel:
    """The panel of one HERO; displays itself in a notebook (and as text in a terminal).

    Parameters
    ----------
    proxy
        The RemoteHERO to drive.
    ctx
        Shared bridge, workers, widget registry and settings.
    values
        Attribute values read already (``fetch_values``); read now if None.
    """

    def __init__(self, proxy: Any, ctx: PanelContext, values: dict[str, Any] | None = None) -> None:
        self.proxy = proxy
        self.name: str = proxy._name
        self.realm: str = proxy._realm
        self._ctx = ctx
        self.alive = True
        self.closed = False
        self.rebinds = 0
        self.displayed_in: int | None = None
        self._rebinding = False
        self._present = True  # what the HERO's liveliness said last (``alive``: whether this panel is bound)
        self._rebind_failures = 0
        self._on_rebind: list[Callable[[Any, Any], None]] = []
        self.header = w.HTML()
        self.header.add_class("heros-header")
        self.conn = w.HTML("● connected")
        self.conn.add_class("heros-state")
        # the header says who the HERO is and whether it is there, nothing else: errors stay in their row
        self.body = w.VBox()
        self.body.add_class("heros-body")
        self.widget = w.VBox([w.HTML(PANEL_CSS), self.header, self.conn, self.body])
        self.widget.add_class("heros-panel")
        self.widget.add_class(f"heros-panel-{self.name}")
        self.bindings: dict[str, AttributeBinding] = {}
        self.forms: dict[str, MethodForm] = {}
        self.events: dict[str, EventView] = {}
        self._build(fetch_values(proxy) if values is None else values)
        ctx.poller.add(self)

    def _build(self, values: dict[str, Any]) -> None:
        proxy = self.proxy
        cls = tools.descriptor(proxy).get("class", "?")
        upstream = " · <span class='heros-upstream' title='served by upstream HEROS (CBOR)'>upstream HEROS</span>" if is_upstream(proxy) else ""
        self.header.value = (f"<b>{html.escape(self.name)}</b> · {html.escape(str(cls))} · realm <code>{html.escape(self.realm)}</code>"
                             f"{upstream}")
        caps = tools.capabilities(proxy)
        children: list[w.Widget] = []
        attrs = [c for c in caps if isinstance(c, AttributeCapability)]
        # one subscription for every attribute the HERO publishes (upstream HEROs publish none: polled)
        self._attributes = None
        if attrs and not is_upstream(proxy):
            try:
                self._attributes = tools.watch_attributes(proxy, self._on_attribute)
            except Exception as exc:  # noqa: BLE001 - the rows still work by polling
                log.warning("cannot watch the attributes of %s: %s", self.name, exc)
        if attrs:
            children.append(_section("Attributes"))
        for cap in attrs:
            value = values.get(cap.name)
            spec = Spec(cap.name, cap.type, cap.extra, cap.writable, _value_or_none(value), "attribute", has_value=cap.name in values)
            control = self._ctx.widgets.control_for(spec)
            # a value that changes by itself follows the event that publishes it; polled only without one
            event = None if cap.writable and self._attributes is not None else tools.value_event(proxy, cap.name)
            binding = AttributeBinding(
                proxy, cap.name, control, bridge=self._ctx.bridge, submit=self._ctx.submit,
                initial=values.get(cap.name), watch=self._attributes or False, event=event,
            )
            self.bindings[cap.name] = binding
            for widget in control.inputs:
                widget.add_class("heros-input")
                widget.add_class(f"heros-input-{cap.name}")
            if control.entry is not None:
                control.entry.add_class("heros-entry")
            doc = cap.doc or ""
            line = w.HBox([_name_label(cap.name, doc), control.view, _limits_label(cap.extra), binding.source, _doc_label(doc)])
            row = w.VBox([line, binding.state])
            row.add_class("heros-attr")
            row.add_class(f"heros-attr-{cap.name}")
            children.append(row)
        methods = [c for c in caps if isinstance(c, MethodCapability)]
        if methods:
            children.append(_section("Methods"))
        for method in methods:
            form = MethodForm(proxy, method, self._ctx)
            self.forms[method.name] = form
            children.append(form.widget)
        events = [c for c in caps if isinstance(c, EventCapability)]
        if events:
            children.append(_section("Events"))
        # the unit of an event that publishes an attribute's values is that attribute's (temperature_changed: K)
        units = {binding.event: str(cap.extra.get("unit") or "") for cap in attrs
                 if (binding := self.bindings[cap.name]).event is not None}
        for ev in events:
            view = EventView(proxy, ev, self._ctx.bridge, units.get(ev.name, ""))
            self.events[ev.name] = view
            children.append(view.widget)
        self.body.children = tuple(children)

    def poll_once(self) -> None:
        """Worker thread (the context's poller): read the attributes nobody publishes, refresh event rates."""
        if self.closed or not self.alive or self._rebinding:
            return
        for binding in list(self.bindings.values()):
            if binding.needs_poll(self._ctx.poll_interval):
                binding.refresh()
        for view in list(self.events.values()):
            view.tick()

    def set_alive(self, alive: bool) -> None:
        """Loop thread: the registry saw the HERO's liveliness go (False) or come back (True)."""
        if self.closed:
            return
        self._present = alive
        if self._rebinding:  # it may go again while the new proxy is being built: _rebound looks
            return
        if alive and not self.alive:
            self._start_rebind()
        elif not alive:
            self._mark_gone()  # (also after a failed rebind: the state no longer says it is tried again)

    def _mark_gone(self) -> None:
        self.alive = False
        self._set_enabled(False)
        self.conn.value = (
            f"○ HERO {html.escape(self.name)} is gone (liveliness lost at {time.strftime('%H:%M:%S')}); "
            "the panel rebinds when it comes back"
        )
        # last: a page that sees the panel greyed out finds its controls already disabled
        self.widget.add_class("heros-disconnected")

    def _set_enabled(self, enabled: bool) -> None:
        for binding in self.bindings.values():
            binding.set_enabled(enabled)
        for form in self.forms.values():
            form.set_enabled(enabled)

    def _start_rebind(self) -> None:
        if self._rebinding:
            return
        self._rebinding = True
        self.conn.value = f"◐ HERO {html.escape(self.name)} is back; reconnecting …"
        self._ctx.submit(self._fetch_rebind)

    def _fetch_rebind(self) -> None:
        """Worker thread: a new proxy and fresh values."""
        try:
            proxy = self._ctx.connect(self.name, self.realm)
            values = fetch_values(proxy)
        except Exception as exc:  # noqa: BLE001 - stays greyed out, says why
            self._ctx.bridge.call(self._rebind_failed, exc)
            return
        self._ctx.bridge.call(self._rebound, proxy, values)

    def _rebind_failed(self, exc: BaseException) -> None:
        """Loop thread: tried again after a pause while the HERO's liveliness says it is there (a
        HERO whose process is still starting may not answer yet), never left greyed out for good."""
        self._rebinding = False
        if self.closed:
            return
        if not self._present:  # it went again meanwhile
            self._mark_gone()
            return
        pause = REBIND_RETRY_PAUSES[min(self._rebind_failures, len(REBIND_RETRY_PAUSES) - 1)]
        self._rebind_failures += 1
        self.conn.value = (f"○ HERO {html.escape(self.name)} came back but could not be reconnected: "
                           f"{html.escape(error_text(exc))}; trying again in {pause:g} s")
        timer = threading.Timer(pause, self._ctx.bridge.call, (self._retry_rebind,))
        timer.daemon = True
        timer.start()

    def _retry_rebind(self) -> None:
        if not self.closed and self._present and not self.alive:
            self._start_rebind()

    def _rebound(self, proxy: Any, values: dict[str, Any]) -> None:
        self._rebinding = False
        self._rebind_failures = 0
        if self.closed:
            return
        old = self.proxy
        self._release()
        old_children = self.body.children
        self.proxy = proxy
        self._build(values)
        for child in old_children:
            _close_tree(child)
        self.alive = True
        self.widget.remove_class("heros-disconnected")
        self.conn.value = f"● connected (reconnected at {time.strftime('%H:%M:%S')})"
        for func in list(self._on_rebind):
            try:
                func(old, proxy)
            except Exception:
                log.exception("rebind callback failed")
        if not self._present:
            self._mark_gone()
        self.rebinds += 1

    def on_rebind(self, func: Callable[[Any, Any], None]) -> None:
        """Call ``func(old_proxy, new_proxy)`` on the loop thread after each rebind."""
        self._on_rebind.append(func)

    def _on_attribute(self, name: str, value: Any) -> None:
        """A subscription worker: the HERO published a new value of ``name``."""
        binding = self.bindings.get(name)
        if binding is not None:
            binding.on_remote(value)

    def _release(self) -> None:
        if self._attributes is not None:
            self._attributes.close()
            self._attributes = None
        for binding in self.bindings.values():
            binding.close()
        for form in self.forms.values():
            form.close()
        for view in self.events.values():
            view.close()
        self.bindings, self.forms, self.events = {}, {}, {}

    def close(self) -> None:
        """Stop polling, release every subscription and close the widgets (their views disappear)."""
        if self.closed:
            return
        self.closed = True
        self._ctx.poller.remove(self)
        self._release()
        _close_tree(self.widget)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, **kwargs: Any) -> dict[str, Any]:
        if self.closed:
            return {"text/plain": f"<closed panel of HERO {self.name!r}>"}
        bundle = dict(self.widget._repr_mimebundle_(**kwargs) or {})
        bundle["text/plain"] = tools.summary(self.proxy)
        return bundle

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("alive" if self.alive else "gone")
        return f"<Panel of HERO {self.realm}/{self.name} ({state})>"


def _value_or_none(value: Any) -> Any:
    return None if isinstance(value, BaseException) else value
