"""Calls between peers of ours over publications: the quick path of a proxy's requests.

A zenoh query takes three messages (the query, the reply, the final one that closes it), and
zenoh-python makes a reply channel for each. A request published to the HERO and its answer
published back to the caller take two messages and reuse one channel per calling thread: the
raw exchange takes 0.84-0.96x the raw query round trip here, and a HERO call 0.1x of that round
trip less than as a query (``bench/call_paths.py``; bench/RESULTS.md, "Stop 30"). So a proxy of
ours sends its method calls and attribute accesses to a HERO of ours this way, and everything
else (upstream peers, large requests, internal requests) as queries, as before:

    @object/<realm>/<name>/_call/<zid>   the requests to the HERO served by session <zid>
    @object/<realm>/_reply/<zid>/<n>     the answers to one calling thread of session <zid>

A request's payload is a header and then what a query would carry (``[args, kwargs]``, a new
value, or nothing for a read): the call's 8-byte id, the lengths of the member's name and of
the key to answer on (2 bytes each, little-endian), the name and the key. Its encoding is the
body's. An answer's payload is the call's id, one byte saying what the answer is (``OK``,
``ERROR``, ``NOBODY``: the HERO does not answer this request, or ``HELD``) and the body, in the
answer's encoding. A large answer (512 KiB to 4 MiB) goes whole through shared memory, with that
header as its attachment instead (it cannot be put before a body in shared memory without a
copy). A larger one is ``HELD``: it waits on the HERO for its caller to fetch it by query, which
brings it in parts as any large reply. (Parts published to the caller would have to wait in its
channel, a ring that drops the oldest when the caller falls behind, which is what keeps a late
answer nobody waits for from holding up zenoh.) (A header in the payload, on one concrete key per HERO, costs 4-6 µs
a call less than zenoh attachments on a key per member: ``Stop 30``.)

The session id in the request key makes the request reach the one HERO the proxy looked up, even
when another of the same name serves (``replace=True``). A proxy sends this way only while its
publisher matches the HERO's subscriber; a HERO that stopped (or an older version of this
library, which does not subscribe) is asked by query. A call waits at most its timeout: a thread
of this module (``_Alarm``) wakes the caller when the timeout passes, and sooner when the HERO's
subscriber is gone (its process ended).
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from . import bulk, codec, keys
from . import zenoh as z
from .exceptions import RemoteTransportError

__all__ = ["ERROR", "HELD", "NOBODY", "OK", "SMALL", "Call", "Caller", "Calls", "Held", "call", "request_key"]

log = logging.getLogger("heros.rpc")

#: What an answer is (the byte after the call id).
OK, ERROR, NOBODY, TIMEOUT, GONE, HELD = range(6)
_STATUS = [bytes([s]) for s in range(6)]

#: A request at least this large goes as a query (through shared memory, or uploaded in parts).
SMALL = z.LARGE
#: An answer larger than this is held for its caller to fetch by query (in parts); the bytes of
#: answers a HERO holds at most (the oldest go first), and for how long (seconds).
HOLD_ABOVE = bulk.PART_BYTES
HELD_MAX_BYTES = 512 << 20
HELD_SECONDS = 30.0
#: Reply publishers a HERO keeps (one per calling thread of each client), and how long the first
#: answer to a new calling thread waits for zenoh to know its subscriber (seconds).
REPLIERS_MAX = 256
FIRST_ANSWER_WAIT = 0.5
#: How often the alarm looks at the calls waiting (seconds), and after how long a call is
#: checked for a HERO that went away.
TICK = 0.02
CHECK_AFTER = 0.1
#: The alarm thread ends after this long without calls (and starts again with the next one).
ALARM_IDLE = 30.0


def request_key(realm: str, name: str, zid: str) -> str:
    """Where the HERO ``name`` served by the session ``zid`` takes published requests."""
    return f"{keys.hero_key(realm, name)}/{keys.CALLS}/{zid}"


def reply_prefix(realm: str) -> str:
    return f"{keys.NAMESPACE}/{realm}/{keys.REPLIES}/"


# --- the serving side -------------------------------------------------------------------------


class Held:
    """A HERO's largest answers, waiting for their callers to fetch them (``keys.HELD``)."""

    def __init__(self) -> None:
        self._items: dict[bytes, tuple[float, int, Any, str]] = {}
        self._bytes = 0
        self._lock = threading.Lock()
        self._serial = itertools.count()
        self._salt = os.urandom(8)

    def put(self, payload: Any, encoding: str, size: int) -> bytes:
        now = time.monotonic()
        token = self._salt + next(self._serial).to_bytes(8, "little")
        with self._lock:
            items = self._items
            while items and (self._bytes + size > HELD_MAX_BYTES or next(iter(items.values()))[0] < now):
                self._bytes -= items.pop(next(iter(items)))[1]
            items[token] = (now + HELD_SECONDS, size, payload, encoding)
            self._bytes += size
        return token

    def take(self, token: Any) -> tuple[Any, str]:
        with self._lock:
            item = self._items.pop(token, None) if isinstance(token, bytes) else None
            if item is not None:
                self._bytes -= item[1]
        if item is None:
            raise LookupError(f"the answer to fetch is no longer held (fetched already, or older than {HELD_SECONDS:g} s)")
        return item[2], item[3]


