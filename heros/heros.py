"""Upstream's import path for the main classes (``from heros.heros import HEROObserver``)."""

from __future__ import annotations

from .inspect import force_remote, local_only
from .local import LocalHERO
from .observer import EventObserver, HEROObserver
from .peer import HERO, HEROPeer
from .remote import RemoteHERO

__all__ = ["HERO", "EventObserver", "HEROObserver", "HEROPeer", "LocalHERO", "RemoteHERO", "force_remote", "local_only"]
