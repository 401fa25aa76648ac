"""Units, limits, choices and docs for HERO attributes and parameters, declared with ``Annotated``.

::

    from typing import Annotated
    from heros.meta import Range, Unit, Doc

    class Laser(LocalHERO):
        power: Annotated[float, Range(0, 50), Unit("mW"), Doc("optical output power")] = 0.0

The metadata travels as extra capability fields (``min``, ``max``, ``step``, ``unit``,
``choices``, ``doc``, ``event``); upstream HEROS peers ignore them, the Jupyter panels use them. A plain
dict (``Annotated[int, {"min": 0, "unit": "mA"}]``) and annotated-types style objects with
``ge``/``le``/``gt``/``lt`` attributes work too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Choices", "Doc", "PublishedBy", "Range", "Unit", "metadata_fields"]


@dataclass(frozen=True)
class Range:
    """Closed interval of allowed values; either bound may be None."""

    min: float | None = None
    max: float | None = None
    step: float | None = None


@dataclass(frozen=True)
class Unit:
    """Physical unit shown next to the value, e.g. ``Unit("mW")``."""

    unit: str


@dataclass(frozen=True)
class Doc:
    """One-line documentation of an attribute or parameter."""

    text: str


@dataclass(frozen=True)
class PublishedBy:
    """The event that carries this attribute's new value as its payload, e.g.
    ``temperature: Annotated[float, Unit("K"), PublishedBy("temperature_changed")]``.

    Tools (the Jupyter panels) follow that event instead of polling the attribute. Without it they
    pair an attribute ``x`` with an event named ``x_changed`` by convention
    (``heros.tools.value_event``).
    """

    event: str


class Choices:
    """The allowed values, e.g. ``Choices(532, 633, 780)``."""

    def __init__(self, *values: Any) -> None:
        self.values = list(values[0]) if len(values) == 1 and isinstance(values[0], (list, tuple, set, frozenset)) else list(values)

    def __repr__(self) -> str:
        return f"Choices({', '.join(map(repr, self.values))})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Choices) and other.values == self.values

    def __hash__(self) -> int:
        return hash(tuple(map(repr, self.values)))


_KNOWN = ("min", "max", "step", "unit", "choices", "doc", "event")


def metadata_fields(items: tuple[Any, ...] | list[Any]) -> dict[str, Any]:
    """Capability fields from ``Annotated`` metadata items; unknown items are ignored."""
    out: dict[str, Any] = {}
    for item in items:
        if isinstance(item, Range):
            for key in ("min", "max", "step"):
                if getattr(item, key) is not None:
                    out[key] = getattr(item, key)
        elif isinstance(item, Unit):
            out["unit"] = item.unit
        elif isinstance(item, Doc):
            out["doc"] = item.text
        elif isinstance(item, PublishedBy):
            out["event"] = item.event
        elif isinstance(item, Choices):
            out["choices"] = list(item.values)
        elif isinstance(item, dict):
            out.update({k: v for k, v in item.items() if k in _KNOWN})
        else:  # annotated-types style: Ge(0), Le(10), Interval(ge=0, le=10)
            for attr, key in (("ge", "min"), ("gt", "min"), ("le", "max"), ("lt", "max")):
                value = getattr(item, attr, None)
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    out[key] = value
    return out