class Repliers:
    """The publishers a HERO answers published requests on, one per reply key, the newest kept."""

    def __init__(self, session: Any, realm: str) -> None:
        self._session = session
        self._prefix = reply_prefix(realm).encode()
        self._publishers: dict[bytes, Any] = {}
        self._lock = threading.Lock()
        self.closed = False

    def get(self, key: bytes) -> Any:
        publisher = self._publishers.get(key)
        if publisher is not None:
            return publisher
        if not key.startswith(self._prefix) or any(c in key[len(self._prefix):] for c in b"*$?#"):
            return None  # never publish anywhere but on a caller's reply key
        with self._lock:
            if self.closed:
                return None
            publisher = self._publishers.get(key)
            if publisher is None:
                while len(self._publishers) >= REPLIERS_MAX:
                    z.undeclare(self._publishers.pop(next(iter(self._publishers))))
                try:
                    publisher = self._publishers[key] = z.declare_publisher(self._session, key.decode(), reliable=True)
                except Exception:  # a malformed key: nobody to answer
                    log.debug("cannot answer on %r", key, exc_info=True)
                    return None
        # A new calling thread subscribed just before it sent its first request: wait (briefly, once
        # per caller) until zenoh here knows that subscriber, or the first answer would go nowhere.
        deadline = time.monotonic() + FIRST_ANSWER_WAIT
        while not z.has_subscribers(publisher) and time.monotonic() < deadline:
            time.sleep(0.001)
        return publisher

    def close(self) -> None:
        with self._lock:
            self.closed = True
            publishers, self._publishers = list(self._publishers.values()), {}
        for publisher in publishers:
            z.undeclare(publisher)


class _Body:
    """A request's body, read as a zenoh payload is (``to_bytes``, ``len``)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def to_bytes(self) -> bytes:
        return self.data

    def __len__(self) -> int:
        return len(self.data)


class Call:
    """A request published to a HERO, with the parts of a zenoh query that ``LocalHERO._heros_serve``
    reads (``key_expr``: the member's own key, ``payload``, ``encoding``) and its verbs (``reply``,
    ``reply_err``, ``drop``), which publish the answer to the caller."""

    __slots__ = ("_answered", "_calls", "_id", "_reply_key", "encoding", "key_expr", "payload")

    def __init__(self, key_expr: Any, body: bytes, encoding: Any, ident: bytes, reply_key: bytes | None, calls: Calls) -> None:
        self.key_expr = key_expr
        self.payload = _Body(body)
        self.encoding = encoding
        self._id = ident
        self._reply_key = reply_key
        self._calls = calls
        self._answered = False

    def _replier(self) -> Any:
        """The publisher to answer on, found (or declared) on the serving thread, never on zenoh's."""
        return None if self._reply_key is None else self._calls.repliers.get(self._reply_key)

    def _send(self, status: int, payload: Any, encoding: Any) -> None:
        self._answered = True
        replier = self._replier()
        if replier is not None:
            z.put_bytes(replier, self._id + _STATUS[status] + payload, encoding)

    def reply(self, key: Any, payload: Any, encoding: Any) -> None:
        self._send(OK, payload, encoding)

    def reply_err(self, payload: Any, encoding: Any) -> None:
        self._send(ERROR, payload, encoding)

    def large(self, payload: Any, encoding: str) -> None:
        """A large answer (``bytes`` or ``codec.Buffers``): whole through shared memory with the
        header attached, or held for the caller to fetch when larger than ``HOLD_ABOVE``."""
        size = len(payload) if type(payload) is bytes else payload.nbytes
        if size > HOLD_ABOVE:
            self._send(HELD, self._calls.held.put(payload, encoding, size), z.PLAIN_ENCODING)
            return
        self._answered = True
        replier = self._replier()
        if replier is not None:
            z.put_large(replier, payload, encoding, self._id + _STATUS[OK])

    def drop(self) -> None:
        if not self._answered:
            self._send(NOBODY, b"", z.PLAIN_ENCODING)


