"""zenoh sessions and the few zenoh verbs HEROS uses. The only module that imports zenoh.

``ZenohSessionManager`` keeps one session per realm per process. Every HEROS object that needs
the session registers as a referrer (counted by identity, so two proxies of one HERO never close
the session under each other) and releases it when destroyed; the session closes with its last
referrer, and whatever is still open is closed before the interpreter joins its threads, so a
script that forgets to close its proxies still exits promptly.

Configuration precedence: zenoh defaults, then ``HEROS_ZENOH_CONFIG`` (a JSON5 document), then
``HEROS_SEP_MULTICAST`` (per-realm multicast group), then ``update_config()`` entries.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import queue
import re
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any, Literal, overload

import zenoh

from . import _executor, bulk, codec, keys
from .exceptions import CodecError, ConfigError, RemoteTransportError
from .helper import generate_multicast_address

try:  # shared memory is in zenoh's wheels for Linux, macOS and Windows; without it, parts still help
    from zenoh import shm as _zshm
except ImportError:  # pragma: no cover - a zenoh build without shared memory
    _zshm = None  # type: ignore[assignment]

__all__ = [
    "PLAIN_ENCODING",
    "Reply",
    "Matching",
    "ZError",
    "ZenohSessionManager",
    "add_exit_hook",
    "all_replies",
    "anchor_key",
    "config_text",
    "declare_link_watch",
    "declare_liveliness_watch",
    "declare_publisher",
    "declare_queryable_callback",
    "declare_queryable_channel",
    "declare_subscriber_callback",
    "declare_subscriber_channel",
    "as_encoding",
    "declare_token",
    "channel",
    "config_entry",
    "drop",
    "exiting",
    "fetch_upload",
    "has_subscribers",
    "inside_enter",
    "inside_exit",
    "put",
    "put_bytes",
    "put_large",
    "put_local",
    "shared_memory",
    "loopback_config",
    "open_hub",
    "interface_subregions",
    "open_router",
    "query",
    "query_all",
    "query_nowait",
    "query_stream",
    "query_parts",
    "key_expr",
    "link_settings",
    "receive",
    "take",
    "reply",
    "reply_error",
    "Router",
    "router_configs",
    "session_manager",
    "start_query",
    "receiver_thread",
    "start_receiver",
    "tokens",
    "undeclare",
    "zid",
]

log = logging.getLogger("heros.zenoh")

_TRUE = ("1", "true", "yes", "on")

#: Seconds a session nobody holds stays open, to be taken back by the next request for its realm
#: (``HEROS_SESSION_IDLE`` overrides it).
IDLE_SECONDS = 30.0


def _idle_seconds() -> float:
    text = os.environ.get("HEROS_SESSION_IDLE", "").strip()
    if not text:
        return IDLE_SECONDS
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"HEROS_SESSION_IDLE={text!r} is not a number of seconds") from None
    if not value >= 0:
        raise ConfigError(f"HEROS_SESSION_IDLE={text!r} must not be negative")
    return value
#: How old a session must be before a one-shot discovery snapshot is taken (see ``settle``).
SETTLE_SECONDS = 0.3
#: Seconds between two probes of a young session, and how long an answer must stay the same.
SETTLE_PROBE_PAUSE = 0.002
SETTLE_STABLE = 0.004


def _zenoh_message(exc: BaseException) -> str:
    """zenoh's error text without the Rust source location it ends with."""
    return re.sub(r"\s+at /\S+\.rs:\d+\.?$", "", str(exc).strip())


def _is_panic(exc: BaseException) -> bool:
    """Whether ``exc`` is a Rust panic surfacing from zenoh (pyo3's PanicException, a BaseException)."""
    return type(exc).__name__ == "PanicException"


def _open_failure(realm: str, config: zenoh.Config, exc: BaseException) -> str:
    """What to tell a user whose session zenoh could not open: the endpoints tried and what to check."""
    try:
        mode = json.loads(config.get_json("mode"))
        endpoints = json.loads(config.get_json("connect/endpoints"))
        if isinstance(endpoints, dict):
            endpoints = endpoints.get(mode) or []
    except (zenoh.ZError, ValueError):
        mode, endpoints = "?", []
    where = f"connecting to {', '.join(map(str, endpoints))}" if endpoints else "with no connect endpoint"
    return (f"could not open a zenoh session for realm {realm!r} ({mode} mode, {where}): {_zenoh_message(exc)}. "
            "Check that a zenoh router listens at that address and is reachable from here (address, port, firewall, "
            "TLS certificates), and that HEROS_ZENOH_CONFIG is the configuration you meant.")


#: Batches of data a link may queue for sending (zenoh's default: 2). A loop emitting a best-effort
#: event fills 2 batches in a few milliseconds; when zenoh's transmit thread waits that long for a
#: CPU (a busy host), zenoh drops the samples that find no room, although the subscriber keeps up.
#: With 16 (memory taken only while they are full) no sample was lost in such runs. A configuration
#: that sets its own size keeps it.
DATA_QUEUE_BATCHES = 16
DATA_QUEUE_KEY = "transport/link/tx/queue/size/data"
ZENOH_DATA_QUEUE = 2


def _build_config(realm: str, overrides: dict[str, Any], base: str | None = None) -> zenoh.Config:
    """The configuration of a session of ``realm``: ``base`` (JSON5; default ``HEROS_ZENOH_CONFIG``,
    else zenoh's defaults) with a longer data queue (``DATA_QUEUE_BATCHES``, unless ``base`` sets
    one), the realm's multicast group, then ``overrides``."""
    text = os.environ.get("HEROS_ZENOH_CONFIG") if base is None else base
    if text:
        try:
            config = zenoh.Config.from_json5(text)
        except Exception as exc:  # noqa: BLE001 - zenoh raises ZError with the parser's message
            raise ConfigError(f"HEROS_ZENOH_CONFIG is not a valid zenoh JSON5 configuration: {exc}") from None
    else:
        config = zenoh.Config()
    if json.loads(config.get_json(DATA_QUEUE_KEY)) == ZENOH_DATA_QUEUE:  # left as zenoh has it
        config.insert_json5(DATA_QUEUE_KEY, str(DATA_QUEUE_BATCHES))
    if realm != "heros" and os.environ.get("HEROS_SEP_MULTICAST", "0").strip().lower() in _TRUE:
        address = f"{generate_multicast_address(realm)}:7446"
        config.insert_json5("scouting/multicast/address", json.dumps(address))
    for key, value in overrides.items():
        try:
            config.insert_json5(key, json.dumps(value))
        except Exception as exc:  # noqa: BLE001 - zenoh raises ZError naming the key
            raise ConfigError(f"zenoh rejected the configuration entry {key!r} = {value!r}: {exc}") from None
    return config


