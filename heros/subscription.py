"""Subscriptions: samples of zenoh subscribers handed to callbacks, in order, by one shared dispatcher.

Samples first wait in the subscriber's zenoh channel, on the Rust side: no zenoh thread ever waits
for Python's GIL (a Python callback on zenoh's threads would, and would stall every other message
of the session while a Python thread computes). A single dispatcher thread per process watches
every subscription's channel; when one has samples, a worker of the shared pool runs that
subscription's callbacks, taking the samples straight from its channel while it keeps up. So a
process pays one thread for all its subscriptions (plus pool workers while callbacks run), not one
per subscription.

Each subscription keeps its order and its bounds. When its callback is slow (a stalled handler of
a camera's frames), the dispatcher moves the waiting samples into the subscription's own queue,
bounded by ``max_samples`` and ``max_bytes``: a best-effort subscription then drops the oldest and
counts them (``dropped``); a reliable one stops taking, so zenoh's channel (``FIFO_CAPACITY``
samples more) fills and pushes back on the publisher (back-pressure). Either is logged once per
subscription.

Back-pressure stops zenoh's receiving thread for the whole link to the publisher's process: its
replies to calls wait too, and zenoh closes a link whose publisher stayed blocked for 5 s
(``wait_before_close``), losing whatever was under way. So a reliable subscription pushes back
while its callback gets on, however slowly (it then takes from its queue a few samples at a time,
``QUEUE_BATCH``, making room at every few callbacks); once one callback has not returned for
``PUSH_BACK_SECONDS``, it drops the oldest as a best-effort one does (counted in ``dropped``,
logged once as an error) until the callback returns.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from . import bulk
from . import zenoh as z

__all__ = ["MAX_QUEUED_BYTES", "MAX_QUEUED_SAMPLES", "Subscription"]

log = logging.getLogger("heros.subscription")

#: Samples a subscription keeps for a slow callback, at most (best effort drops the oldest beyond).
MAX_QUEUED_SAMPLES = 100_000
#: Bytes of payload a subscription keeps for a slow callback, at most.
MAX_QUEUED_BYTES = 64 * 2**20
#: zenoh channel sizes: a best-effort ring absorbs bursts between two looks of the dispatcher; a
#: reliable FIFO is short, so that back-pressure starts soon after the subscription's own queue is
#: full. Not shorter: zenoh's receiving thread waits whenever the FIFO is full, and the wake-ups of
#: a FIFO of 256 cost a stream about a tenth of its rate on two cores (bench/RESULTS.md). Our HEROs
#: cut a reliable event into parts of ``bulk.RELIABLE_PART_BYTES``, so a subscriber that falls
#: behind holds at most 1 GiB of their parts in this FIFO (as 256 parts of 4 MiB did before).
RING_CAPACITY = 100_000
FIFO_CAPACITY = 1024
#: Samples taken from a channel in one go (by the dispatcher or a callback worker).
BATCH = 1024
#: Samples a worker takes from the subscription's own queue in one go: few, so that a reliable
#: subscription pushing back makes room in it (and takes from zenoh's channel) at every few
#: callbacks, not once per ``BATCH`` of them.
QUEUE_BATCH = 64
#: Samples the dispatcher moves to a slow subscription's queue before it checks the bounds again.
SPILL_CHUNK = 4
#: A callback worker that has not taken a sample for this long is busy in a callback: the
#: dispatcher then keeps its channel drained into the bounded queue.
STUCK_SECONDS = 0.05
#: How long a reliable subscription pushes back while one callback does not return, before it drops
#: the oldest instead (below zenoh's 5 s, after which zenoh closes the link to the publisher).
PUSH_BACK_SECONDS = 2.0
#: How long a worker serves one busy subscription before it lets another waiting one have a turn.
SLICE_SECONDS = 0.02
#: A worker that handled this many samples in its turn serves a stream: finding the channel empty,
#: it looks again after each of these pauses (seconds) before it gives its turn back. (A stream of
#: a few kHz, whose samples come one at a time, does not linger: its pauses would cost more than
#: the dispatcher's round trip.)
STREAMING_SAMPLES = 32
LINGER_PAUSES = (0.00005, 0.0001, 0.0002, 0.0004)
#: The dispatcher's pauses while no channel has samples: short after activity, growing when idle
#: (the longest is the most a sample can wait before its subscription's worker starts).
MIN_PAUSE, MAX_PAUSE = 0.0001, 0.002

Sample = tuple[str | None, bytes, str]


class _Dispatcher:
    """The thread that watches every subscription's channel of this process."""

    def __init__(self) -> None:
        self._subs: tuple[Subscription, ...] = ()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, sub: Subscription) -> None:
        with self._lock:
            self._subs = (*self._subs, sub)
            start = self._thread is None or not self._thread.is_alive()
            if start:
                self._thread = thread = z.receiver_thread(self._run, "heros-dispatcher")
        if start:  # with the lock released: a finalizer run on the new thread may remove a subscription
            thread.start()
        self._wake.set()

    def remove(self, sub: Subscription) -> None:
        with self._lock:
            self._subs = tuple(s for s in self._subs if s is not sub)

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        pause = MIN_PAUSE
        while not z.exiting():
            subs = self._subs
            if not subs:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            now = time.monotonic()
            active = 0
            for sub in subs:
                active += sub._watch(now)
            _workers.watch(now)
            if active:
                pause = MIN_PAUSE
                time.sleep(0)  # let the workers take the GIL
                continue
            if self._wake.wait(pause):
                self._wake.clear()
                pause = MIN_PAUSE
            else:
                pause = min(pause * 2, MAX_PAUSE)


