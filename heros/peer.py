"""HEROPeer and HERO: a realm's session, encoding and decoding, and the references a payload may hold.

Every HEROS object (LocalHERO, RemoteHERO, observers) is a ``HEROPeer``: it holds the realm's
zenoh session from the session manager while it lives, releases it in ``_destroy_hero()`` (also
called by ``with`` and on garbage collection), and decodes payloads through a ``PeerResolver``
that turns references into objects: a HERO served in this process resolves to itself, any
other to a (cached, bounded) RemoteHERO, and an object reference to the object it names.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, ClassVar

from . import _executor, codec, keys
from . import zenoh as z
from .exceptions import ReferenceExpiredError, RemoteTransportError
from .references import HERO_REF, ISSUER, HERORef, Scope, UnserializableRemoteObject, obj_store
from .zenoh import ZenohSessionManager
from .zenoh import session_manager as default_session_manager

__all__ = ["HERO", "HEROPeer", "PeerResolver", "known_descriptor", "local_hero", "local_heros", "register_observer", "unregister_observer"]

log = logging.getLogger("heros")

#: How many HEROs one payload may name; beyond that it is refused (a peer cannot make us open proxies without bound).
MAX_HERO_REFS_PER_PAYLOAD = 16
#: Seconds a discovery snapshot waits for more answers after the last one (see ``_query_descriptors``).
DISCOVERY_QUIET = 0.1


class HEROPeer:
    """A participant of one realm: holds the realm's zenoh session while it lives.

    Parameters
    ----------
    realm
        The realm (namespace) to join. HEROs of other realms are invisible.
    session_manager
        Where the session comes from; the process-wide default if None.
    """

    def __init__(self, realm: str = "heros", session_manager: ZenohSessionManager | None = None) -> None:
        self._hero_destroyed = True  # until the session is held: __del__ after a failed __init__ does nothing
        self._realm = keys.validate_name(realm, "realm")
        self._session_manager = default_session_manager if session_manager is None else session_manager
        self._declared: list[Any] = []
        self._decoders = threading.local()
        self._session = self._session_manager.request_session(self, realm)
        self._hero_destroyed = False

    def _discover(self, timeout: float = 2.0) -> dict[str, dict[str, Any]]:
        """Descriptors of every HERO of the realm that answers within ``timeout`` seconds."""
        return self._get_object_info("*", timeout=timeout)

    def _get_object_info(self, object_name: str, timeout: float = 2.0) -> dict[str, dict[str, Any]]:
        """``{name: descriptor}`` of the HEROs matching ``object_name`` (may be ``*``)."""
        self._session_manager.settle(self._realm, lambda: set(z.tokens(self._session, keys.health_key(self._realm), timeout=timeout)))
        return self._query_descriptors(object_name, timeout)

    def _query_descriptors(self, object_name: str, timeout: float, *,
                           on_late: Callable[[str, dict[str, Any]], None] | None = None) -> dict[str, dict[str, Any]]:
        """Descriptors of the HEROs matching ``object_name`` that answer discovery.

        It returns once zenoh has every answer (each HERO the query reached answered). With
        ``on_late``, also ``DISCOVERY_QUIET`` seconds after the last answer: a HERO that does not
        answer (a frozen process whose token has not expired yet) does not hold up the others, and
        answers arriving later go to ``on_late(name, descriptor)`` on a worker thread. Without it,
        a HERO that does not answer holds the snapshot up to ``timeout``.
        """
        replies = z.query_stream(self._session, keys.discover_selector(self._realm, object_name), timeout=timeout,
                                 encoding=codec.ENCODING)
        found: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout
        while True:
            wait = deadline - time.monotonic()
            if on_late is not None and found:
                wait = min(wait, DISCOVERY_QUIET)
            try:
                reply = replies.get(timeout=max(wait, 0.0))
            except queue.Empty:
                break
            if reply is None:
                return found  # the query is complete: every answer is in
            self._add_descriptor(found, reply)
        if on_late is not None:
            _executor.submit(self._late_descriptors, replies, set(found), on_late, deadline + 1.0)
        return found

    def _late_descriptors(self, replies: queue.SimpleQueue[z.Reply | None], seen: set[str],
                          on_late: Callable[[str, dict[str, Any]], None], deadline: float) -> None:
        """Worker thread: hand answers that came after ``_query_descriptors`` returned to ``on_late``."""
        while True:
            try:
                reply = replies.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                return
            if reply is None:
                return
            late: dict[str, dict[str, Any]] = {}
            self._add_descriptor(late, reply)
            for name, descriptor in late.items():
                if name not in seen:
                    seen.add(name)
                    on_late(name, descriptor)

    def _add_descriptor(self, found: dict[str, dict[str, Any]], r: z.Reply) -> None:
        if not r.ok:
            return
        try:
            d = codec.decode(r.payload, r.encoding)
        except codec.CodecError as exc:
            log.warning("ignoring an undecodable discovery reply on %s: %s", r.key, exc)
            return
        if isinstance(d, dict) and isinstance(d.get("name"), str):
            found[d["name"]] = d

    def _descriptors(self, replies: list[z.Reply]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for r in replies:
            self._add_descriptor(found, r)
        return found

    #: What a HERO reference in a payload becomes: a class with ``_heros_proxy_for(manager, realm,
    #: name)`` (RemoteHERO, set by the peers that can build proxies); a bare HEROPeer gives HERORefs.
    _heros_proxy_class: ClassVar[Any] = None
    #: Whose kept objects resolve in payloads this peer decodes (see ``references.Scope``).
    _heros_scope: Scope = None

    def _resolver(self) -> PeerResolver:
        return PeerResolver(self)

    def _heros_reference(self, realm: str, name: str) -> Any:
        """What a reference to the HERO ``name`` of ``realm`` (not served here) decodes to: a proxy
        that looks it up when first used, or a plain ``HERORef``."""
        cls = self._heros_proxy_class
        if cls is None:
            return HERORef(realm, name)
        return cls._heros_proxy_for(self._session_manager, realm, name)

    def _decode(self, payload: bytes, encoding: str | None) -> Any:
        return self._decoder()(payload, encoding)

    def _decoder(self) -> Callable[[Any, str | None], Any]:
        """``_decode`` for the calling thread, to keep while it decodes payload after payload."""
        try:
            decode: Callable[[Any, str | None], Any] = self._decoders.decode
        except AttributeError:  # the first payload this thread decodes for this object
            decode = self._decoders.decode = codec.decoder(self._resolver)
        return decode

    def _declare(self, entity: Any) -> Any:
        self._declared.append(entity)
        return entity

    def _destroy_hero(self) -> None:
        """Undeclare everything this object declared and release the realm's session."""
        if getattr(self, "_hero_destroyed", True):
            return
        self._hero_destroyed = True
        for entity in reversed(list(self._declared)):  # a subscription leaves the list as it closes
            z.undeclare(entity)
        self._declared.clear()
        self._session_manager.release_session(self)

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self._destroy_hero()

    def __del__(self) -> None:
        try:
            self._destroy_hero()
        except Exception:  # noqa: BLE001 - never raise from a finalizer
            pass


