"""HERO classes the tests serve, and a runner: ``python tests/servers.py REALM Class:name [Class:name ...]``.

The runner prints ``READY`` once every HERO serves, then obeys stdin lines:
``eval <python expression>`` (prints ``OK <repr>``), and exits gracefully on EOF or ``exit``.
"""

from __future__ import annotations

import asyncio
import enum
import sys
import threading
import time
from typing import Annotated, Any, Literal

import numpy as np

from heros import LocalHERO, RemoteHERO, event
from heros.event import reliable
from heros.inspect import force_remote, local_only
from heros.meta import Choices, Doc, Range, Unit
from heros.references import obj_store  # noqa: F401 - the stdin driver evaluates expressions with it


class Mode(enum.Enum):
    FAST = "fast"
    SLOW = "slow"


class CustomError(Exception):
    """A user-defined exception class."""


class LimitError(ValueError):
    """A user-defined exception with a built-in base."""


class Opaque:
    """Something msgpack cannot carry."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"Opaque({self.value})"


class Device(LocalHERO):
    """A device with every kind of member the tests need."""

    counter: int = 0
    gain: float = 1.5
    label: str = "dev"
    mode: Mode = Mode.FAST
    items: list = [1, 2, 3]
    annotated_only: int
    power: Annotated[float, Range(0, 50), Unit("mW"), Doc("optical power")] = 1.0
    wavelength: Annotated[int, Choices(532, 633, 780)] = 633
    flavour: Literal["up", "down"] = "up"

    def __init__(self, name: str, *args: Any, **kwargs: Any) -> None:
        self._secret = 42
        self._temperature = 20.0
        self.calls_in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        super().__init__(name, *args, **kwargs)

    @property
    def temperature(self) -> float:
        """The temperature, read-only."""
        return self._temperature

    @property
    def setpoint(self) -> float:
        return self._temperature

    @setpoint.setter
    def setpoint(self, value: float) -> None:
        if value > 400:
            raise ValueError(f"setpoint {value} above the limit of 400 K")
        self._temperature = float(value)

    def add(self, a: int, b: int = 2) -> int:
        """Add two numbers."""
        return a + b

    def signature_zoo(self, a, /, b: int, *args: float, c: str = "x", d: Any = None, **kwargs: Any) -> dict:
        return {"a": a, "b": b, "args": list(args), "c": c, "d": d, "kwargs": kwargs}

    def echo(self, value: Any) -> Any:
        return value

    def kind(self, value: Any) -> str:
        return type(value).__name__

    def increment(self) -> int:
        self.counter += 1
        return self.counter

    def fail(self, kind: str = "value") -> None:
        errors = {
            "value": ValueError("bad value 7"),
            "key": KeyError("missing"),
            "type": TypeError("wrong type"),
            "custom": CustomError("custom failure"),
            "limit": LimitError("above the limit"),
            "zero": ZeroDivisionError("division by zero"),
            "exit": SystemExit(3),
            "interrupt": KeyboardInterrupt(),
        }
        raise errors[kind]

    def sleep(self, seconds: float) -> float:
        with self._lock:
            self.calls_in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.calls_in_flight)
        try:
            time.sleep(seconds)
        finally:
            with self._lock:
                self.calls_in_flight -= 1
        return seconds

    def peak_concurrency(self) -> int:
        return self.max_in_flight

    def in_flight(self) -> int:
        return self.calls_in_flight

    def make_opaque(self, value: int) -> Opaque:
        return Opaque(value)

    def read_opaque(self, obj: Opaque) -> int:
        return obj.value

    def array(self, n: int, dtype: str = "float64") -> np.ndarray:
        return np.arange(n).astype(dtype)

    def array_sum(self, arr: np.ndarray) -> float:
        return float(np.asarray(arr).sum())

    def nested(self, depth: int) -> Any:
        """A tuple nested ``depth`` levels deep."""
        value: Any = ()
        for _ in range(depth):
            value = (value,)
        return value

    def writes_seen(self) -> list:
        return list(self.__dict__.get("_writes", []))

    @property
    def checked(self) -> Annotated[float, Range(0, 5), Unit("K")]:
        return self.__dict__.get("_checked", 1.0)

    @checked.setter
    def checked(self, value: float) -> None:
        self.__dict__.setdefault("_writes", []).append(value)  # runs only for writes the HERO let through
        self.__dict__["_checked"] = value

    def limited(self, x: Annotated[float, Range(0, 10), Unit("V")], mode: Literal["a", "b"] = "a", n: int = 1) -> str:
        self.__dict__.setdefault("_writes", []).append(("limited", x, mode, n))
        return f"{x} {mode} {n}"

    async def async_double(self, x: int) -> int:
        await asyncio.sleep(0.01)
        return 2 * x

    @local_only
    def hidden_method(self) -> None:
        """Not remote."""

    @force_remote
    def _forced(self) -> str:
        return "forced"

    def _private(self) -> None:
        """Not remote."""

    @event
    def changed(self, value: Any) -> Any:
        return value

    @reliable
    @event
    def burst_item(self, i: int) -> int:
        return i

    @event
    @reliable
    def other_order(self, i: int) -> int:
        return i

    def emit_burst(self, n: int) -> int:
        for i in range(n):
            self.burst_item(i)
        return n

    def emit_changed(self, value: Any) -> Any:
        return self.changed(value)

    def emit_arrays(self, n: int, nbytes: int) -> int:
        """Emit ``changed`` with ``n`` arrays of ``nbytes`` bytes, the i-th filled with i % 256."""
        for i in range(n):
            self.changed(np.full(nbytes, i % 256, dtype=np.uint8))
        return n

    def set_label_locally(self, text: str) -> None:
        self.label = text

    def emit_timed(self, n: int) -> float:
        """Emit ``changed`` n times; returns the seconds it took the emitter."""
        t0 = time.perf_counter()
        for i in range(n):
            self.changed(i)
        return time.perf_counter() - t0


class Serial(LocalHERO):
    """Runs one request at a time."""

    _hero_serial = True

    def __init__(self, name: str, **kwargs: Any) -> None:
        self.in_flight = 0
        self.peak = 0
        self._lock = threading.Lock()
        super().__init__(name, **kwargs)

    def sleep(self, seconds: float) -> float:
        with self._lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        time.sleep(seconds)
        with self._lock:
            self.in_flight -= 1
        return seconds

    def peak_concurrency(self) -> int:
        return self.peak


class Tagged(LocalHERO):
    """Metadata from class attributes (tuples, as upstream's own example writes them)."""

    _hero_tags = ("class-tag",)
    _hero_implements = ("heros.demo.Thermometer",)
    _hero_extra_metadata = {"vendor": "ACME"}

    def __init__(self, name: str, **kwargs: Any) -> None:
        super().__init__(name, tags=["ctor-tag"], implements=["iface"], extra_metadata={"serial": "42"}, **kwargs)

    def ping(self) -> str:
        return "pong"


class Small(LocalHERO):
    """Accepts only small requests."""

    _hero_max_request_bytes = 1000

    def length(self, data: bytes) -> int:
        return len(data)


def pattern(n: int, seed: int) -> np.ndarray:
    """``n`` bytes that differ for every seed and position (what tests/test_bulk.py compares)."""
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8)


