"""From a remote type (and its bounds, unit, choices) to an ipywidget: a registry keyed by type name, then a ladder.

Extend it for your own types::

    import ipywidgets as w
    import heros_jupyter.widgets as hw

    @hw.register("Temperature")
    def temperature_widget(spec):
        return w.FloatText(step=0.01)

    with hw.registered("Wavelength", my_factory):   # only inside the block (tests)
        ...

A factory receives a ``Spec`` and returns an ipywidget (its ``value`` is the remote value), a
``Control`` (a widget with converters), or None to let the ladder decide. The ladder's rungs are
small functions tried in order; a slider appears only when both bounds are known (and never
sends while dragging), nothing invents a range, and an unknown type ends as a read-only repr.

No control clamps what the user typed. ipywidgets' bounded widgets do (the slider's editable
readout and ``Bounded*Text`` pull 80 down to a maximum of 50 in the browser, before the kernel
sees it), so sliders hide their readout and get an unbounded number box beside them, one-sided
bounds get a plain ``IntText``/``FloatText``, and every committed value goes through the
control's ``check`` (the HERO's own limits, ``heros.capabilities.value_check``): a value outside
them is refused with a sentence naming the range and the inputs go back to the last good value.
"""

from __future__ import annotations

import ast
import contextlib
import datetime
import html
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as w

from heros.capabilities import value_check
from heros.render import value_text

__all__ = [
    "Control",
    "Spec",
    "WidgetRegistry",
    "control_for",
    "format_value",
    "register",
    "registered",
    "registry",
    "unregister",
]

INT_TYPES = frozenset({"int", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "integer"})
FLOAT_TYPES = frozenset({"float", "float16", "float32", "float64", "double", "floating"})
LITERAL_TYPES = frozenset({"list", "dict", "tuple", "set", "List", "Dict", "Tuple", "Set"})


def _identity(value: Any) -> Any:
    return value


_UNSET: Any = object()


@dataclass(frozen=True)
class Spec:
    """What a widget is made for: one attribute, or one parameter of a method.

    Parameters
    ----------
    name
        The member or parameter name.
    type
        The type text the HERO sent (``"float"``, ``"Mode"``, ``"float | None"``, ``"undefined"``).
    extra
        Extra capability fields: ``unit``, ``min``, ``max``, ``step``, ``choices``, ``doc``.
    writable
        False for read-only attributes.
    value
        The current value (attributes) or the default (parameters); None if unknown.
    role
        ``"attribute"`` or ``"parameter"``.
    has_value
        Whether ``value`` is known (a parameter's default may be None; a required one has none).
    """

    name: str
    type: str = "undefined"
    extra: Mapping[str, Any] = field(default_factory=dict)
    writable: bool = True
    value: Any = None
    role: str = "attribute"
    has_value: bool = False

    @property
    def base_type(self) -> str:
        """The type text without ``| None`` / ``Optional[...]``."""
        text = self.type.strip()
        if text.startswith("Optional[") and text.endswith("]"):
            text = text[9:-1]
        parts = [p.strip() for p in text.split("|")]
        rest = [p for p in parts if p not in ("None", "NoneType")]
        return rest[0] if len(rest) == 1 else text

    @property
    def unit(self) -> str:
        return str(self.extra.get("unit") or "")

    @property
    def doc(self) -> str:
        return str(self.extra.get("doc") or "")

    def bound(self, which: str) -> float | None:
        value = self.extra.get(which)
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