class ZenohSessionManager:
    """One zenoh session per realm for this process, shared by every HEROS object of that realm.

    A session whose last referrer is gone stays open, idle, for ``IDLE_SECONDS`` (30 s;
    ``HEROS_SESSION_IDLE`` sets it) or until the interpreter exits, and the next request for its
    realm takes it back: a script that opens and
    closes its only proxy in a loop then reuses one session instead of opening one per round
    (opening and closing zenoh sessions back to back leaks file descriptors in zenoh 1.10).

    Parameters
    ----------
    config_dict
        zenoh configuration entries (``{"path/to/key": value}``) applied over everything else.
    """

    def __init__(self, config_dict: dict[str, Any] | None = None) -> None:
        self._config_dict: dict[str, Any] = dict(config_dict or {})
        self._sessions: dict[str, zenoh.Session] = {}
        # sessions nobody holds, waiting IDLE_SECONDS to be taken back before they close
        self._idle: dict[str, tuple[zenoh.Session, threading.Timer]] = {}
        # id(obj) -> realm. Keyed by identity, holding no reference: an object that is garbage
        # collected without being destroyed releases from its __del__, before its id is reused.
        self._referrers: dict[int, str] = {}
        self._opened_at: dict[str, float] = {}
        self._lock = threading.RLock()
        _managers.append(self)

    def request_session(self, obj: object, realm: str) -> zenoh.Session:
        """The realm's session, opened on first request (or taken back from idle); ``obj`` becomes a referrer."""
        with self._lock:
            session = self._sessions.get(realm)
            if session is None:
                idle = self._idle.pop(realm, None)
                if idle is not None:
                    session, timer = idle
                    timer.cancel()
                else:
                    _install_exit_hook()
                    session = self._open(realm)
                    self._opened_at[realm] = time.monotonic()
                self._sessions[realm] = session
            self._referrers[id(obj)] = realm
            return session

    def _open(self, realm: str) -> zenoh.Session:
        config = _build_config(realm, self._config_dict)
        _shared.note_config(config)
        try:
            session = zenoh.open(config)
        except zenoh.ZError as exc:  # a router that cannot be reached, or that refused our certificate
            raise RemoteTransportError(_open_failure(realm, config, exc)) from None
        except BaseException as exc:
            if _is_panic(exc):
                raise RemoteTransportError(f"zenoh failed while opening a session for realm {realm!r}: {exc}") from None
            raise
        log.debug("opened zenoh session %s for realm %r", session.info.zid(), realm)
        return session

    def release_session(self, obj: object) -> None:
        """Unregister ``obj``; when the realm's last referrer is gone, its session idles for
        ``IDLE_SECONDS`` before it closes (a new request takes it back)."""
        with self._lock:
            realm = self._referrers.pop(id(obj), None)
            if realm is None or realm in self._referrers.values():
                return
            session = self._sessions.pop(realm, None)
            if session is None:
                return
            timer = threading.Timer(_idle_seconds(), self._close_idle, (realm, session))
            timer.daemon = True
            self._idle[realm] = (session, timer)
        # started with the lock released: a thread's start waits for the new thread, where the
        # garbage collector may run a finalizer that releases another object here (a deadlock)
        timer.start()

    def _close_idle(self, realm: str, session: zenoh.Session) -> None:
        with self._lock:
            idle = self._idle.get(realm)
            if idle is None or idle[0] is not session:
                return  # taken back meanwhile
            del self._idle[realm]
            self._opened_at.pop(realm, None)
        _close(session)

    def session(self, realm: str) -> zenoh.Session | None:
        """The realm's session if one is open (held or idle), else None; opens nothing."""
        with self._lock:
            session = self._sessions.get(realm)
            if session is None and realm in self._idle:
                session = self._idle[realm][0]
            return session

    def settle(self, realm: str, probe: Callable[[], set[str]] | None = None, seconds: float = SETTLE_SECONDS) -> set[str] | None:
        """Wait until the realm's session has learnt what its peers declared; returns what the
        probes saw, all answers together (None, without probing, for a session that is old enough
        already).

        A session that was just opened is connected, but the declarations of its peers (their
        liveliness tokens, queryables) reach it a few milliseconds later; a one-shot snapshot
        such as ``HEROObserver().known_objects`` taken before that would miss running HEROs.
        While the session is younger than ``seconds``, ``probe`` is repeated every
        ``SETTLE_PROBE_PAUSE`` seconds until its answers together are non-empty and have not grown
        for ``SETTLE_STABLE`` seconds (or the session is old enough).

        Together, because zenoh's answer to a liveliness query can leave out tokens that the
        session knows, at random: probes of sessions up to about 80 ms old answered 0, 9, 27 or 44 of
        50 tokens between answers of all 50, and every such answer started the stable time anew.
        """
        with self._lock:
            opened = self._opened_at.get(realm)
        deadline = (opened or 0.0) + seconds
        if time.monotonic() >= deadline:
            return None  # an old session: nothing to wait for, and no probe to spend
        seen: set[str] = set()
        since = 0.0
        while True:
            current = probe() if probe is not None else set()
            now = time.monotonic()
            if not current <= seen:
                seen |= current
                since = now
            if now >= deadline or (seen and now - since >= SETTLE_STABLE):
                with self._lock:  # settled once is settled for good: later snapshots need not wait
                    if realm in self._opened_at:
                        self._opened_at[realm] = 0.0
                return seen
            time.sleep(min(SETTLE_PROBE_PAUSE, deadline - now))

    def referrers(self, realm: str) -> int:
        """How many objects currently hold the realm's session."""
        with self._lock:
            return sum(1 for r in self._referrers.values() if r == realm)

    def update_config(self, config_dict: dict[str, Any]) -> None:
        """Add zenoh configuration entries; they apply to sessions opened afterwards."""
        self._config_dict.update(config_dict)

    def force_close(self) -> None:
        """Close every session of this manager now, idle ones included."""
        with self._lock:
            sessions = list(self._sessions.values())
            for session, timer in self._idle.values():
                timer.cancel()
                sessions.append(session)
            self._sessions.clear()
            self._idle.clear()
            self._referrers.clear()
            self._opened_at.clear()
        for session in sessions:
            _close(session)


def _close(session: zenoh.Session) -> None:
    _uploads.pop(id(session), None)
    try:
        session.close()
    except Exception:  # closing must never raise into destroy paths
        log.warning("closing a zenoh session failed; peers may see it as stale for a while", exc_info=True)


_managers: list[ZenohSessionManager] = []
_exit_hook_installed = False


def _install_exit_hook() -> None:
    # zenoh-python runs Python callbacks on non-daemon threads that end only when their session
    # closes, and the interpreter joins non-daemon threads *before* atexit handlers run.
    # threading._register_atexit runs before that join (concurrent.futures relies on it too).
    global _exit_hook_installed
    if _exit_hook_installed:
        return
    _exit_hook_installed = True
    try:
        threading._register_atexit(_close_all)  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):
        import atexit

        atexit.register(_close_all)


_exiting = threading.Event()
_exit_hooks: list[Callable[[float], None]] = []


def exiting() -> bool:
    """Whether the interpreter is shutting down (the exit hook has begun closing sessions)."""
    return _exiting.is_set()


def add_exit_hook(hook: Callable[[float], None]) -> None:
    """Run ``hook(deadline)`` at exit before the sessions close: it should make its threads leave
    zenoh's calls by ``deadline`` (``time.monotonic()``), since a thread still inside zenoh when the
    interpreter finalizes aborts the process."""
    _exit_hooks.append(hook)


#: Threads inside ``query`` or ``query_all`` now (an entry each), and whether the process exits
#: (``exiting()`` as a plain flag: every call reads it).
_inside: list[None] = []
_closing = False
#: Seconds the exit waits, after closing the sessions, for daemon threads of the user's to leave zenoh.
EXIT_GRACE = 0.02


def _close_all() -> None:
    global _closing
    _closing = True  # no query starts from now on
    _exiting.set()
    deadline = time.monotonic() + 2.0
    for hook in list(_exit_hooks):
        try:
            hook(deadline)
        except Exception:  # the sessions must close whatever a hook does
            log.debug("exit hook %r failed", hook, exc_info=True)
    for manager in list(_managers):
        manager.force_close()
    for thread in list(_receivers):  # woken by the close; one busy in a user's method is not waited for long
        if thread.ident is None:  # made but not started yet: it starts into a closed session and ends
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
    # A query waits in zenoh without the GIL; a thread of the user's (a daemon polling an instrument)
    # that is still there when the interpreter finalizes aborts the process as it takes the GIL back
    # ("FATAL: exception not rethrown"). The close woke them: wait until they have left.
    while _inside and time.monotonic() < deadline:
        time.sleep(0.001)
    # Other calls (an event emitted, a value published) return at once from a closed session, but a
    # daemon thread of the user's may have been inside one as it closed: a moment's grace lets it out
    # (in a script whose daemon threads called and emitted as it ended, 2-3 of 60 exits aborted
    # without it, none of 80 with it).
    me = threading.current_thread()
    if any(t.daemon and t is not me and t not in _receivers and t.is_alive() for t in threading.enumerate()):
        time.sleep(EXIT_GRACE)


