"""A HEROS client driven from stdin, for the security tests: ``python tests/security_probe.py``.

Its zenoh configuration comes from ``HEROS_ZENOH_CONFIG``. Each stdin line is ``<action> <JSON
list of arguments>``; each answer is one line ``RESULT <JSON>`` with ``ok``, the ``value`` or the
error's class names and first message line, and the ``seconds`` the action took here (process
start-up excluded). EOF ends it.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

from heros import HEROObserver, RemoteHERO

proxies: dict[str, RemoteHERO] = {}
received: list[Any] = []
_arrived = threading.Condition()


def _keep(value: Any) -> None:
    with _arrived:
        received.append(value)
        _arrived.notify_all()


def connect(realm: str, name: str, discovery_timeout: float = 2.0, timeout: float = 3.0) -> list[str]:
    proxies[name] = RemoteHERO(name, realm=realm, discovery_timeout=discovery_timeout, timeout=timeout)
    return sorted(proxies[name]._heros_caps)


def discover(realm: str, timeout: float) -> list[str]:
    observer = HEROObserver(realm, timeout=timeout)
    try:
        observer.wait_for(bool, timeout)
        return sorted(observer.known_objects)
    finally:
        observer._destroy_hero()


def read(name: str, attr: str) -> Any:
    return getattr(proxies[name], attr)


def write(name: str, attr: str, value: Any) -> None:
    setattr(proxies[name], attr, value)


def call(name: str, method: str, *args: Any) -> Any:
    return getattr(proxies[name], method)(*args)


def listen(name: str, event: str) -> bool:
    getattr(proxies[name], event).connect(_keep)
    return True


def watch(name: str, attr: str) -> bool:
    proxies[name]._watch_attribute(attr, _keep)
    return True


def wait_received(value: Any, timeout: float) -> bool:
    """Whether ``value`` has been received by a ``listen`` or ``watch`` callback within ``timeout``."""
    with _arrived:
        return _arrived.wait_for(lambda: value in received, timeout)


ACTIONS = {f.__name__: f for f in (connect, discover, read, write, call, listen, watch, wait_received)}


def _answer(line: str) -> dict[str, Any]:
    action, _, text = line.partition(" ")
    args = json.loads(text) if text.strip() else []
    t0 = time.monotonic()
    try:
        value = ACTIONS[action](*args)
        return {"ok": True, "value": value, "seconds": time.monotonic() - t0}
    except BaseException as exc:
        return {"ok": False, "error": [c.__name__ for c in type(exc).__mro__], "message": (str(exc).splitlines() or [""])[0],
                "seconds": time.monotonic() - t0}


def main() -> None:
    print("READY", flush=True)
    for line in sys.stdin:
        if line.strip():
            print("RESULT", json.dumps(_answer(line.strip()), default=repr), flush=True)
    for proxy in proxies.values():
        proxy._destroy_hero()


if __name__ == "__main__":
    main()
