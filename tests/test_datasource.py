"""Datasource HEROs: readings normalised, converted and bounded, published, polled, observed, served from BOSS files.

The pure parts (``heros.datasource.types``, ``.observables``, ``.expression``) are tested without
zenoh; the HEROs run in this process on the loopback hub, one realm per test; ``heros serve`` runs
in a subprocess.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cbor2
import numpy as np
import pytest

import heros
from heros import (
    DatasourceObserver,
    DatasourceReturnSet,
    DatasourceReturnValue,
    LocalDatasourceHERO,
    LocalHERO,
    PolledLocalDatasourceHERO,
    RemoteHERO,
    cbor,
    codec,
    event,
)
from heros.datasource.expression import compile_expression
from heros.datasource.observables import ObservableProcessor, lambdify

# --- helpers ------------------------------------------------------------------------------------------


class Readings:
    """Collects what a DatasourceObserver (or any callback) receives; waits with a bound."""

    def __init__(self) -> None:
        self.items: list[tuple[float, Any, Any]] = []
        self.cond = threading.Condition()

    def __call__(self, name: Any, readings: Any = None) -> None:
        with self.cond:
            self.items.append((time.monotonic(), name, readings))
            self.cond.notify_all()

    def wait_for(self, predicate: Callable[[list[tuple[float, Any, Any]]], bool], timeout: float = 20.0) -> list[tuple[float, Any, Any]]:
        with self.cond:
            assert self.cond.wait_for(lambda: predicate(self.items), timeout), f"not within {timeout} s; got {self.items[-3:]}"
            return list(self.items)

    def count(self, name: str | None = None) -> int:
        with self.cond:
            return sum(1 for _, n, _ in self.items if name is None or n == name)


def emit_until_seen(emit: Callable[[], Any], seen: Readings, timeout: float = 20.0) -> None:
    """Emit until a first publication arrives (the subscription needs a moment to be in place)."""
    deadline = time.monotonic() + timeout
    while seen.count() == 0:
        assert time.monotonic() < deadline, "no publication arrived"
        emit()
        with seen.cond:
            seen.cond.wait_for(lambda: bool(seen.items), 0.1)


def fields(readings: Any) -> list[tuple[Any, ...]]:
    """The interesting fields of each reading, in order."""
    return [(r.id, r.value, r.unit, r.raw_value, r.raw_unit, r.inbound, r["calibrated"]) for r in readings]


# --- readings: DatasourceReturnValue and DatasourceReturnSet --------------------------------------------

FORMS = [
    ("numbers", [1.5, 2], [("0", 1.5, None), ("1", 2, None)]),
    ("pairs of floats", [(1.5, "V"), (2.5, "A")], [("0", 1.5, "V"), ("1", 2.5, "A")]),
    ("pairs of ints (upstream: no pairs)", [(1, "V"), [2, "A"]], [("0", 1, "V"), ("1", 2, "A")]),
    ("a list mixing pairs and numbers", [(1.0, "V"), 2.0], [("0", (1.0, "V"), None), ("1", 2.0, None)]),
    ("dict of values", {"a": 1, "b": 2.5}, [("a", 1, None), ("b", 2.5, None)]),
    ("dict of pairs and values", {"a": (1, "K"), "b": [2.0, "mbar"], "c": 3}, [("a", 1, "K"), ("b", 2.0, "mbar"), ("c", 3, None)]),
    ("dict with two numbers (upstream: value and unit '2.0')", {"xy": (1.0, 2.0)}, [("xy", (1.0, 2.0), None)]),
    ("a pair", (3, "mV"), [("0", 3, "mV")]),
    ("a pair with bytes unit", (3, b"mV"), [("0", 3, "mV")]),
    ("a scalar", 5, [("0", 5, None)]),
    ("None", None, [("0", None, None)]),
    ("text", "on", [("0", "on", None)]),
    ("a 3-tuple", (1, 2, 3), [("0", (1, 2, 3), None)]),
    ("an empty list", [], []),
    ("an empty dict", {}, []),
]


@pytest.mark.parametrize(("data", "expected"), [f[1:] for f in FORMS], ids=[f[0] for f in FORMS])
def test_from_data_normalises_every_input_form(data: Any, expected: list[tuple[Any, Any, Any]]) -> None:
    before = time.time()
    readings = DatasourceReturnSet.from_data(data)
    assert type(readings) is DatasourceReturnSet and all(type(r) is DatasourceReturnValue for r in readings)
    assert [(r.id, r.raw_value, r.raw_unit) for r in readings] == expected
    assert all(r.value == r.raw_value and r.unit == r.raw_unit and r.inbound == -1 and r["calibrated"] is False for r in readings)
    assert len({r.time for r in readings}) <= 1 and all(before <= r.time <= time.time() for r in readings)  # one time per reading


def test_a_set_or_a_list_of_values_is_taken_as_it_is() -> None:
    one = DatasourceReturnValue(id="a", raw_value=1, time=5.0)
    assert DatasourceReturnSet.from_data(one) == (one,)  # upstream makes each of its keys a reading
    values = [DatasourceReturnValue(id="a", raw_value=1, time=5.0), DatasourceReturnValue(id="b", raw_value=2, time=6.0, note="x")]
    for data in (values, DatasourceReturnSet(values)):
        readings = DatasourceReturnSet.from_data(data)
        assert readings == tuple(values) and readings[1]["note"] == "x"
        assert readings[0] is not values[0]  # copied: processing never changes the caller's values


def test_return_value_keys_properties_and_text() -> None:
    v = DatasourceReturnValue(id="T1", raw_value=1.5, raw_unit="V", time=3.0, channel=2)
    assert dict(v) == {"channel": 2, "id": "T1", "time": 3.0, "value": None, "unit": None, "raw_value": 1.5, "raw_unit": "V",
                       "inbound": -1, "calibrated": False}
    assert (v.id, v.time, v.value, v.unit, v.raw_value, v.raw_unit, v.inbound, v.calibrated) == ("T1", 3.0, 1.5, "V", 1.5, "V", -1, False)
    v.value, v.unit = 1500.0, "mV"  # the calibrated fields: shown once calibrated
    assert (v.value, v.unit) == (1.5, "V")
    v["calibrated"] = True
    assert (v.value, v.unit, v.raw_value) == (1500.0, "mV", 1.5)
    v.inbound, v.raw_value, v.raw_unit = 2, 2.0, "kV"
    assert (v["inbound"], v["raw_value"], v["raw_unit"]) == (2, 2.0, "kV")
    assert str(v) == "3.000: 1500.0 mV (inbound=2)"  # upstream's __str__ raises (it %-formats an f-string)
    assert repr(v).startswith("DatasourceReturnValue({") and repr(v).endswith("})")
    assert abs(DatasourceReturnValue().time - time.time()) < 5 and DatasourceReturnValue(unit=b"K").unit is None
    assert DatasourceReturnValue(unit=b"K")["unit"] == "K"


def test_a_set_turns_maps_from_the_network_into_values() -> None:
    readings = DatasourceReturnSet([{"id": "a", "raw_value": 1, "time": 2.0}, DatasourceReturnValue(id="b")])
    assert all(type(r) is DatasourceReturnValue for r in readings) and readings[0].value == 1 and readings[0].inbound == -1
    with pytest.raises(TypeError, match="holds readings"):
        DatasourceReturnSet([1.0])


def test_both_codecs_send_a_set_as_a_list_of_plain_maps() -> None:
    readings = ObservableProcessor({"a": {"conversion": "2 * x", "unit": "mV"}})(DatasourceReturnSet.from_data({"a": (np.float32(1.5), "V")}))
    back = codec.decode(*codec.encode(readings))
    assert type(back) is list and type(back[0]) is dict and back[0]["value"] == 3.0 and back[0]["raw_unit"] == "V"
    raw = cbor2.loads(cbor.encode(readings)[0])  # what an upstream peer decodes
    assert type(raw) is list and raw[0]["value"] == 3.0 and raw[0]["calibrated"] is True
    assert DatasourceReturnSet(back) == readings


# --- observables: units, conversions, boundaries --------------------------------------------------------


def process(definitions: dict[str, Any], data: Any) -> DatasourceReturnSet:
    return ObservableProcessor(definitions)(DatasourceReturnSet.from_data(data))


def test_conversion_calibrates_and_unit_names_the_calibrated_value() -> None:
    readings = process({"T": {"conversion": "x + 273.15", "unit": "K"}, "P": {"unit": "mbar"}, "F": {"conversion": lambda x: x / 2}},
                       {"T": (20.0, "degC"), "P": (1.0, "bar"), "F": 8, "other": 1})
    assert fields(readings) == [
        ("T", 293.15, "K", 20.0, "degC", -1, True),
        ("P", 1.0, "bar", 1.0, "bar", -1, False),  # a unit without conversion: stored, but the value is raw (as upstream)
        ("F", 4.0, None, 8, None, -1, True),  # a Python callable is a conversion too
        ("other", 1, None, 1, None, -1, False),  # no definition: untouched
    ]
    assert readings[1]["unit"] == "mbar"


def test_a_conversion_that_fails_leaves_the_reading_uncalibrated_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    processor = ObservableProcessor({"r": {"conversion": "1 / x", "unit": "1/s"}})
    with caplog.at_level(logging.DEBUG, logger="heros.datasource"):
        for value in (0, 0, None, 4):
            readings = processor(DatasourceReturnSet.from_data({"r": value}))
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "conversion of observable 'r' failed on 0 (ZeroDivisionError" in warnings[0].getMessage()
    assert fields(readings) == [("r", 0.25, "1/s", 4, None, -1, True)]
    assert fields(processor(DatasourceReturnSet.from_data({"r": None}))) == [("r", None, None, None, None, -1, False)]


@pytest.mark.parametrize(("value", "inbound"), [(5, 0), (10, 0), (15, 1), (20, 1), (25, 2), (-1, 2), (None, 2), ("text", 2),
                                                (np.arange(3), 2)])
def test_boundaries_give_the_index_of_the_first_range_holding_the_value(value: Any, inbound: int) -> None:
    (reading,) = process({"v": {"boundaries": [[0, 10], [10, 20]]}}, {"v": value})
    assert reading.inbound == inbound


def test_boundaries_check_the_calibrated_value_and_may_be_open() -> None:
    definitions = {"v": {"conversion": "x * 100", "boundaries": [[None, 50], [50, None]]}, "w": {"boundaries": []}}
    assert [r.inbound for r in process(definitions, {"v": 0.4, "w": 1})] == [0, -1]
    assert [r.inbound for r in process(definitions, {"v": 0.6})] == [1]


# --- conversions: a safe grammar, never eval ------------------------------------------------------------

ALLOWED = [
    ("2 * x + 1", 3.0, 7.0),
    ("x ** 2 - x // 2 % 3", 5, 23),
    ("-x + +x", 4, 0),
    ("20 * log10(x / 1e-3)", 1.0, 60.0),
    ("sqrt(x) * pi / e", 4.0, 2 * math.pi / math.e),
    ("hypot(x, 4) + arctan2(0, 1) + power(x, 2)", 3.0, 14.0),
    ("abs(-x) + min(x, 2) + max(x, 2, 7)", 3, 3 + 2 + 7),
    ("exp(log(x)) + sin(0) + cos(0) + tanh(0) + arcsinh(0) + arctanh(0) + log2(8) + exp2(1)", 2.0, 8.0),
    ("0 < x <= 10", 5, True),
    ("x != 3", 3, False),
    ("9 ** 9 ** 9", 0, None),  # computed in floating point: overflows at once instead of taking the process down
]


@pytest.mark.parametrize(("text", "x", "expected"), ALLOWED, ids=[a[0] for a in ALLOWED])
def test_the_conversion_grammar(text: str, x: Any, expected: Any) -> None:
    func = compile_expression(text)
    if expected is None:
        with pytest.raises(OverflowError):
            func(x)
        return
    result = func(x)
    assert result == pytest.approx(expected) and not isinstance(result, np.generic)  # numpy scalars come back as Python numbers


def test_conversions_work_elementwise_on_arrays() -> None:
    assert np.array_equal(compile_expression("2 * x + 1")(np.arange(3)), [1, 3, 5])
    assert np.array_equal(compile_expression("0 < x < 2")(np.arange(3)), [False, True, False])


UNSAFE = [
    ("__import__('os').system('touch /tmp/pwned')", "calling \"__import__('os').system\""),
    ("__import__('os')", "a call of '__import__'"),
    ("open('/etc/passwd')", "a call of 'open'"),
    ("x.__class__.__bases__[0].__subclasses__()", "calling 'x.__class__.__bases__[0].__subclasses__'"),
    ("x.real", "attribute access 'x.real'"),
    ("x[0]", "a subscript 'x[0]'"),
    ("(lambda: 1)()", "calling 'lambda: 1'"),
    ("lambda y: y", "a lambda 'lambda y: y'"),
    ("[y for y in range(10)]", "a comprehension '[y for y in range(10)]'"),
    ("sum(y for y in x)", "a call of 'sum'"),
    ("{y: 1 for y in x}", "a comprehension"),
    ("y + 1", "the name 'y'"),
    ("exec", "the name 'exec'"),
    ("'a' * 10", "the constant \"'a'\""),
    ("True", "the constant 'True'"),
    ("1j * x", "the constant '1j'"),
    ("x if x > 0 else -x", "a conditional expression"),
    ("x and 1", "the operator 'and'"),
    ("x << 40", "the operator '<<'"),
    ("x in [1]", "the operator 'in'"),
    ("(y := 2)", "an assignment expression"),
    ("f'{x}'", "an f-string"),
    ("[x, x]", "a list"),
    ("sin(*x)", "a starred argument"),
    ("sin(x=1)", "the keyword argument 'x=1'"),
    ("sin(x, 2)", "sin() takes 1 argument, 'sin(x, 2)' gives 2"),
    ("x; import os", "is not a valid expression"),
    ("", "is not a valid expression"),
    ("-" * 100 + "x", "nests operations more than"),
    ("x + 1" * 300, "characters long"),
]


@pytest.mark.parametrize(("text", "message"), UNSAFE, ids=[u[0][:40] for u in UNSAFE])
def test_unsafe_conversions_are_refused_when_the_datasource_is_built(text: str, message: str, realm: str) -> None:
    with pytest.raises(ValueError) as info:
        LocalDatasourceHERO("ds", realm=realm, observables={"T1": {"conversion": text}})
    text_of_error = str(info.value)
    assert message in text_of_error and "observable 'T1'" in text_of_error, text_of_error
    assert text[:40] in text_of_error  # the expression is named


def test_a_refused_datasource_never_went_on_the_network(realm: str) -> None:
    with pytest.raises(ValueError, match="a call of '__import__'"):
        LocalDatasourceHERO("ds", realm=realm, observables={"T1": {"conversion": "__import__('os')"}})
    with heros.HEROObserver(realm=realm) as observer:
        assert "ds" not in observer.known_objects
    with LocalDatasourceHERO("ds", realm=realm):  # the name is free
        pass


MALFORMED = [
    ({"T": {"boundaries": [0, 10]}}, "boundaries of observable 'T' must be a list of [low, high] pairs"),
    ({"T": {"boundaries": [[0, "10"]]}}, "[0, '10'] is not one"),
    ({"T": {"boundaries": "0..10"}}, "boundaries of observable 'T' must be a list"),
    ({"T": {"conversion": 2}}, "conversion of observable 'T' must be an expression text"),
    ({"T": {"unit": 1}}, "observable 'T': 'unit' must be text"),
    ({"T": {"raw_unit": ["V"]}}, "observable 'T': 'raw_unit' must be text"),
    ({"T": {"target": 3}}, "observable 'T': 'target' must be text"),
    ({"T": "x * 2"}, "observable 'T': its definition must be an object"),
    (["T"], "observables must be an object"),
]


@pytest.mark.parametrize(("definitions", "message"), MALFORMED, ids=[m[1][:40] for m in MALFORMED])
def test_malformed_observables_are_refused(definitions: Any, message: str) -> None:
    with pytest.raises(ValueError) as info:
        ObservableProcessor(definitions)
    assert message in str(info.value)


def test_lambdify_keeps_upstreams_name_with_the_safe_grammar() -> None:
    assert lambdify("2 * x")(4) == 8
    assert lambdify("gain * double(x)", {"gain": 3, "double": lambda v: 2 * v})(1) == 6
    with pytest.raises(ValueError, match="a call of '__import__'"):
        lambdify("__import__('os')")


# --- LocalDatasourceHERO ---------------------------------------------------------------------------------


class Thermometer(LocalDatasourceHERO):
    """A datasource that publishes when told to (as one reacting to its device's own events)."""

    _observables = {"T1": {"unit": "K", "conversion": "x + 273.15", "boundaries": [[0, 300], [300, 350]]}}

    def measure(self, celsius: float) -> None:
        self.observable_data({"T1": (celsius, "degC"), "T2": celsius})


def test_local_datasource_publishes_processed_readings(realm: str) -> None:
    observed, local, remote = Readings(), Readings(), Readings()
    with Thermometer("thermo", realm=realm) as thermo, DatasourceObserver(realm=realm) as observer, \
            RemoteHERO("thermo", realm=realm) as proxy:
        assert observer.register_observable_data_callback(observed) not in (False, None)
        assert observer.register_observable_data_callback(observed) is False  # already registered
        thermo.observable_data.connect(local)
        proxy.observable_data.connect(remote)
        emit_until_seen(lambda: thermo.measure(0.0), observed)
        emit_until_seen(lambda: thermo.measure(0.0), remote)
        returned = thermo.observable_data({"T1": (40.0, "degC"), "T2": 7})
        assert type(returned) is DatasourceReturnSet
        assert fields(returned) == [("T1", 313.15, "K", 40.0, "degC", 1, True), ("T2", 7, None, 7, None, -1, False)]
        items = observed.wait_for(lambda items: any(r[0].raw_value == 40.0 for _, _, r in items))
        name, readings = next((n, r) for _, n, r in items if r[0].raw_value == 40.0)
        assert name == "thermo" and type(readings) is DatasourceReturnSet and all(type(r) is DatasourceReturnValue for r in readings)
        assert readings == returned  # every key, time included, as published
        local_items = local.wait_for(lambda items: any(n is returned for _, n, _ in items))
        assert any(type(n) is DatasourceReturnSet for _, n, _ in local_items)  # a local callback gets the set itself
        remote_items = remote.wait_for(lambda items: any(isinstance(n, list) and n[0]["raw_value"] == 40.0 for _, n, _ in items))
        assert all(type(n) is list and all(type(d) is dict for d in n) for _, n, _ in remote_items)  # a proxy's: plain maps
        caps = {c.name: c.flavor for c in proxy._remote_capabilities if not c.name.startswith("_")}
        assert caps == {"observable_data": "event", "measure": "method"}


class NotADatasource(LocalHERO):
    """Has an ``observable_data`` event too, but publishes plain numbers."""

    @event
    def observable_data(self, value: float) -> float:
        return value


def test_the_observer_skips_publications_that_are_not_readings(realm: str, caplog: pytest.LogCaptureFixture) -> None:
    observed = Readings()
    with caplog.at_level(logging.DEBUG, logger="heros.datasource"), NotADatasource("liar", realm=realm) as liar, \
            Thermometer("thermo", realm=realm) as thermo, DatasourceObserver("*", realm=realm) as observer:
        observer.register_callback(observed)
        deadline = time.monotonic() + 20
        while not any("'liar'" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline, "the observer never saw the bad publication"
            liar.observable_data(1.5)
            time.sleep(0.05)
        for _ in range(3):
            liar.observable_data(2.5)
        emit_until_seen(lambda: thermo.measure(10.0), observed)
        assert {n for _, n, _ in observed.items} == {"thermo"}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "'liar'" in r.getMessage()]
    assert len(warnings) == 1 and "is not a DatasourceReturnSet" in warnings[0].getMessage()


def test_the_observer_takes_keyword_options_only(realm: str) -> None:
    with pytest.raises(TypeError):
        DatasourceObserver("*", realm)  # type: ignore[misc] - upstream silently ignores it: a realm that is not used
    with DatasourceObserver("thermo", realm=realm) as observer:
        assert observer._event_name == "observable_data" and observer._object_selector == "thermo"


# --- PolledLocalDatasourceHERO ---------------------------------------------------------------------------


class Gauge(PolledLocalDatasourceHERO):
    """Polled: ``read_all`` returns two channels at once, ``pressure`` is an attribute."""

    pressure: float = 1013.0

    def __init__(self, name: str, **kwargs: Any) -> None:
        self.reads: list[str] = []  # what needs to exist before the first poll is set up first
        super().__init__(name, **kwargs)

    def read_all(self) -> list[float]:
        self.reads.append(threading.current_thread().name)
        return [1.5, 2.5]


GAUGE_OBSERVABLES = {
    "ch0": {"target": "read_all", "index": 0, "raw_unit": "V", "conversion": "x * 1000", "unit": "mV", "boundaries": [[0, 2000]]},
    "ch1": {"target": "read_all", "index": 1, "raw_unit": "V"},
    "p": {"target": "pressure", "raw_unit": "hPa"},
    "missing": {"target": "no_such_member"},
    "bad_index": {"target": "read_all", "index": 5},
}


def test_polled_datasource_publishes_at_its_interval(realm: str, caplog: pytest.LogCaptureFixture) -> None:
    observed = Readings()
    interval = 0.1
    with caplog.at_level(logging.DEBUG, logger="heros.datasource"), DatasourceObserver(realm=realm) as observer:
        observer.register_callback(observed)
        with Gauge("gauge", realm=realm, interval=interval, observables=GAUGE_OBSERVABLES) as gauge:
            observed.wait_for(lambda items: len(items) >= 1)
            first = len(observed.items)
            items = observed.wait_for(lambda items: len(items) >= first + 10)
            start, end = items[first - 1][0], items[first + 9][0]
            # ten intervals between them: never sooner (polls keep to their rate), and not much later on a busy machine
            assert 10 * interval - 0.08 <= end - start <= 10 * interval + 2.0, end - start
            readings = items[-1][2]
            assert fields(readings) == [
                ("ch0", 1500.0, "mV", 1.5, "V", 0, True),
                ("ch1", 2.5, "V", 2.5, "V", -1, False),
                ("p", 1013.0, "hPa", 1013.0, "hPa", -1, False),
                ("missing", None, "", None, "", -1, False),  # a target that cannot be read gives None (as upstream)
            ]  # an index that is not there leaves its observable out
            assert set(gauge.reads) == {"heros-poll-gauge"}  # without a loop it polls on a thread of its own
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("no_such_member" in w for w in warnings) == 1 and sum("has no item 5" in w for w in warnings) == 1  # once each


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="test-loop", daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def test_a_target_is_read_once_per_poll_for_all_its_observables(realm: str) -> None:
    with Gauge("gauge", realm=realm, interval=3600, observables=GAUGE_OBSERVABLES) as gauge:
        deadline = time.monotonic() + 20
        while not gauge.reads:  # the first poll is at once; the next one in an hour
            assert time.monotonic() < deadline
            time.sleep(0.01)
        readings = gauge._observable_data()
        assert len(gauge.reads) == 2  # ch0, ch1 and bad_index all come from one call of read_all
        assert readings == {"ch0": (1.5, "V"), "ch1": (2.5, "V"), "p": (1013.0, "hPa"), "missing": (None, "")}


def test_polled_datasource_on_an_asyncio_loop_as_upstream(realm: str, loop: asyncio.AbstractEventLoop) -> None:
    observed = Readings()
    with DatasourceObserver(realm=realm) as observer:
        observer.register_callback(observed)
        with Gauge("gauge", realm=realm, loop=loop, interval=0.05, observables={"ch1": GAUGE_OBSERVABLES["ch1"]}) as gauge:
            observed.wait_for(lambda items: len(items) >= 5)
            assert set(gauge.reads) == {"test-loop"}  # the poll runs on the loop's thread, as upstream's does
            assert fields(observed.items[-1][2]) == [("ch1", 2.5, "V", 2.5, "V", -1, False)]


class Flaky(PolledLocalDatasourceHERO):
    """Its own ``_observable_data``: fails every other poll."""

    def __init__(self, name: str, **kwargs: Any) -> None:
        self.polls = 0
        super().__init__(name, **kwargs)

    def _observable_data(self) -> Any:
        self.polls += 1
        if self.polls % 2 == 0:
            raise OSError("the device did not answer")
        return {"n": self.polls}


def test_polling_survives_errors_and_stops_when_the_hero_is_destroyed(realm: str, caplog: pytest.LogCaptureFixture) -> None:
    observed = Readings()
    with caplog.at_level(logging.ERROR, logger="heros.datasource"), DatasourceObserver(realm=realm) as observer:
        observer.register_callback(observed)
        flaky = Flaky("flaky", realm=realm, interval=0.05)
        try:
            observed.wait_for(lambda items: len(items) >= 4)
        finally:
            flaky._destroy_hero()
        polls = flaky.polls
        assert [r[0].raw_value % 2 for _, _, r in observed.items] == [1] * len(observed.items)  # the failed ones published nothing
        assert any("a poll failed; polling goes on" in r.getMessage() and r.exc_info for r in caplog.records)
        time.sleep(0.3)  # six intervals: no poll may start after _destroy_hero returned
        assert flaky.polls == polls


def test_interval_must_be_a_positive_number(realm: str) -> None:
    for bad in (0, -1, float("nan"), float("inf"), "5", True):
        with pytest.raises(ValueError, match="interval must be a positive number"):
            PolledLocalDatasourceHERO("p", realm=realm, interval=bad)


# --- heros serve with BOSS documents that have a datasource block ----------------------------------------

DRIVER_MODULE = '''
from heros import PolledLocalDatasourceHERO


class Native(PolledLocalDatasourceHERO):
    """A HERO class that is a polled datasource already: the block's options are its keyword arguments."""

    reading = 7.0


class Sensor:
    """A driver that knows nothing about HEROS (BOSS wraps such classes)."""

    polls = 0  # a class attribute: served, so the test can read it

    def __init__(self, offset=0.0):
        self.offset = offset
        self.level = 42

    def read(self):
        self.polls += 1
        return [20.0 + self.offset, 1.0]

    def push(self, value):
        # an "async" datasource publishes when its device has something: observable_data is the mixin's
        return [dict(r) for r in self.observable_data({"pushed": (value, "V")})]
'''


def test_heros_serve_runs_boss_documents_with_a_datasource_block(realm: str, tmp_path: Path) -> None:
    from lab_process import HerosProcess

    module = f"driver_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(DRIVER_MODULE)
    config = tmp_path / "boss.json"
    config.write_text(json.dumps([
        {"_id": "polled", "classname": f"{module}.Sensor", "arguments": {"offset": 5.0},
         "datasource": {"async": False, "interval": 0.2, "observables": {
             "T": {"target": "read", "index": 0, "raw_unit": "degC", "conversion": "x + 273.15", "unit": "K",
                   "boundaries": [[0, 290], [290, 300]]},
             "level": {"raw_unit": "%"}}}},
        {"_id": "pushed", "classname": f"{module}.Sensor", "datasource": {"async": True, "observables": {
            "pushed": {"conversion": "x * 1000", "unit": "mV"}}}},
        {"_id": "plain", "classname": f"{module}.Sensor"},
        {"_id": "native", "classname": f"{module}.Native", "datasource": {"interval": 0.2, "observables": {"reading": {"raw_unit": "V"}}}},
    ]))
    observed = Readings()
    server = HerosProcess(["serve", str(config), "--realm", realm], tmp_path / "serve.log", cwd=tmp_path)
    try:
        with DatasourceObserver(realm=realm) as observer:
            observer.register_callback(observed)
            assert server.wait_line("serving") == (f"serving 4 HEROs in realm '{realm}': polled (Sensor_HERO), pushed (Sensor_HERO), "
                                                   "plain (Sensor_HERO), native (Native); Ctrl-C to stop")
            items = observed.wait_for(lambda items: sum(n == "polled" for _, n, _ in items) >= 4)
            polled = [(t, r) for t, n, r in items if n == "polled"]
            assert fields(polled[-1][1]) == [("T", 298.15, "K", 25.0, "degC", 1, True), ("level", 42, "%", 42, "%", -1, False)]
            assert polled[-1][0] - polled[-4][0] >= 3 * 0.2 - 0.08  # at its interval
            items = observed.wait_for(lambda items: any(n == "native" for _, n, _ in items))
            assert fields(next(r for _, n, r in items if n == "native")) == [("reading", 7.0, "V", 7.0, "V", -1, False)]
            with RemoteHERO("pushed", realm=realm) as pushed, RemoteHERO("plain", realm=realm) as plain, \
                    RemoteHERO("polled", realm=realm) as polled_proxy:
                assert pushed.push(1.5)[0]["value"] == 1500.0
                items = observed.wait_for(lambda items: any(n == "pushed" for _, n, _ in items))
                assert fields(next(r for _, n, r in items if n == "pushed")) == [("pushed", 1500.0, "mV", 1.5, "V", -1, True)]
                assert "observable_data" not in plain._heros_caps and "observable_data" in pushed._heros_caps
                assert polled_proxy.polls >= 4  # the driver's own attribute, read by the poll
        assert server.terminate() == 0
    finally:
        server.kill()


def test_heros_serve_refuses_unsafe_conversions_before_starting_anything(realm: str, tmp_path: Path) -> None:
    import subprocess

    from lab_process import heros_command

    config = tmp_path / "evil.json"
    config.write_text(json.dumps([
        {"_id": "fine", "classname": "heros.demo.instruments.Stage"},
        {"_id": "evil", "classname": "collections.OrderedDict",
         "datasource": {"observables": {"T": {"conversion": f"__import__('os').system('touch {tmp_path}/pwned')"}}}},
    ]))
    result = subprocess.run([*heros_command(), "serve", str(config), "--realm", realm], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "HERO 'evil'" in result.stderr and "observable 'T'" in result.stderr
    assert "calling \"__import__('os').system\" is not allowed" in result.stderr, result.stderr
    assert not (tmp_path / "pwned").exists()