class HERO(HEROPeer):
    """A named object of a realm (base of LocalHERO and RemoteHERO)."""

    def __init__(self, name: str, realm: str = "heros", session_manager: ZenohSessionManager | None = None) -> None:
        self._hero_destroyed = True
        self._name = keys.validate_name(name, "name")
        keys.validate_name(realm, "realm")
        self._endpoint_base_path = keys.hero_key(realm, name)
        self._endpoints = {
            "discover": keys.member_key(realm, name, keys.DISCOVER),
            "capabilities": keys.member_key(realm, name, keys.CAPABILITIES),
            "health": keys.health_key(realm, name),
        }
        HEROPeer.__init__(self, realm, session_manager)

    def _heros_ref(self) -> tuple[str, str, str]:
        return HERO_REF, self._realm, self._name


# HEROs served by this process, so that a reference to one of them resolves to the object itself.
_local_heros: dict[tuple[str, str], weakref.ref[Any]] = {}
_local_lock = threading.Lock()


def answers(session: Any, realm: str, name: str, timeout: float) -> bool:
    """Whether a HERO named ``name`` answers its ``_discover`` in ``realm`` now: the check behind a
    liveliness query, whose answer zenoh 1.10 leaves incomplete at times in a realm of a few
    hundred tokens (bench/RESULTS.md, "Lab scale")."""
    try:
        reply = z.query(session, keys.member_key(realm, name, keys.DISCOVER), timeout=timeout)
    except (TimeoutError, RemoteTransportError):
        return False
    return reply is not None and bool(reply.ok)