def digest(value: Any) -> str:
    import hashlib

    data = value if isinstance(value, bytes) else np.ascontiguousarray(value).tobytes()
    return f"{len(data)}:{hashlib.sha256(data).hexdigest()}"


class Bulk(LocalHERO):
    """Large payloads both ways: returned, passed, written, published (tests/test_bulk.py)."""

    frame: np.ndarray = np.zeros(0, np.uint8)

    def make(self, n: int, seed: int) -> np.ndarray:
        return pattern(n, seed)

    def make_bytes(self, n: int, seed: int) -> bytes:
        return pattern(n, seed).tobytes()

    def make_many(self, sizes: list, seed: int) -> dict:
        return {"arrays": [pattern(n, seed + i) for i, n in enumerate(sizes)], "seed": seed}

    def digest(self, value: Any) -> str:
        return digest(value)

    def frame_digest(self) -> str:
        return digest(self.frame)

    @event
    def frame_out(self, arr: np.ndarray) -> np.ndarray:
        return arr

    @event.reliable
    @event
    def frame_out_r(self, arr: np.ndarray) -> np.ndarray:
        return arr

    def publish(self, n: int, seed: int, count: int, reliable: bool = False) -> int:
        emit = self.frame_out_r if reliable else self.frame_out
        for i in range(count):
            emit(pattern(n, seed + i))
        return count

    def shared_memory(self) -> dict:
        import heros.zenoh

        return heros.zenoh.shared_memory()


class Hub(LocalHERO):
    """Works with other HEROs handed to it."""

    partner: Any = None

    def ping(self) -> str:
        return f"pong from {self._name}"

    def me(self) -> Hub:
        return self

    def name_of(self, hero: Any) -> str:
        return hero._name

    def call(self, hero: Any, method: str, *args: Any) -> Any:
        return getattr(hero, method)(*args)

    def heroes(self, names: list) -> list:
        return [RemoteHERO(n, realm=self._realm) for n in names]

    def keep(self, hero: Any) -> str:
        self.partner = hero
        return type(hero).__name__

    def partner_ping(self) -> str:
        return self.partner.ping()


class Recorder(LocalHERO):
    """Records what it is called with (a callback target)."""

    def __init__(self, name: str, delay: float = 0.0, **kwargs: Any) -> None:
        self.records: list = []
        self.delay = float(delay)
        super().__init__(name, **kwargs)

    def record(self, value: Any) -> None:
        if self.delay:
            time.sleep(self.delay)
        self.records.append(value)

    def seen(self) -> list:
        return list(self.records)


CLASSES = {cls.__name__: cls for cls in (Device, Serial, Hub, Recorder, Tagged, Small, Bulk)}


def _parse(spec: str) -> tuple[type, str, dict[str, Any]]:
    cls_name, name, *opts = spec.split(":")
    kwargs = {}
    for opt in opts:
        k, v = opt.split("=", 1)
        kwargs[k] = v
    return CLASSES[cls_name], name, kwargs


def main(argv: list[str]) -> None:
    realm, *specs = argv
    heroes = {}
    for spec in specs:
        cls, name, kwargs = _parse(spec)
        heroes[name] = cls(name, realm=realm, **kwargs)
    print("READY", flush=True)
    for line in sys.stdin:
        line = line.strip()
        if line == "exit":
            break
        if line.startswith("eval "):
            try:
                result = eval(line[5:], {"heroes": heroes, "np": np, **globals()})
                print("OK", repr(result), flush=True)
            except Exception as exc:
                print("ERR", repr(exc), flush=True)
    for hero in heroes.values():
        hero._destroy_hero()
    print("BYE", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
