"""Datasources in mixed labs: our datasource HEROs and upstream HEROS 2026.2.2 ones, observed from either side.

Upstream runs in its own cached virtualenv (``tests/upstream.py``), in processes that evaluate
what the tests ask of them (``tests/upstream_peer.py``, whose ``UpDatasource`` and ``UpPolled``
are upstream datasource HEROs). Each test has its realm and its upstream process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from heros import (
    DatasourceObserver,
    DatasourceReturnSet,
    DatasourceReturnValue,
    LocalDatasourceHERO,
    PolledLocalDatasourceHERO,
    RemoteHERO,
)

# Upstream's start-up and thread model make these tests slower than the rest; keep each bounded.
pytestmark = pytest.mark.timeout(240)


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, pause: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(pause)


class Readings:
    """What our DatasourceObserver received: (hero name, readings), in order."""

    def __init__(self) -> None:
        self.items: list[tuple[str, Any]] = []
        self.lock = threading.Lock()

    def __call__(self, name: str, readings: Any) -> None:
        with self.lock:
            self.items.append((name, readings))

    def of(self, name: str) -> list[Any]:
        with self.lock:
            return [r for n, r in self.items if n == name]


def fields(readings: Any) -> list[tuple[Any, ...]]:
    return [(r.id, r.value, r.unit, r.raw_value, r.raw_unit, r.inbound, r["calibrated"]) for r in readings]


#: What the upstream process reports of each set its observer (or a proxy callback) received.
UPSTREAM_FIELDS = ("[[n, type(s).__name__, sorted({type(v).__name__ for v in s}), "
                   "[(v.id, v.value, v.unit, v.raw_value, v.raw_unit, v.inbound, v['calibrated'], v.time) for v in s]] "
                   "for n, s in got.get()]")


class Thermometer(LocalDatasourceHERO):
    """Ours: publishes when told to."""

    _observables = {"T1": {"unit": "K", "conversion": "x + 273.15", "boundaries": [[0, 300], [300, 350]]}}

    def measure(self, celsius: float) -> None:
        self.observable_data({"T1": (celsius, "degC"), "T2": celsius})


class Gauge(PolledLocalDatasourceHERO):
    """Ours, polled."""

    def read_all(self) -> list[float]:
        return [1.5, 2.5]


def connect_upstream(up: Any, statement: str) -> bool:
    """Run ``statement`` (which makes an upstream proxy) in the upstream process; False if the HERO
    was not found (yet), any other error raises."""
    from upstream import UpstreamError

    try:
        up.exec(statement)
    except UpstreamError as exc:
        if exc.type != "NameError":
            raise
        return False
    return True


def test_our_datasource_readings_reach_upstreams_observer_and_proxies(realm: str, spawn_upstream: Any) -> None:
    up = spawn_upstream(realm)
    up.exec("got = Collector(); obs = DatasourceObserver('*', realm=realm); obs.register_observable_data_callback(got)")
    with Thermometer("thermo", realm=realm) as thermo:
        # upstream's RemoteHERO looks once: it raises NameError while its session has not heard of the new HERO yet
        assert wait_until(lambda: connect_upstream(up, "thermo = RemoteHERO('thermo', realm=realm)"))
        up.exec("via_proxy = Collector(); thermo.observable_data.connect(via_proxy)")
        # until upstream's subscriptions are in place (the observer's and the proxy's)
        assert wait_until(lambda: (thermo.measure(0.0), up.eval("len(got.get()) > 0 and len(via_proxy.get()) > 0"))[1])
        returned = thermo.observable_data({"T1": (40.0, "degC"), "T2": 7})
        assert wait_until(lambda: up.eval("any(s[0].raw_value == 40.0 for n, s in got.get())"))
        received = [r for r in up.eval(UPSTREAM_FIELDS) if r[3][0][3] == 40.0]
        stamp = returned[0].time
        assert received == [["thermo", "DatasourceReturnSet", ["DatasourceReturnValue"], [
            ("T1", 313.15, "K", 40.0, "degC", 1, True, stamp),
            ("T2", 7, "None", 7, "None", -1, False, stamp),  # upstream's DatasourceReturnValue turns a missing unit into "None"
        ]]]
        # an upstream proxy's callback gets what upstream's own datasources give it: a list of maps
        assert wait_until(lambda: up.eval("[type(v).__name__ for v in via_proxy.get() if v[0]['raw_value'] == 40.0]") == ["list"])
        assert up.eval("[v[0] for v in via_proxy.get() if v[0]['raw_value'] == 40.0]") == [dict(returned[0])]
    up.exec("obs._destroy_hero(); thermo._destroy_hero()")


def test_our_polled_datasource_reaches_upstreams_observer_at_its_interval(realm: str, spawn_upstream: Any) -> None:
    up = spawn_upstream(realm)
    up.exec("got = Collector(); obs = DatasourceObserver('gauge', realm=realm); obs.register_observable_data_callback(got)")
    observables = {"ch0": {"target": "read_all", "index": 0, "raw_unit": "V", "conversion": "x * 1000", "unit": "mV"},
                   "ch1": {"target": "read_all", "index": 1, "raw_unit": "V"}}
    with Gauge("gauge", realm=realm, interval=0.2, observables=observables):
        assert wait_until(lambda: up.eval("len(got.get())") >= 1)
        first = up.eval("len(got.get())")
        started = time.monotonic()
        assert wait_until(lambda: up.eval("len(got.get())") >= first + 5)
        assert time.monotonic() - started >= 4 * 0.2 - 0.1  # five more polls take at least four intervals (less jitter)
        received = up.eval(UPSTREAM_FIELDS)[-1]
        assert received[:3] == ["gauge", "DatasourceReturnSet", ["DatasourceReturnValue"]]
        assert [f[:7] for f in received[3]] == [("ch0", 1500.0, "mV", 1.5, "V", -1, True), ("ch1", 2.5, "V", 2.5, "V", -1, False)]
    up.exec("obs._destroy_hero()")


def test_upstream_datasource_readings_reach_our_observer_and_proxies(realm: str, spawn_upstream: Any) -> None:
    spawn_upstream(realm, "UpDatasource:upds", "UpPolled:uppoll")
    observed = Readings()
    via_proxy: list[Any] = []
    with DatasourceObserver(realm=realm) as observer, RemoteHERO("upds", realm=realm) as upds:
        observer.register_observable_data_callback(observed)
        upds.observable_data.connect(via_proxy.append)
        # upstream's polled datasource, on its asyncio loop
        assert wait_until(lambda: len(observed.of("uppoll")) >= 3)
        polled = observed.of("uppoll")[-1]
        assert type(polled) is DatasourceReturnSet and all(type(r) is DatasourceReturnValue for r in polled)
        assert fields(polled) == [("level", 3.0, "V2", 1.5, "V", -1, True), ("volts", 0.2, "", 0.2, "", -1, False)]
        # upstream's datasource that publishes when told to
        assert wait_until(lambda: (upds.emit({"T": (20.0, "degC"), "x": 1.0}), observed.of("upds") and via_proxy)[1])
        readings = observed.of("upds")[-1]
        assert type(readings) is DatasourceReturnSet
        assert fields(readings) == [("T", 293.15, "K", 20.0, "degC", 0, True), ("x", 1.0, "None", 1.0, "None", -1, False)]
        assert type(via_proxy[-1]) is list and via_proxy[-1][0]["value"] == 293.15
        returned = upds.emit({"T": (350.0, "degC")})  # a method returning upstream's set: a list of maps, as from our HEROs
        assert type(returned) is list and returned[0]["inbound"] == 2 and returned[0]["value"] == pytest.approx(623.15)
        assert wait_until(lambda: any(r[0].raw_value == 350.0 for r in observed.of("upds")))
