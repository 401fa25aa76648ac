"""What datasources publish: ``DatasourceReturnValue`` (one reading) and ``DatasourceReturnSet`` (a tuple of them).

A value is a dict with the keys ``id``, ``time``, ``value``, ``unit``, ``raw_value``, ``raw_unit``,
``inbound``, ``calibrated`` and any extras, so that it travels as a plain map in either codec.
``DatasourceReturnSet.from_data`` turns whatever a datasource returns (a number, a list, a dict,
``(value, unit)`` pairs) into a set, as upstream HEROS does (``../shared/SPEC.md`` section 10).
"""

from __future__ import annotations

import time as _time
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["DatasourceReturnSet", "DatasourceReturnValue", "unit_text"]


def unit_text(unit: Any) -> str | None:
    """A unit as text: bytes are decoded, None stays None (upstream turns it into the text ``"None"``)."""
    if unit is None or isinstance(unit, str):
        return unit
    if isinstance(unit, (bytes, bytearray)):
        return bytes(unit).decode(errors="replace")
    return str(unit)


class DatasourceReturnValue(dict[str, Any]):
    """One reading of a datasource: a dict with properties for its well-known keys.

    ``value`` and ``unit`` give the calibrated fields when ``calibrated`` is true (a conversion
    ran), otherwise the raw ones; the setters write the calibrated fields.

    Parameters
    ----------
    id
        Which observable this is (a dict key of the datasource's data, or ``"0"``, ``"1"``, ...).
    time
        When it was read, in seconds since the epoch (now if None).
    value, unit
        The calibrated value and its unit.
    raw_value, raw_unit
        The value as read and its unit.
    inbound
        Index of the first boundary range that holds the value, the number of ranges if none
        does, -1 if the observable has no boundaries.
    calibrated
        Whether ``value`` holds a converted value.
    **extras
        Further keys, kept as they are.
    """

    def __init__(
        self,
        id: Any = None,
        time: float | None = None,
        value: Any = None,
        unit: Any = None,
        raw_value: Any = None,
        raw_unit: Any = None,
        inbound: int = -1,
        calibrated: bool = False,
        **extras: Any,
    ) -> None:
        super().__init__(extras)
        self.update(
            id=id,
            time=_time.time() if time is None else time,
            value=value,
            unit=unit_text(unit),
            raw_value=raw_value,
            raw_unit=unit_text(raw_unit),
            inbound=inbound,
            calibrated=calibrated,
        )

    @property
    def id(self) -> Any:
        """Which observable this is."""
        return self.get("id")

    @property
    def time(self) -> float:
        """When it was read (seconds since the epoch)."""
        return self.get("time", 0)  # type: ignore[no-any-return]

    @property
    def raw_value(self) -> Any:
        """The value as read."""
        return self.get("raw_value")

    @raw_value.setter
    def raw_value(self, value: Any) -> None:
        self["raw_value"] = value

    @property
    def raw_unit(self) -> str | None:
        """The unit of the value as read."""
        return self.get("raw_unit")

    @raw_unit.setter
    def raw_unit(self, value: str | None) -> None:
        self["raw_unit"] = value

    @property
    def value(self) -> Any:
        """The calibrated value if a conversion ran, else the raw value."""
        return self.get("value") if self.get("calibrated") else self.get("raw_value")

    @value.setter
    def value(self, value: Any) -> None:
        self["value"] = value

    @property
    def unit(self) -> str | None:
        """The calibrated unit if a conversion ran, else the raw unit."""
        return self.get("unit") if self.get("calibrated") else self.get("raw_unit")

    @unit.setter
    def unit(self, value: str | None) -> None:
        self["unit"] = value

    @property
    def inbound(self) -> int:
        """Boundary level: -1 unbounded, else the index of the first range holding the value (0 = fine)."""
        return self.get("inbound", -1)  # type: ignore[no-any-return]

    @inbound.setter
    def inbound(self, value: int) -> None:
        self["inbound"] = value

    @property
    def calibrated(self) -> bool:
        """Whether ``value`` holds a converted value."""
        return bool(self.get("calibrated"))

    def __str__(self) -> str:
        # upstream's __str__ raises (it %-formats an f-string); this is what it meant to print
        stamp = f"{self.time:.3f}" if isinstance(self.time, (int, float)) else str(self.time)
        return f"{stamp}: {self.value} {self.unit} (inbound={self.inbound})"

    def __repr__(self) -> str:
        return f"DatasourceReturnValue({dict.__repr__(self)})"


