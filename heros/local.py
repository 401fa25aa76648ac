"""LocalHERO: serve an object's methods, attributes and events on the network.

One queryable on ``@object/<realm>/<name>/**`` receives every request for the HERO into a bounded
zenoh channel; the HERO's worker threads take requests straight from that channel (no zenoh
callback runs HERO code, and no extra hand-off costs a thread switch), decode, run the member and
reply. A worker that takes a request while no other one waits starts another, up to a bound, so
different members and concurrent calls of one member run concurrently; a HERO that asked for
one-at-a-time execution has exactly one worker, which serves requests in arrival order.

Each request is answered in the codec it came in: a request whose encoding says msgpack is one
of ours (a read says so with an empty payload); anything else is an upstream HEROS peer's, and
gets CBOR with encoding ``application/cbor``, as upstream HEROs answer.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, cast

from . import bulk, cbor, codec, keys, rpc, serving
from . import zenoh as z
from .capabilities import AttributeCapability, Capability, EventCapability, MethodCapability, arguments_check, scan, value_check
from .event import LocalEventHandler
from .exceptions import NameTakenError
from .inspect import force_remote, local_only
from .peer import HERO, answers, local_hero, local_heros, register_local, unregister_local
from .references import obj_store, store_object
from .remote import RemoteHERO
from .zenoh import ZenohSessionManager

__all__ = ["CODEC_TAG", "LocalHERO"]

log = logging.getLogger("heros")

PROTO_VERSION = 1.0
#: The tag that tells peers this HERO speaks msgpack (upstream HEROS HEROs do not carry it).
CODEC_TAG = "_codec:msgpack"

#: Requests a HERO queues while its workers are busy; beyond that the oldest waiting one is dropped.
MAX_PENDING_REQUESTS = 1000
#: Most requests one HERO serves at the same time.
MAX_WORKERS = 32
#: Largest request payload a HERO decodes, in bytes (override with ``_hero_max_request_bytes``).
MAX_REQUEST_BYTES = 1 << 30


def _pkg_versions() -> str:
    global _PKG_VERSIONS
    if _PKG_VERSIONS is None:
        from importlib import metadata

        versions = {}
        for dist, module in (("heros-jupyter", "heros"), ("heros-boss", "boss"), ("herosdevices", "herosdevices"),
                             ("herostools", "herostools"), ("atomiq", "atomiq")):
            try:
                versions[module] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                versions[module] = "not installed"
        _PKG_VERSIONS = json.dumps(versions)
    return _PKG_VERSIONS


_PKG_VERSIONS: str | None = None
_async_loop: asyncio.AbstractEventLoop | None = None
_async_lock = threading.Lock()


def _run_coroutine(coro: Any) -> Any:
    """Run a coroutine returned by an ``async def`` member on the process's HEROS event loop."""
    global _async_loop
    with _async_lock:
        if _async_loop is None:
            _async_loop = asyncio.new_event_loop()
            threading.Thread(target=_async_loop.run_forever, name="heros-asyncio", daemon=True).start()
    return asyncio.run_coroutine_threadsafe(coro, _async_loop).result()


