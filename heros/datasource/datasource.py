"""Datasource HEROs: HEROs that publish readings on the event ``observable_data``, and the observer that collects them.

``LocalDatasourceHERO`` publishes what its code hands to ``observable_data(data)``;
``PolledLocalDatasourceHERO`` reads itself every ``interval`` seconds. Either way the reading is
normalised into a ``DatasourceReturnSet`` and processed by the ``observables`` definitions
(``heros.datasource.observables``) before it is published. ``DatasourceObserver`` receives the
readings of every datasource of a realm (ours and upstream HEROS ones) as ``DatasourceReturnSet``s,
without building proxies. Same API as upstream HEROS (``../shared/SPEC.md`` section 10).
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from .. import keys
from ..event import event
from ..inspect import local_only
from ..local import LocalHERO
from ..observer import EventObserver
from ..zenoh import ZenohSessionManager
from .observables import ObservableProcessor
from .types import DatasourceReturnSet

__all__ = ["DatasourceObserver", "LocalDatasourceHERO", "PolledLocalDatasourceHERO"]

log = logging.getLogger("heros.datasource")

#: The event every datasource publishes its readings on.
EVENT_NAME = "observable_data"
#: Shortest polling interval honoured, in seconds (a smaller ``datasource_interval`` is raised to it).
MIN_INTERVAL = 0.001


class LocalDatasourceHERO(LocalHERO):
    """A HERO that publishes readings on its event ``observable_data``, for whoever collects them.

    Call ``self.observable_data(data)`` whenever the device has something new: ``data`` in any
    form ``DatasourceReturnSet.from_data`` knows (a number, ``(value, unit)``, a list, a dict of
    id -> value or ``(value, unit)``). It is normalised, processed by the ``observables``
    definitions and published; the call returns the ``DatasourceReturnSet``.

    Parameters
    ----------
    *args, **kwargs
        As for ``LocalHERO`` (``name``, ``realm``, ``tags``, ...).
    observables
        Observable id -> definition: ``unit``, ``conversion`` (an expression of ``x``, never
        evaluated as Python, or a callable), ``boundaries`` (see ``heros.datasource.observables``).
        Defaults to the class attribute ``_observables`` if there is one.

    Raises
    ------
    ValueError
        If a definition is malformed or a conversion is not allowed (before anything is served).
    """

    def __init__(self, *args: Any, observables: Mapping[Any, Any] | None = None, **kwargs: Any) -> None:
        self._observables: dict[Any, Any] = dict(observables or getattr(self, "_observables", None) or {})
        # built (and every conversion compiled) before the HERO goes on the network: a bad
        # definition refuses the HERO instead of failing on each reading
        self.observable_processor = ObservableProcessor(self._observables)
        LocalHERO.__init__(self, *args, **kwargs)

    def _process_data(self, data: Any) -> DatasourceReturnSet:
        """Normalise ``data`` and apply the observables' definitions."""
        return self.observable_processor(DatasourceReturnSet.from_data(data))

    @event
    def observable_data(self, data: Any) -> DatasourceReturnSet:
        """Publish a reading: ``data`` normalised into a ``DatasourceReturnSet`` and processed."""
        return self._process_data(data)


class PolledLocalDatasourceHERO(LocalDatasourceHERO):
    """A datasource HERO that reads itself every ``interval`` seconds and publishes the readings.

    Each poll calls ``observable_data()``, which publishes what ``_observable_data()`` returns.
    The default ``_observable_data`` reads, for each observable, the attribute or method named by
    its ``target`` (default: the observable's id) once per poll, takes item ``index`` of it if
    given, and pairs it with ``raw_unit`` (default ``""``). Override it to read the device
    yourself. A poll that fails is logged and the next one comes on time; polling stops when the
    HERO is destroyed. The first poll comes at once, as the HERO starts serving: a subclass sets
    up what its polls read before it calls ``super().__init__``.

    Parameters
    ----------
    *args, **kwargs
        As for ``LocalDatasourceHERO`` (``name``, ``realm``, ``observables``, ...).
    loop
        The asyncio loop whose thread polls (as upstream HEROS and BOSS do: the poll runs on it, so
        it must be running or started later). If None, the HERO polls on a thread of its own.
    interval
        Seconds between the starts of two polls (the first poll is at once). Polls keep to this
        rate: one that takes longer than ``interval`` makes the next ones skip their turn rather
        than drift. ``datasource_interval`` changes it while polling.

    Raises
    ------
    ValueError
        If ``interval`` is not a positive number, or as ``LocalDatasourceHERO``.
    """

    def __init__(self, *args: Any, loop: asyncio.AbstractEventLoop | None = None, interval: float = 5, **kwargs: Any) -> None:
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not interval > 0 or not math.isfinite(interval):
            raise ValueError(f"interval must be a positive number of seconds, not {interval!r}")
        self._heros_failing: set[str] = set()  # targets whose reading fails (logged once until they work again)
        LocalDatasourceHERO.__init__(self, *args, **kwargs)
        self.datasource_interval = float(interval)
        self._loop = loop
        self._heros_poller = _Poller(self, loop)

    @event
    def observable_data(self) -> DatasourceReturnSet:
        """Poll: read the observables (``_observable_data``) and publish them."""
        return self._process_data(self._observable_data())

    def _observable_data(self) -> Any:
        """What one poll publishes: ``{id: (value, raw_unit)}`` read from each observable's target."""
        readings: dict[Any, tuple[Any, Any]] = {}
        cache: dict[str, Any] = {}  # a method that returns several observables is called once per poll
        for obs_id, definition in self._observables.items():
            definition = definition or {}
            target = str(definition.get("target", obs_id))
            if target not in cache:
                cache[target] = self._heros_read_target(target)
            value = cache[target]
            if "index" in definition and value is not None:
                index = definition["index"]
                try:
                    value = value[index]
                except (KeyError, IndexError, TypeError) as exc:
                    self._heros_report(f"{target}[{index!r}]", f"observable {obs_id!r}: {target!r} has no item {index!r} ({exc})")
                    continue
            readings[obs_id] = (value, definition.get("raw_unit", ""))
        return readings

    def _heros_read_target(self, target: str) -> Any:
        """The value of attribute ``target``, or what method ``target`` returns; None if that fails."""
        try:
            member = getattr(self, target)
            value = member() if callable(member) else member
        except Exception as exc:  # noqa: BLE001 - one failing target must not stop the others
            self._heros_report(target, f"reading {target!r} failed: {type(exc).__name__}: {exc}")
            return None
        if target in self._heros_failing:
            self._heros_failing.discard(target)
            log.info("datasource %r: reading %r works again", self._name, target)
        return value

    def _heros_report(self, target: str, message: str) -> None:
        """Log a failed reading: a warning the first time, then quietly until it works again."""
        level = logging.DEBUG if target in self._heros_failing else logging.WARNING
        self._heros_failing.add(target)
        log.log(level, "datasource %r: %s", self._name, message)

    @local_only
    def _destroy_hero(self) -> None:
        poller = self.__dict__.get("_heros_poller")
        if poller is not None:
            poller.stop()
        super()._destroy_hero()


