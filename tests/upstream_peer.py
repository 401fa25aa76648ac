"""An upstream HEROS 2026.2.2 process for the interop tests (runs in the upstream virtualenv, never ours).

    <upstream python> tests/upstream_peer.py REALM [Class:name ...]

Serves the listed HEROs of upstream's ``heros`` package, prints ``READY``, then obeys stdin lines:
``eval <expr>`` prints ``OK <repr>`` (or ``ERR <type>: <message>``), ``exec <statement>`` prints ``OK``;
it exits gracefully on EOF or ``exit``. Only upstream's public API is used here.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import traceback

import numpy as np

from heros import (
    DatasourceObserver,
    EventObserver,
    HEROObserver,
    LocalDatasourceHERO,
    LocalHERO,
    PolledLocalDatasourceHERO,
    RemoteHERO,
    event,
)


class Opaque:
    """Something CBOR cannot carry."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"Opaque({self.value})"


class UpDevice(LocalHERO):
    """An upstream HERO with every kind of member the interop tests need."""

    counter: int = 0
    gain: float = 1.5
    label: str = "up"
    annotated_only: int

    _hero_tags = ["class-tag"]
    _hero_implements = ["lab.Device"]
    _hero_extra_metadata = {"vendor": "upstream"}

    def __init__(self, name: str, **kwargs):
        self.kept: list = []  # upstream keeps handed-out objects only weakly: hold them here
        super().__init__(name, tags=["up-tag"], implements=["iface"], extra_metadata={"serial": "7"}, **kwargs)

    def add(self, a: int, b: int = 2) -> int:
        return a + b

    def zoo(self, a, /, b: int, *args, c: str = "x", **kwargs) -> dict:
        return {"a": a, "b": b, "args": list(args), "c": c, "kwargs": kwargs}

    def echo(self, value):
        return value

    def kind(self, value) -> str:
        return type(value).__name__

    def fail(self, kind: str = "value") -> None:
        errors = {"value": ValueError("bad value 7"), "key": KeyError("missing"), "zero": ZeroDivisionError("division by zero"),
                  "custom": type("InterlockError", (Exception,), {})("interlock open")}
        raise errors[kind]

    def make_opaque(self, value: int) -> Opaque:
        obj = Opaque(value)
        self.kept.append(obj)
        return obj

    def read_opaque(self, obj) -> int:
        return obj.value

    def array(self, n: int, dtype: str = "float64"):
        return np.arange(n).astype(dtype)

    def describe_array(self, arr) -> list:
        return [list(arr.shape), str(arr.dtype), float(np.asarray(arr, dtype=float).sum()), bool(arr.flags.c_contiguous)]

    def name_of(self, hero) -> str:
        return hero._name

    def call(self, hero, method: str, *args):
        return getattr(hero, method)(*args)

    def me(self):
        return self

    @event
    def changed(self, value):
        return value

    def emit_changed(self, value):
        return self.changed(value)


class UpRecorder(LocalHERO):
    """Records what it is called with (a callback target)."""

    def __init__(self, name: str, **kwargs):
        self.records: list = []
        super().__init__(name, **kwargs)

    def record(self, value) -> None:
        self.records.append(value)

    def seen(self) -> list:
        return list(self.records)


class UpLaser(LocalHERO):
    """A laser as an upstream lab writes it: string annotations (as ``from __future__ import annotations``
    makes them) carry limits and choices in the type text, which upstream sends verbatim."""

    power: Annotated[float, Interval(ge=0, le=50)] = 5.0  # noqa: F821 - never evaluated (future annotations)
    mode: Literal["cw", "pulsed"] = "cw"  # noqa: F821, UP037
    shots: int = 0

    def pulse(self, energy: Annotated[float, Interval(ge=0, le=10)] = 1.0) -> str:  # noqa: F821
        time.sleep(0.3)  # a pulse takes a while, as on real hardware
        self.shots += 1
        self.fired(energy)
        return f"pulse {energy} mJ at {self.power} mW ({self.mode})"

    @event
    def fired(self, energy: float) -> float:
        return energy