class LocalHERO(HERO):
    """Base class of objects served as HEROs. Subclass it; instances are served when constructed.

    Public methods, class attributes (annotated-only ones too), properties and ``@event``
    methods of the subclass become capabilities (``../shared/SPEC.md`` 3.2). Leaving a ``with``
    block, ``_destroy_hero()`` or garbage collection stop serving.

    Parameters
    ----------
    name
        Unique name of the HERO in its realm.
    realm
        The realm to serve in (default ``"heros"``).
    implements, tags
        Interface names and tags for discovery (lists are copied, never mutated).
    extra_metadata
        String-valued metadata for discovery.
    session_manager
        Where the zenoh session comes from (the process-wide default if None).
    serial
        Run this HERO's requests one at a time, in arrival order (for drivers that are not
        thread-safe). Also settable as class attribute ``_hero_serial = True``.
    replace
        Serve even if a HERO of this name is alive in the realm already (a deliberate
        replacement; calls may reach either until the other stops). By default such a HERO is
        refused with ``NameTakenError``. Also settable as class attribute ``_hero_replace = True``.

    Notes
    -----
    Every write of an exposed attribute, remote or by the HERO's own code, is published so that
    clients (``RemoteHERO._watch_attribute``, Jupyter panels) see it at once. A value that changes
    without a write (a property reading hardware) is published by calling
    ``self._heros_publish_attribute(name)``.
    """

    _hero_serial: bool = False
    _hero_replace: bool = False
    _hero_max_request_bytes: int = MAX_REQUEST_BYTES
    _heros_proxy_class = RemoteHERO  # HEROs named in requests become proxies
    # Set first in ``_destroy_hero``: discovery is no longer answered. A class default, not set in
    # ``__init__``: one more key in a HERO's ``__dict__`` can take it past the keys an instance
    # dict shares with its class (30 in CPython 3.11), and then costs 1.2 KiB per HERO.
    _heros_leaving = False

    def __init__(
        self,
        name: str,
        *args: Any,
        realm: str = "heros",
        implements: list[str] | None = None,
        tags: list[str] | None = None,
        extra_metadata: dict[str, str] | None = None,
        session_manager: ZenohSessionManager | None = None,
        serial: bool | None = None,
        replace: bool | None = None,
    ) -> None:
        if args:
            log.warning("LocalHERO %r: extra positional arguments %r are ignored", name, args)
        self._hero_destroyed = True
        self._heros_implements = list(implements or [])
        self._heros_tags = list(tags or [])
        self._heros_extra_metadata = dict(extra_metadata or {})
        self._heros_extra_metadata["pkg_versions"] = _pkg_versions()
        self._heros_tags.append(f"_proto_version:{PROTO_VERSION}")
        self._heros_tags.append(CODEC_TAG)
        HERO.__init__(self, name, realm, session_manager)
        self._heros_scope = (self._realm, self._name)  # objects it hands out resolve only here
        try:
            self._heros_start(serial, type(self)._hero_replace if replace is None else replace)
        except BaseException:
            self._destroy_hero()
            raise

    def _heros_check_name(self, replace: bool) -> None:
        """Refuse to serve a name that is alive in the realm already (unless ``replace``).

        The check asks the realm's liveliness tokens once the session has met its peers: a young
        session answers empty for tokens its peers declared before it connected (``settle``).
        """
        realm, name = self._realm, self._name
        other = local_hero(realm, name)
        alive = other is not None
        if not alive:
            session = self._session
            self._session_manager.settle(realm, lambda: set(z.tokens(session, keys.health_key(realm), timeout=1.0)))
            alive = bool(z.tokens(session, keys.health_key(realm, name), timeout=1.0)) or answers(session, realm, name, 1.0)
        if not alive:
            return
        where = "in this process" if other is not None else "in another process"
        if not replace:
            raise NameTakenError(
                f"a HERO named {name!r} is already alive in realm {realm!r} ({where}); stop it first, choose another name, "
                "or pass replace=True to serve this one as well (calls would then reach either of them)"
            )
        log.warning("a HERO named %r is already alive in realm %r (%s); serving a second one (replace=True): calls may reach "
                    "either of them until the other one stops", name, realm, where)

    def _heros_start(self, serial: bool | None, replace: bool) -> None:
        zid = z.zid(self._session)
        self._heros_tags.append(f"_zid:{zid}")
        self._heros_prefix = keys.hero_key(self._realm, self._name)
        self._heros_publishers: dict[str, _Watchers] = {}
        serial = type(self)._hero_serial if serial is None else serial
        self._heros_routes: dict[Any, tuple[str, Any, type | None]] = {}
        self._heros_store = store_object(self._realm, self._name, counted=True)
        self._heros_static: dict[Any, Any] = {}
        self.capabilities: list[Capability] = scan(self, _HIDDEN)
        self._heros_caps = {c.name: c for c in self.capabilities}
        self._heros_value_checks, self._heros_arg_checks = self._heros_checks()
        for cap in self.capabilities:
            if isinstance(cap, EventCapability):
                getattr(self, cap.name)._heros_bind(self)
        self._heros_check_name(replace)
        # calls from our peers arrive published (heros.rpc), everything else as queries
        self._heros_calls = rpc.Calls(self._session, self._realm, self._heros_prefix,
                                      lambda member: member in self._heros_caps or member in _SPECIAL)
        self._heros_requests = self._declare(serving.Requests(self._session, f"{self._heros_prefix}/**", self._heros_serve,
                                                              1 if serial else MAX_WORKERS, MAX_PENDING_REQUESTS, self._name,
                                                              inline=self._heros_serve_inline,
                                                              calls=(rpc.request_key(self._realm, self._name, zid), self._heros_calls.make)))
        self._heros_anchored: set[str] | None = set()  # the member keys made known once called (_heros_anchor)
        self._heros_anchor_lock = threading.Lock()
        register_local(self)
        # attribute writes are published from now on; the publishers are declared now, so that by the
        # first write zenoh knows whether anybody listens (through a router it learns that a little later)
        watched = [c.name for c in self.capabilities if isinstance(c, AttributeCapability)]
        for name in watched:
            key = keys.attr_change_key(self._realm, self._name, name)
            self._heros_publishers[name] = _Watchers(self._declare(z.declare_publisher(self._session, key, reliable=True)))
        object.__setattr__(self, "_heros_watched", frozenset(watched))
        self.liveliness_token = self._declare(z.declare_token(self._session, self._endpoints["health"]))
        log.debug("serving HERO %s with %d capabilities", self._heros_prefix, len(self.capabilities))

    def _heros_checks(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """What remote writes and calls are checked against: the declared type, range and choices
        of each attribute and parameter (the HERO is the authority, whatever a client lets through)."""
        values: dict[str, Any] = {}
        arguments: dict[str, Any] = {}
        for cap in self.capabilities:
            what = f"{cap.flavor} {cap.name!r} of HERO {self._name!r}"
            if isinstance(cap, AttributeCapability) and cap.writable:
                default = inspect.getattr_static(type(self), cap.name, None)
                check = value_check(cap.type, cap.extra, what, allow_none=default is None)
                if check is not None:
                    values[cap.name] = check
            elif isinstance(cap, MethodCapability):
                call_check = arguments_check(cap, f"{cap.name}() of HERO {self._name!r}")
                if call_check is not None:
                    arguments[cap.name] = call_check
        return values, arguments

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # A subclass usually calls super().__init__() first and then sets up its driver; if that
        # fails the half-built HERO must not stay on the network until garbage collection.
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None or getattr(init, "_heros_guarded", False):
            return

        @functools.wraps(init)
        def __init__(self: LocalHERO, *args: Any, **kw: Any) -> None:
            try:
                init(self, *args, **kw)
            except BaseException:
                if not getattr(self, "_hero_destroyed", True):
                    self._destroy_hero()
                raise

        __init__._heros_guarded = True  # type: ignore[attr-defined]
        cls.__init__ = __init__  # type: ignore[method-assign]

    # --- the wire side ---------------------------------------------------------------------

    def _heros_serve(self, query: Any) -> None:
        """A thread of ``heros.serving``: answer one query."""
        decode = self._decoder()  # this thread's: ``_decode`` would ask for it again
        later: list[tuple[LocalHERO, str]] | None = None
        try:
            key, payload, encoding = z.query_parts(query)
            route = self._heros_routes.get(key) or self._heros_route(key)
            if route is None:
                z.drop(query)
                return
            member, reply_key, kind = route
            if kind is None and self._heros_refuses(member):
                z.drop(query)
                return
            if encoding is not codec.ENCODING and not (encoding is not None and encoding.startswith(codec.ENCODING)):
                self._heros_serve_upstream(query, member, reply_key or key, payload, encoding)
                return
            try:
                if encoding is not codec.ENCODING and encoding is not None and bulk.is_upload(encoding):
                    payload, encoding = self._heros_fetch(member, encoding)
                # the most common requests the shortest way (the other checks are in _heros_handle)
                if kind is MethodCapability and payload and len(payload) <= self._hero_max_request_bytes:
                    data, enc = codec.encode(self._heros_call(member, decode(payload, encoding)), self._heros_store, join=False)
                elif kind is AttributeCapability and not payload:
                    data, enc = codec.encode(self._heros_read(member), self._heros_store, join=False)
                elif kind is AttributeCapability and payload is not None and len(payload) <= self._hero_max_request_bytes:
                    # the new value is published to its watchers after the answer: the writer does not wait
                    # for zenoh to look up whether anybody watches (5-8 µs a write here) and for the publication
                    _publish_later.writes = later = []
                    try:
                        self._heros_write(cast(AttributeCapability, self._heros_caps[member]), decode(payload, encoding))
                    finally:
                        _publish_later.writes = None
                    data, enc = _ACK
                elif member == keys.HELD:  # the largest answers to published calls, fetched (heros.rpc)
                    data, enc = self._heros_calls.held.take(self._heros_only_argument(payload, encoding, "held answer", "token"))
                else:
                    data, enc = self._heros_answer(member, payload or None, encoding)
            except BaseException as exc:  # noqa: BLE001 - every failure becomes an error reply
                if not isinstance(exc, Exception):
                    log.warning("HERO %s.%s raised %s", self._name, member, type(exc).__name__)
                data, enc = codec.encode(exc)
                z.reply_error(query, data, enc)
                return
            z.reply(query, reply_key or key, data, enc)
        except Exception:  # e.g. the session closed while we served
            log.debug("could not answer a query for HERO %s", self._name, exc_info=True)
        finally:
            for hero, name in later or ():
                hero._heros_publish_attribute(name)

    def _heros_serve_inline(self, query: Any) -> bool:
        """zenoh's thread, for a HERO served by the shared pool (``heros.serving``): answer a request
        for the descriptor or the capability list at once (encoded on the first request for each
        codec, then from the cache: it never changes, and encoding and sending it never block), so
        that a discovery asking every HERO of a process at once waits for no pool thread, and
        starts none. False: anything else, which the pool serves (also a failure to encode, which
        the pool answers with the error)."""
        key = query.key_expr
        route = self._heros_routes.get(key)
        if route is None:  # (a static member is never anchored: finding its route declares nothing)
            if keys.parse_member(str(key), self._heros_prefix) not in _STATIC:
                return False
            route = self._heros_route(key)
            if route is None:
                return False
        member = route[0]
        if member not in _STATIC:
            return False
        if self._heros_refuses(member):
            z.drop(query)
            return True
        payload = query.payload
        if payload is not None and len(payload):
            return False
        encoding = query.encoding
        try:
            if encoding == z.PLAIN_ENCODING:
                data, enc = self._heros_answer(member, None, codec.ENCODING)
            elif str(encoding).startswith(codec.ENCODING):
                return False
            else:
                data, enc = self._heros_static_cbor(member), cbor.ENCODING
        except Exception:  # noqa: BLE001 - the pool serves it again, and answers with the error
            return False
        try:
            z.reply(query, route[1] or key, data, enc)
        except Exception:  # e.g. the session closed meanwhile
            log.debug("could not answer a query for HERO %s", self._name, exc_info=True)
        return True

    def _heros_fetch(self, member: str, encoding: str) -> tuple[Any, str]:
        """The payload of a request whose caller holds it for us to fetch (a large one, ``heros.bulk``)."""
        try:
            return z.fetch_upload(self._session, encoding, self._realm, self._hero_max_request_bytes)
        except ValueError as exc:
            raise ValueError(f"request to {self._name}.{member} {exc}") from None

    def _heros_refuses(self, member: str) -> bool:
        """Whether a query for ``member`` goes unanswered: discovery, once the HERO is leaving.

        An upstream observer told that a token went asks the HERO's ``_discover`` and keeps the HERO
        listed if it still answers; the queryable goes a moment after the token, longer on a busy
        machine. So a leaving HERO stops answering discovery before its token goes (calls are
        still answered until the queryable goes)."""
        return member == keys.DISCOVER and self._heros_leaving

    def _heros_serve_upstream(self, query: Any, member: str, reply_key: Any, payload: bytes | None, encoding: str | None) -> None:
        """Answer a request of an upstream HEROS peer: CBOR in, CBOR out (``application/cbor``)."""
        try:
            if member in _STATIC:
                data = self._heros_static_cbor(member)
            else:
                data = cbor.encode(self._heros_handle(member, payload or None, encoding), self._heros_store)[0]
        except BaseException as exc:  # noqa: BLE001 - every failure becomes an error reply
            if not isinstance(exc, Exception):
                log.warning("HERO %s.%s raised %s", self._name, member, type(exc).__name__)
            z.reply_error(query, cbor.encode(exc)[0], cbor.ENCODING)
            return
        z.reply(query, reply_key, data, cbor.ENCODING)

    def _heros_static_cbor(self, member: str) -> bytes:
        """The descriptor or the capability list in CBOR, for upstream peers: encoded once."""
        data = self._heros_static.get((member, cbor.ENCODING))
        if data is None:
            data = self._heros_static[(member, cbor.ENCODING)] = cbor.encode(self._heros_handle(member, None, None), self._heros_store)[0]
        return data

    def _heros_route(self, key: Any) -> tuple[str, Any, type | None] | None:
        """What a query for ``key`` (a key expression) asks: (member, the key to reply on, the
        member's capability class).

        The reply key is None when it is the query's own key, else the member's own key, parsed
        once. None for a key that addresses no member (a wildcard member, extra chunks). The
        routes of this HERO's members are kept for the spellings peers use, ``<name>/member``
        and ``*/member`` (every HERO of the realm: discovery), each also with ``/**``, so the
        next request for one skips parsing its key, which a discovery of 50 HEROs served by one
        process paid 50 times (bench/RESULTS.md). Other wildcard names, which a peer could vary
        without end, are answered but not kept.
        """
        text = str(key)
        member = keys.parse_member(text, self._heros_prefix)
        if member is None:
            return None
        own = f"{self._heros_prefix}/{member}"
        cap = self._heros_caps.get(member)
        route = (member, None if text == own else z.key_expr(own), type(cap) if cap is not None else None)
        every = keys.member_key(self._realm, "*", member)
        if (cap is not None or member in _SPECIAL) and text in (own, f"{own}/**", every, f"{every}/**"):
            self._heros_routes[key] = route
            if isinstance(cap, (MethodCapability, AttributeCapability)):
                self._heros_anchor(own)
        return route

    def _heros_anchor(self, key: str) -> None:
        """Make the key of a member known to every peer's zenoh when it is first asked for.

        zenoh keeps the route of a query only for a key some declaration made known; otherwise it
        matches every call of ``<name>/<member>`` against ``<name>/**`` again, in the caller's
        process and in ours (``z.anchor_key``; about 8 µs a call here, bench/RESULTS.md). Only
        the members peers use are declared: a new peer meeting a lab of many HEROs learns their
        health tokens and not a token per member (which made discovering 50 HEROs 40 % slower).
        """
        with self._heros_anchor_lock:  # (``_destroy_hero`` sets ``_heros_anchored`` to None under it)
            anchored = self._heros_anchored
            if anchored is None or key in anchored:
                return
            anchored.add(key)
            try:
                self._declare(z.anchor_key(self._session, key))
            except Exception:  # e.g. the session closing: calls are answered all the same
                log.debug("HERO %s could not anchor %s", self._name, key, exc_info=True)

    def _heros_answer(self, member: str, payload: bytes | None, encoding: str | None) -> tuple[bytes, str]:
        """The encoded answer to any request but a method call."""
        cached = self._heros_static.get(member)
        if cached is not None:  # the descriptor and the capability list never change
            return cached  # type: ignore[no-any-return]
        answer = codec.encode(self._heros_handle(member, payload, encoding), self._heros_store, join=member not in _STATIC)
        if member in _STATIC:
            self._heros_static[member] = answer
        return answer

    def _heros_handle(self, member: str, payload: bytes | None, encoding: str | None) -> Any:
        if payload is not None and len(payload) > self._hero_max_request_bytes:
            raise ValueError(
                f"request to {self._name}.{member} carries {len(payload)} bytes, more than this HERO accepts "
                f"({self._hero_max_request_bytes}; raise _hero_max_request_bytes to allow it)"
            )
        special = _SPECIAL.get(member)
        if special is not None:
            return special(self, payload, encoding)
        cap = self._heros_caps.get(member)
        if cap is None:
            raise AttributeError(f"HERO {self._name!r} (realm {self._realm!r}) has no member {member!r}")
        if isinstance(cap, MethodCapability):
            if payload is None:
                raise TypeError(f"call of {self._name}.{member} carried no [args, kwargs] payload")
            return self._heros_call(member, self._decode(payload, encoding))
        if isinstance(cap, AttributeCapability):
            if payload is None:
                return self._heros_read(member)
            self._heros_write(cap, self._decode(payload, encoding))
            return None
        raise TypeError(f"{self._name}.{member} is an event: subscribe to it instead of querying it")

    def _heros_call(self, member: str, params: Any) -> Any:
        func = getattr(self, member)
        check = self._heros_arg_checks.get(member)
        if type(params) is list and len(params) == 2 and type(params[0]) is list and type(params[1]) is dict:
            kwargs = params[1]
            if kwargs and not all(isinstance(k, str) for k in kwargs):
                raise TypeError(f"call payload for {self._name}.{member} must be [args list, kwargs map] with text keyword names")
            if check is not None:
                check(params[0], kwargs)
            result = func(*params[0], **kwargs)
        elif isinstance(params, dict):  # protocol 0.1
            if check is not None:
                check([], params)
            result = func(**params)
        else:
            raise TypeError(f"call payload for {self._name}.{member} must be [args list, kwargs map], got {type(params).__name__}")
        if type(result) not in _PLAIN_RESULTS and inspect.isawaitable(result):
            result = _run_coroutine(result)
        return result

    def _heros_read(self, member: str) -> Any:
        try:
            return getattr(self, member)
        except AttributeError:
            if member in type(self).__dict__ or isinstance(inspect.getattr_static(type(self), member, None), property):
                raise
            log.debug("HERO %s: attribute %r is declared but was never set", self._name, member)
            return None

    def _heros_write(self, cap: AttributeCapability, value: Any) -> None:
        if not cap.writable:
            raise AttributeError(f"attribute {cap.name!r} of HERO {self._name!r} is read-only")
        check = self._heros_value_checks.get(cap.name)
        if check is not None:
            check(value)
        if cap.enum_cls is not None and not isinstance(value, cap.enum_cls):
            value = cap.enum_cls(value)
        setattr(self, cap.name, value)

    def _heros_discover(self, payload: Any, encoding: Any) -> dict[str, Any]:
        cls = type(self)
        return {
            "proto_version": PROTO_VERSION,
            "name": self._name,
            "class": cls.__name__,
            "implements": set(self._heros_implements) | set(getattr(cls, "_hero_implements", ()) or ()),
            "tags": set(self._heros_tags) | set(getattr(cls, "_hero_tags", ()) or ()),
            "extra_metadata": {**self._heros_extra_metadata, **dict(getattr(cls, "_hero_extra_metadata", {}) or {})},
            "module": cls.__module__,
        }

    def _heros_capability_list(self, payload: Any, encoding: Any) -> list[dict[str, Any]]:
        return [c.to_dict() for c in self.capabilities]

    def _heros_only_argument(self, payload: Any, encoding: Any, request: str, argument: str) -> Any:
        """The one argument of an internal request (``_release``, ``_watch``), sent as ``[[argument], {}]``."""
        params: Any = self._decode(payload, encoding) if payload is not None else None
        try:
            return params[0][0]
        except (TypeError, IndexError, KeyError):
            raise TypeError(f"a {request} request carries [[{argument}], {{}}]") from None

    def _heros_release(self, payload: Any, encoding: Any) -> None:
        """Holders dropped their references: the payload lists the leases of the replies they got."""
        leases = self._heros_only_argument(payload, encoding, "release", "leases")
        for lease in leases if isinstance(leases, list) else []:
            if isinstance(lease, str):
                obj_store.release_lease(lease, self._heros_scope)

    def _heros_watch(self, payload: Any, encoding: Any) -> None:
        """A watcher has subscribed to the changes of the attributes the payload names (``"*"``:
        all of them): every write from now on is published (``_Watchers.said``)."""
        names = self._heros_only_argument(payload, encoding, "watch", "attribute names")
        if not isinstance(names, list):
            raise TypeError("a watch request carries [[attribute names], {}]")
        watchers = self._heros_publishers
        for name in list(watchers) if "*" in names else names:
            found = watchers.get(name) if isinstance(name, str) else None
            if found is not None:
                found.said()

    # --- attribute-change publications -------------------------------------------------------

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        watched = self.__dict__.get("_heros_watched")
        if watched is not None and name in watched:
            later = _publish_later.writes
            if later is None:
                self._heros_publish_attribute(name)
            else:  # a remote write being served: published once it is answered (``_heros_serve``)
                later.append((self, name))

    def _heros_publish_attribute(self, name: str) -> None:
        """Publish the current value of the exposed attribute ``name`` to its watchers."""
        watchers = self._heros_publishers.get(name)
        if watchers is None:  # not an exposed attribute (or not served yet)
            return
        try:
            if self._hero_destroyed or not watchers.any():
                return
            value = getattr(self, name)
            data, enc = codec.encode(value, store_object(self._realm, self._name), join=False)
            z.put(watchers.publisher, data, enc)
        except Exception:  # a publication must never break the write itself
            log.warning("HERO %s: could not publish the new value of %r", self._name, name, exc_info=True)

    # --- lifecycle -----------------------------------------------------------------------------

    @local_only
    def _destroy_hero(self) -> None:
        if getattr(self, "_hero_destroyed", True):
            return
        self._heros_leaving = True  # first: nobody told that the token went finds the HERO answering discovery
        unregister_local(self)
        for value in list(self.__dict__.values()):  # events stop publishing before their publishers go
            if isinstance(value, LocalEventHandler):
                value._heros_unbind()
        token = self.__dict__.get("liveliness_token")
        if token is not None:  # first: observers see the HERO go before its queryable does
            z.undeclare(token)
        lock = self.__dict__.get("_heros_anchor_lock")
        if lock is not None:
            with lock:  # no member key is anchored from now on: all are undeclared below
                self._heros_anchored = None
        super()._destroy_hero()
        calls = self.__dict__.get("_heros_calls")
        if calls is not None:  # after the requests: no call is answered on them any more
            calls.close()

    @force_remote
    def _connect_local_hero_callback(self, event: Any, remote_hero_method: Callable[..., Any], origin: str | None = None) -> str:
        """Connect a method of another HERO to one of our events (case D): we call it directly."""
        return str(self._heros_local_event(event).connect(remote_hero_method, origin))

    @force_remote
    def _disconnect_local_hero_callback(self, event: Any, remote_hero_method: Callable[..., Any]) -> bool:
        """Disconnect what ``_connect_local_hero_callback`` connected."""
        return bool(self._heros_local_event(event).disconnect(remote_hero_method))

    @force_remote
    def _get_local_hero_callbacks(self, event: Any) -> list[dict[str, Any]]:
        """The callbacks of one of our events, as dicts."""
        return list(self._heros_local_event(event).get_callbacks())

    def _heros_local_event(self, event: Any) -> Any:
        name = getattr(event, "__name__", event)
        cap = self._heros_caps.get(name) if isinstance(name, str) else None
        if not isinstance(cap, EventCapability):
            raise ValueError(f"HERO {self._name!r} has no event {name!r}")
        return getattr(self, name)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} HERO {self._realm}/{getattr(self, '_name', '?')}>"