class _Workers:
    """The threads that run subscriptions' callbacks: a few while callbacks return promptly, one
    more each time all of them have been stuck in callbacks for ``STUCK_SECONDS`` (up to ``MOST``).

    Each job is one subscription's ``_work``; a subscription that keeps receiving gives its worker
    back after ``SLICE_SECONDS`` and queues again, so busy subscriptions take turns.
    """

    BASE, MOST = 2, 32

    def __init__(self) -> None:
        self._jobs: collections.deque[Callable[[], None]] = collections.deque()
        self._cond = threading.Condition(threading.Lock())
        self._idle = 0
        self._count = 0
        self._last_pick = time.monotonic()

    def submit(self, job: Callable[[], None]) -> None:
        with self._cond:
            self._jobs.append(job)
            if self._idle:
                self._cond.notify()
                return
            if self._count >= self.BASE:
                return  # the watchdog adds a worker if the busy ones stay stuck
            self._count += 1
        z.start_receiver(self._run, f"heros-callbacks-{self._count}")

    def waiting(self) -> bool:
        return bool(self._jobs)

    def watch(self, now: float) -> None:
        """Dispatcher: add a worker when jobs wait and no worker has taken one for a while."""
        with self._cond:
            if not self._jobs or self._idle or self._count >= self.MOST or now - self._last_pick < STUCK_SECONDS:
                return
            self._count += 1
            self._last_pick = now
        z.start_receiver(self._run, f"heros-callbacks-{self._count}")

    def _run(self) -> None:
        while not z.exiting():
            with self._cond:
                while not self._jobs:
                    self._idle += 1
                    self._cond.wait(1.0)
                    self._idle -= 1
                    if z.exiting():
                        return
                job = self._jobs.popleft()
                self._last_pick = time.monotonic()
            try:
                job()
            except BaseException:  # a worker must survive anything a job does
                log.exception("unhandled error in a subscription's callbacks")


_dispatcher = _Dispatcher()
_workers = _Workers()

# Workers running callbacks right now: at exit they must leave zenoh's calls before it finalizes.
_active = 0
_active_changed = threading.Condition()


def _quiesce(deadline: float) -> None:
    """Exit hook: wait (until ``deadline``) for the workers to leave; they take nothing more."""
    with _active_changed:
        while _active and time.monotonic() < deadline:
            _active_changed.wait(max(deadline - time.monotonic(), 0.0))


z.add_exit_hook(_quiesce)


