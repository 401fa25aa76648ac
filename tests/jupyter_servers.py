"""HEROs the Jupyter tests serve: small stand-ins for the demo lab's instruments that count and
expose what the tests check (writes received, events sent), and a fast event source.

Run like ``tests/servers.py``: ``python tests/jupyter_servers.py REALM Class:name [...]`` prints
``READY`` and then obeys ``eval <expression>`` lines on stdin.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from typing import Annotated, Any

import numpy as np
import servers

from heros import LocalHERO, event
from heros.meta import Choices, Doc, Range, Unit


class TemperatureController(LocalHERO):
    """A simulated cryostat: the temperature relaxes toward the setpoint."""

    setpoint: Annotated[float, Range(3, 350), Unit("K")] = 300.0
    ramp_rate: Annotated[float, Unit("K/s")] = 1.0

    def __init__(self, name: str, **kwargs: Any) -> None:
        self._temperature = 300.0
        self._stop = threading.Event()
        super().__init__(name, **kwargs)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def temperature(self) -> Annotated[float, Unit("K")]:
        """The measured temperature (read-only)."""
        return round(self._temperature, 3)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self._temperature += 0.3 * (self.setpoint - self._temperature) + random.gauss(0, 0.01)
            self.temperature_changed(self.temperature)

    def ramp(self, target: float, rate: float = 1.0) -> float:
        """Go to ``target`` K at ``rate`` K/s; returns the seconds it will take."""
        self.setpoint = float(target)
        self.ramp_rate = float(rate)
        return abs(target - self._temperature) / rate

    def stop_ramp(self) -> None:
        """Stay at the current temperature."""
        self.setpoint = self.temperature

    @event
    def temperature_changed(self, value: float) -> float:
        return value

    def _destroy_hero(self) -> None:
        self._stop.set()
        super()._destroy_hero()


class Laser(LocalHERO):
    """A simulated laser with an interlock; counts the writes of ``power`` it receives."""

    wavelength: Annotated[int, Choices(405, 532, 633, 780), Unit("nm")] = 532
    interlock_closed: bool = True

    def __init__(self, name: str, **kwargs: Any) -> None:
        self._power = 0.0
        self._enabled = False
        self.power_writes = 0
        super().__init__(name, **kwargs)

    @property
    def power(self) -> Annotated[float, Range(0, 50), Unit("mW"), Doc("optical output power")]:
        """Optical output power."""
        return self._power

    @power.setter
    def power(self, value: float) -> None:
        self.power_writes += 1
        if value > 0 and self._enabled and not self.interlock_closed:
            raise RuntimeError("the interlock is open: close it before raising the power")
        self._power = float(value)

    @property
    def enabled(self) -> bool:
        """Whether the laser emits."""
        return self._enabled

    @enabled.setter
    def enabled(self, value: bool) -> None:
        if value and not self.interlock_closed:
            raise RuntimeError("the interlock is open: close it before enabling the laser")
        self._enabled = bool(value)

    def pulse(self, duration: Annotated[float, Range(0.001, 10), Unit("s"), Doc("how long the pulse lasts")] = 0.1) -> str:
        """Fire one pulse of ``duration`` seconds at the set power.

        Needs ``enabled`` and a power above 0 mW.
        """
        if not self._enabled or self._power <= 0:
            raise RuntimeError(f"laser {self._name!r} cannot pulse: enable it and set a power above 0 mW")
        time.sleep(min(duration, 2.0))
        return f"{self._power * duration:.4g} mJ at {self.wavelength} nm ({self._power:g} mW for {duration:g} s)"


class Camera(LocalHERO):
    """A simulated camera: a Gaussian spot on noise; every image is also published as ``frame``."""

    exposure: Annotated[float, Range(0.001, 10), Unit("s")] = 0.01

    def snap(self) -> np.ndarray:
        """One image (2-D array)."""
        y, x = np.mgrid[0:48, 0:64]
        spot = np.exp(-((x - 32) ** 2 + (y - 24) ** 2) / 40.0) * min(self.exposure * 100, 1.0)
        image = spot + np.random.default_rng().normal(0, 0.02, spot.shape)
        self.frame(image)
        return image

    def stream(self, frames: int, interval: float = 0.05) -> int:
        """Snap ``frames`` images, ``interval`` seconds apart, on a thread (each one a ``frame`` event)."""

        def run() -> None:
            for _ in range(frames):
                self.snap()
                time.sleep(interval)

        threading.Thread(target=run, daemon=True).start()
        return frames

    @event
    def frame(self, image: np.ndarray) -> np.ndarray:
        """The latest image."""
        return image


class Stage(LocalHERO):
    """A stage whose moves report ``progress`` (a dict with ``fraction``) and return where they ended."""

    def __init__(self, name: str, **kwargs: Any) -> None:
        self._position = 0.0
        super().__init__(name, **kwargs)

    @property
    def position(self) -> Annotated[float, Range(0, 50), Unit("mm")]:
        """Where the stage is."""
        return self._position

    def move_to(self, x: Annotated[float, Range(0, 50), Unit("mm")], steps: int = 5) -> Annotated[float, Unit("mm")]:
        """Move to ``x`` in ``steps`` steps of 0.1 s; returns the position reached."""
        start = self._position
        for i in range(1, steps + 1):
            time.sleep(0.1)
            self._position = start + (x - start) * i / steps
            self.progress({"position": round(self._position, 3), "target": x, "fraction": i / steps, "moving": i < steps})
        return self._position

    @event
    def progress(self, state: dict) -> dict:
        """During a move: position, target, fraction done (0..1), moving."""
        return state


class Sensors(LocalHERO):
    """A datasource in upstream's shape: ``observable_data`` publishes a list of observables
    (id, raw value and unit, time), as upstream's ``LocalDatasourceHERO`` does."""

    def publish(self, n: int = 1, interval: float = 0.05) -> int:
        """Publish ``n`` sets of readings, ``interval`` seconds apart, on a thread."""

        def run() -> None:
            for i in range(n):
                now = time.time()
                self.observable_data([
                    {"id": "pressure", "raw_value": 1e-6 * (1 + i), "raw_unit": "mbar", "time": now, "inbound": -1, "calibrated": False},
                    {"id": "flow", "raw_value": 2.0, "raw_unit": "l/min", "value": 2.0 + i, "unit": "l/min", "time": now,
                     "calibrated": True},
                ])
                time.sleep(interval)

        threading.Thread(target=run, daemon=True).start()
        return n

    @event
    def observable_data(self, data: list) -> list:
        return data


