"""HEROObserver tracks which HEROs of a realm are alive; EventObserver listens to one event of many HEROs.

HEROObserver's membership follows the HEROs' liveliness tokens, which zenoh withdraws when a HERO
stops and when its process dies (also by SIGKILL). A token's arrival fetches that HERO's
discovery descriptor; its withdrawal removes the HERO at once. Both are handled in order on a
strand of the worker pool, never on zenoh's threads. The constructor returns with the HEROs
alive at that moment already in ``known_objects``.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from typing import Any

from . import _executor, keys
from . import zenoh as z
from .event import Subscription
from .peer import HEROPeer, register_observer, unregister_observer
from .remote import RemoteHERO
from .zenoh import ZenohSessionManager

__all__ = ["EventObserver", "HEROObserver"]

log = logging.getLogger("heros")

#: Pauses between discovery attempts for a HERO whose liveliness token appeared (about 3 s in all).
DISCOVERY_RETRY_PAUSES = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)
#: After those, a HERO whose token lives but that has not answered is asked again this often (seconds).
DISCOVERY_RETRY_EVERY = 2.0


class HEROObserver(HEROPeer):
    """Keeps ``known_objects`` (name -> discovery descriptor) of the HEROs alive in a realm.

    HEROs of ours and upstream HEROS HEROs are listed alike; an upstream one's descriptor lacks
    the ``_codec:msgpack`` tag.

    Parameters
    ----------
    realm
        The realm to watch (default ``"heros"``).
    session_manager
        Where the zenoh session comes from.
    timeout
        Seconds the constructor waits for the initial discovery answers.
    """

    _heros_proxy_class = RemoteHERO

    def __init__(self, realm: str = "heros", session_manager: ZenohSessionManager | None = None, *, timeout: float = 2.0) -> None:
        HEROPeer.__init__(self, realm, session_manager)
        self._timeout = timeout
        self.known_objects: dict[str, dict[str, Any]] = {}
        self._object_added_callbacks: list[Callable[[str], Any]] = []
        self._object_removed_callbacks: list[Callable[[str], Any]] = []
        self._changed = threading.Condition()
        self._strand = _executor.Strand()
        self._generations: dict[str, int] = {}  # per name: how many token changes were seen (stale answers are dropped)
        # Token changes wait for the first snapshot: the watch's history would otherwise ask every
        # HERO for its descriptor one by one while the snapshot asks all of them at once.
        self._snapshot_taken = threading.Event()
        register_observer(self)  # RemoteHEROs of this process may use what it knows
        self._declare(z.declare_liveliness_watch(self._session, keys.health_key(realm), self._on_token, history=True))
        try:
            # A young session first waits for its peers' declarations to reach it.
            self._session_manager.settle(realm, lambda: set(z.tokens(self._session, keys.health_key(realm), timeout=timeout)))
            # The snapshot asks every HERO whatever the tokens said: zenoh's answer to a liveliness
            # query can leave tokens out (with a few hundred in a realm, at times all of them), and
            # an empty realm answers a discovery query at once. HEROs that answer are listed now;
            # one that does not (a frozen process) joins when it answers.
            found = self._query_descriptors("*", timeout, on_late=self._late)
            with self._changed:
                self.known_objects = {**self.known_objects, **found}
                self._changed.notify_all()
        finally:
            self._snapshot_taken.set()

    def _on_token(self, key: str, alive: bool) -> None:
        """zenoh callback: only hand off."""
        name = keys.name_from_key(key, self._realm)
        if name is not None:
            self._strand.submit(self._token_changed, name, alive)

    def _token_changed(self, name: str, alive: bool) -> None:
        """Strand: a token came or went. Descriptors are fetched off the strand, so a HERO that does
        not answer (a frozen process) never holds up the joins and leaves of the others."""
        self._snapshot_taken.wait(4 * self._timeout + 5)
        if self._hero_destroyed:
            return
        generation = self._generations[name] = self._generations.get(name, 0) + 1
        if not alive:
            if name in self.known_objects:
                self._set(name, None)
                self._fire(self._object_removed_callbacks, name)
            return
        if name not in self.known_objects:
            _executor.submit(self._fetch, name, generation)

    def _fetch(self, name: str, generation: int, patient: bool = False) -> None:
        """Worker thread: the descriptor of a HERO whose token appeared; it joins on the strand.

        Asked again after each of ``DISCOVERY_RETRY_PAUSES``, then (``patient``) once every
        ``DISCOVERY_RETRY_EVERY`` seconds for as long as its token lives: a HERO that is alive but
        slow to answer (a busy process) joins when it answers, never left out for good."""
        # The token is declared after the queryable, but a new session may learn of the token
        # before the queryable's declaration reaches it: then the query finds nobody at once.
        for pause in ((None,) if patient else (*DISCOVERY_RETRY_PAUSES, None)):
            if self._hero_destroyed or self._generations.get(name) != generation:
                return  # gone meanwhile (or back, and asked anew)
            descriptor = None
            try:
                descriptor = self._get_object_info(name, timeout=self._timeout).get(name)
            except Exception:
                log.debug("discovery of %s failed", name, exc_info=True)
            if descriptor is not None:
                self._strand.submit(self._join, name, descriptor, generation)
                return
            if pause is not None:
                time.sleep(pause)
        if not patient and not self._hero_destroyed and self._generations.get(name) == generation:
            log.warning("HERO %r (realm %r) is alive but did not answer discovery; asking it again every %g s while it lives",
                        name, self._realm, DISCOVERY_RETRY_EVERY)
        ref = weakref.ref(self)  # a timer holds no observer alive

        def again() -> None:
            observer = ref()
            if observer is not None and not observer._hero_destroyed and observer._generations.get(name) == generation:
                try:
                    _executor.submit(observer._fetch, name, generation, True)
                except RuntimeError:  # the interpreter is exiting
                    pass

        timer = threading.Timer(DISCOVERY_RETRY_EVERY, again)
        timer.daemon = True
        timer.start()

    def _late(self, name: str, descriptor: dict[str, Any]) -> None:
        """A HERO answered the first discovery after the snapshot was taken: it joins, unless its
        token changed meanwhile (then that change decides)."""
        self._strand.submit(self._join, name, descriptor, 0)

    def _join(self, name: str, descriptor: dict[str, Any], generation: int) -> None:
        """Strand: ``name`` joins with ``descriptor``, if nothing happened to its token since it was asked."""
        if self._hero_destroyed or name in self.known_objects or self._generations.get(name, 0) != generation:
            return
        self._set(name, descriptor)
        self._fire(self._object_added_callbacks, name)

    def _set(self, name: str, descriptor: dict[str, Any] | None) -> None:
        with self._changed:
            known = dict(self.known_objects)  # copy on write: readers may iterate the old dict
            if descriptor is None:
                known.pop(name, None)
            else:
                known[name] = descriptor
            self.known_objects = known
            self._changed.notify_all()

    def _fire(self, callbacks: list[Callable[[str], Any]], name: str) -> None:
        for func in list(callbacks):
            try:
                func(name)
            except Exception:
                log.exception("HEROObserver callback %r raised for %r", func, name)

    def register_object_added_callback(self, func: Callable[[str], Any]) -> None:
        """Call ``func(name)`` when a HERO joins the realm."""
        if func not in self._object_added_callbacks:
            self._object_added_callbacks.append(func)

    def register_object_removed_callback(self, func: Callable[[str], Any]) -> None:
        """Call ``func(name)`` when a HERO leaves the realm (stopped, or its process died)."""
        if func not in self._object_removed_callbacks:
            self._object_removed_callbacks.append(func)

    def remove_object_added_callback(self, func: Callable[[str], Any]) -> bool:
        """Stop calling ``func`` on joins; True if it was registered."""
        if func in self._object_added_callbacks:
            self._object_added_callbacks.remove(func)
            return True
        return False

    def remove_object_removed_callback(self, func: Callable[[str], Any]) -> bool:
        """Stop calling ``func`` on leaves; True if it was registered."""
        if func in self._object_removed_callbacks:
            self._object_removed_callbacks.remove(func)
            return True
        return False

    def wait_for(self, predicate: Callable[[dict[str, dict[str, Any]]], bool], timeout: float) -> bool:
        """Wait until ``predicate(known_objects)`` is true; False if ``timeout`` seconds pass first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self.known_objects):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True

    def _destroy_hero(self) -> None:
        unregister_observer(self)
        super()._destroy_hero()

    def get_object(self, object_name: str) -> RemoteHERO:
        """A RemoteHERO for a known HERO; ``AttributeError`` if the name is not known."""
        if object_name not in self.known_objects:
            raise AttributeError(f"Object with name {object_name!r} not known in realm {self._realm!r}")
        return RemoteHERO(object_name, self._realm, session_manager=self._session_manager)