class Subscription:
    """A zenoh subscriber whose samples are decoded and handed to ``callback(key, value)`` in order
    (``callback(value)`` with ``with_key=False``, which spares reading each sample's key).

    Parameters
    ----------
    peer
        The HEROS object whose session subscribes and whose resolver decodes.
    key
        The key expression subscribed to.
    callback
        Called on a pool worker (never on zenoh's threads), one sample at a time, in order; an
        exception it raises is logged and the next sample still comes.
    what
        Names the subscription in log messages.
    reliable
        Push back on the publisher when the queue is full, instead of dropping the oldest.
    with_key
        Hand the sample's key to the callback.
    skip_mirrors
        Leave out the CBOR copies our HEROs publish for upstream subscribers.
    native
        ``key`` is one of our own keys (events and attribute changes in msgpack), where a sample
        that carries no attachment is plain msgpack (``heros.zenoh.NOT_PLAIN``).
    max_samples, max_bytes
        Bounds of the queue kept for a slow callback.

    Attributes
    ----------
    dropped
        Samples a best-effort subscription dropped because its callback fell behind, and large
        messages it lost parts of (``heros.bulk``).
    received
        Samples handed to the callback.
    callback
        The function called for each sample; set it to call another one from the next sample on.
    """

    def __init__(self, peer: Any, key: str, callback: Callable[..., None], what: str, *, reliable: bool = False,
                 with_key: bool = True, skip_mirrors: bool = False, native: bool = False, max_samples: int = MAX_QUEUED_SAMPLES,
                 max_bytes: int = MAX_QUEUED_BYTES) -> None:
        self._peer = peer
        self.callback = callback
        self._what = what
        self._with_key = with_key
        self._skip_mirrors = skip_mirrors
        self._native = native
        self._reliable = reliable
        self._max_samples = max_samples
        self._max_bytes = max_bytes
        self._pending: collections.deque[Sample] = collections.deque()
        self._pending_bytes = 0
        self._lock = threading.Lock()  # guards the queue and every take from the channel (order)
        self._running = False  # a worker runs the callbacks
        self._last_take = 0.0
        self._closed = False
        self._warned = False
        self._dropped = 0
        self._held_since: float | None = None  # a reliable subscription pushes back since then,
        self._held_received = 0  # and its callback had been handed this many samples
        self._shedding = False  # it pushed back too long: drops the oldest until the callback returns
        self._shed_logged = False
        self._assembler = bulk.Assembler()
        self.received = 0
        self._subscriber = z.declare_subscriber_channel(peer._session, key, FIFO_CAPACITY if reliable else RING_CAPACITY,
                                                        block=reliable)
        self._channel = z.channel(self._subscriber)
        peer._declare(self)  # the peer's end closes it (``undeclare``)
        _dispatcher.add(self)

    @property
    def dropped(self) -> int:
        return self._dropped + self._assembler.dropped

    # --- the dispatcher thread ------------------------------------------------------------------

    def _watch(self, now: float) -> int:
        """Dispatcher: start a worker for samples waiting, or keep a stuck worker's channel drained
        into the bounded queue. Returns how many samples it saw move (0: nothing to do here)."""
        if self._closed:
            return 0
        if self._running:
            if now - self._last_take < STUCK_SECONDS:
                self._held_since, self._shedding = None, False
                return 0  # the worker keeps up on its own
            if self._reliable and self._full():
                received = self.received
                if self._held_since is None or received != self._held_received:  # the callback got on: push back
                    self._held_since, self._held_received, self._shedding = now, received, False
                if now - self._held_since < PUSH_BACK_SECONDS:
                    if not self._warned:  # once: a stuck callback now stalls the publisher (and zenoh's link to it)
                        self._warned = True
                        log.warning("%s: the callback falls behind; the publisher waits for it (%d samples queued, %d bytes)",
                                    self._what, len(self._pending), self._pending_bytes)
                    return 0  # back-pressure: leave the samples in zenoh's (short) channel
                self._shedding = True
                if not self._shed_logged:
                    self._shed_logged = True
                    log.error("%s: the callback has not returned for %.0f s; dropping the oldest samples until it does (the "
                              "publisher's link would stall, and zenoh close it)", self._what, now - self._held_since)
            with self._lock:
                moved = self._spill()
            return moved
        with self._lock:
            if self._pending:
                moved = 1
            else:
                moved = self._spill(1)
            if moved and not self._running:
                self._running = True
                self._last_take = now
                _workers.submit(self._work)
        return moved

    def _full(self) -> bool:
        return len(self._pending) >= self._max_samples or self._pending_bytes >= self._max_bytes

    def _spill(self, limit: int = BATCH) -> int:
        """Move samples from zenoh's channel to the queue (lock held), dropping the oldest beyond the
        bounds. Taken a few at a time, so that large payloads never pile up far past the bound."""
        pending = self._pending
        moved = 0
        keep_all = self._reliable and not self._shedding
        while moved < limit:
            if keep_all and self._full():
                break
            taken = z.take(self._channel, min(SPILL_CHUNK, limit - moved), with_key=self._with_key, skip_mirrors=self._skip_mirrors,
                           native=self._native, assembler=self._assembler)
            if taken is None:
                self._closed = True
                break
            if not taken:
                break
            for sample in taken:
                pending.append(sample)
                self._pending_bytes += len(sample[1])
            moved += len(taken)
            if not keep_all:
                while len(pending) > self._max_samples or self._pending_bytes > self._max_bytes:
                    self._pending_bytes -= len(pending.popleft()[1])
                    self._dropped += 1
                    if not self._warned:
                        self._warned = True
                        log.warning("%s: the callback falls behind; dropping the oldest samples (%d queued, %d bytes)",
                                    self._what, len(pending), self._pending_bytes)
        return moved

    # --- a worker of the pool -------------------------------------------------------------------

    def _next(self, finish: bool = True) -> list[Sample] | None:
        """Worker: the next samples in order (the queue first, then zenoh's channel). None: done,
        nothing waits; an empty list: nothing waits now, and the worker still has the turn
        (``finish=False``, to look again shortly)."""
        with self._lock:
            pending = self._pending
            if pending:
                n = min(len(pending), QUEUE_BATCH)
                batch = [pending.popleft() for _ in range(n)]
                self._pending_bytes -= sum(len(s[1]) for s in batch)
                if self._reliable:
                    _dispatcher.wake()  # room again: take more before zenoh pushes back
                return batch
            taken = None if self._closed or z.exiting() else z.take(self._channel, BATCH, with_key=self._with_key,
                                                                    skip_mirrors=self._skip_mirrors, native=self._native,
                                                                    max_bytes=self._max_bytes // 8, assembler=self._assembler)
            self._last_take = time.monotonic()
            if taken:
                return taken
            if taken is None:
                self._closed = True
            elif not finish:
                return []
            self._running = False
        return None

    def _work(self) -> None:
        global _active
        with _active_changed:
            _active += 1
        try:
            self._run_callbacks()
        finally:
            with _active_changed:
                _active -= 1
                _active_changed.notify_all()

    def _run_callbacks(self) -> None:
        decode = self._peer._decoder()  # this worker's, for every sample of this turn
        with_key = self._with_key
        until = time.monotonic() + SLICE_SECONDS
        pauses = 0  # looks taken at an empty channel in a row
        handled = 0  # samples this turn
        while not z.exiting():
            if time.monotonic() > until and _workers.waiting():
                _workers.submit(self._work)  # others wait: take turns (still running: nobody else starts it)
                return
            # a stream that keeps this worker busy: a few short looks before giving the turn back,
            # since a turn handed back costs the dispatcher's round trip while zenoh's channel fills
            batch = self._next(finish=handled < STREAMING_SAMPLES or pauses >= len(LINGER_PAUSES) or _workers.waiting())
            if batch is None:
                return
            if not batch:
                time.sleep(LINGER_PAUSES[pauses])
                pauses += 1
                continue
            pauses = 0
            handled += len(batch)
            for key, payload, encoding in batch:
                if self._closed:  # closed meanwhile: not one more callback
                    break
                self.received += 1  # at once: the dispatcher reads it to tell a slow callback from a stuck one
                try:
                    value = decode(payload, encoding)
                except Exception:
                    log.exception("%s: could not decode a sample", self._what)
                    continue
                try:  # (read for each sample: it may be set meanwhile)
                    if with_key:
                        self.callback(key, value)
                    else:
                        self.callback(value)
                except Exception:  # a failing callback must not end the subscription
                    log.exception("%s: callback raised", self._what)

    def close(self) -> None:
        """Stop receiving (idempotent); samples already queued are dropped, and once this returns
        the callback is not called again (a call that had already begun finishes)."""
        _dispatcher.remove(self)
        with self._lock:
            self._closed = True
            self._pending.clear()
            self._pending_bytes = 0
        z.undeclare(self._subscriber)
        if self._reliable:  # zenoh may be waiting for room in the channel: give it, or its link stalls
            z.discard(self._channel)
        try:
            self._peer._declared.remove(self)
        except ValueError:
            pass

    def undeclare(self) -> None:
        """``close``: what the peer calls for everything it declared when it is destroyed."""
        self.close()