class Calls:
    """What turns a HERO's published requests into ``Call``s: the key of each member (kept for the
    members the HERO has), the reply publishers and the held answers."""

    def __init__(self, session: Any, realm: str, prefix: str, members: Callable[[str], bool]) -> None:
        self.repliers = Repliers(session, realm)
        self.held = Held()
        self._prefix = prefix
        self._members = members
        self._keys: dict[Any, Any] = {}

    def make(self, sample: Any) -> Call | None:
        """The ``Call`` of a received request; None for a sample too short to be one. Runs on
        zenoh's thread for a HERO served by the pool: it parses, and declares nothing."""
        data = sample.payload.to_bytes()
        if len(data) < 12:
            return None
        end_member = 12 + int.from_bytes(data[8:10], "little")
        end_key = end_member + int.from_bytes(data[10:12], "little")
        member = data[12:end_member]
        member_key = self._keys.get(member)
        if member_key is None:
            member_key = self._member_key(member)
        reply_key = data[end_member:end_key] if end_key <= len(data) else None
        return Call(member_key, data[end_key:], sample.encoding, data[:8], reply_key, self)

    def _member_key(self, member: bytes) -> Any:
        """The key of ``member`` as a query names it (kept for the members the HERO has); one that
        no route matches for a name that is no member (the HERO answers ``NOBODY``)."""
        name = member.decode("utf-8", "replace")
        try:
            key = z.key_expr(f"{self._prefix}/{name}")
        except z.ZError:  # not a key at all
            return z.key_expr(f"{self._prefix}/{keys.CALLS}/x")
        if self._members(name):
            self._keys[member] = key
        return key

    def close(self) -> None:
        self.repliers.close()


# --- the calling side ------------------------------------------------------------------------


class Caller:
    """One calling thread's answers from the HEROs of one realm: a subscriber on its reply key."""

    def __init__(self, session: Any, realm: str) -> None:
        self.session = session
        self.key = f"{reply_prefix(realm)}{z.zid(session)}/{next(_callers_made)}"
        self.key_bytes = self.key.encode()
        self.key_expr = z.key_expr(self.key)
        self.subscriber = z.declare_subscriber_channel(session, self.key, 16, block=False)
        self.channel = z.channel(self.subscriber)
        self._tails: dict[str, bytes] = {}

    def tail(self, member: str) -> bytes:
        """The part of a request's header after the call id, for ``member``."""
        tail = self._tails.get(member)
        if tail is None:
            name = member.encode()
            tail = self._tails[member] = len(name).to_bytes(2, "little") + len(self.key_bytes).to_bytes(2, "little") + name + self.key_bytes
        return tail

    def __del__(self) -> None:  # its thread ended
        subscriber = self.__dict__.get("subscriber")
        if subscriber is not None and not z.exiting():  # (at exit the sessions close anyway)
            z.undeclare(subscriber)


_callers_made = itertools.count()
_local = threading.local()


