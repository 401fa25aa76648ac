"""The demo lab: simulated instruments served as HEROs, no hardware needed.

::

    from heros.demo import start_lab

    with start_lab(realm="heros") as lab:   # cryostat, laser, stage, camera, lab
        ...                                 # drive them from anywhere with RemoteHERO("laser")

``heros demo`` on the command line does the same until Ctrl-C. The instruments live in
``heros.demo.instruments``; the notebooks that tour them ship in ``heros/demo/notebooks/``, and
``heros.demo.workdir`` copies them to a folder where Jupyter may save them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from heros.local import LocalHERO
from heros.zenoh import ZenohSessionManager

from .instruments import Camera, InterlockError, Lab, Laser, Logbook, Stage, TemperatureController

__all__ = [
    "Camera",
    "DemoLab",
    "InterlockError",
    "LAB_NAMES",
    "Lab",
    "Laser",
    "Logbook",
    "Stage",
    "TemperatureController",
    "start_lab",
    "stop_lab",
]

#: The HEROs ``start_lab`` serves, in start order.
LAB_NAMES = ("cryostat", "laser", "stage", "camera", "lab")


class DemoLab(dict[str, LocalHERO]):
    """The running demo lab: a dict of HERO name -> LocalHERO that can stop them all.

    Use it as a context manager, or call ``stop()``.
    """

    def stop(self) -> None:
        """Stop serving every HERO of the lab (in reverse start order); calling it twice is harmless."""
        for name in reversed(list(self)):
            self.pop(name)._destroy_hero()

    def __enter__(self) -> DemoLab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_lab(realm: str = "heros", session_manager: ZenohSessionManager | None = None) -> DemoLab:
    """Serve the demo lab's HEROs in this process.

    The ``lab`` HERO can switch the other instruments off and on (``lab.switch_off("laser")``,
    ``lab.switch_on("laser")``): the HERO leaves the network and a fresh one comes back, as when a
    real instrument's process stops and starts again. The returned ``DemoLab`` always holds the
    instruments being served now.

    Parameters
    ----------
    realm
        The realm to serve them in.
    session_manager
        Where the zenoh session comes from (the process-wide default if None).

    Returns
    -------
    DemoLab
        ``{"cryostat": TemperatureController, "laser": Laser, "stage": Stage, "camera": Camera,
        "lab": Lab}``; ``stop()`` it (or leave its ``with`` block) to stop serving.
    """
    common: dict[str, Any] = {"realm": realm, "session_manager": session_manager}
    lab = DemoLab()

    def current(name: str) -> Callable[[], LocalHERO | None]:
        # what the camera looks at: the instrument served now (None while it is switched off)
        def hero() -> LocalHERO | None:
            found = lab.get(name)
            return None if found is None or found._hero_destroyed else found

        return hero

    factories: dict[str, Callable[[], LocalHERO]] = {
        "cryostat": lambda: TemperatureController("cryostat", tags=["demo", "temperature"], **common),
        "laser": lambda: Laser("laser", tags=["demo", "light"], **common),
        "stage": lambda: Stage("stage", tags=["demo", "motion"], **common),
        "camera": lambda: Camera("camera", laser=current("laser"), stage=current("stage"), tags=["demo", "imaging"], **common),
    }

    def starter(name: str) -> Callable[[], LocalHERO]:
        def start() -> LocalHERO:
            hero = factories[name]()
            lab[name] = hero  # replaces a switched-off one in place: stop() stops what runs now
            return hero

        return start

    starters = {name: starter(name) for name in factories}
    try:
        for start in starters.values():
            start()
        instruments = {name: lab[name] for name in factories}
        lab["lab"] = Lab("lab", instruments=instruments, starters=starters, tags=["demo"], **common)
    except BaseException:
        lab.stop()
        raise
    return lab


def stop_lab(lab: dict[str, LocalHERO]) -> None:
    """Stop every HERO of a lab returned by ``start_lab`` (also accepts a plain dict of HEROs)."""
    for name in reversed(list(lab)):
        lab.pop(name)._destroy_hero()
