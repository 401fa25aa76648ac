"""Simulated lab instruments for the demo: a cryostat, a laser, a stage, a camera and the lab itself.

Each class is a LocalHERO constructible as ``Cls(name, realm=...)`` and behaves like the real
thing: values take time to change, limits are enforced with a clear error, units and limits are
declared with ``typing.Annotated`` so that remote users (and the Jupyter panels) see them.
Values that change by themselves (the cryostat's temperature, the stage's position) are
published like attribute writes, so watchers see them live. Background simulation threads hold
only a weak reference to their HERO and stop when it is destroyed.
"""

from __future__ import annotations

import datetime
import logging
import math
import random
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Annotated, Any

import numpy as np

from heros import LocalHERO, RemoteHERO, event, tools
from heros.meta import Choices, Doc, Range, Unit

__all__ = ["Camera", "InterlockError", "Lab", "Laser", "Logbook", "Stage", "TemperatureController"]

log = logging.getLogger("heros.demo")

#: Setpoint limits of the cryostat, in K.
T_MIN, T_MAX = 3.0, 350.0
#: Largest ramp rate of the cryostat, in K/s.
RAMP_RATE_MAX = 50.0
#: Laser power limits, in mW, and the wavelengths the laser has, in nm.
POWER_MAX = 50.0
WAVELENGTHS = (405, 532, 633, 780)
#: Stage travel and speed limits, in mm and mm/s.
TRAVEL_MIN, TRAVEL_MAX = 0.0, 50.0
SPEED_MIN, SPEED_MAX = 0.1, 20.0
#: Camera exposure limits in s, sensor size in pixels, full scale in counts (12 bit).
EXPOSURE_MIN, EXPOSURE_MAX = 0.001, 10.0
HEIGHT, WIDTH = 96, 128
FULL_SCALE = 4095


class InterlockError(RuntimeError):
    """The laser's safety interlock is open: the laser refuses to emit."""