class EventObserver(HEROPeer):
    """Receives one event of every HERO matching ``object_selector``, without building proxies.

    Parameters
    ----------
    object_selector
        A HERO name or a zenoh wildcard (``*`` for every HERO of the realm).
    event_name
        The event to observe.
    realm, session_manager
        As for every HEROS object.

    Callbacks are called as ``func(hero_name, value)``, in order, off zenoh's threads; one that
    raises is logged and the others still run. Events of HEROs of ours arrive in msgpack, those
    of upstream HEROS HEROs in CBOR (on upstream's key; the CBOR copies our HEROs publish there for
    upstream subscribers are skipped), so each event arrives once either way.
    """

    _heros_proxy_class = RemoteHERO

    def __init__(self, object_selector: str, event_name: str, realm: str = "heros", session_manager: ZenohSessionManager | None = None) -> None:
        if not isinstance(object_selector, str) or not object_selector or "/" in object_selector \
                or len(object_selector.encode("utf-8", "surrogatepass")) > keys.MAX_NAME_BYTES:
            raise ValueError(f"object_selector must be one key chunk of at most {keys.MAX_NAME_BYTES} bytes "
                             f"(a name or a wildcard like '*'), not {object_selector[:60]!r}")
        keys.validate_name(event_name, "event name")
        HEROPeer.__init__(self, realm, session_manager)
        self._object_selector = object_selector
        self._event_name = event_name
        self._event_callbacks: dict[str, Callable[[str, Any], Any]] = {}
        what = f"EventObserver {object_selector}/{event_name}"
        self._subscription = Subscription(self, keys.event_key(realm, object_selector, event_name), self._handle_event, what,
                                          native=True)
        self._upstream_subscription = Subscription(self, keys.member_key(realm, object_selector, event_name), self._handle_event,
                                                   what, skip_mirrors=True)

    def _handle_event(self, key: str, data: Any) -> None:
        name = keys.name_from_key(key, self._realm) or key
        for uid, func in list(self._event_callbacks.items()):
            try:
                func(name, data)
            except Exception:
                log.exception("EventObserver callback %s (%r) raised", uid, func)

    def register_callback(self, func: Callable[[str, Any], Any]) -> str | bool:
        """Call ``func(hero_name, value)`` for each event; returns its uid, or False if already registered."""
        if func in self._event_callbacks.values():
            return False
        uid = str(uuid.uuid4())
        self._event_callbacks[uid] = func
        return uid

    def remove_callback(self, func: Callable[[str, Any], Any]) -> bool:
        """Remove ``func``; True if it was registered."""
        for uid, cb in list(self._event_callbacks.items()):
            if cb == func:
                return self.remove_callback_uid(uid)
        return False

    def remove_callback_uid(self, uid: str) -> bool:
        """Remove the callback with this uid (``KeyError`` if there is none)."""
        del self._event_callbacks[uid]
        return True
