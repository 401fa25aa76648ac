"""Objects that cannot be serialized travel as references, and are kept by the HERO that issued them.

Lifetime rule: an object handed out in a reply stays alive in its issuer's store while any
remote reference to it may still be used, that is until every ``UnserializableRemoteObject``
decoded from such a reply has been garbage collected (each sends a release back), or until the
store is full: it holds at most ``ObjectStore.max_objects`` objects (default 10,000) and then
drops the least recently used one with a warning. Objects handed out in event publications
(which may reach any number of subscribers) and to upstream HEROS peers (which never release)
are not counted; they live until pushed out. A reference sent back after its object was dropped
raises ``ReferenceExpiredError`` (a ``LookupError``) naming the type; it never turns into ``None``.

Scope: a reference resolves only where it was issued. Tokens are random (128 bits) and carry
the id of the issuing process, and each object is kept for the HERO that handed it out (or for
the client side of the process, for arguments a proxy could not encode): sent to another HERO,
even one of the same process, it stays a reference and resolves when it comes back to its issuer.

Releases count per holder: each reply that hands an object out gives it a fresh *lease*, a
random secret that only that reply carries. The holder's reference sends its lease back when it
is garbage collected; a peer that merely learnt the token (a reference sent back or forwarded
carries the token, never the lease) cannot expire anybody else's reference.
"""

from __future__ import annotations

import collections
import logging
import secrets
import threading
from collections.abc import Callable
from typing import Any

from .exceptions import ReferenceExpiredError

__all__ = [
    "EVENT_REF",
    "HERO_REF",
    "ISSUER",
    "METHOD_REF",
    "OBJECT_BACK",
    "HERORef",
    "ObjectStore",
    "Scope",
    "UnserializableRemoteObject",
    "full_classname",
    "obj_store",
    "store_object",
    "token_number",
]

log = logging.getLogger("heros.references")

#: This process's issuer id, part of every reference it hands out.
ISSUER = secrets.token_hex(8)

# What an object that travels by reference says it is (``obj._heros_ref()`` returns one of these
# kinds and its fields); each codec turns it into its own wire form.
HERO_REF = "hero"  # (realm, name)
EVENT_REF = "event"  # (realm, name, event)
METHOD_REF = "method"  # (realm, name, method)
OBJECT_BACK = "back"  # (token, issuer, type): a reference sent back towards its issuer

#: Who an object is kept for: ``(realm, hero name)`` of the issuing HERO, or None for the client
#: side of the process (arguments a proxy could not encode).
Scope = tuple[str, str] | None


def full_classname(obj: Any) -> str:
    """``module.Class`` of ``obj`` (just ``Class`` for built-ins)."""
    cls = type(obj)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def token_number(token: Any) -> int:
    """The integer id under which upstream HEROS peers (CBOR) know a token (their ids are ints)."""
    if isinstance(token, int) and not isinstance(token, bool):
        return token
    try:
        return int(str(token)[:15], 16)
    except ValueError:
        return 0


class _Entry:
    __slots__ = ("counted", "leases", "number", "obj", "pinned", "scope", "type")

    def __init__(self, obj: Any, scope: Scope, number: int) -> None:
        self.obj = obj
        self.type = full_classname(obj)
        self.scope = scope
        self.number = number
        self.counted = 0  # anonymous holders (``add``/``release``)
        self.leases: set[str] = set()
        self.pinned = False  # handed out uncounted at least once: lives until pushed out

    def unused(self) -> bool:
        return not (self.counted or self.leases or self.pinned)