def _caller(session: Any, realm: str) -> Caller:
    callers: dict[tuple[int, str], Caller] | None = getattr(_local, "callers", None)
    if callers is None:
        callers = _local.callers = {}
    caller = callers.get((id(session), realm))
    if caller is None or caller.session is not session:
        try:
            caller = callers[(id(session), realm)] = Caller(session, realm)
        except z.ZError as exc:  # the session closed
            raise RemoteTransportError(f"cannot wait for answers: {exc}") from None
    return caller


_ids = itertools.count(1)
#: The calls waiting for their answers: id -> [deadline, caller, publisher, started].
_waiting: dict[bytes, tuple[float, Caller, Any, float]] = {}


def call(session: Any, realm: str, publisher: Any, member: str, payload: bytes | None, timeout: float) -> tuple[int, Any, str]:
    """Publish one request for ``member`` and wait for its answer: ``(status, body, encoding text)``.

    ``TimeoutError`` once ``timeout`` passes; ``RemoteTransportError`` if the session closes.
    """
    ident = next(_ids).to_bytes(8, "little")
    receive = z.receive
    z.inside_enter()
    try:
        caller = _caller(session, realm)
        channel = caller.channel
        now = time.monotonic()
        _waiting[ident] = (now + timeout, caller, publisher, now)
        if not _alarm.running:
            _alarm.start()
        z.put_bytes(publisher, ident + caller.tail(member) + payload if payload else ident + caller.tail(member), z.PLAIN_ENCODING)
        while True:
            sample = receive(channel)
            if sample is None:  # the session closed
                raise RemoteTransportError("the session closed while waiting for an answer")
            attachment = sample.attachment
            if attachment is None:  # the header in the payload
                data = sample.payload.to_bytes()
                if data[:8] == ident:
                    status = data[8] if len(data) > 8 else NOBODY
                    body: Any = data[9:]
                    break
                continue
            head = attachment.to_bytes()  # a large answer, whole
            if head[:8] == ident:
                return head[8] if len(head) > 8 else NOBODY, sample.payload.to_bytes(), z.encoding_text(sample.encoding)
    finally:
        _waiting.pop(ident, None)
        z.inside_exit()
    if status == TIMEOUT:
        raise TimeoutError
    if status == GONE:
        return NOBODY, b"", codec.ENCODING
    encoding = sample.encoding
    return status, body, codec.ENCODING if encoding == z.PLAIN_ENCODING else z.encoding_text(encoding)


class _Alarm:
    """The thread that wakes a call whose timeout passed, or whose HERO's subscriber is gone."""

    def __init__(self) -> None:
        self.running = False
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self.running:
                return
            self.running = True
        try:
            threading.Thread(target=self._run, name="heros-call-alarm", daemon=True).start()
        except BaseException:
            self.running = False
            raise

    def _run(self) -> None:
        idle_since = time.monotonic()
        ended = False
        try:
            while not z.exiting():
                time.sleep(TICK)
                now = time.monotonic()
                if not _waiting:
                    if now - idle_since > ALARM_IDLE:
                        ended = True
                        return
                    continue
                idle_since = now
                for ident, (deadline, caller, publisher, started) in list(_waiting.items()):
                    if now > deadline:
                        self._wake(caller, ident, TIMEOUT)
                    elif now - started > CHECK_AFTER and not _still_subscribed(publisher):
                        self._wake(caller, ident, GONE)
        except Exception:  # a bug of ours: the next call starts the alarm again
            log.warning("the call alarm stopped", exc_info=True)
        finally:
            self.running = False
            if ended and _waiting and not z.exiting():  # a call came as it stopped, and saw it running
                self.start()

    @staticmethod
    def _wake(caller: Caller, ident: bytes, status: int) -> None:
        if _waiting.pop(ident, None) is None:
            return
        try:
            z.put_local(caller.session, caller.key_expr, ident + _STATUS[status])  # (the caller reads only these)
        except Exception:  # its session closed: the caller wakes from that
            log.debug("could not wake a call", exc_info=True)


def _still_subscribed(publisher: Any) -> bool:
    """Whether the HERO's subscriber still matches (False also for a publisher undeclared meanwhile:
    its proxy was closed, or its session)."""
    try:
        return z.has_subscribers(publisher)
    except z.ZError:  # an undeclared publisher, or a closed session
        return False


_alarm = _Alarm()
