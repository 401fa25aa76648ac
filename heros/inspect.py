"""Markers on functions: ``local_only`` hides a public method, ``force_remote`` exposes a private one.

Kept at upstream's import path ``heros.inspect``. The markers are attributes on the function
object; the capability scan reads them from the class attribute.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

__all__ = [
    "FORCE_REMOTE_ATTRIBUTE",
    "HERO_EVENT_ATTRIBUTE",
    "HERO_METHOD_ATTRIBUTE",
    "LOCAL_ONLY_ATTRIBUTE",
    "force_remote",
    "is_force_remote",
    "is_hero_event",
    "is_hero_method",
    "is_local_only",
    "local_only",
    "mark_force_remote",
    "mark_hero_event",
    "mark_hero_method",
    "mark_local_only",
]

HERO_EVENT_ATTRIBUTE = "hero_event"
HERO_METHOD_ATTRIBUTE = "hero_method"
LOCAL_ONLY_ATTRIBUTE = "local_only"
FORCE_REMOTE_ATTRIBUTE = "force_remote"

F = TypeVar("F", bound=Callable[..., Any])


def _mark(func: F, marker: str) -> F:
    target = func.__func__ if isinstance(func, (staticmethod, classmethod)) else func
    setattr(target, marker, True)
    return func


def _is_marked(obj: Any, marker: str) -> bool:
    try:
        return getattr(obj, marker, False) is True
    except Exception:  # noqa: BLE001 - a descriptor may raise on attribute access
        return False


def mark_hero_event(func: F) -> F:
    """Mark a callable as an event."""
    return _mark(func, HERO_EVENT_ATTRIBUTE)


def mark_hero_method(func: F) -> F:
    """Mark a callable as a method of a remote HERO."""
    return _mark(func, HERO_METHOD_ATTRIBUTE)


def mark_local_only(func: F) -> F:
    """Keep a public method of a LocalHERO off the network."""
    return _mark(func, LOCAL_ONLY_ATTRIBUTE)


def mark_force_remote(func: F) -> F:
    """Expose a ``_``-prefixed method of a LocalHERO on the network."""
    return _mark(func, FORCE_REMOTE_ATTRIBUTE)


local_only = mark_local_only
force_remote = mark_force_remote


def is_hero_event(obj: Any) -> bool:
    """Whether ``obj`` is an event (local or remote)."""
    return _is_marked(obj, HERO_EVENT_ATTRIBUTE)


def is_hero_method(obj: Any) -> bool:
    """Whether ``obj`` is a method of a remote HERO."""
    return _is_marked(obj, HERO_METHOD_ATTRIBUTE)


def is_local_only(obj: Any) -> bool:
    """Whether ``obj`` is marked ``local_only``."""
    return _is_marked(obj, LOCAL_ONLY_ATTRIBUTE)


def is_force_remote(obj: Any) -> bool:
    """Whether ``obj`` is marked ``force_remote``."""
    return _is_marked(obj, FORCE_REMOTE_ATTRIBUTE)
