"""The surface for tools that drive HEROs: the Jupyter layer, the ``heros`` command, a GUI, an archiver.

Module-level functions that take a proxy (or a discovery descriptor), so that nothing here can
clash with the name of a remote member. Tools use these, the public classes and upstream's own
underscore API (``_name``, ``_realm``, ``_destroy_hero``), never the core's other ``_`` names;
``tests/test_architecture.py`` checks that for ``heros_jupyter`` and ``heros.cli``.

::

    from heros import RemoteHERO, tools

    laser = RemoteHERO("laser")
    print(tools.summary(laser))
    sub = tools.watch_attributes(laser, lambda name, value: print(name, value))
    ...
    sub.close()
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import keys
from .capabilities import AttributeCapability, Capability, EventCapability
from .event import subscribe_event
from .local import CODEC_TAG, LocalHERO
from .remote import RemoteHERO
from .render import summary_text
from .subscription import MAX_QUEUED_BYTES, MAX_QUEUED_SAMPLES, Subscription

__all__ = [
    "Subscription",
    "capabilities",
    "capability",
    "descriptor",
    "is_alive",
    "is_upstream",
    "protocol_version",
    "publish_attribute",
    "refresh",
    "subscribe",
    "summary",
    "value_event",
    "watch_attribute",
    "watch_attributes",
]


def capabilities(proxy: RemoteHERO, *, private: bool = False) -> list[Capability]:
    """The HERO's capabilities as its proxy knows them (``_``-prefixed ones only with ``private``)."""
    proxy._heros_connect()
    return [c for c in proxy._remote_capabilities if private or not c.name.startswith("_")]


def capability(proxy: RemoteHERO, name: str) -> Capability | None:
    """The capability ``name`` of the HERO, or None if it has none of that name."""
    proxy._heros_connect()
    caps: dict[str, Capability] = proxy._heros_caps
    return caps.get(name)


def descriptor(proxy: RemoteHERO) -> dict[str, Any]:
    """The HERO's discovery descriptor (class, tags, implements, extra metadata)."""
    proxy._heros_connect()
    return dict(proxy._hero_descriptor)


def protocol_version(proxy: RemoteHERO) -> float:
    """The HEROS protocol version the HERO speaks (1.0; 0.1 for old upstream HEROs)."""
    proxy._heros_connect()
    return float(proxy.__dict__.get("_proto_version", 1.0))


def is_upstream(hero: Any) -> bool:
    """Whether a HERO is served by upstream HEROS (CBOR; no attribute-change publications, no
    units or limits), given its proxy or its discovery descriptor."""
    if isinstance(hero, dict):
        return CODEC_TAG not in (hero.get("tags") or ())
    hero._heros_connect()
    return bool(hero._heros_upstream)


def is_alive(proxy: RemoteHERO, timeout: float = 1.0) -> bool:
    """Whether the HERO's liveliness token is present now."""
    return bool(proxy._is_alive(timeout))


def refresh(proxy: RemoteHERO) -> None:
    """Fetch the HERO's capabilities (and descriptor) again, after it restarted with other ones."""
    proxy._refresh()


def summary(proxy: RemoteHERO, values: dict[str, Any] | None = None) -> str:
    """A text summary of the HERO as its proxy shows itself (``heros.render.summary_text``), with
    attribute ``values`` if given."""
    d = descriptor(proxy)
    title = f"RemoteHERO {proxy._name!r} (realm {proxy._realm!r}, class {d.get('class', '?')})"
    return summary_text(proxy._name, proxy._realm, d, capabilities(proxy), values, title=title)


def subscribe(proxy: RemoteHERO, event: str, callback: Callable[[Any], None], *, reliable: bool | None = None,
              max_samples: int = MAX_QUEUED_SAMPLES, max_bytes: int = MAX_QUEUED_BYTES) -> Subscription:
    """Call ``callback(value)`` for each publication of ``event``, in order, on a worker thread.

    ``reliable`` (default: as the event was declared) pushes back on the HERO when the callback
    falls ``max_samples`` samples or ``max_bytes`` bytes behind; best effort drops the oldest and
    counts them in ``Subscription.dropped``. ``close()`` the subscription to stop: once it returns,
    ``callback`` is not called again.
    """
    cap = capability(proxy, event)
    if cap is None or cap.flavor != "event":
        raise AttributeError(f"HERO {proxy._name!r} (realm {proxy._realm!r}) has no event {event!r}")
    if reliable is None:
        reliable = bool(cap.extra.get("reliable"))
    return subscribe_event(proxy, event, callback, reliable=reliable, max_samples=max_samples, max_bytes=max_bytes)


def watch_attribute(proxy: RemoteHERO, name: str, callback: Callable[[Any], None]) -> Subscription:
    """Call ``callback(value)`` whenever the attribute ``name`` is written, by anyone.

    Raises ``NotImplementedError`` for an upstream HEROS HERO (it publishes no changes: poll it).
    """
    return proxy._watch_attribute(name, callback)


def watch_attributes(proxy: RemoteHERO, callback: Callable[[str, Any], None]) -> Subscription:
    """Call ``callback(name, value)`` whenever any attribute of the HERO is written: one
    subscription for all of them. ``NotImplementedError`` for an upstream HEROS HERO."""
    if is_upstream(proxy):
        raise NotImplementedError(f"HERO {proxy._name!r} is an upstream HEROS HERO: it publishes no attribute changes; poll it")
    attributes = {c.name for c in capabilities(proxy, private=True) if isinstance(c, AttributeCapability)}

    def on_change(key: str, value: Any) -> None:
        name = key.rpartition("/")[2]
        if name in attributes:
            callback(name, value)

    key = keys.attr_change_key(proxy._realm, proxy._name, "*")
    sub = Subscription(proxy, key, on_change, f"attributes of {proxy._name}", with_key=True, native=True)
    proxy._heros_watching(["*"])
    return sub


def value_event(proxy: RemoteHERO, name: str) -> str | None:
    """The event whose payload is the new value of the attribute ``name``, or None.

    The rule: the event the attribute's metadata names (``heros.meta.PublishedBy``, the extra
    field ``event``) if the HERO has it, else by convention an event called ``<name>_changed``
    (the demo cryostat's ``temperature_changed``). A tool follows that event to keep a value
    current and polls only attributes without one.
    """
    cap = capability(proxy, name)
    if not isinstance(cap, AttributeCapability):
        return None
    for candidate in (cap.extra.get("event"), f"{name}_changed"):
        if isinstance(candidate, str) and isinstance(capability(proxy, candidate), EventCapability):
            return candidate
    return None


def publish_attribute(hero: LocalHERO, name: str) -> None:
    """From inside a HERO: publish the current value of its attribute ``name`` to the watchers
    (writes do it by themselves; this is for a value that changes without a write, such as a
    property reading hardware)."""
    cap = hero._heros_caps.get(name)
    if not isinstance(cap, AttributeCapability):
        raise AttributeError(f"HERO {hero._name!r} has no attribute {name!r}")
    hero._heros_publish_attribute(name)

