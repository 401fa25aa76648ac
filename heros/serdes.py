"""Upstream's import path for (de)serialization: CBOR with upstream's tags, as ``heros.serdes`` upstream.

Our peers talk msgpack to each other (``heros.codec``); CBOR (``heros.cbor``) is what upstream HEROS
peers speak, and what these two functions read and write, so code written against upstream's
``serialize``/``deserialize`` gets the same bytes.
"""

from __future__ import annotations

from typing import Any

from . import cbor
from .peer import PeerResolver
from .references import ObjectStore, UnserializableRemoteObject, obj_store, store_object
from .remote import RemoteHERO
from .zenoh import session_manager

__all__ = [
    "ObjectStore",
    "UnserializableRemoteObject",
    "deserialize",
    "hero_event_tag",
    "hero_exception_tag",
    "hero_method_tag",
    "hero_tag",
    "ndarray_tag",
    "obj_store",
    "serialize",
    "unserializable_object_reference_tag",
    "unserializable_tag",
]

ndarray_tag = cbor.TAG_NDARRAY
hero_tag = cbor.TAG_HERO
unserializable_tag = cbor.TAG_OBJECT
unserializable_object_reference_tag = cbor.TAG_OBJECT_BACK
hero_event_tag = cbor.TAG_EVENT
hero_method_tag = cbor.TAG_METHOD
hero_exception_tag = cbor.TAG_ERROR

_STORE = store_object(counted=False)


class _ProcessPeer:
    """What resolves references for ``deserialize``: the client side of this process, default session manager."""

    _realm = "heros"
    _heros_scope = None
    _session_manager = session_manager

    def _heros_reference(self, realm: str, name: str) -> RemoteHERO:
        return RemoteHERO._heros_proxy_for(session_manager, realm, name)


def serialize(obj: Any) -> bytes:
    """CBOR bytes of ``obj``, as upstream HEROS writes them (unserializable values are kept and referenced)."""
    return cbor.encode(obj, _STORE)[0]


def deserialize(data: bytes) -> Any:
    """The object ``serialize`` (ours or upstream's) encoded; HERO references become proxies,
    looked up when first used."""
    return cbor.decode(data, PeerResolver(_ProcessPeer()))  # type: ignore[arg-type]
