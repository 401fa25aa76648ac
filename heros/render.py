"""Capabilities and values as text: the one place that renders signatures, units, limits and docs.

The proxy's repr, the ``heros`` command and the Jupyter panels all show a HERO through these
functions, so a parameter's unit and range read the same everywhere:
``move_to(x: float [mm, 0..50], speed: float [mm/s, 0.1..20] = 5) -> str``.
"""

from __future__ import annotations

import html
import inspect
import pprint
import re
from typing import Any

import numpy as np

from .capabilities import UNDEFINED, AttributeCapability, Capability, MethodCapability, Parameter

__all__ = [
    "attribute_text",
    "doc_html",
    "doc_line",
    "doc_text",
    "limits_text",
    "number_text",
    "parameter_text",
    "signature_text",
    "summary_text",
    "value_text",
]


def number_text(value: Any) -> str:
    """``3.0`` as ``3``, ``0.001`` as ``0.001``, other values as ``str`` (None as empty)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:g}"
    return "" if value is None else str(value)


def limits_text(extra: dict[str, Any]) -> str:
    """What a capability's extra fields say about its values: ``mW, 0..50`` or ``nm, one of 532, 633``."""
    parts = []
    if extra.get("unit"):
        parts.append(str(extra["unit"]))
    if "min" in extra or "max" in extra:
        parts.append(f"{number_text(extra.get('min'))}..{number_text(extra.get('max'))}")
    if isinstance(extra.get("choices"), list):
        parts.append("one of " + ", ".join(map(repr, extra["choices"])))
    return ", ".join(parts)


def parameter_text(p: Parameter, *, limits: bool = True) -> str:
    """``speed: float [mm/s, 0.1..20] = 5`` (``*args``/``**kwargs`` with their stars)."""
    prefix = "*" if p.kind == inspect.Parameter.VAR_POSITIONAL else "**" if p.kind == inspect.Parameter.VAR_KEYWORD else ""
    text = prefix + p.name
    if p.type not in (UNDEFINED, ""):
        text += f": {p.type}"
    bounds = limits_text(p.extra) if limits else ""
    if bounds:
        text += f" [{bounds}]"
    if p.has_default_value():
        text += f" = {p.default if p.extra.get('default_repr') else repr(p.default)}"
    return str(text)


def signature_text(cap: MethodCapability, *, limits: bool = True) -> str:
    """``name(a: float [V, 0..10], /, b: int = 2, *, c: str = 'x') -> str``: the method as the HERO
    declared it (``/`` and ``*`` where Python puts them), with units and limits unless told not to."""
    parts: list[str] = []
    star_done = False
    last_positional_only = max((i for i, p in enumerate(cap.parameters) if p.kind == inspect.Parameter.POSITIONAL_ONLY), default=-1)
    for i, p in enumerate(cap.parameters):
        if p.kind == inspect.Parameter.VAR_POSITIONAL:
            star_done = True
        elif p.kind == inspect.Parameter.KEYWORD_ONLY and not star_done:
            parts.append("*")
            star_done = True
        parts.append(parameter_text(p, limits=limits))
        if i == last_positional_only:
            parts.append("/")
    returns = f" -> {cap.return_type}" if cap.return_type not in ("None", UNDEFINED, "") else ""
    unit = cap.extra.get("return_unit")
    if returns and unit:
        returns += f" [{unit}]"
    return f"{cap.name}({', '.join(parts)}){returns}"


def doc_line(doc: str | None) -> str:
    """The first line of a docstring (empty without one)."""
    lines = (doc or "").strip().splitlines()
    return lines[0].strip() if lines else ""


_INLINE_CODE = re.compile(r"``(.+?)``|`([^`]+?)`")


def doc_html(text: str) -> str:
    """A docstring line as HTML: ``literal`` and `literal` become <code>literal</code>, the rest escaped."""
    out, pos = [], 0
    for m in _INLINE_CODE.finditer(text):
        out.append(html.escape(text[pos:m.start()]))
        out.append(f"<code>{html.escape(m.group(1) or m.group(2))}</code>")
        pos = m.end()
    out.append(html.escape(text[pos:]))
    return "".join(out)


def doc_text(text: str) -> str:
    """A docstring as plain text, for tooltips: ``literal`` and `literal` lose their backticks."""
    return _INLINE_CODE.sub(lambda m: m.group(1) or m.group(2), text)


def attribute_text(cap: AttributeCapability, value: Any = inspect.Parameter.empty) -> str:
    """``power: float = 12.5  [mW, 0..50]  (read-only)``, the value if one is given."""
    text = f"{cap.name}: {cap.type}"
    if value is not inspect.Parameter.empty:
        text += f" = {value_text(value, short=True)}"
    bounds = limits_text(cap.extra)
    text += f"  [{bounds}]" if bounds else ""
    return text + ("" if cap.writable else "  (read-only)")


def value_text(value: Any, unit: str = "", *, short: bool = True) -> str:
    """A readable text for a value: numbers with their unit and at most 6 significant digits,
    arrays as shape, dtype and range; ``short`` keeps it to one line of about 80 characters
    (else containers are pretty-printed over several lines)."""
    suffix = f" {unit}" if unit else ""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}{suffix}"
    if isinstance(value, (int, np.integer)):
        return f"{int(value)}{suffix}"
    if isinstance(value, str):
        return (value if len(value) <= 80 or not short else f"{value[:77]}…") + suffix
    if isinstance(value, np.ndarray):
        text = f"array {value.dtype} {tuple(value.shape)}"
        if value.size and value.dtype.kind in "biuf":
            text += f", min {value.min():.4g}, max {value.max():.4g}"
        elif not value.size:
            text += " (empty)"
        if not short and 0 < value.size <= 20:
            text += f": {np.array2string(value, separator=', ')}"
        return text + suffix
    if isinstance(value, (list, tuple, dict, set)):
        if not short:
            return pprint.pformat(value, width=100, sort_dicts=False)
        text = repr(value)
        return (text if len(text) <= 80 else f"{text[:77]}…") + f" ({type(value).__name__} of {len(value)})"
    text = repr(value)
    return (text if len(text) <= 80 or not short else f"{text[:77]}…") + suffix


def summary_text(name: str, realm: str, descriptor: dict[str, Any], caps: list[Capability],
                 values: dict[str, Any] | None = None, *, title: str = "") -> str:
    """The text summary of a HERO: class, public tags, then attributes (with ``values`` if given;
    a value that could not be read may be given as a text), methods with their signatures and
    events, each with the first line of its doc."""
    head = title or f"{name}  (class {descriptor.get('class', '?')}, realm {realm!r})"
    lines = [head]
    tags = sorted(str(t) for t in descriptor.get("tags") or () if not str(t).startswith("_"))
    if tags:
        lines.append(f"  tags: {', '.join(tags)}")
    public = [c for c in caps if not c.name.startswith("_")]
    for flavor, heading in (("attribute", "attributes"), ("method", "methods"), ("event", "events")):
        group = [c for c in public if c.flavor == flavor]
        if not group:
            continue
        lines.append(f"  {heading}:")
        for c in group:
            doc = doc_line(c.doc)
            if isinstance(c, AttributeCapability):
                shown = (values or {}).get(c.name, inspect.Parameter.empty)
                lines.append(f"    {attribute_text(c, shown)}" + (f"  - {doc}" if doc else ""))
                continue
            lines.append(f"    {signature_text(c) if isinstance(c, MethodCapability) else c.name}")
            if doc:  # a signature is long already: its doc goes below it
                lines.append(f"        {doc}")
    return "\n".join(lines)
