"""Background work handed off by zenoh callbacks: a pool of daemon threads, and strands.

zenoh callbacks only enqueue here and return (HERO requests and subscription samples do not come
here: they are taken from zenoh channels by their own threads). The pool grows on demand up to a
bound and its threads are daemons, so a task that never returns cannot keep the process from
exiting. A ``Strand`` runs its items one at a time, in order, on the pool: a HEROObserver's
liveliness changes use one.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["Strand", "pool", "submit"]

log = logging.getLogger("heros.executor")

#: Upper bound of worker threads; requests beyond it wait in the queue.
MAX_WORKERS = 64


class _Pool:
    def __init__(self, max_workers: int) -> None:
        self._queue: collections.deque[tuple[Callable[..., Any], tuple[Any, ...]]] = collections.deque()
        self._cond = threading.Condition(threading.Lock())
        self._idle = 0
        self._workers = 0
        self._max = max_workers

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        with self._cond:
            self._queue.append((fn, args))
            if self._idle > len(self._queue) - 1:
                self._cond.notify()
                return
            if self._workers >= self._max:
                return
            self._workers += 1
        threading.Thread(target=self._work, name=f"heros-worker-{self._workers}", daemon=True).start()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    self._idle += 1
                    self._cond.wait()
                    self._idle -= 1
                fn, args = self._queue.popleft()
            try:
                fn(*args)
            except BaseException:  # a worker must survive anything a task does
                log.exception("unhandled error in HEROS worker task %r", fn)


pool = _Pool(MAX_WORKERS)
submit = pool.submit


class Strand:
    """Runs submitted callables one at a time, in submission order, on the shared pool."""

    def __init__(self) -> None:
        self._items: collections.deque[tuple[Callable[..., Any], tuple[Any, ...]]] = collections.deque()
        self._lock = threading.Lock()
        self._running = False

    @property
    def busy(self) -> bool:
        """Whether items are queued or running (a caller that must not overtake them submits too)."""
        return self._running

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        with self._lock:
            self._items.append((fn, args))
            if self._running:
                return
            self._running = True
        submit(self._drain)

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._items:
                    self._running = False
                    return
                fn, args = self._items.popleft()
            try:
                fn(*args)
            except BaseException:
                log.exception("unhandled error in HEROS strand task %r", fn)