class UpDatasource(LocalDatasourceHERO):
    """An upstream datasource that publishes when told to, with a conversion and boundaries."""

    def __init__(self, name: str, **kwargs):
        super().__init__(name, observables={"T": {"unit": "K", "conversion": "x + 273.15", "boundaries": [[0, 300], [300, 400]]}},
                         **kwargs)

    def emit(self, data):
        return self.observable_data(data)


class UpPolled(PolledLocalDatasourceHERO):
    """An upstream polled datasource, on an asyncio loop of its own as BOSS gives it one."""

    level: float = 1.5

    def __init__(self, name: str, **kwargs):
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, daemon=True).start()
        super().__init__(name, loop=loop, interval=0.2, observables={
            "level": {"raw_unit": "V", "conversion": "x * 2", "unit": "V2"},
            "volts": {"target": "voltages", "index": 1},
        }, **kwargs)

    def voltages(self) -> list:
        return [0.1, 0.2]


CLASSES = {cls.__name__: cls for cls in (UpDevice, UpRecorder, UpLaser, UpDatasource, UpPolled)}


class Collector:
    """Collects what callbacks receive, for the tests to read with ``eval``."""

    def __init__(self) -> None:
        self.items: list = []
        self.lock = threading.Lock()

    def __call__(self, *args):
        with self.lock:
            self.items.append(args[0] if len(args) == 1 else list(args))

    def get(self) -> list:
        with self.lock:
            return list(self.items)


def catch(func, *args, **kwargs):
    """``["ok", value]``, or what ``func`` raised: ``[class name, names of its classes (MRO), message]``."""
    try:
        return ["ok", func(*args, **kwargs)]
    except Exception as exc:
        return [type(exc).__name__, [c.__name__ for c in type(exc).__mro__], getattr(exc, "message", str(exc))]


def make_legacy(hero) -> None:
    """Make an upstream HERO answer as a protocol 0.1 HERO did: no proto_version, parameters without kind."""
    import cbor2

    base = hero._endpoint_base_path
    for q in list(hero._queryables):
        if str(q.key_expr) in (f"{base}/_discover", f"{base}/_capabilities"):
            q.undeclare()
            hero._queryables.remove(q)

    def discover(query):
        descriptor = {"name": hero._name, "class": type(hero).__name__, "implements": set(), "tags": set(), "extra_metadata": {}}
        query.reply(f"{base}/_discover", cbor2.dumps(descriptor), encoding="application/cbor")

    def capabilities(query):
        caps = []
        for cap in hero.capabilities:
            d = cap.to_dict()
            for p in d.get("parameters", []):
                p.pop("kind", None)
                if p["default"] == "undefined":
                    p.pop("default")
            caps.append(d)
        query.reply(f"{base}/_capabilities", cbor2.dumps(caps), encoding="application/cbor")

    hero._declare_queryable(f"{base}/_discover", discover)
    hero._declare_queryable(f"{base}/_capabilities", capabilities)


def wait_until(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def main(argv: list[str]) -> None:
    realm, *specs = argv
    heroes = {}
    for spec in specs:
        cls_name, name = spec.split(":")
        heroes[name] = CLASSES[cls_name](name, realm=realm)
    scope = {"heroes": heroes, "np": np, "realm": realm, "RemoteHERO": RemoteHERO, "HEROObserver": HEROObserver,
             "EventObserver": EventObserver, "DatasourceObserver": DatasourceObserver, "Collector": Collector,
             "wait_until": wait_until, "time": time, "catch": catch, "make_legacy": make_legacy, "Opaque": Opaque,
             "inspect": __import__("inspect"), **CLASSES}
    print("READY", flush=True)
    for line in sys.stdin:
        line = line.strip()
        if line == "exit":
            break
        try:
            if line.startswith("eval "):
                print("OK", repr(eval(line[5:], scope)), flush=True)
            elif line.startswith("exec "):
                exec(line[5:], scope)
                print("OK", flush=True)
        except BaseException as exc:
            print(f"ERR {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", flush=True)
            traceback.print_exc()
    for hero in heroes.values():
        hero._destroy_hero()
    print("BYE", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
