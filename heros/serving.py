"""Requests to the HEROs of a process: the first few HEROs have a thread of their own, the others
share one pool of threads.

The first ``DEDICATED`` HEROs of a process (most lab processes serve fewer) each keep threads
waiting in their zenoh channels, one for queries and one for the calls our peers publish
(``heros.rpc``): the quickest path, since zenoh's thread only queues the request on the Rust
side. While one thread serves, another listens on its channel (so a long call never blocks a short
one): two take turns, and after a burst the extra threads end as soon as two listen again.

Every further HERO gets an ``Inbox``: zenoh hands each query to ``Inbox.push`` on zenoh's own
thread, which appends it and, while the HERO serves fewer requests at a time than it may, hands
the inbox to a thread of the shared pool; that thread serves the inbox's queries in arrival order
until it is empty. The pool keeps a few threads, adds one while every thread is busy (up to
``MAX_THREADS``) and lets a thread go after ``IDLE_SECONDS`` without work. So a process serving a
thousand HEROs has about the threads of one serving ten (a thread per HERO before:
bench/RESULTS.md, "Lab scale").

Requests that never block and whose answer never changes (a HERO's descriptor and capability
list, encoded on the first request and kept) are answered on zenoh's thread at once: a discovery
asks every HERO of a process together, and would otherwise wait for pool threads that contend for
the GIL with zenoh's thread (and start more of them: zenoh's thread, holding the GIL, hands over
the requests faster than the woken threads can take them).
The hand-over costs a call through the pool about 30 µs more (zenoh's thread takes the GIL, then
wakes a pool thread that takes it in turn: bench/profile_call.py measured 310 against 275 µs), and
while another Python thread computes, zenoh's thread waits for the interpreter to switch
(``sys.getswitchinterval()``, 5 ms) as the thread serving the request would anyway. A busy inbox
gives its thread back after ``TURN`` requests when other inboxes wait, so one flooded HERO cannot
starve the others.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from typing import Any

from . import zenoh as z

__all__ = ["DEDICATED", "IDLE_SECONDS", "MAX_THREADS", "Inbox", "Requests", "threads"]

log = logging.getLogger("heros.serving")

#: HEROs of a process that have threads of their own waiting for their requests (two each, one
#: per channel, when idle: four HEROs keep as many threads as eight did with one channel each).
DEDICATED = 4
#: Most threads serving requests in one process (a thread per request served at the same time).
MAX_THREADS = 128
#: Threads kept waiting for requests however long they idle.
BASE_THREADS = 2
#: A thread idle for this long ends (down to ``BASE_THREADS``).
IDLE_SECONDS = 30.0
#: Requests one inbox serves in a row before it lets other waiting inboxes have the thread.
TURN = 64


class _Pool:
    """Threads that run inboxes' ``_drain``; grows while all are busy, shrinks when they idle."""

    def __init__(self) -> None:
        self._jobs: collections.deque[Callable[[], None]] = collections.deque()
        self._cond = threading.Condition(threading.Lock())
        self._idle = 0
        self._count = 0
        self._serial = 0
        self._stopping = False

    def submit(self, job: Callable[[], None]) -> None:
        with self._cond:
            self._jobs.append(job)
            if self._idle >= len(self._jobs):
                self._cond.notify()
                return
            if self._count >= MAX_THREADS or self._stopping:
                return  # a thread that finishes its job takes this one
            self._count += 1
            self._serial += 1
            number = self._serial
        try:
            z.start_receiver(self._run, f"heros-serve-{number}")
        except BaseException:  # no thread to be had: a thread that finishes its job takes this one
            with self._cond:
                self._count -= 1
            raise

    def waiting(self) -> bool:
        return bool(self._jobs)

    def threads(self) -> int:
        return self._count

    def stop(self, deadline: float) -> None:
        """Exit hook: idle threads end now (busy ones when their job returns)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    def _run(self) -> None:
        cond = self._cond
        while True:
            with cond:
                while not self._jobs:
                    if self._stopping:
                        self._count -= 1
                        return
                    self._idle += 1
                    woken = cond.wait(IDLE_SECONDS)
                    self._idle -= 1
                    if not woken and not self._jobs and self._count > BASE_THREADS:
                        self._count -= 1
                        return
                job = self._jobs.popleft()
            try:
                job()
            except BaseException:  # a thread of the pool must survive anything a job does
                log.exception("unhandled error while serving a HERO's requests")


_pool = _Pool()
z.add_exit_hook(_pool.stop)


def threads() -> int:
    """Threads of the shared pool now (busy and idle)."""
    return _pool.threads()


class Inbox:
    """The queries waiting for one HERO, served by ``serve(query)`` on threads of the shared pool,
    at most ``most`` at a time (1: one after the other, in arrival order). Beyond ``capacity``
    waiting queries the oldest is dropped: zenoh finalizes it, so its caller hears nobody answered."""

    __slots__ = ("_capacity", "_inline", "_lock", "_most", "_queue", "_running", "_serve", "_what", "closed", "dropped")

    def __init__(self, serve: Callable[[Any], None], most: int, capacity: int, what: str,
                 inline: Callable[[Any], bool] | None = None) -> None:
        self._serve = serve
        self._inline = inline
        self._most = most
        self._capacity = capacity
        self._what = what
        self._queue: collections.deque[Any] = collections.deque()
        self._lock = threading.Lock()
        self._running = 0
        self.closed = False
        self.dropped = 0

    def push(self, query: Any) -> None:
        """zenoh's thread: queue ``query`` and start one more server if the HERO may run one more
        (unless ``inline`` answered it here: a request that never blocks)."""
        if self._inline is not None and self._inline(query):
            return
        self.push_call(query)

    def push_call(self, query: Any) -> None:
        """zenoh's thread: queue ``query`` (a published request, ``heros.rpc.Call``, or a query)."""
        if query is None:
            return
        dropped = None
        with self._lock:
            if self.closed:
                dropped = query
            else:
                self._queue.append(query)
                if len(self._queue) > self._capacity:
                    dropped = self._queue.popleft()
                    self.dropped += 1
                    if self.dropped == 1:
                        log.warning("HERO %r: more than %d requests wait; dropping the oldest", self._what, self._capacity)
                start = self._running < self._most
                if start:
                    self._running += 1
        if dropped is not None:
            _finalize(dropped)
            return
        if start:
            _pool.submit(self._drain)

    def close(self) -> None:
        """The queryable is gone: queries still waiting are finalized unanswered."""
        with self._lock:
            self.closed = True
            waiting = list(self._queue)
            self._queue.clear()
        for query in waiting:
            _finalize(query)

    def _drain(self) -> None:
        queue, lock, serve = self._queue, self._lock, self._serve
        served = 0
        while True:
            with lock:
                if not queue or (served >= TURN and _pool.waiting()):
                    if queue:  # others wait: queue again behind them
                        _pool.submit(self._drain)
                    else:
                        self._running -= 1
                    return
                query = queue.popleft()
            served += 1
            serve(query)