class ObjectStore:
    """Strongly held objects by random token, bounded, least recently used dropped first.

    ``ObjectStore.ANY_SCOPE`` as a scope matches every scope.

    Parameters
    ----------
    max_objects
        How many objects the store keeps at most.
    """

    ANY_SCOPE: Any  # set below the class

    def __init__(self, max_objects: int = 10_000) -> None:
        self.max_objects = max_objects
        self._entries: collections.OrderedDict[str, _Entry] = collections.OrderedDict()
        self._by_id: dict[tuple[int, Scope], str] = {}
        self._by_number: dict[int, str] = {}
        self._leases: dict[str, str] = {}
        self._lock = threading.Lock()

    def _keep(self, obj: Any, scope: Scope) -> tuple[str, _Entry]:
        """The entry of ``obj`` for ``scope``, made if needed (call with the lock held)."""
        known = self._by_id.get((id(obj), scope))
        entry = self._entries.get(known) if known else None
        if known is None or entry is None or entry.obj is not obj:
            token = secrets.token_hex(16)
            entry = _Entry(obj, scope, token_number(token))
            self._entries[token] = entry
            self._by_id[(id(obj), scope)] = token
            self._by_number[entry.number] = token
        else:
            token = known
            self._entries.move_to_end(token)
        return token, entry

    def _trim(self) -> None:
        while len(self._entries) > self.max_objects:
            token, old = self._entries.popitem(last=False)
            self._forget(token, old)
            log.warning(
                "object store full (%d objects): dropping %s, references to it now raise ReferenceExpiredError",
                self.max_objects, old.type,
            )

    def _forget(self, token: str, entry: _Entry) -> None:
        self._by_id.pop((id(entry.obj), entry.scope), None)
        self._by_number.pop(entry.number, None)
        for lease in entry.leases:
            self._leases.pop(lease, None)

    def add(self, obj: Any, *, counted: bool = True, scope: Scope = None) -> str:
        """Keep ``obj`` and return its token (the same token while it is kept).

        ``counted`` adds one anonymous holder that ``release(token)`` removes again; otherwise
        the object lives until it is pushed out.
        """
        with self._lock:
            token, entry = self._keep(obj, scope)
            if counted:
                entry.counted += 1
            else:
                entry.pinned = True
            self._trim()
            return token

    def issue(self, obj: Any, scope: Scope, *, lease: bool) -> tuple[str, str | None, int]:
        """Keep ``obj`` for ``scope`` as it is handed out: ``(token, lease or None, number)``.

        With ``lease`` the reply gets a fresh lease that only ``release_lease`` removes;
        without, the object lives until it is pushed out.
        """
        with self._lock:
            token, entry = self._keep(obj, scope)
            secret = None
            if lease:
                secret = secrets.token_hex(16)
                entry.leases.add(secret)
                self._leases[secret] = token
            else:
                entry.pinned = True
            self._trim()
            return token, secret, entry.number

    def _entry(self, token: str, scope: Any) -> _Entry:
        entry = self._entries.get(token)
        if entry is None:
            raise ReferenceExpiredError(
                f"object reference {str(token)[:8]}… is unknown here or has expired "
                f"(the store keeps at most {self.max_objects} objects)"
            )
        if scope is not _ANY and entry.scope != scope:
            raise _OtherScope(entry.scope)
        self._entries.move_to_end(token)
        return entry

    def get(self, token: str, scope: Any = None) -> Any:
        """The object behind ``token``; ``ReferenceExpiredError`` if it is unknown or was dropped.

        ``scope`` is where it is asked for (see ``Scope``); an object kept for another scope
        raises ``LookupError`` too. Pass ``ObjectStore.ANY_SCOPE`` to ignore scopes.
        """
        with self._lock:
            try:
                return self._entry(token, scope).obj
            except _OtherScope:
                raise ReferenceExpiredError(f"object reference {str(token)[:8]}… was not issued here") from None

    def resolve(self, token: str, scope: Scope) -> tuple[bool, Any]:
        """``(True, obj)`` for a token kept for ``scope``; ``(False, None)`` for one kept for another
        scope of this process (it stays a reference there); ``ReferenceExpiredError`` if unknown."""
        with self._lock:
            try:
                return True, self._entry(token, scope).obj
            except _OtherScope:
                return False, None

    def token_of(self, number: int) -> str | None:
        """The token an upstream peer's integer id stands for (None if unknown)."""
        with self._lock:
            return self._by_number.get(number)

    def release(self, token: str) -> None:
        """One anonymous holder of ``token`` is gone; drop the object when none is left."""
        with self._lock:
            entry = self._entries.get(token)
            if entry is None:
                return
            entry.counted = max(entry.counted - 1, 0)
            if entry.unused():
                del self._entries[token]
                self._forget(token, entry)

    def release_lease(self, lease: str, scope: Any = None) -> bool:
        """The holder of ``lease`` dropped its reference; True if the lease was known.

        ``scope`` is the HERO asked to release it: a lease of another HERO is left alone.
        """
        with self._lock:
            token = self._leases.get(lease)
            entry = self._entries.get(token) if token is not None else None
            if token is None or entry is None or (scope is not _ANY and entry.scope != scope):
                return False
            del self._leases[lease]
            entry.leases.discard(lease)
            if entry.unused():
                del self._entries[token]
                self._forget(token, entry)
            return True

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, token: object) -> bool:
        return token in self._entries


