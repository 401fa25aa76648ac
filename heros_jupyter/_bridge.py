"""The hand-over from foreign threads (zenoh, HEROS workers, call threads) to the kernel's event loop.

Widgets are touched only on the loop thread. ``LoopBridge.call`` runs a function there soon, in
order. ``LoopBridge.post(key, fn, value)`` is the coalescing buffer: it keeps only the latest value
per key and a flusher applies all pending keys at most ``rate`` times per second, so a 1 kHz
stream costs the frontend ``rate`` updates per second and the latest value always lands.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

__all__ = ["LoopBridge", "kernel_loop"]

log = logging.getLogger("heros_jupyter")


def kernel_loop(shell: Any) -> asyncio.AbstractEventLoop | None:
    """The event loop of the kernel that runs ``shell``; None outside a kernel (plain terminal IPython)."""
    kernel = getattr(shell, "kernel", None)
    if kernel is None:
        return None
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        pass
    io_loop = getattr(kernel, "io_loop", None)
    return getattr(io_loop, "asyncio_loop", None)


class LoopBridge:
    """Runs callables on one event loop's thread; coalesces keyed updates to a bounded rate.

    Parameters
    ----------
    loop
        The loop whose thread owns the widgets. None runs everything at once on the calling
        thread (terminal IPython, where no frontend renders widgets).
    rate
        Most flushes of the coalescing buffer per second (``<= 0``: flush as soon as possible).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop | None, rate: float = 10.0) -> None:
        self._loop = loop
        self.rate = float(rate)
        self._lock = threading.Lock()
        self._pending: dict[Hashable, tuple[Callable[[Any], None], Any]] = {}
        self._armed = False
        self._last_flush = float("-inf")
        self._closed = False
        self.flushes = 0
        self.posted = 0

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._loop

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the loop thread soon, after the calls queued before it."""
        if self._closed:
            return
        if self._loop is None:
            self._run(fn, args)
            return
        try:
            self._loop.call_soon_threadsafe(self._run, fn, args)
        except RuntimeError:  # the loop is closed: the kernel is shutting down
            log.debug("loop closed; dropped %r", fn)

    def post(self, key: Hashable, fn: Callable[[Any], None], value: Any) -> None:
        """Apply ``fn(value)`` on the loop thread at the next flush; a later post for ``key`` replaces it."""
        if self._closed:
            return
        with self._lock:
            self.posted += 1
            self._pending[key] = (fn, value)
            if self._armed:
                return
            self._armed = True
        if self._loop is None:
            self._flush()
            return
        try:
            self._loop.call_soon_threadsafe(self._arm)
        except RuntimeError:
            log.debug("loop closed; dropped update %r", key)

    def _arm(self) -> None:
        interval = 1.0 / self.rate if self.rate > 0 else 0.0
        delay = self._last_flush + interval - time.monotonic()
        if delay > 0 and self._loop is not None:
            self._loop.call_later(delay, self._flush)
        else:
            self._flush()

    def _flush(self) -> None:
        with self._lock:
            items = self._pending
            self._pending = {}
            self._armed = False
        self._last_flush = time.monotonic()
        self.flushes += 1
        for fn, value in items.values():
            self._run(fn, (value,))

    def _run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        if self._closed:
            return
        try:
            fn(*args)
        except Exception:
            log.exception("heros_jupyter: update %r failed", fn)

    def close(self) -> None:
        """Drop pending updates; later calls and posts do nothing."""
        self._closed = True
        with self._lock:
            self._pending.clear()