def _finalize(query: Any) -> None:
    try:
        z.drop(query)
    except Exception:  # the session may be closing
        log.debug("could not finalize a dropped query", exc_info=True)


_dedicated = 0
_dedicated_lock = threading.Lock()


class Requests:
    """How one HERO receives its queries on ``key``: ``serve(query)`` answers each, at most ``most``
    at a time, with up to ``capacity`` waiting (beyond, the oldest is finalized unanswered).
    ``inline(query)``, for a HERO in the pool, may answer a query on zenoh's thread (True) when
    that never blocks. ``calls``, ``(key, make)``: a subscriber on ``key`` whose samples ``make``
    turns into requests for ``serve`` (``heros.rpc.Call``; None for a sample that is none), served
    beside the queries (a serial HERO, ``most`` 1, serves one request at a time across both).
    ``undeclare()`` stops it (``LocalHERO`` undeclares it with its other entities)."""

    def __init__(self, session: Any, key: str, serve: Callable[[Any], None], most: int, capacity: int, what: str,
                 inline: Callable[[Any], bool] | None = None,
                 calls: tuple[str, Callable[[Any], Any]] | None = None) -> None:
        global _dedicated
        self._what = what
        self._calls: Any = None
        with _dedicated_lock:
            self.dedicated = _dedicated < DEDICATED
            if self.dedicated:
                _dedicated += 1
        self._released = not self.dedicated
        try:
            if self.dedicated:
                if calls is not None and most == 1:  # two channels, one request at a time
                    serve = _one_at_a_time(serve)
                self._queryable = z.declare_queryable_channel(session, key, capacity)
                _Listeners(z.channel(self._queryable), serve, most, f"heros-{what}").listen()
                if calls is not None:
                    make = calls[1]

                    def serve_call(sample: Any) -> None:
                        call = make(sample)
                        if call is not None:
                            serve(call)

                    self._calls = z.declare_subscriber_channel(session, calls[0], capacity, block=False)
                    _Listeners(z.channel(self._calls), serve_call, most, f"heros-{what}-calls").listen()
            else:
                inbox = Inbox(serve, most, capacity, what, inline)
                self._queryable = z.declare_queryable_callback(session, key, inbox.push, inbox.close)
                if calls is not None:
                    make = calls[1]
                    self._calls = z.declare_subscriber_callback(session, calls[0], lambda sample: inbox.push_call(make(sample)))
        except BaseException:
            self.undeclare()
            raise

    def undeclare(self) -> None:
        try:
            for entity in (self._calls, getattr(self, "_queryable", None)):
                if entity is not None:
                    entity.undeclare()  # wakes the dedicated threads: their channel ends
        finally:
            self._release()

    def _release(self) -> None:
        global _dedicated
        with _dedicated_lock:
            if not self._released:
                self._released = True
                _dedicated -= 1



def _one_at_a_time(serve: Callable[[Any], None]) -> Callable[[Any], None]:
    """``serve`` for a serial HERO that receives its requests on two channels."""
    lock = threading.Lock()

    def serve_one(request: Any) -> None:
        with lock:
            serve(request)

    return serve_one


class _Listeners:
    """The dedicated threads of one channel: one listens while others serve, at most ``most``."""

    def __init__(self, channel: Any, serve: Callable[[Any], None], most: int, name: str) -> None:
        self._channel = channel
        self._serve = serve
        self._most = most
        self._name = name
        self._idle: list[None] = []  # one entry per thread waiting in the channel
        self._count = 0
        self._lock = threading.Lock()

    def listen(self) -> None:
        """Start one more dedicated thread, unless one is listening already or the bound is reached."""
        with self._lock:
            if self._idle or self._count >= self._most:
                return
            self._count += 1
            number = self._count
        z.start_receiver(self._work, f"{self._name}-{number}")

    def _work(self) -> None:
        channel, idle, serve = self._channel, self._idle, self._serve
        while True:
            idle.append(None)  # list append and pop are atomic: no lock on the way of each request
            query = z.receive(channel)
            idle.pop()
            if query is None:  # undeclared: the HERO stopped serving
                break
            if not idle:
                self.listen()  # keep one thread listening while this one serves
            serve(query)
            if len(idle) >= 2:  # two others listen: this one ends (after a burst, two are left, which take turns)
                break
        with self._lock:
            self._count -= 1