class _OtherScope(Exception):
    def __init__(self, scope: Scope) -> None:
        super().__init__(scope)


_ANY: Any = object()
ObjectStore.ANY_SCOPE = _ANY

obj_store = ObjectStore()


class _Keeper:
    """The hook a codec calls for a value it cannot encode: keeps it and returns the reference's fields.

    Calling it gives the native (msgpack) fields ``[type, token, repr, issuer, realm, hero, lease]``;
    ``cbor(obj)`` gives upstream's ``[type, number, repr]`` (never counted: upstream peers do not
    release references).
    """

    __slots__ = ("counted", "hero", "realm", "store")

    def __init__(self, realm: str | None, hero: str | None, counted: bool, store: ObjectStore) -> None:
        self.realm = realm
        self.hero = hero
        self.counted = counted
        self.store = store

    def _scope(self) -> Scope:
        return (self.realm, self.hero) if self.realm is not None and self.hero is not None else None

    def __call__(self, obj: Any) -> list[Any]:
        token, lease, _ = self.store.issue(obj, self._scope(), lease=self.counted)
        return [full_classname(obj), token, _text(obj), ISSUER, self.realm, self.hero, lease or False]

    def cbor(self, obj: Any) -> list[Any]:
        _, _, number = self.store.issue(obj, self._scope(), lease=False)
        return [full_classname(obj), number, _text(obj)]


def _text(obj: Any) -> str:
    try:
        return str(obj)[:200]
    except Exception:  # noqa: BLE001 - a broken __str__ must not stop the reply
        return f"<{full_classname(obj)}>"


def store_object(realm: str | None = None, hero: str | None = None, *, counted: bool = False,
                 store: ObjectStore | None = None) -> Callable[[Any], list[Any]]:
    """The hook that keeps values a codec cannot encode, for the HERO ``realm``/``hero`` (or, without
    them, for the client side of this process); ``counted`` gives each reference a lease."""
    return _Keeper(realm, hero, counted, obj_store if store is None else store)


class UnserializableRemoteObject:
    """A reference to an object kept by another HERO; send it back to use the object there.

    Attributes
    ----------
    type
        Qualified class name of the remote object.
    token
        Its id in the issuer's store (an int for objects kept by upstream HEROS peers).
    representation
        ``str()`` of the object, as the issuer saw it.
    issuer
        Who keeps it: a process id, or ``cbor:<realm>/<name>`` for an upstream HERO.
    """

    __slots__ = ("__weakref__", "_release", "id", "issuer", "representation", "token", "type")

    def __init__(self, type: str, token: Any, representation: str, issuer: str, release: Any = None) -> None:
        self.type = type
        self.token = token
        self.id = token  # upstream name
        self.representation = representation
        self.issuer = issuer
        self._release = release

    def _heros_ref(self) -> tuple[str, Any, str, str]:
        return OBJECT_BACK, self.token, self.issuer, self.type

    def __str__(self) -> str:
        token = hex(self.token) if isinstance(self.token, int) else str(self.token)[:8]
        return f"Unserializable Remote Object ({self.type}): id {token}"

    def __repr__(self) -> str:
        return f"<{self} {self.representation[:60]}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UnserializableRemoteObject) and (other.token, other.issuer) == (self.token, self.issuer)

    def __hash__(self) -> int:
        return hash((self.token, self.issuer))

    def __del__(self) -> None:
        release = self._release
        if release is not None:
            self._release = None
            try:
                release()
            except Exception:  # noqa: BLE001 - never raise from a finalizer
                pass


class HERORef:
    """A HERO named in a payload, for a peer that cannot build proxies (a bare ``HEROPeer``)."""

    __slots__ = ("_name", "_realm")

    def __init__(self, realm: str, name: str) -> None:
        self._realm = realm
        self._name = name

    def _heros_ref(self) -> tuple[str, str, str]:
        return HERO_REF, self._realm, self._name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HERORef) and (other._realm, other._name) == (self._realm, self._name)

    def __hash__(self) -> int:
        return hash(("HERORef", self._realm, self._name))

    def __repr__(self) -> str:
        return f"<HERO reference {self._realm}/{self._name}>"
