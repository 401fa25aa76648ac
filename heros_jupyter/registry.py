"""The live registry in the kernel: which HEROs of a realm are alive, as a traitlets model widgets can observe.

A ``Registry`` wraps a ``heros.HEROObserver``. Joins and leaves follow the HEROs' liveliness
tokens; metadata (class, tags) comes from discovery. The observer's callbacks run on HEROS worker
threads, so they only hand the change to the loop bridge; the ``heroes`` trait changes on the
kernel's loop thread, where widgets observing it may touch the frontend.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from traitlets import Bool, Dict, HasTraits, Unicode

from heros import HEROObserver
from heros.tools import is_upstream

from ._bridge import LoopBridge

__all__ = ["Registry", "format_table", "hero_info"]

log = logging.getLogger("heros_jupyter")


def hero_info(name: str, descriptor: dict[str, Any]) -> dict[str, Any]:
    """The row the registry keeps for one HERO: name, class, public tags, interfaces, alive, since, and
    whether upstream HEROS serves it."""
    tags = sorted(str(t) for t in descriptor.get("tags") or () if not str(t).startswith("_"))
    return {
        "name": name,
        "class": str(descriptor.get("class", "?")),
        "upstream": is_upstream(descriptor),
        "tags": tags,
        "implements": sorted(str(i) for i in descriptor.get("implements") or ()),
        "alive": True,
        "since": time.strftime("%H:%M:%S"),
    }


def format_table(realm: str, heroes: dict[str, dict[str, Any]], tag: str | None = None) -> str:
    """A plain-text table of ``heroes`` (for terminals and ``%heros list``)."""
    rows = [h for _, h in sorted(heroes.items()) if tag is None or tag in h["tags"]]
    what = f" with tag {tag!r}" if tag else ""
    if not rows:
        return f"No HERO{what} is alive in realm {realm!r}."
    head = ("name", "class", "tags", "alive since")
    cells = [(h["name"], h["class"] + (" (upstream HEROS)" if h.get("upstream") else ""), ", ".join(h["tags"]) or "-", h["since"])
             for h in rows]
    widths = [max(len(str(r[i])) for r in [head, *cells]) for i in range(len(head))]
    lines = [f"{len(rows)} HERO{'s' if len(rows) != 1 else ''}{what} alive in realm {realm!r}:"]
    for r in [head, *cells]:
        lines.append("  " + "  ".join(str(c).ljust(wd) for c, wd in zip(r, widths, strict=True)).rstrip())
    return "\n".join(lines)


class Registry(HasTraits):
    """The HEROs alive in one realm, kept live by liveliness.

    Parameters
    ----------
    realm
        The realm to watch.
    bridge
        Where trait changes are applied (the kernel's loop thread).
    discovery_timeout
        Seconds the first discovery waits for answers.

    Discovery starts at construction on a background thread; ``wait_ready`` waits for the first
    answer. ``heroes`` (name -> row dict, see ``hero_info``) changes only on the loop thread.
    """

    realm = Unicode(help="The realm watched.")
    heroes = Dict(help="name -> {name, class, tags, implements, alive, since} of the HEROs alive.")
    ready = Bool(False, help="True once the first discovery answered.")
    error = Unicode("", help="Why discovery could not start, if it could not.")

    def __init__(self, realm: str, bridge: LoopBridge, *, discovery_timeout: float = 2.0) -> None:
        super().__init__(realm=realm)
        self._bridge = bridge
        self._timeout = discovery_timeout
        self._observer: HEROObserver | None = None
        self._started = threading.Event()
        self._closed = False
        self.joins = 0
        self.leaves = 0
        threading.Thread(target=self._start, name=f"heros-discovery-{realm}", daemon=True).start()

    def _start(self) -> None:
        try:
            observer = HEROObserver(self.realm, timeout=self._timeout)
        except Exception as exc:  # noqa: BLE001 - reported by the magic
            log.warning("discovery in realm %r could not start: %s", self.realm, exc)
            self._bridge.call(setattr, self, "error", f"{type(exc).__name__}: {exc}")
            self._started.set()
            return
        if self._closed:
            observer._destroy_hero()
            self._started.set()
            return
        observer.register_object_added_callback(self._added)
        observer.register_object_removed_callback(self._removed)
        self._observer = observer
        # after the callbacks: a join or leave from now on is queued behind this seed
        self._bridge.call(self._seed, dict(observer.known_objects))
        self._started.set()

    def wait_ready(self, timeout: float) -> bool:
        """Wait until the first discovery answered; False if ``timeout`` seconds pass first."""
        return self._started.wait(timeout)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """The HEROs alive now, from any thread (the observer's view, which the trait follows)."""
        observer = self._observer
        if observer is None:
            return dict(self.heroes)
        current = dict(self.heroes)
        return {name: current.get(name) or hero_info(name, d) for name, d in dict(observer.known_objects).items()}

    def names(self) -> list[str]:
        """Names of the HEROs alive now, sorted (used for Tab completion)."""
        return sorted(self.snapshot())

    def wait_for(self, name: str, timeout: float) -> bool:
        """Wait until ``name`` is alive; False after ``timeout`` seconds."""
        self.wait_ready(timeout)
        observer = self._observer
        return observer is not None and observer.wait_for(lambda known: name in known, timeout)

    def _added(self, name: str) -> None:
        """Observer thread: hand the join to the loop."""
        observer = self._observer
        descriptor = observer.known_objects.get(name) if observer is not None else None
        if descriptor is not None:
            self._bridge.call(self._apply_added, name, descriptor)

    def _removed(self, name: str) -> None:
        """Observer thread: hand the leave to the loop."""
        self._bridge.call(self._apply_removed, name)

    def _seed(self, known: dict[str, dict[str, Any]]) -> None:
        self.heroes = {name: hero_info(name, d) for name, d in known.items()}
        self.ready = True

    def _apply_added(self, name: str, descriptor: dict[str, Any]) -> None:
        if self._closed:
            return
        self.joins += 1
        self.heroes = {**self.heroes, name: hero_info(name, descriptor)}

    def _apply_removed(self, name: str) -> None:
        if self._closed or name not in self.heroes:
            return
        self.leaves += 1
        self.heroes = {n: h for n, h in self.heroes.items() if n != name}

    def text(self, tag: str | None = None) -> str:
        """The plain-text table of the HEROs alive now."""
        return format_table(self.realm, self.snapshot(), tag)

    def close(self) -> None:
        """Stop watching and release the observer's session."""
        self._closed = True
        observer = self._observer
        self._observer = None
        if observer is not None:
            observer.remove_object_added_callback(self._added)
            observer.remove_object_removed_callback(self._removed)
            observer._destroy_hero()

    def __repr__(self) -> str:
        return f"<Registry realm={self.realm!r} alive={sorted(self.heroes)}>"