session_manager = ZenohSessionManager()
zenoh.try_init_log_from_env()


# The verbs. Callbacks handed to zenoh run on zenoh-python's threads and must only hand off.


def _no_panics(func: Callable[..., Any]) -> Callable[..., Any]:
    """A zenoh panic (a ``BaseException``) inside ``func`` becomes a ``RemoteTransportError``."""

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except BaseException as exc:
            if _is_panic(exc):
                raise RemoteTransportError(f"zenoh failed in {func.__name__}: {exc}") from None
            raise

    return guarded


_encodings: dict[str, zenoh.Encoding] = {}


def as_encoding(text: str) -> zenoh.Encoding:
    """The zenoh ``Encoding`` for ``text``, parsed once (zenoh would parse the text on every send)."""
    enc = _encodings.get(text)
    if enc is None:
        if len(_encodings) >= 256:  # out-of-band encodings carry a length: keep the cache bounded
            _encodings.clear()
        enc = _encodings[text] = zenoh.Encoding(text)
    return enc


def key_expr(text: str) -> zenoh.KeyExpr:
    """A key parsed once, for keys that are queried again and again (zenoh parses a text key on every use)."""
    return zenoh.KeyExpr(text)


#: zenoh's own error (a closed session, a malformed key), for the modules that catch it.
ZError = zenoh.ZError

_PLAIN = zenoh.Encoding(codec.ENCODING)
#: The encoding our peers' requests carry (msgpack), to compare a query's ``encoding`` with.
PLAIN_ENCODING = _PLAIN


def encoding_text(encoding: zenoh.Encoding) -> str:
    """The text of a received ``Encoding`` (the common plain msgpack one without converting it)."""
    return codec.ENCODING if encoding == _PLAIN else str(encoding)


# Large payloads (``heros.bulk`` plans them): shared memory when the peer shares this host.


