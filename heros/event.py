"""Events: ``@event``, ``@reliable``, callbacks on the local and the remote side.

Calling an event of a LocalHERO runs the method, publishes its return value on
``@object/<realm>/<name>/<event>``, runs the connected callbacks and returns the value.
Callbacks never hurt the emitter: one that raises is logged with the event's name and the others
still run; a method of another HERO connected as callback (cases B and D) is called without
waiting for its answer, so a slow or dead target never stalls the event source. On the remote
side (case C) samples are decoded and callbacks run on the subscription's own thread, in order, never on
zenoh's threads.

Events are best effort by default: a publication never blocks the emitter, and under congestion
samples may be dropped. ``@reliable`` asks for reliable delivery with back-pressure instead.

Two audiences, no setting: an event is published in msgpack on ``<name>/_event/<event>`` for our
subscribers, and in CBOR on upstream's key ``<name>/<event>`` for upstream HEROS subscribers. Each
copy is encoded and sent only while somebody listens on its key (zenoh's matching status), so a
lab without upstream subscribers pays nothing for them.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
import weakref
from collections.abc import Callable
from time import monotonic as _monotonic
from typing import Any

from . import bulk, cbor, codec, keys
from . import zenoh as z
from .inspect import HERO_EVENT_ATTRIBUTE, is_hero_method
from .references import EVENT_REF, store_object
from .subscription import Subscription

__all__ = [
    "Callback",
    "CallbackStorage",
    "EventDescriptor",
    "LocalEventHandler",
    "RemoteEventHandler",
    "Subscription",
    "event",
    "reliable",
    "subscribe_event",
]

log = logging.getLogger("heros.event")



def _hero_name(handler: LocalEventHandler) -> str:
    return getattr(handler.instance, "_name", "?")


def _callback_name(func: Callable[..., Any]) -> str:
    if is_hero_method(func):
        return f"{getattr(func, '__self__')._name}.{func.__name__}"  # noqa: B009 - a RemoteMethod's HERO, untyped here
    return repr(func)


class Callback:
    """A connected callable, named ``"<hero>.<method>"`` for methods of remote HEROs."""

    __slots__ = ("func", "is_remote_hero", "name", "origin", "send")

    def __init__(self, func: Callable[..., Any], origin: str | None = None) -> None:
        self.func = func
        self.origin = origin
        self.is_remote_hero = is_hero_method(func)
        self.name = _callback_name(func)
        # a method of another HERO is sent without waiting for its answer
        self.send = getattr(func, "_send_nowait", func) if self.is_remote_hero else func

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Callback) or self.is_remote_hero != other.is_remote_hero:
            return False
        return self.name == other.name if self.is_remote_hero else self.func == other.func

    def __hash__(self) -> int:
        return hash(self.name) if self.is_remote_hero else hash(self.func)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "origin": self.origin, "is_remote_hero": self.is_remote_hero, "func": self.func}


class CallbackStorage:
    """Callbacks by name; connecting the same callable twice keeps one. Safe to use from any thread."""

    def __init__(self) -> None:
        self._callbacks: dict[str, Callback] = {}
        self._snapshot: tuple[Callback, ...] = ()
        self._lock = threading.Lock()

    def __iter__(self) -> Any:
        return iter(self._snapshot)

    def __len__(self) -> int:
        return len(self._snapshot)

    def __contains__(self, func: Callable[..., Any]) -> bool:
        return _callback_name(func) in self._callbacks

    def append(self, func: Callable[..., Any], origin: str | None = None) -> str:
        if not callable(func):
            raise TypeError(f"a callback must be callable, not {type(func).__name__}")
        cb = Callback(func, origin)
        with self._lock:
            self._callbacks[cb.name] = cb
            self._snapshot = tuple(self._callbacks.values())
        return cb.name

    def remove(self, func: Callable[..., Any]) -> bool:
        with self._lock:
            found = self._callbacks.pop(_callback_name(func), None) is not None
            self._snapshot = tuple(self._callbacks.values())
        return found

    def is_callback(self, func: Callable[..., Any]) -> bool:
        return func in self

    def get_callbacks(self) -> list[dict[str, Any]]:
        return [cb.to_dict() for cb in self._snapshot]


def _run_callbacks(callbacks: CallbackStorage, event: Any, value: Any) -> None:
    """Run every callback with ``value``; ``event`` (a handler) is named in the log."""
    for cb in callbacks._snapshot:
        try:
            cb.send(value)
        except Exception:  # a callback must never reach the emitter or skip the others
            log.exception("callback %s of event %s.%s raised", cb.name, getattr(event.instance, "_name", "?"), event.__name__)


class LocalEventHandler:
    """An event bound to one LocalHERO: call it to emit; ``connect`` callbacks to it."""

    hero_event = True

    def __init__(self, instance: Any, func: Callable[..., Any], name: str, reliable: bool) -> None:
        functools.update_wrapper(self, func)
        self.__name__ = name
        self.func = func
        self.reliable = reliable
        self.callbacks = CallbackStorage()
        self._instance = weakref.ref(instance)
        self._publisher: Any = None
        self._matching: Any = None
        self._mirror: Any = None  # the CBOR publisher for upstream subscribers
        self._mirror_matching: Any = None
        self._store: Any = None
        self._publish: Callable[[Any], None] | None = None
        try:
            sig = inspect.signature(func)
            self.__signature__ = sig.replace(parameters=list(sig.parameters.values())[1:])
        except (TypeError, ValueError):
            pass

    @property
    def instance(self) -> Any:
        return self._instance()

    def _heros_bind(self, hero: Any) -> None:
        """Declare the publishers (ours in msgpack, upstream's in CBOR), once the HERO serves."""
        native = keys.event_key(hero._realm, hero._name, self.__name__)
        publisher = hero._declare(z.declare_publisher(hero._session, native, reliable=self.reliable, encoding=codec.ENCODING))
        matching = z.Matching(publisher)
        hero._declare(matching.listener)
        upstream = keys.member_key(hero._realm, hero._name, self.__name__)
        mirror = hero._declare(z.declare_publisher(hero._session, upstream, reliable=self.reliable, encoding=cbor.ENCODING))
        mirror_matching = z.Matching(mirror)
        hero._declare(mirror_matching.listener)
        self._store = store_object(hero._realm, hero._name)
        self._mirror, self._mirror_matching = mirror, mirror_matching
        self._matching = matching
        self._publisher = publisher
        self._publish = self._publishing(publisher, matching, mirror, mirror_matching, self._store)

    def _heros_unbind(self) -> None:
        """Stop publishing: the HERO is being destroyed (its publishers go with its session entities)."""
        self._publish = None
        self._publisher = None
        self._mirror = None

    def _publishing(self, publisher: Any, matching: z.Matching, mirror: Any, mirror_matching: z.Matching,
                    store: Any) -> Callable[[Any], None]:
        """The function that publishes one emitted value: everything it needs is bound once here,
        since it runs for every emission (a 1 kHz stream, or a loop emitting as fast as it can)."""
        put, has_subscribers, pack_plain, large = publisher.put, z.has_subscribers, codec.pack_plain, z.LARGE
        name = self.__name__
        part_bytes = bulk.RELIABLE_PART_BYTES if self.reliable else bulk.PART_BYTES

        def publish(result: Any) -> None:
            # the listener's flag skips asking zenoh while subscribers exist; it may lag a new one, so ask then
            if matching.matching or has_subscribers(publisher):
                try:
                    data = pack_plain(result)
                    if data is not None and len(data) < large:
                        put(data)  # the publisher's own encoding: nothing to send with it
                    else:
                        payload, encoding = codec.encode(result, store, join=False)
                        z.put(publisher, payload, encoding, part_bytes=part_bytes)
                except Exception:  # the event call itself must succeed
                    if not z.exiting():  # (at exit the sessions close under a thread still emitting)
                        log.warning("event %s.%s: could not publish %r", _hero_name(self), name, type(result).__name__, exc_info=True)
            # upstream subscribers are rare: while the listener says none, ask zenoh at most every few ms
            if mirror_matching.matching or (mirror_matching._next_check <= _monotonic() and mirror_matching.confirmed()):
                try:
                    z.put_mirror(mirror, cbor.encode(result, store)[0])
                except Exception:  # the event call itself must succeed
                    if not z.exiting():
                        log.warning("event %s.%s: could not publish %r for upstream subscribers", _hero_name(self), name,
                                    type(result).__name__, exc_info=True)

        return publish

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        instance = self._instance()
        if instance is None:
            raise ReferenceError(f"the HERO of event {self.__name__!r} no longer exists")
        result = self.func(instance, *args, **kwargs)
        publish = self._publish  # None until the HERO serves, and again once it is destroyed
        if publish is not None:
            publish(result)
        if self.callbacks._snapshot:
            _run_callbacks(self.callbacks, self, result)
        return result

    def connect(self, callback: Callable[..., Any], origin: str | None = None) -> str:
        """Call ``callback(value)`` on every emission; returns the callback's name."""
        return self.callbacks.append(callback, origin)

    def disconnect(self, callback: Callable[..., Any]) -> bool:
        """Stop calling ``callback``; True if it was connected."""
        return self.callbacks.remove(callback)

    def is_callback(self, func: Callable[..., Any]) -> bool:
        return func in self.callbacks

    def get_callbacks(self) -> list[dict[str, Any]]:
        """The connected callbacks (name, origin, is_remote_hero, func, context)."""
        return [{**cb, "context": "LocalHERO"} for cb in self.callbacks.get_callbacks()]

    def _heros_ref(self) -> tuple[str, str, str, str]:
        instance = self._instance()
        if instance is None:
            raise ReferenceError(f"the HERO of event {self.__name__!r} no longer exists")
        return EVENT_REF, instance._realm, instance._name, self.__name__

    def __repr__(self) -> str:
        instance = self._instance()
        return f"<event {getattr(instance, '_name', '?')}.{self.__name__}>"


class EventDescriptor:
    """What ``@event`` puts on the class: gives each instance its own ``LocalEventHandler``."""

    def __init__(self, func: Callable[..., Any], reliable: bool = False) -> None:
        self.func = func
        self.name = func.__name__
        self.reliable = reliable
        functools.update_wrapper(self, func)  # type: ignore[arg-type]
        setattr(self, HERO_EVENT_ATTRIBUTE, True)

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        handler = LocalEventHandler(instance, self.func, self.name, self.reliable)
        try:
            instance.__dict__[self.name] = handler  # later lookups find it directly
        except AttributeError:
            pass
        return handler


LocalEventDescriptor = EventDescriptor


def reliable(func: Any) -> Any:
    """Deliver an event reliably, with back-pressure on the emitter; works above or below ``@event``."""
    if isinstance(func, EventDescriptor):
        func.reliable = True
    else:
        func._heros_reliable = True
    return func


def event(func: Callable[..., Any]) -> EventDescriptor:
    """Make a method of a LocalHERO subclass an event: its return value is published on each call."""
    return EventDescriptor(func, reliable=getattr(func, "_heros_reliable", False))


class RemoteEventHandler:
    """An event of a remote HERO, on its proxy: ``connect`` callbacks to it.

    Connecting a method of another RemoteHERO makes the event's own HERO call that method
    directly (case D); any other callable runs in this process (case C).
    """

    hero_event = True

    def __init__(self, instance: Any, name: str, doc: str | None = None, reliable: bool = False) -> None:
        self.instance = instance
        self.__name__ = name
        self.__doc__ = doc
        self.reliable = reliable
        self.callbacks = CallbackStorage()
        self._subscription: Subscription | None = None
        self._lock = threading.Lock()

    def __call__(self, payload: Any) -> None:
        """Run this process's callbacks with ``payload`` (does not emit the remote event)."""
        _run_callbacks(self.callbacks, self, payload)

    def _target(self) -> Callable[[Any], None]:
        """What the subscription calls for each sample: the one connected callback itself (the
        subscription logs what it raises), or what ``__call__`` does for several. A sample costs
        a fifth less without the layer in between."""
        snapshot = self.callbacks._snapshot
        if len(snapshot) == 1:
            return snapshot[0].send
        return functools.partial(_run_callbacks, self.callbacks, self)

    def connect(self, callback: Callable[..., Any], origin: str | None = None) -> str:
        """Connect ``callback``; returns its name."""
        if is_hero_method(callback):
            return str(self.instance._connect_local_hero_callback(event=self, remote_hero_method=callback, origin=self.instance._name))
        with self._lock:
            name = self.callbacks.append(callback, origin)
            if self._subscription is None:
                self._subscription = subscribe_event(self.instance, self.__name__, self._target(), reliable=self.reliable)
            else:
                self._subscription.callback = self._target()
        return name

    def disconnect(self, callback: Callable[..., Any]) -> bool:
        """Disconnect ``callback``; True if it was connected."""
        if is_hero_method(callback):
            return bool(self.instance._disconnect_local_hero_callback(event=self, remote_hero_method=callback))
        with self._lock:
            removed = self.callbacks.remove(callback)
            if self._subscription is not None:
                if not len(self.callbacks):  # nobody listens: stop receiving
                    self._subscription.close()
                    self._subscription = None
                else:
                    self._subscription.callback = self._target()
        return removed

    def is_callback(self, func: Callable[..., Any]) -> bool:
        if is_hero_method(func):
            return any(cb["name"] == _callback_name(func) for cb in self.instance._get_local_hero_callbacks(event=self))
        return func in self.callbacks

    def get_callbacks(self) -> list[dict[str, Any]]:
        """This process's callbacks ("RemoteHERO" context), then the HERO's own ("LocalHERO")."""
        mine = [{**cb, "context": "RemoteHERO"} for cb in self.callbacks.get_callbacks()]
        theirs = [{**cb, "context": "LocalHERO"} for cb in self.instance._get_local_hero_callbacks(event=self)]
        return [*mine, *theirs]

    def _heros_ref(self) -> tuple[str, str, str, str]:
        return EVENT_REF, self.instance._realm, self.instance._name, self.__name__

    def __repr__(self) -> str:
        return f"<remote event {self.instance._realm}/{self.instance._name}.{self.__name__}>"


def subscribe_event(proxy: Any, event: str, callback: Callable[[Any], None], *, reliable: bool = False,
                    **bounds: Any) -> Subscription:
    """Call ``callback(value)`` for each publication of event ``event`` of the HERO behind ``proxy``.

    A HERO of ours is heard on its msgpack key, an upstream HEROS HERO on its own (CBOR) key.
    Callbacks run in order on a worker thread; ``bounds`` are ``Subscription``'s ``max_samples``
    and ``max_bytes``; ``close()`` the subscription to stop.
    """
    proxy._heros_connect()
    native = not proxy._heros_upstream
    key = (keys.event_key if native else keys.member_key)(proxy._realm, proxy._name, event)
    return Subscription(proxy, key, callback, f"event {proxy._name}.{event}", reliable=reliable, with_key=False, native=native,
                        **bounds)


# ``heros.event`` is this function once ``heros`` is imported (upstream's layout too), so let
# ``heros.event.reliable`` work either way.
event.reliable = reliable  # type: ignore[attr-defined]
