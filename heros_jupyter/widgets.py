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
#: Stand-ins for the open side of a one-sided bound (JSON has no infinity).
INT_LIMIT = 2**53 - 1
FLOAT_LIMIT = 1.7976931348623157e308


def _identity(value: Any) -> Any:
    return value


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


@dataclass
class Control:
    """A widget plus the conversions between the remote value and the widget's ``value``.

    ``editable`` is False for displays (labels, summaries): they are never written back.
    """

    widget: w.Widget
    editable: bool = True
    to_widget: Callable[[Any], Any] = _identity
    from_widget: Callable[[Any], Any] = _identity

    def show(self, value: Any) -> None:
        """Put a remote value into the widget (raises if the widget cannot hold it)."""
        self.widget.value = self.to_widget(value)

    def read(self) -> Any:
        """The widget's value as a remote value (``ValueError`` with a sentence if it does not parse)."""
        return self.from_widget(self.widget.value)


Factory = Callable[[Spec], "w.Widget | Control | None"]


def format_value(value: Any, unit: str = "") -> str:
    """A short human text for a value: numbers with their unit, arrays as shape/dtype/range, long reprs cut."""
    suffix = f" {unit}" if unit else ""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, float):
        return f"{value:.6g}{suffix}"
    if isinstance(value, int):
        return f"{value}{suffix}"
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is not None and dtype is not None:
        text = f"{type(value).__name__} {dtype} {tuple(shape)}"
        try:
            if getattr(value, "size", 0) and dtype.kind in "biuf":
                text += f", min {value.min():.4g}, max {value.max():.4g}"
        except (TypeError, ValueError):
            pass
        return text + suffix
    if isinstance(value, (list, tuple, dict, set)):
        text = repr(value)
        return (text if len(text) <= 80 else f"{text[:77]}…") + f" ({type(value).__name__} of {len(value)})"
    text = repr(value)
    return (text if len(text) <= 80 else f"{text[:77]}…") + suffix


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


def widget_from_range(spec: Spec) -> Control | None:
    """int/float with both bounds: a slider that writes on release (``continuous_update=False``)."""
    lo, hi = spec.bound("min"), spec.bound("max")
    if lo is None or hi is None or hi < lo:
        return None
    step = spec.bound("step")
    if spec.base_type in INT_TYPES:
        start = spec.value if isinstance(spec.value, int) else int(lo)
        return Control(w.IntSlider(value=start, min=int(lo), max=int(hi), step=int(step or 1), continuous_update=False))
    if spec.base_type in FLOAT_TYPES:
        fstep = float(step or _float_step(lo, hi))
        decimals = max(0, -math.floor(math.log10(fstep))) if fstep < 1 else 0
        fvalue = float(spec.value) if isinstance(spec.value, (int, float)) else float(lo)
        slider = w.FloatSlider(value=fvalue, min=float(lo), max=float(hi), step=fstep, continuous_update=False, readout_format=f".{decimals}f")
        return Control(slider)
    return None


def widget_from_bound(spec: Spec) -> Control | None:
    """int/float with one bound: a Bounded*Text (the open side is not limited)."""
    lo, hi = spec.bound("min"), spec.bound("max")
    if lo is None and hi is None:
        return None
    if spec.base_type in INT_TYPES:
        lo_i, hi_i = int(lo) if lo is not None else -INT_LIMIT, int(hi) if hi is not None else INT_LIMIT
        start = spec.value if isinstance(spec.value, int) else max(lo_i, min(0, hi_i))
        return Control(w.BoundedIntText(value=start, min=lo_i, max=hi_i))
    if spec.base_type in FLOAT_TYPES:
        lo_f, hi_f = float(lo) if lo is not None else -FLOAT_LIMIT, float(hi) if hi is not None else FLOAT_LIMIT
        fvalue = float(spec.value) if isinstance(spec.value, (int, float)) else max(lo_f, min(0.0, hi_f))
        return Control(w.BoundedFloatText(value=fvalue, min=lo_f, max=hi_f))
    return None


def widget_from_number(spec: Spec) -> Control | None:
    """int/float without bounds: IntText/FloatText (no invented range)."""
    if spec.base_type in INT_TYPES:
        return Control(w.IntText(value=spec.value if isinstance(spec.value, int) and not isinstance(spec.value, bool) else 0))
    if spec.base_type in FLOAT_TYPES:
        return Control(w.FloatText(value=float(spec.value) if isinstance(spec.value, (int, float)) else 0.0))
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
    widget_from_bound,
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
        """The Control for ``spec``: a registered factory first, then the ladder, then a read-only repr."""
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