def register_local(hero: Any) -> None:
    with _local_lock:
        _local_heros[(hero._realm, hero._name)] = weakref.ref(hero)


def unregister_local(hero: Any) -> None:
    with _local_lock:
        ref = _local_heros.get((hero._realm, hero._name))
        if ref is not None and ref() in (hero, None):
            del _local_heros[(hero._realm, hero._name)]


def local_heros() -> list[Any]:
    """The LocalHEROs served by this process now."""
    with _local_lock:
        refs = list(_local_heros.values())
    return [h for h in (r() for r in refs) if h is not None]


def local_hero(realm: str, name: str) -> Any:
    """The LocalHERO ``name`` of ``realm`` served by this process, or None."""
    ref = _local_heros.get((realm, name))
    return ref() if ref is not None else None


# The HEROObservers alive in this process: their descriptors spare a new RemoteHERO a discovery query.
# Each observer owns what it saw; the set holds them weakly, so the descriptors go with their observer.
_observers: weakref.WeakSet[Any] = weakref.WeakSet()


def register_observer(observer: Any) -> None:
    """Let ``known_descriptor`` look into ``observer.known_objects`` while the observer lives."""
    _observers.add(observer)


def unregister_observer(observer: Any) -> None:
    _observers.discard(observer)


def known_descriptor(manager: ZenohSessionManager, realm: str, name: str) -> dict[str, Any] | None:
    """The descriptor an observer of this process (same session manager and realm) has for that HERO, or None."""
    for observer in list(_observers):
        if observer._session_manager is manager and observer._realm == realm:
            descriptor = observer.known_objects.get(name)
            if descriptor is not None:
                return descriptor  # type: ignore[no-any-return]
    return None