class Streamer(LocalHERO):
    """Emits ``tick`` events at a chosen rate (the flood test)."""

    def __init__(self, name: str, **kwargs: Any) -> None:
        self.sent = 0
        super().__init__(name, **kwargs)

    @event
    def tick(self, i: int) -> float:
        return float(i % 100) if i >= 0 else float(i)

    def stream(self, rate_hz: float, seconds: float) -> int:
        """Emit ``tick`` at ``rate_hz`` for ``seconds`` on a thread; returns how many it will send."""
        n = int(rate_hz * seconds)

        def run() -> None:
            start = time.perf_counter()
            for i in range(n):
                delay = start + i / rate_hz - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                self.tick(i)
                self.sent += 1

        threading.Thread(target=run, daemon=True).start()
        return n

    def total(self) -> int:
        return self.sent

    def ping(self, marker: int = -1) -> None:
        """Emit one ``tick`` of the negative value ``marker`` (to see that a subscriber is connected).

        Ticks from the stream are never negative, so a subscriber that sees its own marker knows
        every tick sent before it has arrived: one publisher's samples arrive in order.
        """
        if marker >= 0:
            raise ValueError(f"a marker is negative, got {marker}")
        self.tick(marker)


servers.CLASSES.update({cls.__name__: cls for cls in (TemperatureController, Laser, Camera, Streamer, Stage, Sensors)})


if __name__ == "__main__":
    servers.main(sys.argv[1:])