class _SharedMemory:
    """This process's zenoh shared memory for large payloads, made at first use, its size fixed
    then (``bulk.pool_size``, at most a quarter of what /dev/shm has free). zenoh writes the whole
    pool when it makes it, so the process holds that much of /dev/shm (memory) from then on.

    Payloads of at most ``NEAR_MAX_BYTES`` get buffers of a small pool of their own
    (``NEAR_POOL_BYTES``, out of the same budget, unless ``HEROS_SHM_MB`` cut the budget below
    ``bulk.POOL_MIN_BYTES``). zenoh hands out a pool's buffers round the
    whole pool, so in a large pool each buffer is cold by the time it comes back, where the few
    buffers of a small pool stay in the CPU's cache: copying 1 MiB in took 30 µs in a pool of
    8 MiB against 85 µs in one of 64 MiB, and the receiver reads it from the cache too.

    A buffer is taken without waiting: when the pool is full (receivers still hold earlier
    payloads), the payload goes as ordinary bytes instead. zenoh frees a buffer once every
    receiver dropped it, and removes the segment of a process that died at the next start of a
    process that uses shared memory.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._provider: Any = None
        self._near: Any = None  # the small pool (None: only the large one)
        self._tried = False
        self.off_by_config = False
        self.size = 0
        self.used = 0  # payloads (or parts) sent through shared memory
        self.small = 0  # ... of them through the small pool
        self.full = 0  # ... and sent as bytes because the pool was full

    def note_config(self, config: zenoh.Config) -> None:
        """A session opens with ``config``: shared memory stays unused if it turns it off."""
        try:
            if json.loads(config.get_json("transport/shared_memory/enabled")) is False:
                self.off_by_config = True
        except (zenoh.ZError, ValueError, TypeError):
            pass

    def provider(self, first: int) -> Any:
        """The pool (made now for a first large payload of ``first`` bytes), or None."""
        if self._tried:
            return self._provider
        with self._lock:
            if not self._tried:
                self._provider = self._make(first)
                self._tried = True
        return self._provider

    def _make(self, first: int) -> Any:
        if _zshm is None or self.off_by_config:
            return None
        try:
            size = bulk.pool_size(first)
        except ValueError as exc:
            log.warning("%s; shared memory stays off", exc)
            return None
        try:
            stat = os.statvfs("/dev/shm")
            size = min(size, stat.f_bavail * stat.f_frsize // 4)
        except OSError:  # no /dev/shm (not Linux): zenoh picks its own place
            pass
        if size < bulk.PART_BYTES:
            return None
        near = NEAR_POOL_BYTES if size >= bulk.POOL_MIN_BYTES else 0  # not in a budget cut down by HEROS_SHM_MB
        try:
            provider = _zshm.ShmProvider.default_backend(size - near)
        except Exception as exc:  # noqa: BLE001 - no shared memory here: payloads go as bytes
            log.info("no shared memory for large payloads (%s); they go over the network", exc)
            return None
        self.size = size - near
        if near:
            try:
                self._near = _zshm.ShmProvider.default_backend(near)
                self.size = size
            except Exception:  # the large pool takes every payload then
                log.debug("no small shared memory pool", exc_info=True)
        return provider

    def buffer(self, pieces: list[Any], start: int, end: int, size: int) -> Any:
        """A zenoh payload in shared memory holding bytes ``[start, end)`` of ``pieces`` (a payload
        of ``size`` bytes), or None."""
        provider = self.provider(size)
        if provider is None:
            return None
        buf = None
        if size <= NEAR_MAX_BYTES and self._near is not None:  # whole payloads only, not parts of a larger one
            try:
                buf = self._near.alloc(end - start, _zshm.GarbageCollect())
                self.small += 1
            except zenoh.ZError:  # full: the large pool may have room
                pass
        if buf is None:
            try:
                buf = provider.alloc(end - start, _zshm.GarbageCollect())
            except zenoh.ZError:  # full: receivers still hold earlier payloads
                self.full += 1
                return None
        self.used += 1
        position = 0
        for piece in bulk.slices(pieces, start, end):
            if type(piece) is bytes:
                size = len(piece)
                buf[position:position + size] = piece
            else:  # a view: the buffer takes only bytes, so copy it over in cache-sized pieces
                size = piece.nbytes
                for i in range(0, size, _COPY_CHUNK):
                    j = min(i + _COPY_CHUNK, size)
                    buf[position + i:position + j] = bytes(piece[i:j])
            position += size
        return zenoh.ZBytes(buf)


#: The small pool of ``_SharedMemory``, and the payloads that take its buffers (whole ones, not
#: the parts of a larger one): a 1 MiB array and its header, with room to spare.
NEAR_POOL_BYTES = 8 << 20
NEAR_MAX_BYTES = 2 << 20
_shared = _SharedMemory()
#: Views are copied into shared memory through ``bytes`` of this size (they stay in the cache).
_COPY_CHUNK = 1 << 20
#: Payloads smaller than this go to zenoh as they are (see ``heros.bulk``).
LARGE = bulk.SHARED_MIN_BYTES


def shared_memory() -> dict[str, Any]:
    """What this process uses of shared memory for large payloads: ``size`` of its pools in bytes
    (0: none made yet, or none possible), ``used``: payloads (or parts) sent through them,
    ``small``: of those, through the small pool (payloads of at most ``NEAR_MAX_BYTES``),
    ``full``: sent as bytes instead because the pools were full."""
    return {"size": _shared.size, "used": _shared.used, "small": _shared.small, "full": _shared.full}


def outgoing(payload: Any, encoding: str, *, parts: bool, part_bytes: int = bulk.PART_BYTES) -> Iterator[tuple[Any, str]]:
    """How ``payload`` (``bytes`` or ``codec.Buffers``) goes to zenoh: ``(data, encoding)`` for each
    message, in shared memory when large, in parts of at most ``part_bytes`` (``parts``, our peers
    only) when larger still.

    Each part is made as it is asked for, so a sender that sends it before asking for the next
    lets the receiver free shared memory while later parts are made.
    """
    pieces = payload.pieces if type(payload) is codec.Buffers else [payload]
    size = len(payload)
    for start, end, enc in (bulk.plan(size, encoding, part_bytes) if parts else [(0, size, encoding)]):
        data = _shared.buffer(pieces, start, end, size) if end - start >= bulk.SHARED_MIN_BYTES else None
        if data is None:
            data = pieces[0] if len(pieces) == 1 and (start, end) == (0, size) else b"".join(bulk.slices(pieces, start, end))
        yield data, enc


def _wire_encoding(encoding: str) -> zenoh.Encoding:
    return _PLAIN if encoding is codec.ENCODING else as_encoding(encoding)


class Reply:
    """One reply to a query: ``ok`` tells success; ``payload`` and ``encoding`` what came back."""

    __slots__ = ("_key_expr", "encoding", "ok", "payload", "replier")

    def __init__(self, reply: Any, keyed: bool = True, replier: bool = False) -> None:
        #: the zenoh id of the replying session (with ``replier``), as text
        self.replier = _replier_zid(reply) if replier else None
        sample = reply.ok
        if sample is not None:
            self.ok = True
            # not the sample: it would hold a second copy of the payload (``keyed=False``: the key is not needed)
            self._key_expr = sample.key_expr if keyed else None
            self.payload = sample.payload.to_bytes()
            encoding = sample.encoding  # (encoding_text, without a call: every call's reply comes here)
            self.encoding = codec.ENCODING if encoding == _PLAIN else str(encoding)
        else:
            err = reply.err
            self.ok = False
            self._key_expr = None
            self.payload = err.payload.to_bytes()
            self.encoding = encoding_text(err.encoding)

    @property
    def key(self) -> str | None:
        """The key the reply came from (None for an error reply, or one made with ``keyed=False``)."""
        return None if self._key_expr is None else str(self._key_expr)


def _replier_zid(reply: Any) -> str | None:
    try:
        ident = reply.replier_id
        return None if ident is None else str(ident.zid)
    except Exception:  # noqa: BLE001 - a zenoh without replier ids
        return None


def start_query(session: zenoh.Session, selector: str, payload: Any = None, encoding: str | None = None, *, timeout: float, target_all: bool = False, handler: Any = None) -> Any:
    """Send a query; returns the reply channel (see ``all_replies``)."""
    kwargs: dict[str, Any] = {"timeout": timeout}
    if target_all:
        kwargs["target"] = zenoh.QueryTarget.ALL
        kwargs["consolidation"] = zenoh.ConsolidationMode.NONE
    if payload is not None:
        kwargs["payload"] = payload
    if encoding is not None:  # without a payload: a query that only says which codec to answer in
        kwargs["encoding"] = as_encoding(encoding)
    try:
        if handler is not None:
            return session.get(selector, handler, **kwargs)
        return session.get(selector, **kwargs)
    except zenoh.ZError as exc:
        raise RemoteTransportError(f"cannot query {selector!r}: {exc}") from None
    except BaseException as exc:
        if _is_panic(exc):
            raise RemoteTransportError(f"zenoh failed to query {str(selector)[:200]!r}: {exc}") from None
        raise


def all_replies(channel: Any) -> list[Reply]:
    """Every reply of a query (until it is finalized or times out); timeouts are left out."""
    replies = []
    for reply in channel:
        r = Reply(reply)
        if r.ok or r.payload != b"Timeout":
            replies.append(r)
    return replies


@overload
def query(session: zenoh.Session, selector: Any, payload: Any = None, encoding: str | None = None, *, timeout: float,
          keyed: bool = False, plain: Literal[False] = False, replier: bool = False) -> Reply | None: ...


@overload
def query(session: zenoh.Session, selector: Any, payload: Any = None, encoding: str | None = None, *, timeout: float,
          keyed: bool = False, plain: bool, replier: bool = False) -> Reply | bytes | None: ...


def query(session: zenoh.Session, selector: Any, payload: Any = None, encoding: str | None = None, *, timeout: float,
          keyed: bool = False, plain: bool = False, replier: bool = False) -> Reply | bytes | None:
    """Send one query and return its reply (None: nobody answered; TimeoutError: too late); with
    ``keyed``, the reply keeps the key it came from (``Reply.key``). With ``plain``, a reply that
    is one plain msgpack payload (a proxy's call, read or write answered by our HERO) comes back as
    its bytes, with no ``Reply`` made (the commonest reply, taken the shortest way).

    An ``encoding`` without a payload still travels (the peer sees an empty payload of that
    encoding): that is how a read says which codec to answer in. Every call and attribute access
    of a proxy comes here, so it asks zenoh directly rather than through ``start_query``. A large
    payload (``bytes`` or ``codec.Buffers``) goes through shared memory, a larger one of ours as an
    upload; a reply in parts is put back together (``heros.bulk``).
    """
    _inside.append(None)  # (list append and pop are atomic: see ``_close_all``)
    try:
        if _closing:
            raise RemoteTransportError(f"cannot query {str(selector)!r}: the process is exiting")
        upload = None
        try:
            enc = _PLAIN if encoding is codec.ENCODING else None if encoding is None else as_encoding(encoding)
            if payload is None:
                replies = session.get(selector, timeout=timeout, consolidation=_NO_CONSOLIDATION) if enc is None else \
                    session.get(selector, encoding=enc, timeout=timeout, consolidation=_NO_CONSOLIDATION)
            else:
                if type(payload) is not bytes or len(payload) >= LARGE:
                    assert encoding is not None
                    if len(payload) > bulk.PART_BYTES and encoding.startswith(codec.ENCODING):
                        upload = _uploads_of(session, str(selector)).add(payload, encoding)
                        payload, enc = b"", as_encoding(upload.encoding)
                    else:
                        payload = next(outgoing(payload, encoding, parts=False))[0]
                replies = session.get(selector, payload=payload, encoding=enc, timeout=timeout, consolidation=_NO_CONSOLIDATION)
        except zenoh.ZError as exc:
            if upload is not None:
                upload.done()
            raise RemoteTransportError(f"cannot query {str(selector)!r}: {exc}") from None
        except BaseException as exc:
            if upload is not None:
                upload.done()
            if _is_panic(exc):
                raise RemoteTransportError(f"zenoh failed to query {str(selector)[:200]!r}: {exc}") from None
            raise
        try:
            try:
                reply = replies.recv()
            except zenoh.ZError:  # closed without any reply: no queryable matched
                return None
            if plain:
                sample = reply.ok
                if sample is not None and sample.encoding == _PLAIN:
                    data: bytes = sample.payload.to_bytes()
                    return data
            result = Reply(reply, keyed, replier)
            if not result.ok and result.payload == b"Timeout":
                raise TimeoutError(str(selector))
            if result.encoding is not codec.ENCODING and bulk.is_part(result.encoding):
                _rest_of(result, replies, str(selector))
            return result
        finally:
            if upload is not None:
                upload.done()
    finally:
        _inside.pop()


_NO_CONSOLIDATION = zenoh.ConsolidationMode.NONE


def _rest_of(first: Reply, replies: Any, where: str) -> None:
    """Complete ``first``, one part of a reply, with the parts that follow it on ``replies``."""
    assembler = bulk.Assembler(max_open=1)
    try:
        done = assembler.add(first.payload, first.encoding)
        for reply in replies:
            if done is not None:
                break
            part = Reply(reply)
            if not part.ok:
                break
            done = assembler.add(part.payload, part.encoding)
    except CodecError as exc:
        raise RemoteTransportError(f"{where}: a reply in parts is malformed ({exc})") from None
    if done is None:
        raise RemoteTransportError(f"{where}: a reply in parts did not arrive in full")
    first.payload, first.encoding = done


class _Upload:
    """The parts of one request's payload, held until the HERO fetched them or the request ended."""

    __slots__ = ("encoding", "id", "owner", "payload", "payload_encoding")

    def __init__(self, owner: _Uploads, upload_id: str, payload: Any, payload_encoding: str, encoding: str) -> None:
        self.owner, self.id, self.encoding = owner, upload_id, encoding
        self.payload, self.payload_encoding = payload, payload_encoding

    def done(self) -> None:
        self.owner.pending.pop(self.id, None)


class _Uploads:
    """Where a HERO fetches the large payloads of this session's requests in one realm: a queryable
    on ``@object/<realm>/_upload/<zid>/*`` answering each upload with its parts."""

    def __init__(self, session: zenoh.Session, realm: str) -> None:
        self.prefix = keys.upload_key(realm, zid(session))
        self.pending: dict[str, _Upload] = {}
        self._ids = iter(range(1, 1 << 62))
        self.queryable = session.declare_queryable(f"{self.prefix}/*", zenoh.handlers.Callback(self._on_query, indirect=False))

    def add(self, payload: Any, encoding: str) -> _Upload:
        upload_id = f"{next(self._ids)}"
        upload = _Upload(self, upload_id, payload, encoding, bulk.upload_encoding(encoding, f"{self.prefix}/{upload_id}", len(payload)))
        self.pending[upload_id] = upload
        return upload

    def _on_query(self, q: Any) -> None:  # a zenoh thread: hand off
        upload = self.pending.get(str(q.key_expr).rpartition("/")[2])
        if upload is None:
            q.drop()
            return
        _executor.submit(self._answer, q, upload)

    @staticmethod
    def _answer(q: Any, upload: _Upload) -> None:
        try:
            for data, enc in outgoing(upload.payload, upload.payload_encoding, parts=True):
                q.reply(q.key_expr, data, encoding=_wire_encoding(enc))
        except Exception:  # the HERO sees the upload incomplete and says so
            log.debug("could not answer an upload query", exc_info=True)
        finally:
            q.drop()


_uploads: dict[int, dict[str, _Uploads]] = {}
_uploads_lock = threading.Lock()


def _uploads_of(session: zenoh.Session, selector: str) -> _Uploads:
    realm = selector.split("/", 2)[1]
    with _uploads_lock:
        realms = _uploads.setdefault(id(session), {})
        uploads = realms.get(realm)
        if uploads is None:
            uploads = realms[realm] = _Uploads(session, realm)
        return uploads


def fetch_upload(session: zenoh.Session, encoding: str, realm: str, limit: int) -> tuple[memoryview, str]:
    """The payload of a request that names an upload (``bulk.is_upload``), fetched from its caller:
    ``(payload, encoding)``. ``ValueError`` if it is larger than ``limit`` bytes, ``CodecError`` if
    the request is malformed, ``RemoteTransportError`` if it does not arrive in full."""
    key, _, size = bulk.parse_upload(encoding, keys.hero_key(realm, ""))
    if size > limit:
        raise ValueError(f"carries {size} bytes, more than this HERO accepts ({limit}; raise _hero_max_request_bytes to allow it)")
    timeout = max(10.0, size / 50e6)
    try:
        replies = session.get(key, target=zenoh.QueryTarget.ALL, consolidation=_NO_CONSOLIDATION, timeout=timeout)
    except zenoh.ZError as exc:
        raise RemoteTransportError(f"cannot fetch the caller's payload from {key!r}: {exc}") from None
    assembler = bulk.Assembler(max_open=1)
    for reply in replies:
        part = Reply(reply)
        if part.ok and bulk.is_part(part.encoding):
            done = assembler.add(part.payload, part.encoding)
            if done is not None:
                return done
    raise RemoteTransportError(f"the caller's payload of {size} bytes did not arrive in full (fetched from {key!r})")


def query_all(session: zenoh.Session, selector: str, *, timeout: float, encoding: str | None = None) -> list[Reply]:
    """Ask every matching queryable and collect all replies (``encoding``: the codec to answer in)."""
    _inside.append(None)
    try:
        if _closing:
            raise RemoteTransportError(f"cannot query {selector!r}: the process is exiting")
        return all_replies(start_query(session, selector, None, encoding, timeout=timeout, target_all=True))
    finally:
        _inside.pop()


def query_stream(session: zenoh.Session, selector: str, *, timeout: float, encoding: str | None = None) -> queue.SimpleQueue[Reply | None]:
    """Ask every matching queryable; each reply lands in the returned queue as it arrives, and a
    final None once the query is finalized (all answered, or ``timeout``), so the caller can use
    the answers that are there without waiting for the slowest (a frozen peer) to time out."""
    replies: queue.SimpleQueue[Reply | None] = queue.SimpleQueue()

    def on_reply(reply: Any) -> None:
        r = Reply(reply)
        if r.ok or r.payload != b"Timeout":
            replies.put(r)

    handler = zenoh.handlers.Callback(on_reply, lambda: replies.put(None), indirect=False)
    start_query(session, selector, None, encoding, timeout=timeout, target_all=True, handler=handler)
    return replies


def query_nowait(session: zenoh.Session, selector: str, payload: Any, encoding: str, on_reply: Callable[[Reply], None] | None = None) -> None:
    """Send a query without waiting; ``on_reply`` (run on a zenoh thread: only hand off) sees each reply."""

    def callback(reply: Any) -> None:
        if on_reply is not None:
            on_reply(Reply(reply))

    start_query(session, selector, payload, encoding, timeout=10.0, handler=zenoh.handlers.Callback(callback, indirect=False))


@_no_panics
def declare_queryable_channel(session: zenoh.Session, key: str, capacity: int) -> Any:
    """A queryable whose queries wait in a bounded channel for ``receive``; when it is full the
    oldest waiting query is dropped (zenoh finalizes it, so its caller is told nobody answered).

    It is declared complete (it answers for every key under ``key``): a query then goes straight
    to it. A queryable that is not complete is also asked through every router on the way,
    which costs a router hop per query (bench/RESULTS.md has the figure).
    """
    return session.declare_queryable(key, zenoh.handlers.RingChannel(capacity), complete=True)


@_no_panics
def declare_queryable_callback(session: zenoh.Session, key: str, callback: Callable[[Any], None],
                               on_drop: Callable[[], None]) -> Any:
    """A queryable that hands each query to ``callback`` on zenoh's own thread (which takes the GIL
    for it: ``callback`` must only hand the query off, as ``heros.serving.Inbox.push`` does);
    ``on_drop`` runs once it is undeclared. Declared complete, as ``declare_queryable_channel``."""
    return session.declare_queryable(key, zenoh.handlers.Callback(callback, on_drop, indirect=False), complete=True)


def channel(entity: Any) -> Any:
    """The receiving end of an entity declared with a channel (pass it to ``receive``).

    Threads wait on this object, never on the entity itself: a thread waiting in the entity's own
    ``recv`` holds it borrowed, and undeclaring it from another thread would then fail.
    """
    return entity.handler


def receive(chan: Any) -> Any:
    """The next item of a ``channel``, waiting for it; None once its entity is undeclared."""
    try:
        return chan.recv()
    except zenoh.ZError:
        return None


#: The attachment of an event sample a HERO of ours publishes in CBOR for upstream subscribers:
#: our own subscribers get the same event in msgpack and skip this copy.
MIRROR = b"heros:mirror"
#: The attachment of every sample published on our own keys (events and attribute changes in
#: msgpack) whose payload is not plain msgpack: in parts, with arrays out of band, or in any other
#: encoding. A sample there without an attachment is plain msgpack, so our subscribers read its
#: encoding only when it is marked: reading a sample's encoding costs about four times reading
#: its attachment, and reading it for every sample cost a subscription 7-13 % of its events/s
#: (bench/RESULTS.md).
NOT_PLAIN = b"heros:encoding"


def take(chan: Any, limit: int, *, with_key: bool, skip_mirrors: bool = False, native: bool = False,
         max_bytes: int | None = None, assembler: bulk.Assembler | None = None) -> list[tuple[str | None, Any, str]] | None:
    """Up to ``limit`` samples (and about ``max_bytes`` of payload) waiting in a subscriber's
    ``channel``, without waiting, as ``(key, payload, encoding text)``; None once the subscriber is
    undeclared. ``key`` is None unless ``with_key`` (reading it costs a conversion per sample);
    ``skip_mirrors`` leaves out the CBOR copies our HEROs publish for upstream subscribers;
    ``native``: the subscriber listens on our own keys only, where a sample without attachment is
    plain msgpack (see ``NOT_PLAIN``). Parts of large messages go to ``assembler`` (without one
    they are left out), and a message comes out once complete (its payload a memoryview).

    This runs for every sample a subscription gets, so it reads each sample's fields inline.
    """
    try_recv, plain, plain_text = chan.try_recv, _PLAIN, codec.ENCODING
    taken: list[tuple[str | None, Any, str]] = []
    append = taken.append
    room = max_bytes if max_bytes is not None else 1 << 62
    try:
        while len(taken) < limit:
            sample = try_recv()
            if sample is None:
                break
            if native and sample.attachment is None:  # plain msgpack: no encoding to read
                payload = sample.payload.to_bytes()
                append(((str(sample.key_expr) if with_key else None), payload, plain_text))
                room -= len(payload)
                if room <= 0:
                    break
                continue
            if skip_mirrors:
                attachment = sample.attachment
                if attachment is not None and attachment.to_bytes() == MIRROR:
                    continue
            encoding = sample.encoding
            payload = sample.payload.to_bytes()
            if encoding == plain:
                text = plain_text
            else:
                text = str(encoding)
                if bulk.is_part(text):
                    try:
                        done = assembler.add(payload, text) if assembler is not None else None
                    except CodecError as exc:
                        log.warning("left out a malformed part of a large message on %s: %s", sample.key_expr, exc)
                        continue
                    if done is None:
                        continue
                    payload, text = done
            append(((str(sample.key_expr) if with_key else None), payload, text))
            room -= len(payload)
            if room <= 0:
                break
    except zenoh.ZError:  # undeclared
        return taken or None
    return taken


_receivers: weakref.WeakSet[threading.Thread] = weakref.WeakSet()


def start_receiver(target: Callable[[], None], name: str) -> threading.Thread:
    """Start a daemon thread that waits in ``receive``.

    Closing the sessions at exit wakes such threads; the exit hook then waits (briefly) for them,
    because a thread still inside zenoh when the interpreter finalizes would abort the process.
    """
    thread = receiver_thread(target, name)
    thread.start()
    return thread


def receiver_thread(target: Callable[[], None], name: str) -> threading.Thread:
    """A thread for ``start_receiver``, made but not started (to start once a lock is released)."""
    thread = threading.Thread(target=target, name=name, daemon=True)
    _receivers.add(thread)
    return thread


def reply(q: Any, key: Any, payload: Any, encoding: str) -> None:
    """Answer a query and finalize it; ``key`` is a text or a key expression (``key_expr``,
    ``query_parts``), or None for the query's own key. A large payload (``bytes`` or
    ``codec.Buffers``) goes through shared memory, and to our peers in parts when larger still."""
    if key is None:
        key = q.key_expr  # no text for zenoh to parse again
    try:
        if type(payload) is bytes and len(payload) < LARGE:
            q.reply(key, payload, encoding=_PLAIN if encoding is codec.ENCODING else as_encoding(encoding))
        elif hasattr(q, "large"):  # a published request (``heros.rpc.Call``): published the same way
            q.large(payload, encoding)
        else:
            for data, enc in outgoing(payload, encoding, parts=encoding.startswith(codec.ENCODING)):
                q.reply(key, data, encoding=_wire_encoding(enc))
    finally:
        q.drop()


def reply_error(q: Any, payload: Any, encoding: str) -> None:
    """Answer a query with an error reply and finalize it."""
    try:
        q.reply_err(payload, encoding=as_encoding(encoding))
    finally:
        q.drop()


def drop(q: Any) -> None:
    """Finalize a query without answering it."""
    q.drop()


def query_parts(q: Any) -> tuple[Any, bytes | None, str | None]:
    """(key, payload bytes or None, encoding text or None) of a received query.

    The key is zenoh's key expression object: ``str()`` gives its text, it hashes and compares
    like it, and ``reply`` takes it back without zenoh parsing a text again.
    """
    payload = q.payload
    if payload is None:
        return q.key_expr, None, None
    encoding = q.encoding
    return q.key_expr, payload.to_bytes(), codec.ENCODING if encoding == _PLAIN else str(encoding)


@_no_panics
def anchor_key(session: zenoh.Session, key: str) -> Any:
    """Make ``key``, a concrete key that a wildcard queryable serves (a HERO's ``<name>/**``
    serves ``<name>/<member>``), known to every peer's zenoh: a liveliness token on it.

    zenoh keeps the route of a query only for a key that some declaration put in its routing
    tables; a query for a key nothing declared is matched against every queryable again, in the
    caller's process and in the server's (about 8 µs a call here, bench/RESULTS.md). A queryable's
    wildcard declares only itself. A key declared with ``Session.declare_keyexpr`` stays in its
    own session; a token reaches every peer (and goes when the process dies). Nothing is ever
    sent to it, and nobody watches member keys for liveliness (observers watch ``*/_health``).
    """
    return declare_token(session, key)


@_no_panics
def declare_publisher(session: zenoh.Session, key: str, *, reliable: bool, encoding: str | None = None) -> Any:
    """A publisher: reliable ones block under congestion, best-effort ones drop instead.

    ``encoding`` is sent with every publication that does not give its own.
    """
    enc = None if encoding is None else as_encoding(encoding)
    if reliable:
        return session.declare_publisher(key, encoding=enc, reliability=zenoh.Reliability.RELIABLE,
                                         congestion_control=zenoh.CongestionControl.BLOCK)
    return session.declare_publisher(key, encoding=enc, reliability=zenoh.Reliability.BEST_EFFORT,
                                     congestion_control=zenoh.CongestionControl.DROP)


class Matching:
    """Whether a publisher has subscribers, as last told by a matching listener.

    Reading ``matching`` costs an attribute lookup, where asking zenoh costs a call into the
    routing tables on every publication. The listener is told of a new subscriber a little after
    zenoh's routing knows it, so a False here is to be confirmed with ``has_subscribers``.
    ``listener`` is the zenoh entity to undeclare.
    """

    __slots__ = ("_next_check", "_publisher", "listener", "matching")

    def __init__(self, publisher: Any) -> None:
        self.matching = True  # until zenoh says otherwise: a race never drops a sample
        self._publisher = publisher
        self._next_check = 0.0
        self.listener = publisher.declare_matching_listener(zenoh.handlers.Callback(self._changed, indirect=False))
        self.matching = bool(publisher.matching_status.matching)

    @property
    def publisher(self) -> Any:
        return self._publisher

    def _changed(self, status: Any) -> None:
        self.matching = bool(status.matching)

    def confirmed(self) -> bool:
        """Whether subscribers match: the listener's flag, confirmed with zenoh while it says no, at
        most every ``MATCHING_RECHECK`` seconds (for a publisher that usually has none, where asking
        zenoh on each publication would cost more than the publication)."""
        if self.matching:
            return True
        now = time.monotonic()
        if now < self._next_check:
            return False
        self._next_check = now + MATCHING_RECHECK
        return bool(self._publisher.matching_status.matching)


#: How often a publisher that usually has no subscribers asks zenoh whether one appeared before
#: its matching listener says so (see ``Matching.confirmed``).
MATCHING_RECHECK = 0.005


def put(publisher: Any, payload: Any, encoding: str, *, part_bytes: int = bulk.PART_BYTES) -> None:
    """Publish ``payload`` (``bytes`` or ``codec.Buffers``); a large one through shared memory,
    and in parts of at most ``part_bytes`` when larger still (see ``heros.bulk``; our subscribers
    put them together)."""
    if type(payload) is bytes and len(payload) < LARGE:
        _put(publisher, payload, encoding)
        return
    for data, enc in outgoing(payload, encoding, parts=encoding.startswith(codec.ENCODING), part_bytes=part_bytes):
        _put(publisher, data, enc)


def _put(publisher: Any, data: Any, encoding: str) -> None:
    """One publication; anything but plain msgpack is marked (``NOT_PLAIN``)."""
    if encoding is codec.ENCODING:
        publisher.put(data, encoding=_PLAIN)
    else:
        publisher.put(data, encoding=as_encoding(encoding), attachment=NOT_PLAIN)


def put_mirror(publisher: Any, payload: bytes) -> None:
    """Publish the CBOR copy of an event for upstream subscribers (marked, see ``MIRROR``)."""
    if len(payload) >= LARGE:
        payload = next(outgoing(payload, "application/cbor", parts=False))[0]
    publisher.put(payload, attachment=MIRROR)



def put_bytes(publisher: Any, payload: bytes, encoding: zenoh.Encoding) -> None:
    """One publication of ``payload`` as it is (``heros.rpc``: requests and their answers)."""
    try:
        publisher.put(payload, encoding=encoding)
    except zenoh.ZError as exc:  # its session closed
        raise RemoteTransportError(f"cannot publish on {publisher.key_expr}: {exc}") from None


def put_large(publisher: Any, payload: Any, encoding: str, attachment: bytes) -> None:
    """Publish a large ``payload`` (``bytes`` or ``codec.Buffers``) whole, through shared memory
    when it fits, with ``attachment`` (``heros.rpc``)."""
    try:
        for data, enc in outgoing(payload, encoding, parts=False):
            publisher.put(data, encoding=_wire_encoding(enc), attachment=attachment)
    except zenoh.ZError as exc:  # its session closed
        raise RemoteTransportError(f"cannot publish on {publisher.key_expr}: {exc}") from None


def put_local(session: zenoh.Session, key: Any, payload: bytes) -> None:
    """A publication for this session's own subscribers only (``heros.rpc`` wakes a waiting call with it)."""
    session.put(key, payload, allowed_destination=zenoh.Locality.SESSION_LOCAL)


def inside_enter() -> None:
    """A thread is about to wait inside zenoh (``query`` does the same): the exit waits for it."""
    _inside.append(None)
    if _closing:
        _inside.pop()
        raise RemoteTransportError("the process is exiting")


def inside_exit() -> None:
    _inside.pop()


def has_subscribers(publisher: Any) -> bool:
    """Whether any subscriber currently matches the publisher's key."""
    return bool(publisher.matching_status.matching)


@_no_panics
def declare_subscriber_channel(session: zenoh.Session, key: str, capacity: int, *, block: bool) -> Any:
    """A subscriber whose samples wait in a channel for ``receive``: a full ring drops the oldest,
    a full FIFO (``block``) makes zenoh wait, pushing back on reliable publishers."""
    handler: Any = zenoh.handlers.FifoChannel(capacity) if block else zenoh.handlers.RingChannel(capacity)
    return session.declare_subscriber(key, handler)


@_no_panics
def declare_subscriber_callback(session: zenoh.Session, key: str, callback: Callable[[Any], None]) -> Any:
    """A subscriber that hands each sample to ``callback`` on zenoh's own thread (which must only
    hand it off, as ``heros.serving.Inbox.push_call`` does)."""
    return session.declare_subscriber(key, zenoh.handlers.Callback(callback, indirect=False))


@_no_panics
def declare_token(session: zenoh.Session, key: str) -> Any:
    """A liveliness token: present while the object lives, gone when it is undeclared or its process dies."""
    return session.liveliness().declare_token(key)


@_no_panics
def declare_liveliness_watch(session: zenoh.Session, key: str, callback: Callable[[str, bool], None], *, history: bool = False) -> Any:
    """Watch liveliness tokens; ``callback(key, alive)`` runs on a zenoh thread: only hand off."""

    def on_sample(sample: Any) -> None:
        callback(str(sample.key_expr), sample.kind == zenoh.SampleKind.PUT)

    return session.liveliness().declare_subscriber(key, on_sample, history=history)


@_no_panics
def tokens(session: zenoh.Session, key: str, *, timeout: float) -> list[str]:
    """The keys of the liveliness tokens alive now that match ``key``.

    zenoh answers with the tokens this session knows already from inside ``get``, holding its
    routing tables: a bounded reply channel (zenoh's default holds 256) that fills there is never
    drained, and the session stays locked for good. So the replies go to a callback that only
    appends, and the query's end is awaited (a realm of 300 HEROs hung every observer before).
    """
    keys: list[str] = []
    done = threading.Event()

    def on_reply(reply: Any) -> None:
        ok = reply.ok
        if ok is not None:
            keys.append(str(ok.key_expr))

    session.liveliness().get(key, zenoh.handlers.Callback(on_reply, done.set, indirect=False), timeout=timeout)
    done.wait(timeout + 1.0)
    return list(keys)


def discard(chan: Any) -> int:
    """Drop every sample waiting in a subscriber's ``channel``; how many. For a blocking (FIFO)
    channel that was full when its subscriber was undeclared: zenoh's receiving thread may wait in
    it for room, and would wait for good (the session's link stalls, queries over it go unanswered)."""
    dropped = 0
    try:
        while chan.try_recv() is not None:
            dropped += 1
    except zenoh.ZError:  # closed: nothing can wait in it
        pass
    return dropped


def undeclare(entity: Any) -> None:
    """Undeclare a zenoh entity, ignoring one whose session is already closed."""
    try:
        entity.undeclare()
    except zenoh.ZError:
        log.debug("undeclare failed (session closed?)", exc_info=True)
    except Exception:  # a bug of ours (e.g. the entity is in use by another thread): say so
        log.warning("could not undeclare %r", entity, exc_info=True)


def zid(session: zenoh.Session) -> str:
    """The zenoh id of a session, as text."""
    return str(session.info.zid())


def loopback_config(port: int, *, listen_port: int = 0) -> str:
    """A HEROS_ZENOH_CONFIG that never leaves this host: multicast scouting off, gossip on,
    listening on ``127.0.0.1:<listen_port>`` and connecting to the hub on ``127.0.0.1:<port>``."""
    return json.dumps({
        "mode": "peer",
        "scouting": {"multicast": {"enabled": False}, "gossip": {"enabled": True}},
        "listen": {"endpoints": [f"tcp/127.0.0.1:{listen_port}"]},
        "connect": {"endpoints": [f"tcp/127.0.0.1:{port}"]},
    })


def open_hub(port: int) -> zenoh.Session:
    """A zenoh router on ``127.0.0.1:<port>`` that loopback peers connect to (tests, the demo)."""
    config = zenoh.Config()
    config.insert_json5("mode", '"router"')
    config.insert_json5("scouting/multicast/enabled", "false")
    config.insert_json5("listen/endpoints", json.dumps([f"tcp/127.0.0.1:{port}"]))
    return zenoh.open(config)


# Beyond one host: routers, and how fast a lost link is noticed and a healed one used again.
# zenoh's own default lease is 10 s: a link silent that long is closed, and everything declared
# through it (queryables, subscribers, liveliness tokens) is withdrawn.


def link_settings(lease: float, *, keep_alive: int = 4, reconnect: float | None = None) -> dict[str, Any]:
    """Configuration entries to notice a lost link within about ``lease`` seconds, and to reconnect
    within about ``reconnect`` seconds (default ``lease``) once it is back.

    Parameters
    ----------
    lease
        Seconds of silence after which the other end of a link closes it (zenoh's default is 10).
        The lease a process announces is the one its peers and routers apply to it, so give every
        process of the network (routers too) the same settings.
    keep_alive
        Keep-alive messages sent per lease when there is no other traffic (zenoh's default 4).
    reconnect
        Longest pause between two attempts to reach a configured ``connect`` endpoint again, and
        how long one attempt may take (zenoh's defaults: pauses of 1 s growing to 4 s, 10 s).

    Returns
    -------
    dict
        ``{"path/to/key": value}`` entries for ``session_manager.update_config``, ``open_router``
        or ``config_text``.

    A short lease makes a dead link show sooner (HEROs vanish from observers, panels grey out,
    calls stop waiting for it) at the cost of ``keep_alive / lease`` small messages per second per
    link, and of dropping links that stay silent longer than that for other reasons (a machine
    swapping, a congested radio link). One to two seconds suits a wired lab network.
    """
    if not lease > 0 or keep_alive < 1:
        raise ConfigError(f"the lease must be positive and keep_alive at least 1, not {lease!r} and {keep_alive!r}")
    reconnect = lease if reconnect is None else reconnect
    reconnect_ms = max(round(reconnect * 1000), 100)
    return {
        "transport/link/tx/lease": max(round(lease * 1000), 1),
        "transport/link/tx/keep_alive": int(keep_alive),
        # an attempt on a link that is still down waits for TCP's SYN retries: bound it, then retry soon
        "transport/unicast/open_timeout": reconnect_ms,
        # one entry: zenoh takes the retry settings as a whole (their keys cannot be set one by one)
        "connect/retry": {"period_init_ms": max(reconnect_ms // 4, 50), "period_max_ms": reconnect_ms, "period_increase_factor": 2},
    }


def config_text(entries: dict[str, Any]) -> str:
    """A ``HEROS_ZENOH_CONFIG`` document (JSON) holding ``{"path/to/key": value}`` entries."""
    root: dict[str, Any] = {}
    for path, value in entries.items():
        node = root
        *parents, leaf = path.split("/")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return json.dumps(root)


class Router:
    """A zenoh router opened by ``open_router``; ``close()`` stops it (also as a context manager)."""

    def __init__(self, session: zenoh.Session, endpoints: list[str]) -> None:
        self._session = session
        #: The endpoints it listens on, as configured (an address may be unspecified: ``tcp/[::]:7447``).
        self.endpoints = endpoints

    @property
    def zid(self) -> str:
        """The router's zenoh id."""
        return str(self._session.info.zid())

    def watch_links(self, callback: Callable[[bool, str | None, str], None]) -> Any:
        """Watch the router's links (see ``declare_link_watch``); ``undeclare`` the returned handle to stop."""
        return declare_link_watch(self._session, callback)

    def close(self) -> None:
        _close(self._session)

    def __enter__(self) -> Router:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_router(listen: list[str] | tuple[str, ...] = (), connect: list[str] | tuple[str, ...] = (), *, realm: str = "heros",
                overrides: dict[str, Any] | None = None, by_interface: bool = True, config: str | None = None) -> Router:
    """A zenoh router in this process, as ``zenohd`` runs one: ``config`` (else zenoh's defaults),
    ``HEROS_SEP_MULTICAST``, then the endpoints and ``overrides``.

    ``HEROS_ZENOH_CONFIG`` is never read: in a shell set up for a client it would make a router of
    the client's configuration.

    Parameters
    ----------
    listen
        Endpoints to listen on (``tcp/10.0.1.5:7447``); none: the configuration's, else zenoh's
        router default ``tcp/[::]:7447``.
    connect
        Endpoints of other routers to link with (another site); none: the configuration's.
    realm
        With ``HEROS_SEP_MULTICAST`` set, the router answers scouting on this realm's group.
    overrides
        Configuration entries applied last (e.g. ``link_settings(1.0)``).
    by_interface
        Unless the configuration has a ``gateway`` of its own, put the peers and clients that
        reach the router through each network interface in a subregion of their own (see
        ``interface_subregions``), so that peers on two subnets reach each other through it.
    config
        A zenoh JSON5 configuration to start from (TLS certificates, access rules: see
        ``heros tls config --mode router``).

    Returns
    -------
    Router
        Routing until ``close()``.

    Raises
    ------
    ConfigError
        zenoh refused the configuration or an endpoint, or could not listen on one.
    """
    entries: dict[str, Any] = {"mode": "router", **(overrides or {})}
    if listen:
        entries["listen/endpoints"] = list(listen)
    if connect:
        entries["connect/endpoints"] = list(connect)
    built = _build_config(realm, entries, base="{}" if config is None else config)
    if by_interface and json.loads(built.get_json("gateway")).get("south") is None:
        built.insert_json5("gateway", json.dumps(interface_subregions(socket.if_nameindex())))
    configured = json.loads(built.get_json("listen/endpoints"))
    if isinstance(configured, dict):  # per-mode lists, as in zenoh's defaults
        configured = configured.get("router") or []
    try:
        session = zenoh.open(built)
    except zenoh.ZError as exc:
        raise ConfigError(f"zenoh could not open the router: {_zenoh_message(exc)}") from None
    return Router(session, [str(e) for e in configured])


def interface_subregions(interfaces: Any) -> dict[str, Any]:
    """The ``gateway`` configuration of a router joining subnets: one south subregion per network
    interface (names, or ``socket.if_nameindex()`` pairs), holding the peers and clients that
    reach the router through it.

    zenoh (1.9 and later) routes between subregions, but takes the peers of one subregion to be
    connected to each other. Its default puts every peer of a router in one subregion, so peers on
    two subnets, which cannot connect to each other, would not hear each other through the router.
    Routers stay out of these subregions: router-to-router links keep zenoh's own routing. A last
    subregion takes whoever comes through an interface that appeared later (zenoh refuses a peer
    or client that no subregion matches).
    """
    names = [name if isinstance(name, str) else name[1] for name in interfaces]
    south = [{"filters": [{"interfaces": [name], "modes": ["peer", "client"]}]} for name in names]
    return {"south": [*south, {"filters": [{"modes": ["peer", "client"]}]}]}


def _reachable_at(endpoint: str, host: str) -> str:
    """``endpoint`` with an unspecified address (``0.0.0.0``, ``[::]``) replaced by ``host``."""
    proto, _, rest = endpoint.partition("/")
    address = rest.partition("#")[0]  # link options (#iface=...) concern the listener only
    for unspecified in ("0.0.0.0:", "[::]:"):
        if address.startswith(unspecified):
            address = f"{host}:{address[len(unspecified):]}"
    return f"{proto}/{address}"


def router_configs(router: Router, *, host: str, overrides: dict[str, Any] | None = None) -> tuple[list[str], str, str]:
    """What a router tells its users: (where to reach it, the peers' and the clients' ``HEROS_ZENOH_CONFIG``).

    The documents connect to the router's endpoints, with ``host`` in place of an unspecified
    address, and carry ``overrides`` (the lease settings: both ends of a link should agree). A
    peer keeps scouting its own LAN as before; a client talks to the router only, so its document
    turns scouting off.
    """
    reachable = [_reachable_at(e, host) for e in router.endpoints]
    extra = dict(overrides or {})
    peer = config_text({"mode": "peer", "connect/endpoints": reachable, **extra})
    client = config_text({"mode": "client", "connect/endpoints": reachable, "scouting/multicast/enabled": False, **extra})
    return reachable, peer, client


def config_entry(text: str, key: str) -> Any:
    """The entry ``key`` (``"listen/endpoints"``) of a JSON5 configuration as zenoh reads it, or None.

    Raises ``ConfigError`` for a text that is no zenoh configuration.
    """
    try:
        config = zenoh.Config.from_json5(text)
    except zenoh.ZError as exc:
        raise ConfigError(f"HEROS_ZENOH_CONFIG is not a valid zenoh JSON5 configuration: {_zenoh_message(exc)}") from None
    try:
        return json.loads(config.get_json(key))
    except (zenoh.ZError, ValueError):  # a key zenoh does not know, or one left unset
        return None


def declare_link_watch(session: zenoh.Session, callback: Callable[[bool, str | None, str], None]) -> Any:
    """Watch the links of a session, the ones open now included.

    ``callback(added, identity, remote)`` runs on a zenoh thread (only hand off): ``identity``
    is the common name of the certificate the remote node presented (None without one), and
    ``remote`` its locator.
    """

    def on_event(event: Any) -> None:
        link = event.link
        callback(event.kind == zenoh.SampleKind.PUT, link.auth_identifier, str(link.dst))

    return session.info.declare_link_events_listener(on_event, history=True)
