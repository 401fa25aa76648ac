"""Objects that cannot be serialized travel as references, and are kept by the process that issued them.

Lifetime rule: an object handed out in a reply stays alive in its issuer's store while any
remote reference to it may still be used, that is until every ``UnserializableRemoteObject``
decoded from such a reply has been garbage collected (each sends a release back), or until the
store is full: it holds at most ``ObjectStore.max_objects`` objects (default 10,000) and then
drops the least recently used one with a warning. Objects handed out in event publications
(which may reach any number of subscribers) are not counted; they live until pushed out.
A reference sent back after its object was dropped raises ``ReferenceExpiredError`` (a
``LookupError``) naming the type; it never turns into ``None``.

Tokens are random (128 bits) and carry the id of the issuing process, so a reference passed to
a third process is never mistaken for one of its own objects: it stays a reference there and
resolves when it comes back to its issuer.
"""

from __future__ import annotations

import collections
import logging
import secrets
import threading
from typing import Any

from .exceptions import ReferenceExpiredError

__all__ = ["ISSUER", "ObjectStore", "UnserializableRemoteObject", "obj_store"]

log = logging.getLogger("heros.references")

#: This process's issuer id, part of every reference it hands out.
ISSUER = secrets.token_hex(8)


def full_classname(obj: Any) -> str:
    cls = type(obj)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


class _Entry:
    __slots__ = ("holders", "obj", "type")

    def __init__(self, obj: Any) -> None:
        self.obj = obj
        self.type = full_classname(obj)
        self.holders = 0


class ObjectStore:
    """Strongly held objects by random token, bounded, least recently used dropped first."""

    def __init__(self, max_objects: int = 10_000) -> None:
        self.max_objects = max_objects
        self._entries: collections.OrderedDict[str, _Entry] = collections.OrderedDict()
        self._by_id: dict[int, str] = {}
        self._lock = threading.Lock()

    def add(self, obj: Any, *, counted: bool = True) -> str:
        """Keep ``obj`` and return its token (the same token while it is kept)."""
        with self._lock:
            token = self._by_id.get(id(obj))
            entry = self._entries.get(token) if token else None
            if entry is None or entry.obj is not obj:
                token = secrets.token_hex(16)
                entry = _Entry(obj)
                self._entries[token] = entry
                self._by_id[id(obj)] = token
            else:
                self._entries.move_to_end(token)
            if counted:
                entry.holders += 1
            while len(self._entries) > self.max_objects:
                _, old = self._entries.popitem(last=False)
                self._by_id.pop(id(old.obj), None)
                log.warning(
                    "object store full (%d objects): dropping %s, references to it now raise ReferenceExpiredError",
                    self.max_objects, old.type,
                )
            return token

    def get(self, token: str) -> Any:
        """The object behind ``token``; ``ReferenceExpiredError`` if it is unknown or was dropped."""
        with self._lock:
            entry = self._entries.get(token)
            if entry is None:
                raise ReferenceExpiredError(
                    f"object reference {token[:8]}… is unknown here or has expired "
                    f"(the store keeps at most {self.max_objects} objects)"
                )
            self._entries.move_to_end(token)
            return entry.obj

    def release(self, token: str) -> None:
        """One remote reference to ``token`` is gone; drop the object when none is left."""
        with self._lock:
            entry = self._entries.get(token)
            if entry is None:
                return
            entry.holders -= 1
            if entry.holders <= 0:
                del self._entries[token]
                self._by_id.pop(id(entry.obj), None)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, token: object) -> bool:
        return token in self._entries


obj_store = ObjectStore()


class UnserializableRemoteObject:
    """A reference to an object kept by another process; send it back to use the object there.

    Attributes
    ----------
    type
        Qualified class name of the remote object.
    token
        Its id in the issuer's store.
    representation
        ``str()`` of the object, as the issuer saw it.
    """

    __slots__ = ("__weakref__", "_release", "id", "issuer", "representation", "token", "type")

    def __init__(self, type: str, token: str, representation: str, issuer: str, release: Any = None) -> None:
        self.type = type
        self.token = token
        self.id = token  # upstream name
        self.representation = representation
        self.issuer = issuer
        self._release = release

    def _heros_encode(self) -> tuple[int, list[Any]]:
        from .codec import EXT_OBJECT_BACK

        return EXT_OBJECT_BACK, [self.token, self.issuer, self.type]

    def __str__(self) -> str:
        return f"Unserializable Remote Object ({self.type}): id {self.token[:8]}"

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
                release(self.token)
            except Exception:  # noqa: BLE001 - never raise from a finalizer
                pass