class Control:
    """A widget plus the conversions between the remote value and the widget's ``value``.

    Parameters
    ----------
    widget
        The widget whose ``value`` holds the (converted) remote value.
    editable
        False for displays (labels, summaries): they are never written back.
    to_widget, from_widget
        Remote value -> widget value, and back (``from_widget`` raises ``ValueError`` with a
        sentence for input it cannot parse).
    entry
        A number box beside a slider, for typing a value: unbounded, so that a typed value
        outside the range reaches ``check`` and is refused instead of clamped.
    check
        Raises ``ValueError``/``TypeError`` naming the limit for a value the HERO would refuse
        (set by the registry from the capability's type, range and choices).
    """

    def __init__(self, widget: w.Widget, editable: bool = True, to_widget: Callable[[Any], Any] = _identity,
                 from_widget: Callable[[Any], Any] = _identity, *, entry: w.Widget | None = None,
                 check: Callable[[Any], None] | None = None) -> None:
        self.widget = widget
        self.editable = editable
        self.to_widget = to_widget
        self.from_widget = from_widget
        self.entry = entry
        self.check = check
        self._view: w.Widget | None = None
        self._quiet = False
        self._good: Any = _UNSET
        self._handlers: list[Callable[[dict[str, Any]], None]] = []

    @property
    def inputs(self) -> tuple[w.Widget, ...]:
        """The widgets a user commits values with (the widget, and the entry beside a slider)."""
        return (self.widget,) if self.entry is None else (self.widget, self.entry)

    @property
    def view(self) -> w.Widget:
        """What a row shows: the widget, or the slider and its entry side by side."""
        if self.entry is None:
            return self.widget
        if self._view is None:
            self._view = w.HBox([self.widget, self.entry], layout=w.Layout(flex="0 0 auto"))
        return self._view

    def show(self, value: Any) -> None:
        """Put a remote value into the inputs without it counting as a commit (raises if the widget cannot hold it)."""
        shown = self.to_widget(value)
        self._quiet = True
        try:
            self.widget.value = shown
            if self.entry is not None:
                self.entry.value = shown  # unbounded: shows the HERO's value even outside the slider's range
        finally:
            self._quiet = False
        self._good = value

    def read(self) -> Any:
        """The widget's value as a remote value (``ValueError`` with a sentence if it does not parse)."""
        return self.from_widget(self.widget.value)

    def validate(self, value: Any) -> Any:
        """``value`` if the HERO would take it; else ``ValueError`` naming the limit (no write, no call)."""
        if self.check is not None:
            try:
                self.check(value)
            except TypeError as exc:
                raise ValueError(str(exc)) from None
        return value

    def revert(self) -> None:
        """Show the last good value again (what the HERO holds, or the last value committed)."""
        if self._good is not _UNSET:
            try:
                self.show(self._good)
            except Exception:  # noqa: BLE001 - a value the widget cannot hold stays as it is
                pass

    def watch(self, on_commit: Callable[[Any], None], on_refuse: Callable[[str], None]) -> None:
        """Call ``on_commit(value)`` for each value the user commits and ``check`` accepts;
        ``on_refuse(sentence)`` for one that does not parse or that the HERO would refuse (the
        inputs then show the last good value again: nothing is written)."""

        def changed(change: dict[str, Any]) -> None:
            if self._quiet:
                return
            try:
                value = self.validate(self.from_widget(change["new"]))
            except ValueError as exc:
                self.revert()
                on_refuse(str(exc))
                return
            if self.entry is not None:  # keep the slider and its entry in step, quietly
                other = self.entry if change["owner"] is self.widget else self.widget
                self._quiet = True
                try:
                    other.value = change["new"]
                finally:
                    self._quiet = False
            self._good = value
            on_commit(value)

        for widget in self.inputs:
            widget.observe(changed, names="value")
        self._handlers.append(changed)

    def unwatch(self) -> None:
        """Stop calling what ``watch`` registered."""
        for handler in self._handlers:
            for widget in self.inputs:
                widget.unobserve(handler, names="value")
        self._handlers.clear()


Factory = Callable[[Spec], "w.Widget | Control | None"]


def format_value(value: Any, unit: str = "") -> str:
    """A short human text for a value: the one rule of the panels, ``heros.render.value_text``
    (numbers with their unit and at most 6 significant digits, arrays as shape/dtype/range)."""
    return value_text(value, unit)


def _label(spec: Spec) -> Control:
    """A read-only display of the value (the panel shows the unit next to it)."""
    widget = w.HTML(layout=w.Layout(min_width="12em"))
    widget.add_class("heros-value")
    return Control(widget, editable=False, to_widget=lambda v: f"<code>{html.escape(format_value(v))}</code>")