def _number(value: Any, what: str) -> float:
    """``value`` as a float, or a TypeError naming ``what`` (bools are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{what} must be a number, not {type(value).__name__} ({value!r})")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{what} must be a finite number, not {number}")
    return number


def _within(value: Any, low: float, high: float, what: str, unit: str) -> float:
    number = _number(value, what)
    if not low <= number <= high:
        raise ValueError(f"{what} {number:g} {unit} is outside the allowed range {low:g}..{high:g} {unit}")
    return number


def _flag(value: Any, what: str) -> bool:
    if not isinstance(value, (bool, np.bool_)) and value not in (0, 1):
        raise TypeError(f"{what} must be True or False, not {value!r}")
    return bool(value)


def _publish(hero: LocalHERO, name: str) -> None:
    # A simulated value changed by itself: tell watchers (panels, `heros watch`) as a write would.
    tools.publish_attribute(hero, name)


class _Ticker:
    """Calls ``step(hero, dt)`` every ``interval`` seconds on a daemon thread.

    Holds the HERO weakly, so garbage collection can still destroy it; stops when ``stop()`` is
    called, when the HERO is destroyed or when it is gone.
    """

    def __init__(self, hero: LocalHERO, step: Callable[[Any, float], None], interval: float) -> None:
        self._hero = weakref.ref(hero)
        self._step = step
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heros-demo-{hero._name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stopped.wait(self._interval):
            hero = self._hero()
            if hero is None or hero._hero_destroyed:
                return
            now = time.monotonic()
            try:
                self._step(hero, now - last)
            except Exception:
                log.exception("simulation step of %s failed", hero._name)
            last = now
            del hero

    def stop(self) -> None:
        self._stopped.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(5)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()


class TemperatureController(LocalHERO):
    """A cryostat's temperature controller: the temperature follows the setpoint with a delay and noise.

    Parameters
    ----------
    name
        HERO name.
    time_constant
        Seconds the temperature takes to close 63 % of the gap to the setpoint.
    noise
        Standard deviation of the reading, in K.
    interval
        Seconds between simulation steps and ``temperature_changed`` events (0.2 s: 5 Hz).
    **kwargs
        Passed to ``LocalHERO`` (``realm``, ``tags``, ``session_manager``...).
    """

    def __init__(self, name: str, *, time_constant: float = 3.0, noise: float = 0.02, interval: float = 0.2, **kwargs: Any) -> None:
        self._lock = threading.Lock()
        self._true_temperature = 295.0
        self._reading = 295.0
        self._setpoint = 295.0
        self._ramp_rate = 1.0
        self._ramp_target: float | None = None
        self._tau = _number(time_constant, "time_constant")
        self._noise = _number(noise, "noise")
        self._rng = random.Random()
        super().__init__(name, **kwargs)
        self._ticker = _Ticker(self, TemperatureController._tick, interval)

    @property
    def setpoint(self) -> Annotated[float, Range(T_MIN, T_MAX), Unit("K"), Doc("temperature the controller regulates to")]:
        """Temperature the controller regulates to (K); writing it stops a running ramp."""
        return self._setpoint

    @setpoint.setter
    def setpoint(self, value: float) -> None:
        value = _within(value, T_MIN, T_MAX, "setpoint", "K")
        with self._lock:
            self._ramp_target = None
            self._setpoint = value

    @property
    def temperature(self) -> Annotated[float, Unit("K"), Doc("measured temperature")]:
        """Measured temperature (K): relaxes toward the setpoint, with noise."""
        return self._reading

    @property
    def ramp_rate(self) -> Annotated[float, Range(0.01, RAMP_RATE_MAX), Unit("K/s"), Doc("speed of setpoint ramps")]:
        """Speed at which ``ramp()`` moves the setpoint (K/s)."""
        return self._ramp_rate

    @ramp_rate.setter
    def ramp_rate(self, value: float) -> None:
        self._ramp_rate = _within(value, 0.01, RAMP_RATE_MAX, "ramp_rate", "K/s")

    @property
    def ramping(self) -> Annotated[bool, Doc("whether a ramp is moving the setpoint")]:
        """Whether a ramp is moving the setpoint now."""
        return self._ramp_target is not None

    def ramp(
        self,
        target: Annotated[float, Range(T_MIN, T_MAX), Unit("K")],
        rate: Annotated[float, Range(0.01, RAMP_RATE_MAX), Unit("K/s")] = 1.0,
    ) -> Annotated[float, Unit("s")]:
        """Move the setpoint to ``target`` at ``rate`` K/s; returns the seconds the ramp will take."""
        target = _within(target, T_MIN, T_MAX, "ramp target", "K")
        self.ramp_rate = rate
        with self._lock:
            self._ramp_target = target
            seconds = abs(target - self._setpoint) / self._ramp_rate
        return seconds

    def stop_ramp(self) -> Annotated[float, Unit("K")]:
        """Stop a running ramp where the setpoint is now; returns that setpoint."""
        with self._lock:
            self._ramp_target = None
            setpoint = self._setpoint
        _publish(self, "setpoint")
        return setpoint

    @event
    def temperature_changed(self, temperature: float) -> float:
        """The measured temperature (K), about 5 times a second."""
        return temperature

    def _tick(self, dt: float) -> None:
        ramped = False
        with self._lock:
            if self._ramp_target is not None:
                step = self._ramp_rate * dt
                gap = self._ramp_target - self._setpoint
                if abs(gap) <= step:
                    self._setpoint = self._ramp_target
                    self._ramp_target = None
                else:
                    self._setpoint += math.copysign(step, gap)
                ramped = True
            relax = 1.0 - math.exp(-dt / self._tau) if self._tau > 0 else 1.0
            self._true_temperature += (self._setpoint - self._true_temperature) * relax
            self._reading = max(0.0, self._true_temperature + self._rng.gauss(0.0, self._noise))
            reading = self._reading
        if ramped:
            _publish(self, "setpoint")
        _publish(self, "temperature")
        self.temperature_changed(reading)

    def _destroy_hero(self) -> None:
        ticker = self.__dict__.get("_ticker")
        if ticker is not None:
            ticker.stop()
        super()._destroy_hero()


class Laser(LocalHERO):
    """A laser with a key switch (``enabled``), power limits, a wavelength choice and a safety interlock.

    The interlock (think: the door of the laser enclosure) must be closed to enable the laser or
    to turn its power up while enabled; otherwise the laser raises ``InterlockError``. Opening
    the interlock while the laser is enabled blocks the beam (``emitting`` becomes False).
    """

    def __init__(self, name: str, **kwargs: Any) -> None:
        self._power = 0.0
        self._enabled = False
        self._wavelength = 532
        self._interlock_closed = True
        self._lock = threading.Lock()
        super().__init__(name, **kwargs)

    @property
    def power(self) -> Annotated[float, Range(0, POWER_MAX), Unit("mW"), Doc("optical output power")]:
        """Optical output power (mW), 0 to 50."""
        return self._power

    @power.setter
    def power(self, value: float) -> None:
        value = _within(value, 0.0, POWER_MAX, "laser power", "mW")
        with self._lock:
            if value > 0 and self._enabled and not self._interlock_closed:
                raise InterlockError(
                    f"laser {self._name!r}: the interlock is open, the power cannot be raised to {value:g} mW; "
                    "close the interlock first (interlock_closed = True)"
                )
            self._power = value
        _publish(self, "emitting")

    @property
    def enabled(self) -> Annotated[bool, Doc("key switch: the laser may emit")]:
        """Key switch: when True (and the interlock is closed) the laser emits at ``power``."""
        return self._enabled

    @enabled.setter
    def enabled(self, value: bool) -> None:
        value = _flag(value, "enabled")
        with self._lock:
            if value and not self._interlock_closed:
                raise InterlockError(
                    f"laser {self._name!r} cannot be enabled: the interlock is open; "
                    "close the interlock first (interlock_closed = True)"
                )
            self._enabled = value
        _publish(self, "emitting")

    @property
    def wavelength(self) -> Annotated[int, Choices(*WAVELENGTHS), Unit("nm"), Doc("emission wavelength")]:
        """Emission wavelength (nm): one of 405, 532, 633, 780."""
        return self._wavelength

    @wavelength.setter
    def wavelength(self, value: int) -> None:
        number = _number(value, "wavelength")
        if number not in WAVELENGTHS:
            raise ValueError(f"wavelength {number:g} nm is not available; choose one of {', '.join(map(str, WAVELENGTHS))} nm")
        self._wavelength = int(number)

    @property
    def interlock_closed(self) -> Annotated[bool, Doc("safety interlock (enclosure door) closed")]:
        """Whether the safety interlock is closed; opening it blocks the beam."""
        return self._interlock_closed

    @interlock_closed.setter
    def interlock_closed(self, value: bool) -> None:
        value = _flag(value, "interlock_closed")
        with self._lock:
            self._interlock_closed = value
            if not value and self._enabled:
                log.info("laser %s: interlock opened while enabled, beam blocked", self._name)
        _publish(self, "emitting")

    @property
    def emitting(self) -> Annotated[bool, Doc("light is coming out")]:
        """Whether light is coming out: enabled, interlock closed and power above zero."""
        return self._enabled and self._interlock_closed and self._power > 0

    def pulse(self, duration: Annotated[float, Range(0.001, 10), Unit("s")] = 0.1) -> str:
        """Fire one pulse of ``duration`` seconds at the set power; returns what was delivered."""
        duration = _within(duration, 0.001, 10.0, "pulse duration", "s")
        with self._lock:
            if not self._interlock_closed:
                raise InterlockError(f"laser {self._name!r} cannot pulse: the interlock is open")
            if not self._enabled:
                raise RuntimeError(f"laser {self._name!r} cannot pulse: it is not enabled (enabled = True)")
            if self._power <= 0:
                raise RuntimeError(f"laser {self._name!r} cannot pulse: the power is 0 mW")
            power, wavelength = self._power, self._wavelength
        time.sleep(duration)
        return f"{power * duration:.4g} mJ at {wavelength} nm ({power:g} mW for {duration:g} s)"


class Stage(LocalHERO):
    """A motorised linear stage: moves take time and report ``progress``; ``stop()`` halts a move.

    Parameters
    ----------
    name
        HERO name.
    position
        Where the stage starts (mm).
    **kwargs
        Passed to ``LocalHERO``.
    """

    def __init__(self, name: str, *, position: float = 0.0, **kwargs: Any) -> None:
        self._position = _within(position, TRAVEL_MIN, TRAVEL_MAX, "position", "mm")
        self._speed = 10.0
        self._target: float | None = None
        self._homed = False
        self._lock = threading.Lock()
        self._halt = threading.Event()
        super().__init__(name, **kwargs)

    @property
    def position(self) -> Annotated[float, Range(TRAVEL_MIN, TRAVEL_MAX), Unit("mm"), Doc("current position")]:
        """Current position (mm); changes while the stage moves."""
        return self._position

    @property
    def speed(self) -> Annotated[float, Range(SPEED_MIN, SPEED_MAX), Unit("mm/s"), Doc("speed of moves")]:
        """Speed of moves (mm/s); a change applies to a move in progress too."""
        return self._speed

    @speed.setter
    def speed(self, value: float) -> None:
        self._speed = _within(value, SPEED_MIN, SPEED_MAX, "speed", "mm/s")

    @property
    def moving(self) -> Annotated[bool, Doc("a move is in progress")]:
        """Whether a move is in progress."""
        return self._target is not None

    @property
    def homed(self) -> Annotated[bool, Doc("home() completed since start")]:
        """Whether ``home()`` has completed since the stage started."""
        return self._homed

    def move_to(self, x: Annotated[float, Range(TRAVEL_MIN, TRAVEL_MAX), Unit("mm")]) -> Annotated[float, Unit("mm")]:
        """Move to ``x`` mm at ``speed``; returns the position reached (short of ``x`` if stopped).

        Blocks while moving and emits ``progress`` events about 10 times a second.
        """
        target = _within(x, TRAVEL_MIN, TRAVEL_MAX, "target", "mm")
        with self._lock:
            if self._target is not None:
                raise RuntimeError(f"stage {self._name!r} is already moving to {self._target:g} mm; call stop() first")
            self._target = target
            self._halt.clear()
        _publish(self, "moving")
        start = self._position
        try:
            last = time.monotonic()
            while True:
                now = time.monotonic()
                gap = target - self._position
                step = self._speed * (now - last)
                last = now
                self._position = target if abs(gap) <= step else self._position + math.copysign(step, gap)
                arrived = self._position == target
                self._report(start, target, moving=not arrived)
                if arrived:
                    break
                remaining = abs(target - self._position) / self._speed
                if self._halt.wait(min(0.1, remaining)):
                    self._report(start, target, moving=False)
                    break
        finally:
            with self._lock:
                self._target = None
            _publish(self, "moving")
        return self._position

    def _report(self, start: float, target: float, moving: bool) -> None:
        distance = abs(target - start)
        fraction = 1.0 if distance == 0 else min(1.0, abs(self._position - start) / distance)
        _publish(self, "position")
        self.progress({"position": round(self._position, 6), "target": target, "fraction": round(fraction, 4), "moving": moving})

    def home(self) -> Annotated[float, Unit("mm")]:
        """Move to the home position (0 mm); returns the position reached."""
        position = self.move_to(TRAVEL_MIN)
        if position == TRAVEL_MIN:
            self._homed = True
            _publish(self, "homed")
        return position

    def stop(self) -> Annotated[float, Unit("mm")]:
        """Stop a move in progress; returns the position (mm). Does nothing when the stage is still."""
        self._halt.set()
        return self._position

    @event
    def progress(self, state: dict[str, Any]) -> dict[str, Any]:
        """During a move: ``{"position", "target", "fraction" (0..1), "moving"}``."""
        return state


class Camera(LocalHERO):
    """A 12-bit camera looking at a sample; ``snap()`` exposes for ``exposure`` seconds and returns the image
    (and publishes it as the ``frame`` event).

    The image holds a dark offset, shot and read noise, a faint fixed sample and, when a laser
    is given and emitting, a laser spot whose brightness follows the laser's power and whose
    column follows a given stage's position. Pixels saturate at 4095 counts.

    Parameters
    ----------
    name
        HERO name.
    laser, stage
        Optional HEROs (local or remote) the camera sees, or functions returning the one to look at
        now (what ``start_lab`` passes, so that a laser the lab switched off and on again is seen).
    **kwargs
        Passed to ``LocalHERO``.
    """

    def __init__(self, name: str, *, laser: Any = None, stage: Any = None, **kwargs: Any) -> None:
        self._exposure = 0.01
        self._laser = laser
        self._stage = stage
        self._rng = np.random.default_rng()
        self._lock = threading.Lock()
        self._frames = 0
        y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
        self._grid = (y.astype(np.float64), x.astype(np.float64))
        self._sample = 4.0e4 * np.exp(-(((x - 0.3 * WIDTH) / 14.0) ** 2 + ((y - 0.6 * HEIGHT) / 9.0) ** 2))
        super().__init__(name, **kwargs)

    @property
    def exposure(self) -> Annotated[float, Range(EXPOSURE_MIN, EXPOSURE_MAX), Unit("s"), Doc("exposure time")]:
        """Exposure time of ``snap()`` (s)."""
        return self._exposure

    @exposure.setter
    def exposure(self, value: float) -> None:
        self._exposure = _within(value, EXPOSURE_MIN, EXPOSURE_MAX, "exposure", "s")

    @property
    def shape(self) -> Annotated[tuple[int, int], Doc("image shape (rows, columns)")]:
        """Image shape: (rows, columns)."""
        return (HEIGHT, WIDTH)

    @property
    def frames(self) -> Annotated[int, Doc("images taken since start")]:
        """How many images ``snap()`` has taken."""
        return self._frames

    def snap(self) -> np.ndarray:
        """Expose for ``exposure`` seconds and return the image: uint16 counts, shape (96, 128)."""
        exposure = self._exposure
        rate = 300.0 + self._sample + self._laser_spot()
        time.sleep(exposure)
        with self._lock:
            counts = self._rng.poisson(rate * exposure) + 100.0 + self._rng.normal(0.0, 3.0, rate.shape)
            self._frames += 1
        _publish(self, "frames")
        image: np.ndarray = np.clip(np.rint(counts), 0, FULL_SCALE).astype(np.uint16)
        self.frame(image)
        return image

    @event
    def frame(self, image: np.ndarray) -> np.ndarray:
        """Every image ``snap()`` takes (uint16 counts, shape (96, 128)), for live views."""
        return image

    def _laser_spot(self) -> np.ndarray | float:
        """Photon rate of the laser spot (counts/s per pixel), 0 when no laser shines."""
        laser, stage = _current(self._laser), _current(self._stage)
        if laser is None:
            return 0.0
        try:
            if not laser.emitting:
                return 0.0
            power = float(laser.power)
            column = 0.5 * WIDTH
            if stage is not None:
                column = (float(stage.position) - TRAVEL_MIN) / (TRAVEL_MAX - TRAVEL_MIN) * (WIDTH - 1)
        except Exception as exc:  # noqa: BLE001 - a vanished laser or stage means no spot, not a failed snap
            log.debug("camera %s: cannot read laser/stage: %s", self._name, exc)
            return 0.0
        y, x = self._grid
        spot: np.ndarray = 2.0e4 * power * np.exp(-(((x - column) / 4.0) ** 2 + ((y - 0.5 * HEIGHT) / 4.0) ** 2))
        return spot


class Logbook:
    """A lab logbook: an object that lives in the lab's process and cannot be sent over the network.

    Remote users get a reference to it and hand it back to ``Lab.write`` / ``Lab.read``.
    """

    def __init__(self, title: str) -> None:
        self.title = title
        self.entries: list[str] = []
        self.closed = False
        self._lock = threading.Lock()  # what makes it unserializable, like a file or a driver handle

    def append(self, text: str) -> int:
        with self._lock:
            if self.closed:
                raise ValueError(f"logbook {self.title!r} is closed")
            stamp = datetime.datetime.now().isoformat(timespec="seconds")
            self.entries.append(f"{stamp}  {text}")
            return len(self.entries)

    def __str__(self) -> str:
        return f"Logbook({self.title!r}, {len(self.entries)} entries{', closed' if self.closed else ''})"


class Lab(LocalHERO):
    """The lab: hands out its instruments (nested HEROs) and keeps logbooks (unserializable handles).

    Parameters
    ----------
    name
        HERO name.
    instruments
        The lab's instruments: HEROs (local or remote) by name, or a list of HERO names of the
        same realm, looked up when first asked for. Default: the demo's ``cryostat``, ``laser``,
        ``stage`` and ``camera``, looked up by name.
    starters
        Instruments the lab may switch off and on (``switch_off``, ``switch_on``): name -> a
        function serving a fresh HERO of that name in this process. ``start_lab`` passes one per
        instrument; without them the lab switches nothing.
    **kwargs
        Passed to ``LocalHERO``.
    """

    def __init__(self, name: str, *, instruments: dict[str, Any] | list[str] | None = None,
                 starters: Mapping[str, Callable[[], LocalHERO]] | None = None, **kwargs: Any) -> None:
        if instruments is None:
            instruments = ["cryostat", "laser", "stage", "camera"]
        if isinstance(instruments, dict):
            self._instruments: dict[str, Any] = dict(instruments)
        elif isinstance(instruments, (list, tuple)) and all(isinstance(n, str) for n in instruments):
            self._instruments = dict.fromkeys(instruments)
        else:
            raise TypeError(f"instruments must be a dict of HEROs or a list of HERO names, not {type(instruments).__name__}")
        self._starters = dict(starters or {})
        self._off: set[str] = set()
        self._lookup_lock = threading.Lock()
        self._switch_lock = threading.Lock()  # one switch at a time: a second one waits for the first to finish
        super().__init__(name, **kwargs)

    def instrument(self, name: str) -> Any:
        """The instrument ``name`` (a HERO: remote callers get a proxy to it)."""
        if not isinstance(name, str) or name not in self._instruments:
            known = ", ".join(self._instruments) or "none"
            raise LookupError(f"the lab has no instrument {name!r}; it has: {known}")
        with self._lookup_lock:
            if name in self._off:
                raise LookupError(f"the lab's {name} is switched off; switch_on({name!r}) brings it back")
            hero = self._instruments[name]
            if hero is None or isinstance(hero, str):
                hero = RemoteHERO(hero or name, realm=self._realm)
                self._instruments[name] = hero
        return hero

    def instruments(self) -> dict[str, Any]:
        """Every instrument by name (HEROs: remote callers get proxies)."""
        return {name: self.instrument(name) for name in list(self._instruments) if name not in self._off}

    def status(self) -> dict[str, dict[str, Any]]:
        """A snapshot of every instrument's attributes, by instrument name."""
        out: dict[str, dict[str, Any]] = {}
        for name in list(self._instruments):
            try:
                hero = self.instrument(name)
                out[name] = {attr: getattr(hero, attr) for attr in _attribute_names(hero)}
            except Exception as exc:  # noqa: BLE001 - one unreachable instrument must not hide the others
                out[name] = {"error": f"{type(exc).__name__}: {exc}"}
        return out

    def describe(self, hero: Any) -> str:
        """One line about any HERO handed in (HEROs travel as references and arrive as proxies)."""
        if isinstance(hero, LocalHERO):
            caps = hero.capabilities
        elif isinstance(hero, RemoteHERO):
            caps = tools.capabilities(hero)
        else:
            raise TypeError(f"describe() needs a HERO, not {type(hero).__name__}")
        counts = {flavor: sum(1 for c in caps if c.flavor == flavor and not c.name.startswith("_")) for flavor in ("attribute", "method", "event")}
        kind = type(hero).__name__ if isinstance(hero, LocalHERO) else tools.descriptor(hero).get("class", "?")
        return (f"{hero._name}: {kind} with {counts['attribute']} attributes, {counts['method']} methods, "
                f"{counts['event']} events, seen from the lab HERO {self._name!r}")

    def switch_off(self, name: Annotated[str, Doc("an instrument: cryostat, laser, stage or camera")]) -> str:
        """Switch an instrument off: its HERO stops and leaves the network (panels of it grey out).

        Like pulling a real instrument's plug, its settings are lost: ``switch_on(name)`` brings a
        fresh HERO of the same name, in its start state, and panels rebind to it by themselves.
        """
        self._switchable(name)
        with self._switch_lock:
            with self._lookup_lock:
                if name in self._off:
                    return f"{name} is off already"
                self._off.add(name)
                hero = self._instruments.get(name)
            if isinstance(hero, LocalHERO):
                hero._destroy_hero()
        _publish(self, "switched_off")
        return f"{name} switched off"

    def switch_on(self, name: Annotated[str, Doc("an instrument: cryostat, laser, stage or camera")]) -> str:
        """Switch an instrument on again: a fresh HERO of that name joins the network (panels rebind)."""
        self._switchable(name)
        with self._switch_lock:
            with self._lookup_lock:
                if name not in self._off:
                    return f"{name} is on already"
            hero = self._starters[name]()
            with self._lookup_lock:
                self._instruments[name] = hero
                self._off.discard(name)
        _publish(self, "switched_off")
        return f"{name} switched on"

    @property
    def switched_off(self) -> Annotated[list[str], Doc("instruments switched off with switch_off()")]:
        """The instruments switched off now (``switch_on(name)`` brings one back)."""
        return sorted(self._off)

    def _switchable(self, name: Any) -> None:
        if not isinstance(name, str) or name not in self._starters:
            known = ", ".join(self._starters) or "none"
            raise LookupError(f"the lab cannot switch {name!r} off or on; it switches: {known}")

    def open_logbook(self, title: str = "lab logbook") -> Logbook:
        """Open a logbook; remote callers get a reference (the logbook stays here)."""
        return Logbook(str(title))

    def write(self, logbook: Logbook, text: str) -> int:
        """Add ``text`` to ``logbook`` (a reference from ``open_logbook``); returns the number of entries."""
        return _logbook(logbook).append(str(text))

    def read(self, logbook: Logbook) -> list[str]:
        """The entries of ``logbook``, oldest first."""
        return list(_logbook(logbook).entries)

    def close_logbook(self, logbook: Logbook) -> int:
        """Close ``logbook``: later writes fail. Returns its number of entries."""
        book = _logbook(logbook)
        book.closed = True
        return len(book.entries)


def _current(ref: Any) -> Any:
    """The HERO ``ref`` stands for: itself, or what a function given in its place returns now."""
    if ref is None or isinstance(ref, (LocalHERO, RemoteHERO)) or not callable(ref):
        return ref
    return ref()


def _logbook(obj: Any) -> Logbook:
    if not isinstance(obj, Logbook):
        raise TypeError(f"expected a logbook from open_logbook(), got {type(obj).__name__}")
    return obj


def _attribute_names(hero: Any) -> list[str]:
    caps = hero.capabilities if isinstance(hero, LocalHERO) else tools.capabilities(hero)
    return [c.name for c in caps if c.flavor == "attribute" and not c.name.startswith("_")]
