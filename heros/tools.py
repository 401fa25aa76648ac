"""The surface for tools that drive HEROs (the Jupyter layer, the CLI, a GUI, an archiver).

Module-level functions that take a proxy or a discovery descriptor, so that nothing here can
clash with the name of a remote member. Tools use these and the public classes, never the
``_``-prefixed internals of the core.
"""

from __future__ import annotations

from typing import Any

from .local import CODEC_TAG

__all__ = ["is_upstream"]


def is_upstream(hero: Any) -> bool:
    """Whether a HERO is served by upstream HEROS (CBOR; no attribute-change publications, no
    units or limits), given its proxy or its discovery descriptor."""
    if isinstance(hero, dict):
        return CODEC_TAG not in (hero.get("tags") or ())
    hero._heros_connect()
    return bool(hero._heros_upstream)