def _silence_at_exit(deadline: float) -> None:
    """Exit hook: events and attribute writes of the HEROs still served stop touching zenoh (a thread
    of the user's, emitting while the interpreter exits, must not be inside zenoh as it finalizes)."""
    for hero in local_heros():
        for value in list(hero.__dict__.values()):
            if isinstance(value, LocalEventHandler):
                value._heros_unbind()
        hero.__dict__.get("_heros_publishers", {}).clear()


z.add_exit_hook(_silence_at_exit)


_SPECIAL: dict[str, Callable[[LocalHERO, Any, Any], Any]] = {
    keys.DISCOVER: LocalHERO._heros_discover,
    keys.CAPABILITIES: LocalHERO._heros_capability_list,
    keys.RELEASE: LocalHERO._heros_release,
    keys.WATCH: LocalHERO._heros_watch,
}

#: Answers that never change while a HERO serves; encoded once.
_STATIC = frozenset({keys.DISCOVER, keys.CAPABILITIES})


_monotonic = time.monotonic

#: How long a write trusts zenoh's last answer to whether an attribute has watchers (seconds).
WATCH_RECHECK = 0.005
#: How long a watcher of ours that told the HERO it subscribed counts as one without asking zenoh
#: (seconds): by then zenoh's routing knows its subscriber, declared before it told.
WATCH_SAID = 1.0


