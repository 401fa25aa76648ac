"""Upstream's import path for (de)serialization: here msgpack, see ``heros.codec``."""

from __future__ import annotations

from typing import Any

from . import codec
from .references import ObjectStore, UnserializableRemoteObject, obj_store

__all__ = ["ObjectStore", "UnserializableRemoteObject", "deserialize", "obj_store", "serialize"]


def serialize(obj: Any) -> bytes:
    """Self-contained msgpack bytes of ``obj`` (``heros.codec.encode`` is the zero-copy form)."""
    from .peer import store_object

    data, _ = codec.encode(obj, store_object(), oob=False)
    return bytes(data)


def deserialize(data: bytes) -> Any:
    """The object ``serialize`` encoded (references stay unresolved)."""
    return codec.decode(data, codec.ENCODING)