class _Poller:
    """Calls ``observable_data()`` of a polled datasource at its interval, on an asyncio loop or a
    thread of its own. It holds the HERO weakly between polls, so it never keeps one alive."""

    def __init__(self, hero: PolledLocalDatasourceHERO, loop: asyncio.AbstractEventLoop | None) -> None:
        self._hero = weakref.ref(hero)
        self._name = hero._name
        self._interval = hero.datasource_interval
        self._stopped = threading.Event()
        self._loop = loop
        self._future: Any = None
        if loop is None:
            threading.Thread(target=self._run_thread, name=f"heros-poll-{hero._name}", daemon=True).start()
        else:
            self._future = asyncio.run_coroutine_threadsafe(self._run_async(), loop)

    def _poll(self) -> float | None:
        """Poll once; the interval to the next poll, or None when polling is over."""
        hero = self._hero()
        if hero is None or self._stopped.is_set() or hero._hero_destroyed:
            return None
        try:
            hero.observable_data()
        except Exception:  # a failed poll is logged; the next one comes on time
            log.exception("datasource %r: a poll failed; polling goes on", self._name)
        interval = getattr(hero, "datasource_interval", None)
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not 0 < interval < math.inf:
            return self._interval  # set to nonsense while polling: the interval it was built with
        return max(float(interval), MIN_INTERVAL)

    @staticmethod
    def _next(planned: float, interval: float) -> float:
        """When the poll after the one planned at ``planned`` is due (turns that passed are skipped)."""
        due = planned + interval
        late = time.monotonic() - due
        if late > 0:
            due += math.ceil(late / interval) * interval
        return due

    def _run_thread(self) -> None:
        due = time.monotonic()
        while True:
            interval = self._poll()
            if interval is None:
                return
            due = self._next(due, interval)
            if self._stopped.wait(max(due - time.monotonic(), 0.0)):
                return

    async def _run_async(self) -> None:
        due = time.monotonic()
        while True:
            interval = self._poll()
            if interval is None:
                return
            due = self._next(due, interval)
            await asyncio.sleep(max(due - time.monotonic(), 0.0))

    def stop(self) -> None:
        """No poll starts after this returns (one in progress finishes, and no longer publishes)."""
        self._stopped.set()
        if self._future is not None and self._loop is not None and not self._loop.is_closed():
            self._future.cancel()  # wakes the task from its sleep on the loop's thread


class DatasourceObserver(EventObserver):
    """Receives the readings of every datasource HERO matching ``object_selector``, without proxies.

    Callbacks are called as ``func(hero_name, readings)`` with a ``DatasourceReturnSet``, in
    order, off zenoh's threads; datasources of ours and upstream HEROS ones alike. A publication
    that is not a list of readings is logged (once per HERO) and skipped.

    Parameters
    ----------
    object_selector
        A HERO name or a zenoh wildcard (``*``, the default: every HERO of the realm).
    realm, session_manager
        As for every HEROS object.
    """

    def __init__(self, object_selector: str = "*", *, realm: str = "heros", session_manager: ZenohSessionManager | None = None) -> None:
        self._heros_refused: set[str] = set()  # HEROs whose publications were not readings (logged once)
        EventObserver.__init__(self, object_selector, EVENT_NAME, realm=realm, session_manager=session_manager)

    def _handle_event(self, key: str, data: Any) -> None:
        try:
            if not isinstance(data, (list, tuple)):
                raise TypeError(f"expected a list of readings, got {type(data).__name__}")
            readings = DatasourceReturnSet(data)
        except (TypeError, ValueError) as exc:
            name = keys.name_from_key(key, self._realm) or key
            level = logging.DEBUG if name in self._heros_refused else logging.WARNING
            self._heros_refused.add(name)
            log.log(level, "DatasourceObserver: %s from HERO %r is not a DatasourceReturnSet (%s): %.200r", EVENT_NAME, name, exc, data)
            return
        super()._handle_event(key, readings)

    def register_observable_data_callback(self, func: Callable[[str, DatasourceReturnSet], Any]) -> str | bool:
        """Call ``func(hero_name, readings)`` for each publication (``register_callback`` by upstream's other name)."""
        return self.register_callback(func)