class PeerResolver:
    """Resolves the references of one payload decoded by ``peer`` (see ``codec.Resolver``).

    Decoding never waits on the network: a HERO served by this process resolves to itself, any
    other to a proxy that looks the HERO up only when it is first used (``peer._heros_reference``).
    """

    __slots__ = ("heros_named", "peer")

    def __init__(self, peer: HEROPeer) -> None:
        self.peer = peer
        self.heros_named = 0

    def hero(self, realm: str, name: str) -> Any:
        keys.validate_name(realm, "realm")
        keys.validate_name(name, "name")
        local = local_hero(realm, name)
        if local is not None:
            return local
        self.heros_named += 1
        if self.heros_named > MAX_HERO_REFS_PER_PAYLOAD:
            raise codec.CodecError(f"a payload may name at most {MAX_HERO_REFS_PER_PAYLOAD} remote HEROs")
        return self.peer._heros_reference(realm, name)

    def event(self, realm: str, name: str, event: str) -> Any:
        keys.validate_name(event, "event name")
        hero = self.hero(realm, name)
        if isinstance(hero, HERORef):
            raise codec.CodecError(f"a bare HEROPeer cannot resolve the event reference {name}.{event}")
        lazy = getattr(hero, "_heros_event_ref", None)  # a proxy: no lookup now
        handler = lazy(event) if lazy is not None else getattr(hero, event, None)
        if not getattr(handler, "hero_event", False):
            raise codec.CodecError(f"HERO {name!r} has no event {event!r}")
        return handler

    def method(self, realm: str, name: str, method: str) -> Any:
        keys.validate_name(method, "method name")
        hero = self.hero(realm, name)
        if hero is local_hero(realm, name) and self.peer._heros_proxy_class is not None:
            # a method of a HERO of this process still goes through a proxy: named "<hero>.<method>"
            # as a callback everywhere, and called without waiting, like one of another process
            hero = self.peer._heros_reference(realm, name)
        if isinstance(hero, HERORef):
            raise codec.CodecError(f"a bare HEROPeer cannot resolve the method reference {name}.{method}")
        lazy = getattr(hero, "_heros_method_ref", None)  # a proxy: no lookup now
        func = lazy(method) if lazy is not None else getattr(hero, method, None)
        if not callable(func):
            raise codec.CodecError(f"HERO {name!r} has no method {method!r}")
        return func

    def object_ref(self, data: list[Any]) -> UnserializableRemoteObject:
        type_, token, representation, issuer, realm, hero, lease = (list(data) + [None] * 7)[:7]
        if not isinstance(token, str) or not isinstance(issuer, str):
            raise codec.CodecError("malformed object reference")
        release: Callable[[], Any] | None = None
        if isinstance(lease, str):
            if issuer == ISSUER:  # kept by this very process: release it here
                release = functools.partial(obj_store.release_lease, lease, obj_store.ANY_SCOPE)
            elif isinstance(hero, str) and isinstance(realm, str):
                release = _Release(self.peer._session_manager, realm, hero, lease)
        return UnserializableRemoteObject(str(type_), token, str(representation), issuer, release)

    def object_back(self, data: list[Any]) -> Any:
        token, issuer, type_ = (list(data) + [None] * 3)[:3]
        if not isinstance(token, (str, int)) or isinstance(token, bool) or not isinstance(issuer, str):
            raise codec.CodecError("malformed object reference")
        if issuer == ISSUER and isinstance(token, str):
            found, obj = obj_store.resolve(token, self.peer._heros_scope)
            if found:
                return obj
        return UnserializableRemoteObject(str(type_), token, "", issuer)

    def object_ref_cbor(self, type_: Any, number: Any, representation: Any) -> UnserializableRemoteObject:
        if not isinstance(number, int) or isinstance(number, bool):
            raise codec.CodecError("malformed object reference")
        peer = self.peer
        name = getattr(peer, "_name", None)
        issuer = f"cbor:{peer._realm}/{name}" if name else f"cbor:{peer._realm}"
        return UnserializableRemoteObject(str(type_), number, str(representation), issuer)

    def object_back_cbor(self, number: int) -> Any:
        token = obj_store.token_of(number)
        if token is None:
            raise ReferenceExpiredError(f"object reference {number:#x} is unknown here or has expired")
        found, obj = obj_store.resolve(token, self.peer._heros_scope)
        return obj if found else UnserializableRemoteObject("?", token, "", ISSUER)


class _Release:
    """Sends 'this lease is gone' to the HERO that issued it, batched, without waiting."""

    __slots__ = ("hero", "lease", "manager", "realm")

    def __init__(self, manager: ZenohSessionManager, realm: str, hero: str, lease: str) -> None:
        self.manager = manager
        self.realm = realm
        self.hero = hero
        self.lease = lease

    def __call__(self) -> None:
        # a finalizer calls this: only a list append under a short lock, the sending is a worker's
        with _release_lock:
            entry = _release_pending.get((id(self.manager), self.realm, self.hero))
            if entry is None:
                entry = _release_pending[(id(self.manager), self.realm, self.hero)] = (self.manager, [])
            entry[1].append(self.lease)
            schedule = not _release_scheduled[0]
            _release_scheduled[0] = True
        if schedule:
            _executor.submit(_flush_releases)


_release_lock = threading.Lock()
# (manager id, realm, HERO) -> (manager, leases): emptied by each flush, so it never grows
_release_pending: dict[tuple[int, str, str], tuple[ZenohSessionManager, list[str]]] = {}
_release_scheduled = [False]


def _flush_releases() -> None:
    if z.exiting():
        return  # the sessions are closing: the issuers' store bounds take care of it
    with _release_lock:
        pending = dict(_release_pending)
        _release_pending.clear()
        _release_scheduled[0] = False
    for (_, realm, hero), (manager, leases) in pending.items():
        session = manager.session(realm)
        if session is None:
            continue  # our session is gone: the issuer's store bound takes care of it
        payload, encoding = codec.encode([[leases], {}])
        try:
            z.query_nowait(session, keys.member_key(realm, hero, keys.RELEASE), payload, encoding)
        except Exception:
            log.debug("could not send reference releases to %s", hero, exc_info=True)
