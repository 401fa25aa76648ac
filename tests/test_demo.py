"""The demo lab's instruments: limits, interlock, motion and progress events, camera images, nested
HEROs and the logbook reference, driven through RemoteHERO from this process while the lab runs in
another one (``python -m heros demo``)."""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from lab_process import start_demo

from heros import HEROObserver, RemoteHERO
from heros.demo import LAB_NAMES, Lab, TemperatureController, start_lab
from heros.exceptions import RemoteHEROError
from heros.references import UnserializableRemoteObject


@pytest.fixture(scope="module")
def lab_realm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A demo lab in a subprocess, for the whole module, in a realm of its own."""
    realm = f"demo{uuid.uuid4().hex[:10]}"
    proc = start_demo(realm, tmp_path_factory.mktemp("demo") / "demo.log")
    yield realm
    assert proc.terminate() == 0, proc.log()


@pytest.fixture
def hero(lab_realm: str) -> Iterator[Any]:
    """``hero("laser")``: a proxy to an instrument of the lab, closed after the test."""
    proxies: list[RemoteHERO] = []

    def connect(name: str) -> RemoteHERO:
        proxy = RemoteHERO(name, realm=lab_realm)
        proxies.append(proxy)
        return proxy

    yield connect
    for proxy in proxies:
        proxy._destroy_hero()


def collect(handler: Any, predicate: Any, timeout: float) -> list[Any]:
    """Values of an event until ``predicate(values)`` holds; fails after ``timeout`` seconds."""
    values: list[Any] = []
    done = threading.Event()

    def callback(value: Any) -> None:
        values.append(value)
        if predicate(values):
            done.set()

    handler.connect(callback)
    try:
        assert done.wait(timeout), f"condition not met within {timeout} s; got {values[-5:]}"
    finally:
        handler.disconnect(callback)
    return values


def test_lab_serves_the_contract(lab_realm: str) -> None:
    expected = {"cryostat": "TemperatureController", "laser": "Laser", "stage": "Stage", "camera": "Camera", "lab": "Lab"}
    with HEROObserver(lab_realm) as observer:
        assert observer.wait_for(lambda known: set(LAB_NAMES) <= known.keys(), 10)
        assert {n: d["class"] for n, d in observer.known_objects.items()} == expected
        assert all("demo" in d["tags"] for d in observer.known_objects.values())


def test_cryostat_units_limits_and_relaxation(hero: Any) -> None:
    cryostat = hero("cryostat")
    caps = cryostat._heros_caps
    assert (caps["setpoint"].extra["min"], caps["setpoint"].extra["max"], caps["setpoint"].extra["unit"]) == (3, 350, "K")
    assert caps["temperature"].access == "r" and caps["temperature"].extra["unit"] == "K"
    assert caps["ramp_rate"].extra["unit"] == "K/s"
    with pytest.raises(ValueError, match=r"attribute 'setpoint' of HERO 'cryostat' must be within 3\.\.350 K, not 1000"):
        cryostat.setpoint = 1000
    with pytest.raises(ValueError, match="must be within 3..350 K, not 2.5"):
        cryostat.setpoint = 2.5
    with pytest.raises(TypeError, match="attribute 'setpoint' of HERO 'cryostat' must be a number, not str"):
        cryostat.setpoint = "cold"
    with pytest.raises(AttributeError, match="read-only"):
        cryostat.temperature = 4
    start = cryostat.temperature
    cryostat.setpoint = 200
    assert cryostat.setpoint == 200.0
    values = collect(cryostat.temperature_changed, lambda v: v[-1] < start - 10, timeout=10)
    assert values[-1] > 200  # relaxes with a delay, not a jump
    cryostat.setpoint = start


def test_temperature_event_rate_and_noise(hero: Any) -> None:
    cryostat = hero("cryostat")
    t0 = time.monotonic()
    values = collect(cryostat.temperature_changed, lambda v: len(v) >= 10, timeout=10)
    elapsed = time.monotonic() - t0
    assert 1.0 < elapsed < 5.0, f"10 events took {elapsed:.2f} s, expected about 2 s at 5 Hz"
    assert all(isinstance(v, float) for v in values)
    assert len(set(values)) > 5  # noisy readings


def test_ramp_and_stop_ramp(hero: Any) -> None:
    cryostat = hero("cryostat")
    changes: queue.Queue[float] = queue.Queue()
    sub = cryostat._watch_attribute("setpoint", changes.put)
    try:
        for _ in range(50):  # the subscription becomes live asynchronously: write until a change arrives
            cryostat.setpoint = 300
            try:
                if changes.get(timeout=0.2) == 300.0:
                    break
            except queue.Empty:
                continue
        else:
            pytest.fail("no setpoint change publication arrived")
        seconds = cryostat.ramp(290, rate=20)
        assert seconds == pytest.approx(0.5)
        deadline = time.monotonic() + 10
        while (value := changes.get(timeout=deadline - time.monotonic())) != 290.0:
            assert 290.0 < value <= 300.0  # the ramp publishes the setpoint on its way down
    finally:
        sub.close()
    assert cryostat.ramping is False
    cryostat.ramp(3, rate=1)
    assert cryostat.ramping is True
    held = cryostat.stop_ramp()
    assert cryostat.ramping is False and cryostat.setpoint == held and 285 < held <= 290
    with pytest.raises(ValueError, match=r"argument 'target' of ramp\(\) of HERO 'cryostat' must be within 3\.\.350 K, not 1000"):
        cryostat.ramp(1000)
    with pytest.raises(ValueError, match=r"argument 'rate' of ramp\(\) of HERO 'cryostat' must be within 0.01..50 K/s, not 0"):
        cryostat.ramp(100, rate=0)


def test_laser_limits_choices_and_interlock(hero: Any) -> None:
    laser = hero("laser")
    caps = laser._heros_caps
    assert (caps["power"].extra["min"], caps["power"].extra["max"], caps["power"].extra["unit"]) == (0, 50, "mW")
    assert caps["wavelength"].extra["choices"] == [405, 532, 633, 780]
    with pytest.raises(ValueError, match=r"attribute 'power' of HERO 'laser' must be within 0\.\.50 mW, not 60"):
        laser.power = 60
    with pytest.raises(ValueError, match="must be one of 405, 532, 633, 780 nm, not 500"):
        laser.wavelength = 500
    laser.wavelength = 633
    assert laser.wavelength == 633

    laser.enabled = False
    laser.interlock_closed = False
    with pytest.raises(RemoteHEROError, match="interlock is open") as info:
        laser.enabled = True
    assert info.value.remote_type == "InterlockError"
    assert laser.enabled is False

    laser.interlock_closed = True
    laser.power = 10
    laser.enabled = True
    assert laser.emitting is True
    assert laser.pulse(0.02) == "0.2 mJ at 633 nm (10 mW for 0.02 s)"

    laser.interlock_closed = False  # the door opens while the laser is on: the beam is blocked
    assert laser.emitting is False and laser.enabled is True
    with pytest.raises(RemoteHEROError, match="power cannot be raised to 20 mW") as info:
        laser.power = 20
    assert info.value.remote_type == "InterlockError"
    with pytest.raises(RemoteHEROError, match="cannot pulse: the interlock is open"):
        laser.pulse()
    laser.power = 0  # turning down is always allowed
    laser.interlock_closed = True
    laser.enabled = False
    with pytest.raises(RuntimeError, match="not enabled"):
        laser.pulse()


def test_stage_moves_over_time_with_progress(hero: Any) -> None:
    stage = hero("stage")
    stage.speed = 20
    start = stage.position
    target = 20.0 if start < 10 else 0.0
    reports: list[dict[str, Any]] = []
    last = threading.Event()

    def on_progress(report: dict[str, Any]) -> None:
        reports.append(report)
        if not report["moving"]:
            last.set()

    stage.progress.connect(on_progress)
    for _ in range(50):  # a move to where the stage is reports once: until one arrives, the subscription is not live
        stage.move_to(start)
        if last.wait(0.2):
            break
    else:
        pytest.fail("no progress event arrived")
    reports.clear()
    last.clear()
    t0 = time.monotonic()
    assert stage.move_to(target) == target
    elapsed = time.monotonic() - t0
    assert last.wait(5)
    stage.progress.disconnect(on_progress)
    assert elapsed >= abs(target - start) / 20 * 0.9
    assert len(reports) >= 5
    fractions = [r["fraction"] for r in reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert reports[-1] == {"position": target, "target": target, "fraction": 1.0, "moving": False}
    assert stage.position == target
    with pytest.raises(AttributeError, match="read-only"):
        stage.position = 3
    with pytest.raises(ValueError, match=r"argument 'x' of move_to\(\) of HERO 'stage' must be within 0\.\.50 mm, not 80"):
        stage.move_to(80)
    with pytest.raises(ValueError, match="attribute 'speed' of HERO 'stage' must be within 0.1..20 mm/s, not 30"):
        stage.speed = 30


def test_stage_stop_and_home(hero: Any) -> None:
    stage = hero("stage")
    stage.speed = 20
    stage.move_to(0)
    stage.speed = 2  # 40 mm take 20 s
    moving = threading.Event()
    stage.progress.connect(lambda report: moving.set() if report["moving"] else None)
    result: queue.Queue[Any] = queue.Queue()
    mover = threading.Thread(target=lambda: result.put(stage.move_to.with_timeout(30)(40)))
    mover.start()
    assert moving.wait(10)
    with pytest.raises(RuntimeError, match="already moving to 40 mm; call stop"):
        stage.move_to(10)
    stopped_at = stage.stop()
    reached = result.get(timeout=10)
    mover.join(5)
    assert 0 < reached < 5 and reached == pytest.approx(stopped_at, abs=0.5)
    assert stage.moving is False
    stage.speed = 20
    assert stage.home() == 0.0
    assert stage.homed is True


def test_camera_image_depends_on_exposure_and_laser(hero: Any) -> None:
    camera, laser, stage = hero("camera"), hero("laser"), hero("stage")
    assert camera._heros_caps["exposure"].extra == {"min": 0.001, "max": 10, "unit": "s", "doc": "exposure time"}
    camera.exposure = 0.005
    dim = camera.snap()
    camera.exposure = 0.05
    bright = camera.snap()
    assert isinstance(dim, np.ndarray) and dim.ndim == 2 and dim.shape == (96, 128) and dim.dtype == np.uint16
    assert bright.mean() - 100 > 5 * (dim.mean() - 100)  # above the 100-count offset, 10 times the exposure
    with pytest.raises(ValueError, match=r"attribute 'exposure' of HERO 'camera' must be within 0\.001\.\.10 s, not 0"):
        camera.exposure = 0
    frames = camera.frames
    assert frames >= 2 and camera.shape == (96, 128)

    camera.exposure = 0.002
    stage.speed = 20
    laser.interlock_closed = True
    laser.power = 5
    laser.enabled = True
    try:
        columns = []
        for x in (10.0, 40.0):
            stage.move_to(x)
            columns.append(int(camera.snap().sum(axis=0).argmax()))
    finally:
        laser.enabled = False
        laser.power = 0
    assert abs(columns[0] - 10 / 50 * 127) <= 3 and abs(columns[1] - 40 / 50 * 127) <= 3


def test_nested_heros_and_logbook_reference(hero: Any, lab_realm: str) -> None:
    lab = hero("lab")
    instruments = lab.instruments()
    assert set(instruments) == {"cryostat", "laser", "stage", "camera"}
    assert all(isinstance(p, RemoteHERO) for p in instruments.values())
    assert instruments["laser"]._name == "laser" and instruments["laser"].wavelength in (405, 532, 633, 780)
    assert lab.instrument("stage").speed > 0
    with pytest.raises(LookupError, match="the lab has no instrument 'oven'; it has: cryostat, laser, stage, camera"):
        lab.instrument("oven")
    assert lab.describe(hero("camera")).startswith("camera: Camera with 3 attributes, 1 methods, 1 events")
    status = lab.status()
    assert set(status["laser"]) == {"emitting", "enabled", "interlock_closed", "power", "wavelength"}

    book = lab.open_logbook("test run")
    assert isinstance(book, UnserializableRemoteObject)
    assert book.type == "heros.demo.instruments.Logbook" and "test run" in book.representation
    assert lab.write(book, "first") == 1
    assert lab.write(book, "second") == 2
    assert [e.split("  ", 1)[1] for e in lab.read(book)] == ["first", "second"]
    with pytest.raises(TypeError, match="expected a logbook from open_logbook"):
        lab.write("a string", "text")
    assert lab.close_logbook(book) == 2
    with pytest.raises(ValueError, match="logbook 'test run' is closed"):
        lab.write(book, "too late")

    # a Lab of this process finds the instruments of the other process by name
    with Lab("lab2", realm=lab_realm, instruments=["laser"]) as lab2:
        assert lab2.instrument("laser").wavelength in (405, 532, 633, 780)
        lab2.instrument("laser")._destroy_hero()


def test_simulation_thread_stops_with_the_hero(realm: str) -> None:
    cryostat = TemperatureController("cryo", realm=realm, interval=0.05)
    ticker = cryostat._ticker
    assert ticker.running
    cryostat._destroy_hero()
    assert not ticker.running
    with TemperatureController("cryo2", realm=realm, interval=0.05) as other:
        ticker = other._ticker
        assert ticker.running
    assert not ticker.running


def test_start_lab_in_process(realm: str) -> None:
    with start_lab(realm) as lab, HEROObserver(realm) as observer:
        assert list(lab) == list(LAB_NAMES)
        assert observer.wait_for(lambda known: set(LAB_NAMES) <= known.keys(), 10)
        heros = list(lab.values())
        lab.stop()
        assert lab == {} and all(h._hero_destroyed for h in heros)
        assert observer.wait_for(lambda known: not known, 10)
        assert not heros[0]._ticker.running


def test_the_lab_switches_an_instrument_off_and_on(realm: str) -> None:
    """``lab.switch_off("laser")``: the laser's HERO leaves the network; ``switch_on``: a fresh one joins,
    which the camera sees and ``DemoLab.stop()`` stops."""
    with start_lab(realm) as lab, HEROObserver(realm) as observer:
        assert observer.wait_for(lambda known: set(LAB_NAMES) <= known.keys(), 10)
        control, camera = RemoteHERO("lab", realm=realm), RemoteHERO("camera", realm=realm)
        camera.exposure = 0.002
        old = lab["laser"]
        old.power, old.enabled = 20.0, True
        lit = camera.snap().max()
        assert control.switch_off("laser") == "laser switched off"
        assert observer.wait_for(lambda known: "laser" not in known, 10)
        assert old._hero_destroyed and control.switched_off == ["laser"]
        assert control.switch_off("laser") == "laser is off already"
        with pytest.raises(LookupError, match=r"the lab's laser is switched off; switch_on\('laser'\) brings it back"):
            control.instrument("laser")
        assert set(control.instruments()) == {"cryostat", "stage", "camera"}
        assert "switched off" in control.status()["laser"]["error"]
        dark = camera.snap().max()  # no laser, no spot
        assert dark < lit / 4, (dark, lit)

        assert control.switch_on("laser") == "laser switched on"
        assert observer.wait_for(lambda known: "laser" in known, 10)
        assert control.switched_off == [] and control.switch_on("laser") == "laser is on already"
        new = lab["laser"]
        assert new is not old and not new._hero_destroyed and list(lab) == list(LAB_NAMES)
        with RemoteHERO("laser", realm=realm) as laser:
            assert (laser.power, laser.enabled) == (0.0, False)  # a fresh laser, as after a power cycle
            laser.power, laser.enabled = 20.0, True
            assert camera.snap().max() > dark * 4  # the camera looks at the new laser
        with pytest.raises(LookupError, match="the lab cannot switch 'lab' off or on; it switches: cryostat, laser, stage, camera"):
            control.switch_off("lab")
        with pytest.raises(LookupError, match="cannot switch 'oven'"):
            control.switch_on("oven")
        control._destroy_hero()
        camera._destroy_hero()
    assert new._hero_destroyed and all(hero._hero_destroyed for hero in (old, new))