class DatasourceReturnSet(tuple[DatasourceReturnValue, ...]):
    """The readings a datasource published at once: a tuple of ``DatasourceReturnValue``.

    Items that are plain mappings (as they arrive from the network) become
    ``DatasourceReturnValue``s. On the wire a set is a list of maps, in either codec, which is
    how upstream HEROS peers send and expect it.
    """

    def __new__(cls, values: Iterable[Mapping[str, Any]] = ()) -> DatasourceReturnSet:
        items = []
        for value in values:
            if isinstance(value, DatasourceReturnValue):
                items.append(value)
            elif isinstance(value, Mapping):
                items.append(DatasourceReturnValue(**value))
            else:
                raise TypeError(f"a DatasourceReturnSet holds readings (mappings), not {type(value).__name__} ({value!r:.60})")
        return super().__new__(cls, items)

    def _heros_value(self) -> list[dict[str, Any]]:
        """What the codecs send: a list of plain dicts."""
        return [dict(value) for value in self]

    @classmethod
    def from_data(cls, data: Any) -> DatasourceReturnSet:
        """A set from what a datasource returned, guessing its form.

        * ``[v0, v1, ...]``: raw values with ids ``"0"``, ``"1"``, ...
        * ``[(v0, unit0), (v1, unit1), ...]``: (raw value, raw unit) pairs with ids ``"0"``, ...
        * ``{id: v, ...}`` or ``{id: (v, unit), ...}``: by id, pairs or plain values mixed
        * ``(v, unit)``: one value with id ``"0"``
        * anything else: one raw value with id ``"0"``

        A pair is a list or tuple of two items whose second is a unit: text, bytes or None.
        A ``DatasourceReturnValue``, a set, or a list of ``DatasourceReturnValue`` is taken as it is
        (the values are copied).
        """
        now = _time.time()
        if isinstance(data, DatasourceReturnValue):  # one reading made by the caller (upstream: each key a reading)
            return cls([DatasourceReturnValue(**data)])
        if isinstance(data, DatasourceReturnSet) or (
            isinstance(data, (list, tuple)) and data and all(isinstance(d, DatasourceReturnValue) for d in data)
        ):
            return cls(DatasourceReturnValue(**d) for d in data)
        if isinstance(data, list):
            if data and all(_is_pair(d) for d in data):
                return cls(DatasourceReturnValue(id=str(i), time=now, raw_value=v, raw_unit=u) for i, (v, u) in enumerate(data))
            return cls(DatasourceReturnValue(id=str(i), time=now, raw_value=v) for i, v in enumerate(data))
        if isinstance(data, Mapping):
            return cls(
                DatasourceReturnValue(id=key, time=now, raw_value=d[0], raw_unit=d[1]) if _is_pair(d)
                else DatasourceReturnValue(id=key, time=now, raw_value=d)
                for key, d in data.items()
            )
        if _is_pair(data):
            return cls([DatasourceReturnValue(id="0", time=now, raw_value=data[0], raw_unit=data[1])])
        return cls([DatasourceReturnValue(id="0", time=now, raw_value=data)])

    def __repr__(self) -> str:
        return f"DatasourceReturnSet({list(self)!r})"


def _is_pair(item: Any) -> bool:
    """Whether ``item`` is a (value, unit) pair: two items, the second text, bytes or None.

    Upstream asks, in a list, that the first item is a float (``[(1, "V")]`` holds no pair there),
    and takes any two items in a dict (``{"xy": (1.0, 2.0)}`` becomes 1.0 with the unit "2.0"):
    here the unit is what tells a pair from two values, wherever it is.
    """
    return isinstance(item, (list, tuple)) and len(item) == 2 and (item[1] is None or isinstance(item[1], (str, bytes)))