def widget_from_readonly(spec: Spec) -> Control | None:
    """Read-only attributes: a value label, never a write control."""
    return _label(spec) if not spec.writable else None


def widget_from_choices(spec: Spec) -> Control | None:
    """Enum, Literal or ``Choices``: a Dropdown of the allowed values."""
    choices = spec.extra.get("choices")
    if not isinstance(choices, (list, tuple)) or not choices:
        return None
    options = list(choices)
    if spec.value is not None and spec.value not in options:
        options.append(spec.value)  # show what the HERO holds, even if it is not one of the choices
    widget = w.Dropdown(options=[(str(c), c) for c in options], value=spec.value if spec.value in options else options[0])
    return Control(widget)


def widget_from_bool(spec: Spec) -> Control | None:
    """bool: a Checkbox."""
    if spec.base_type != "bool":
        return None
    return Control(w.Checkbox(value=bool(spec.value), indent=False))


def _float_step(lo: float, hi: float) -> float:
    span = abs(hi - lo) or 1.0
    return 10.0 ** math.floor(math.log10(span / 1000))


def _entry_layout() -> w.Layout:
    return w.Layout(width="7.5em", flex="0 0 auto")


def widget_from_range(spec: Spec) -> Control | None:
    """int/float with both bounds: a slider that writes on release (``continuous_update=False``),
    its clamping readout hidden, and an unbounded number box beside it for typing a value."""
    lo, hi = spec.bound("min"), spec.bound("max")
    if lo is None or hi is None or hi < lo:
        return None
    step = spec.bound("step")
    layout = w.Layout(width="16em", flex="0 0 auto")
    if spec.base_type in INT_TYPES:
        start = spec.value if isinstance(spec.value, int) else int(lo)
        slider: w.Widget = w.IntSlider(value=start, min=int(lo), max=int(hi), step=int(step or 1), continuous_update=False,
                                       readout=False, layout=layout)
        return Control(slider, entry=w.IntText(value=start, layout=_entry_layout()))
    if spec.base_type in FLOAT_TYPES:
        fstep = float(step or _float_step(lo, hi))
        fvalue = float(spec.value) if isinstance(spec.value, (int, float)) else float(lo)
        slider = w.FloatSlider(value=fvalue, min=float(lo), max=float(hi), step=fstep, continuous_update=False, readout=False,
                               layout=layout)
        return Control(slider, entry=w.FloatText(value=fvalue, layout=_entry_layout()))
    return None


def widget_from_number(spec: Spec) -> Control | None:
    """int/float without both bounds: IntText/FloatText (no invented range; a one-sided bound is
    checked on commit, never clamped)."""
    if spec.base_type in INT_TYPES:
        return Control(w.IntText(value=spec.value if isinstance(spec.value, int) and not isinstance(spec.value, bool) else 0,
                                 layout=_entry_layout()))
    if spec.base_type in FLOAT_TYPES:
        return Control(w.FloatText(value=float(spec.value) if isinstance(spec.value, (int, float)) else 0.0, layout=_entry_layout()))
    return None


def widget_from_str(spec: Spec) -> Control | None:
    """str: a Text committed on Enter (or when it loses focus)."""
    if spec.base_type != "str":
        return None
    return Control(w.Text(value="" if spec.value is None else str(spec.value), continuous_update=False))


def widget_from_datetime(spec: Spec) -> Control | None:
    """datetime: a date-and-time picker."""
    if spec.base_type != "datetime":
        return None
    value = spec.value if isinstance(spec.value, datetime.datetime) else None
    return Control(w.NaiveDatetimePicker(value=value.replace(tzinfo=None) if value else None))


