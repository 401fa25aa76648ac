"""Observables: what a datasource does to each reading before it publishes it (unit, conversion, boundaries).

A datasource's ``observables`` maps a reading's id to its definition, as upstream HEROS and BOSS
documents write them::

    {"T1": {"unit": "K", "conversion": "x + 273.15", "boundaries": [[0, 300], [300, 350]],
            "target": "read_all", "index": 0, "raw_unit": "degC"}}

``conversion`` (an expression of the raw value ``x``, see ``heros.datasource.expression``, or a
Python callable) fills ``value`` and sets ``calibrated``; ``unit`` is the calibrated unit;
``boundaries`` gives ``inbound``, the index of the first ``[low, high]`` range holding the value
(the number of ranges if none does). ``target``, ``index`` and ``raw_unit`` tell a polled
datasource where to read the observable. Definitions are checked, and conversions compiled, when
the ``ObservableProcessor`` is built: a mistake is a ``ValueError`` naming the observable.
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .expression import compile_expression
from .types import DatasourceReturnSet, DatasourceReturnValue

__all__ = ["BoundaryChecker", "Converter", "Observable", "ObservableProcessor", "lambdify"]

log = logging.getLogger("heros.datasource")

#: The keys an observable's definition may have; others are kept in ``definition`` and ignored.
KNOWN_KEYS = ("unit", "conversion", "boundaries", "target", "index", "raw_unit")


def lambdify(expression: str, globals_dict: Mapping[str, Any] | None = None) -> Callable[[Any], Any]:
    """A function of ``x`` from a conversion expression (upstream's name for it).

    Unlike upstream, which ``eval``s the text (and returns None when that fails), the text is
    parsed and checked (``heros.datasource.expression``); anything outside the grammar raises
    ``ValueError``. ``globals_dict`` may add functions (callables) and constants (numbers) by name.
    """
    functions: dict[str, Callable[..., Any]] = {}
    constants: dict[str, float] = {}
    for name, value in (globals_dict or {}).items():
        if callable(value):
            functions[name] = value
        elif isinstance(value, numbers.Real) and not isinstance(value, bool):
            constants[name] = float(value)
        else:
            raise ValueError(f"lambdify: {name!r} in globals_dict must be a function or a number, not {type(value).__name__}")
    return compile_expression(expression, functions=functions, constants=constants)


def _is_bound(value: Any) -> bool:
    return value is None or (isinstance(value, numbers.Real) and not isinstance(value, bool))


class BoundaryChecker:
    """Sets ``inbound`` of a reading: the index of the first ``[low, high]`` range holding its value.

    A reading whose value lies in no range, or cannot be compared (None, text, an array), gets
    ``len(boundaries)``; with no boundaries ``inbound`` stays as it is (-1). ``None`` as a bound
    leaves that side open.
    """

    def __init__(self, boundaries: Iterable[Any] | None, what: str = "boundaries") -> None:
        ranges: list[tuple[Any, Any]] = []
        if boundaries is not None:
            if not isinstance(boundaries, (list, tuple)):
                raise ValueError(f"{what} must be a list of [low, high] pairs such as [[0, 10], [10, 20]], not {boundaries!r:.80}")
            for pair in boundaries:
                if not isinstance(pair, (list, tuple)) or len(pair) != 2 or not all(_is_bound(b) for b in pair):
                    raise ValueError(f"{what} must be a list of [low, high] pairs of numbers (or null for an open side), "
                                     f"such as [[0, 10], [10, 20]]; {pair!r:.60} is not one")
                ranges.append((pair[0], pair[1]))
        self.boundaries = ranges

    def _check_bounds(self, value: Any) -> int:
        try:
            for i, (low, high) in enumerate(self.boundaries):
                if (low is None or value >= low) and (high is None or value <= high):
                    return i
        except Exception:  # noqa: BLE001 - a value that does not compare is in no range
            pass
        return len(self.boundaries)

    def __call__(self, return_value: DatasourceReturnValue) -> DatasourceReturnValue:
        if self.boundaries:
            return_value.inbound = self._check_bounds(return_value.value)
        return return_value


class Converter:
    """Sets ``unit`` of a reading and, with a conversion, ``value`` (then ``calibrated`` is true).

    Parameters
    ----------
    conversion_code
        An expression of ``x`` (checked and compiled here), a Python callable, or None.
    unit
        The calibrated unit (the raw unit if None).
    what
        Names the conversion in messages.

    A conversion that raises on a reading is logged (once until it works again) and leaves that
    reading uncalibrated; a reading without a raw value (None: it could not be read) is not
    converted.
    """

    def __init__(self, conversion_code: str | Callable[[Any], Any] | None, unit: str | None = None, what: str = "conversion") -> None:
        self._conversion_code = conversion_code
        self._convert: Callable[[Any], Any] | None
        if conversion_code is None or callable(conversion_code):
            self._convert = conversion_code
        elif isinstance(conversion_code, str):
            self._convert = compile_expression(conversion_code, what)
        else:
            raise ValueError(f"{what} must be an expression text such as '2 * x + 1' or a callable, "
                             f"not {type(conversion_code).__name__}")
        if unit is not None and not isinstance(unit, str):
            raise ValueError(f"the unit of a {what} must be text, not {type(unit).__name__}")
        self._unit = unit
        self._what = what
        self._failing = False

    def __call__(self, return_value: DatasourceReturnValue) -> DatasourceReturnValue:
        return_value.unit = self._unit if self._unit is not None else return_value.raw_unit
        if self._convert is not None and return_value.raw_value is not None:
            try:
                return_value.value = self._convert(return_value.raw_value)
            except Exception as exc:  # noqa: BLE001 - one bad reading must not stop the others
                level = logging.DEBUG if self._failing else logging.WARNING
                self._failing = True
                log.log(level, "%s failed on %r (%s: %s); the reading is published uncalibrated", self._what,
                        return_value.raw_value, type(exc).__name__, exc)
                return return_value
            return_value["calibrated"] = True
            self._failing = False
        return return_value


class Observable:
    """One observable: its id, its definition, and what it does to a reading of that id."""

    def __init__(self, id: Any, definition: Mapping[str, Any] | None) -> None:
        what = f"observable {id!r}"
        if definition is None:
            definition = {}
        if not isinstance(definition, Mapping):
            raise ValueError(f"{what}: its definition must be an object (unit, conversion, boundaries, ...), "
                             f"not {type(definition).__name__}")
        self._id = id
        self.definition = dict(definition)
        for key in ("unit", "target", "raw_unit"):
            if definition.get(key) is not None and not isinstance(definition[key], str):
                raise ValueError(f"{what}: {key!r} must be text, not {type(definition[key]).__name__}")
        self._boundary_checker = BoundaryChecker(definition.get("boundaries"), f"boundaries of {what}")
        self._converter = Converter(definition.get("conversion"), definition.get("unit"), f"conversion of {what}")

    @property
    def id(self) -> Any:
        """The id of the readings it applies to."""
        return self._id

    def process(self, return_value: DatasourceReturnValue) -> DatasourceReturnValue:
        """Convert the reading, then check its boundaries (on the converted value)."""
        return self._boundary_checker(self._converter(return_value))


class ObservableProcessor:
    """Applies the definitions of ``observables`` to the readings of a set with those ids.

    Parameters
    ----------
    obs_def
        Observable id -> definition (see the module's docstring).

    Raises
    ------
    ValueError
        If a definition is malformed or a conversion is not allowed.
    """

    def __init__(self, obs_def: Mapping[Any, Any] | None) -> None:
        if obs_def is None:
            obs_def = {}
        if not isinstance(obs_def, Mapping):
            raise ValueError(f"observables must be an object of id -> definition, not {type(obs_def).__name__}")
        self.observables = [Observable(id_, definition) for id_, definition in obs_def.items()]
        self.observables_ids = [obs.id for obs in self.observables]
        self._by_id = {obs.id: obs for obs in self.observables}

    def __call__(self, datasource_return_set: DatasourceReturnSet) -> DatasourceReturnSet:
        for return_value in datasource_return_set:
            try:
                obs = self._by_id.get(return_value.id)
            except TypeError:  # an id that cannot be a key (a list) has no definition
                continue
            if obs is not None:
                obs.process(return_value)
        return datasource_return_set