class _Watchers:
    """An exposed attribute's publisher, and whether anybody watches it.

    Asking zenoh whether a publisher has subscribers is a call into its routing tables (1.3 µs in
    a loop, several µs on a serving thread between two requests, bench/RESULTS.md), which every
    write paid. A write now takes zenoh's answer of the last ``WATCH_RECHECK`` seconds. A watcher
    that subscribed within that time would miss those writes, so our watchers tell the HERO once
    they have subscribed (``keys.WATCH``, ``RemoteHERO._heros_watching``), and the writes from then
    on are published without asking. A watcher that does not tell (an older version of this
    library, a raw zenoh subscriber, a reader whose word the router drops) is seen at the latest
    ``WATCH_RECHECK`` seconds after zenoh knows it; writes further apart than that are all
    published to it, as before.
    """

    __slots__ = ("next_look", "publisher", "said_until", "watched")

    def __init__(self, publisher: Any) -> None:
        self.publisher = publisher
        self.watched = False
        self.next_look = 0.0
        self.said_until = 0.0

    def any(self) -> bool:
        """Whether the write being made is to be published."""
        now = _monotonic()
        if now < self.said_until:
            return True
        if now < self.next_look:
            return self.watched
        self.next_look = now + WATCH_RECHECK
        self.watched = watched = z.has_subscribers(self.publisher)
        return watched

    def said(self) -> None:
        """A watcher has told that it subscribed: publish every write for ``WATCH_SAID`` seconds
        (and then as zenoh says)."""
        self.said_until = _monotonic() + WATCH_SAID


class _PublishLater(threading.local):
    """The attribute writes whose publication waits until the request that made them is answered
    (None: publish at once), per serving thread."""

    writes: list[tuple[LocalHERO, str]] | None = None


_publish_later = _PublishLater()

#: The answer to a write: None, encoded once.
_ACK = codec.encode(None)
#: Result types that are never awaitable (saves asking ``inspect`` on every call).
_PLAIN_RESULTS = frozenset({int, float, bool, str, bytes, list, dict, tuple, type(None)})

#: Members of LocalHERO itself; never exposed (unless force_remote).
_HIDDEN = frozenset(dir(LocalHERO)) | {"capabilities", "liveliness_token"}