def _parse_literal(text: str, what: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise ValueError(f"{what}: {text!r} is not a Python literal (write it like [1, 2] or {{'a': 1}})") from None


def widget_from_literal(spec: Spec) -> Control | None:
    """list/dict/tuple/set: a Text holding the repr, parsed with ``ast.literal_eval`` on commit."""
    if spec.base_type not in LITERAL_TYPES:
        return None
    text = repr(spec.value) if spec.value is not None or spec.has_value else ""
    widget = w.Text(value=text, continuous_update=False)
    return Control(widget, to_widget=repr, from_widget=lambda text: _parse_literal(text, spec.name))


def _any_from_text(text: str) -> Any:
    """A literal if it parses as one, else the text itself (for parameters of unknown type)."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


def widget_from_unknown(spec: Spec) -> Control:
    """Last rung: parameters get a Text read as a literal (or as text); attributes a read-only repr."""
    if spec.role == "parameter":
        value = repr(spec.value) if spec.value is not None or spec.has_value else ""
        widget = w.Text(value=value, placeholder="a Python literal, or text", continuous_update=False)
        return Control(widget, to_widget=repr, from_widget=_any_from_text)
    return _label(spec)


#: The rungs, in order. Each returns a Control or None; ``widget_from_unknown`` always answers.
LADDER: list[Callable[[Spec], Control | None]] = [
    widget_from_readonly,
    widget_from_choices,
    widget_from_bool,
    widget_from_range,
    widget_from_number,
    widget_from_str,
    widget_from_datetime,
    widget_from_literal,
]


class WidgetRegistry:
    """Type name -> widget factory, consulted before the ladder.

    Parameters
    ----------
    ladder
        The rungs tried when no registered factory answers.
    """

    def __init__(self, ladder: list[Callable[[Spec], Control | None]] | None = None) -> None:
        self._factories: dict[str, Factory] = {}
        self.ladder = list(LADDER if ladder is None else ladder)

    @staticmethod
    def _key(type_: str | type) -> str:
        if isinstance(type_, str):
            if not type_.strip():
                raise ValueError("a widget type name cannot be empty")
            return type_.strip()
        if isinstance(type_, type):
            return type_.__name__
        raise TypeError(f"register a widget for a type or a type name, not {type(type_).__name__}")

    def register(self, type_: str | type, factory: Factory | None = None) -> Any:
        """Use ``factory(spec)`` for values of ``type_`` (a class or the type name the HERO sends).

        Works as a call, ``register("Mode", f)``, or as a decorator, ``@register("Mode")``.
        Returns the factory.
        """
        key = self._key(type_)
        if factory is None:
            return lambda f: self.register(key, f)
        if not callable(factory):
            raise TypeError(f"the widget factory for {key!r} must be callable, not {type(factory).__name__}")
        self._factories[key] = factory
        return factory

    def unregister(self, type_: str | type) -> bool:
        """Forget the factory for ``type_``; True if there was one."""
        return self._factories.pop(self._key(type_), None) is not None

    @contextlib.contextmanager
    def registered(self, type_: str | type, factory: Factory) -> Iterator[Factory]:
        """Register ``factory`` for the duration of a ``with`` block, then restore what was there."""
        key = self._key(type_)
        previous = self._factories.get(key)
        self.register(key, factory)
        try:
            yield factory
        finally:
            if previous is None:
                self._factories.pop(key, None)
            else:
                self._factories[key] = previous

    def control_for(self, spec: Spec) -> Control:
        """The Control for ``spec``: a registered factory first, then the ladder, then a read-only repr.

        An editable control without a ``check`` of its own gets the HERO's: the type, range and
        choices of ``spec`` (``heros.capabilities.value_check``), so a value the HERO would refuse
        is refused in the panel before anything is written.
        """
        control = self._made(spec)
        if control.editable and control.check is None:
            allow_none = spec.role == "parameter" and spec.has_value and spec.value is None
            control.check = value_check(spec.type, dict(spec.extra), spec.name, allow_none=allow_none)
        return control

    def _made(self, spec: Spec) -> Control:
        for key in (spec.type, spec.base_type):
            factory = self._factories.get(key)
            if factory is not None:
                made = factory(spec)
                if made is not None:
                    return made if isinstance(made, Control) else Control(made, editable=spec.writable)
        for rung in self.ladder:
            control = rung(spec)
            if control is not None:
                return control
        return widget_from_unknown(spec)


#: The registry panels use.
registry = WidgetRegistry()
register = registry.register
unregister = registry.unregister
registered = registry.registered
control_for = registry.control_for
