"""RemoteHERO: a proxy that calls a remote HERO's methods, reads and writes its attributes and
connects to its events.

One class for every proxy: ``__getattr__``/``__setattr__``/``__dir__`` read the capability map
fetched at construction. The proxy's own state lives under ``_``-prefixed names, so it never
shadows a remote member. Transport failures raise ``RemoteTransportError`` naming the HERO and
member; a timeout raises ``RemoteTimeoutError`` (also a ``TimeoutError``); an exception raised
remotely is rebuilt (``except ValueError`` works for a remote ``ValueError``).

The proxy speaks the HERO's language: the capability list comes back in msgpack from a HERO of
ours and in CBOR from an upstream HEROS HERO, and from then on every request goes in that codec
(requests of ours say msgpack in their encoding, upstream's say nothing). A HERO named inside a
payload becomes a proxy that looks the HERO up only when first used (``_heros_reference``), so
decoding never waits on the network.
"""

from __future__ import annotations

import difflib
import functools
import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, NoReturn

from . import _executor, cbor, codec, keys, rpc
from . import zenoh as z
from .capabilities import AttributeCapability, Capability, MethodCapability
from .event import RemoteEventHandler, Subscription
from .exceptions import RemoteTimeoutError, RemoteTransportError, exception_from_payload
from .peer import HERO, answers, known_descriptor
from .references import METHOD_REF, store_object
from .render import summary_text
from .zenoh import ZenohSessionManager

__all__ = ["DEFAULT_TIMEOUT", "RemoteHERO", "RemoteMethod", "RemoteTimeoutError"]

log = logging.getLogger("heros")

#: Seconds a call or attribute access waits for its answer, unless the proxy or the call says otherwise.
DEFAULT_TIMEOUT = 10.0
#: Seconds ``RemoteHERO(name)`` keeps looking for the HERO before it raises NameError.
DISCOVERY_TIMEOUT = 2.0

_display_hooks: list[Callable[[Any], dict[str, Any] | None]] = []

#: Keeps what a call's arguments cannot encode, uncounted (it lives until pushed out of the store); made once, not per call.
_STORE_UNCOUNTED = store_object(counted=False)
_pack_plain = codec.pack_plain
#: How long a new watcher waits for the HERO to confirm that it was told (seconds): short, since a
#: serial HERO busy in a long call answers nothing else until it returns (and publishes all the same).
WATCH_TIMEOUT = 2.0

#: Proxy attributes filled from the discovery descriptor when first read.
_DESCRIPTOR_FIELDS = frozenset({"_proto_version", "_hero_descriptor", "_hero_tags", "_hero_implements", "_hero_extra_metadata"})

#: The proxy's own state; ``__getattr__`` never looks these up remotely (they may be read before they are set).
_LOCAL_NAMES = frozenset({
    "_heros_caps", "_remote_capabilities", "_heros_events", "_heros_upstream", "_heros_connect_lock", "_timeout",
    "_heros_key_exprs", "_session", "_name", "_realm", "_hero_destroyed", "_declared", "_decoders", "_session_manager",
    "_endpoints", "_endpoint_base_path", "_heros_sends", "_heros_server", "_heros_call_publisher",
})

# Proxies made for HEROs named in payloads, reused while something holds them. Held weakly: the
# cache keeps no proxy (and so no session) alive; an entry goes with its proxy.
_proxy_cache: weakref.WeakValueDictionary[tuple[int, str, str], RemoteHERO] = weakref.WeakValueDictionary()
_proxy_lock = threading.Lock()


class RemoteMethod:
    """A method of a remote HERO: call it like the method; ``inspect.signature`` shows the real signature.

    A method named in a payload (a callback connected to an event, case D) may belong to a HERO
    not looked up yet: its signature is filled in when the HERO is first used.
    """

    hero_method = True

    def __init__(self, proxy: RemoteHERO, cap: MethodCapability | None, name: str | None = None) -> None:
        self.__self__ = proxy
        self.__name__ = cap.name if cap is not None else str(name)
        self.__qualname__ = f"{proxy._name}.{self.__name__}"
        self._capability = cap
        if cap is not None:
            self.__doc__ = cap.doc
            self.__signature__ = cap.to_signature()
        self._key = keys.member_key(proxy._realm, proxy._name, self.__name__)
        self._key_expr = proxy._heros_key(self.__name__)
        self._legacy = proxy.__dict__.get("_proto_version", 1.0) <= 0.1  # protocol 0.1: arguments by name

    def _bind(self) -> None:
        """Fill in what a method named in a payload does not know until its HERO is looked up."""
        proxy = self.__self__
        proxy._heros_connect()
        cap = proxy._heros_caps.get(self.__name__)
        if not isinstance(cap, MethodCapability):
            raise AttributeError(proxy._heros_no_member(self.__name__) if cap is None else f"{self.__qualname__} is not a method")
        self._capability = cap
        self.__doc__ = cap.doc
        self.__signature__ = cap.to_signature()
        self._legacy = proxy.__dict__.get("_proto_version", 1.0) <= 0.1

    def _payload(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self._capability is None:
            self._bind()
        return self._capability.call_dict(*args, **kwargs) if self._legacy else [list(args), kwargs]  # type: ignore[union-attr]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._capability is None:
            self._bind()
        params = self._capability.call_dict(*args, **kwargs) if self._legacy else [list(args), kwargs]  # type: ignore[union-attr]  # _payload, inline
        return self.__self__._heros_request(self._key_expr, self.__name__, params, None)

    def with_timeout(self, seconds: float) -> Callable[..., Any]:
        """This method, waiting at most ``seconds`` for its answer: ``hero.ramp.with_timeout(60)(300)``."""

        @functools.wraps(self)
        def call(*args: Any, **kwargs: Any) -> Any:
            return self.__self__._heros_request(self._key_expr, self.__name__, self._payload(args, kwargs), seconds)

        return call

    def _send_nowait(self, *args: Any, **kwargs: Any) -> None:
        """Call without waiting for the answer; an error answer is logged.

        A HERO not looked up yet is looked up on a worker thread first, so the caller (an event's
        emitter) never waits for the network; calls made meanwhile queue behind it, in order.
        """
        proxy = self.__self__
        sends = proxy._heros_sends
        if proxy.__dict__.get("_heros_caps") is None or sends.busy:
            sends.submit(self._send_after_lookup, args, kwargs)
            return
        self._send(args, kwargs)

    def _send_after_lookup(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        try:
            self._send(args, kwargs)
        except Exception as exc:  # noqa: BLE001 - nobody waits for this call: say why it was not made
            log.warning("remote callback %s could not be called: %s", self.__qualname__, exc)

    def _send(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        proxy = self.__self__
        data, encoding = proxy._heros_encode_value(self._payload(args, kwargs))
        where = self.__qualname__

        def on_reply(reply: z.Reply) -> None:
            if not reply.ok:
                _executor.submit(_log_failed_callback, where, reply)

        z.query_nowait(proxy._session, self._key_expr, data, encoding, on_reply)

    def _heros_ref(self) -> tuple[str, str, str, str]:
        return METHOD_REF, self.__self__._realm, self.__self__._name, self.__name__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemoteMethod) and other._key == self._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        signature = getattr(self, "__signature__", "(…)")
        return f"<remote method {self.__self__._realm}/{self.__qualname__}{signature}>"


def _log_failed_callback(where: str, reply: z.Reply) -> None:
    try:
        exc: Any = codec.decode(reply.payload, reply.encoding)
    except codec.CodecError:
        exc = reply.payload[:200]
    log.warning("remote callback %s failed: %s", where, exc)


class RemoteHERO(HERO):
    """A proxy for the HERO ``name`` of ``realm``.

    Parameters
    ----------
    name
        The HERO's name.
    realm
        Its realm (default ``"heros"``).
    session_manager
        Where the zenoh session comes from (the process-wide default if None).
    timeout
        Seconds each call or attribute access waits for its answer (default 10); change it later
        with ``proxy._timeout = s``, or per call with ``proxy.method.with_timeout(s)(...)``.
    discovery_timeout
        Seconds to look for the HERO before raising ``NameError``.

    Raises
    ------
    NameError
        No HERO of that name answered in the realm.
    """

    def __init__(
        self,
        name: str,
        realm: str = "heros",
        session_manager: ZenohSessionManager | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        discovery_timeout: float = DISCOVERY_TIMEOUT,
    ) -> None:
        self._heros_setup(name, realm, session_manager, timeout)
        try:
            caps = self._heros_lookup(discovery_timeout)
        except BaseException:
            self._destroy_hero()
            raise
        self._heros_apply(caps)

    def _heros_setup(self, name: str, realm: str, session_manager: ZenohSessionManager | None, timeout: float) -> None:
        HERO.__init__(self, name, realm, session_manager)
        self._timeout = float(timeout)
        self._heros_events: dict[str, RemoteEventHandler] = {}
        self._heros_upstream = False  # until its capability list says otherwise
        self._heros_connect_lock = threading.Lock()
        self._heros_sends = _executor.Strand()  # callbacks sent while the HERO is being looked up, in order

    @classmethod
    def _heros_proxy_for(cls, session_manager: ZenohSessionManager, realm: str, name: str) -> RemoteHERO:
        """A proxy for a HERO named in a payload: no network now, the lookup happens on first use.

        While such a proxy is held anywhere in the process (a HERO keeping a partner, a user's
        variable), a reference to the same HERO decodes to it again and is not looked up anew.
        """
        key = (id(session_manager), realm, name)
        with _proxy_lock:
            proxy = _proxy_cache.get(key)
            if proxy is not None and not proxy._hero_destroyed:
                return proxy
            proxy = cls.__new__(cls)
            proxy._heros_setup(name, realm, session_manager, DEFAULT_TIMEOUT)
            _proxy_cache[key] = proxy
        return proxy

    def _heros_connect(self) -> None:
        """Look the HERO up now if this proxy was made from a reference (``NameError`` if it is not found)."""
        if self.__dict__.get("_heros_caps") is not None:
            return
        if "pyo3" in threading.current_thread().name:  # a bug of ours: never wait on a zenoh thread
            raise RuntimeError("a HERO must not be looked up on a zenoh callback thread")
        with self._heros_connect_lock:
            if self.__dict__.get("_heros_caps") is None:
                self._heros_apply(self._heros_lookup(DISCOVERY_TIMEOUT))

    # --- construction ----------------------------------------------------------------------------

    def _heros_lookup(self, discovery_timeout: float) -> list[Any]:
        """The capability list: one round trip, repeated while a young session does not see the HERO yet.

        The request says msgpack: a HERO of ours answers in msgpack, an upstream HEROS HERO in CBOR,
        which tells this proxy which codec to speak from now on. The discovery descriptor (tags,
        metadata) is fetched only when first read, or taken from a HEROObserver of this process
        that already knows it.
        """
        key = self._endpoints["capabilities"]
        deadline = time.monotonic() + discovery_timeout
        pause = 0.002
        while True:
            try:
                reply = z.query(self._session, key, None, codec.ENCODING, timeout=max(self._timeout, discovery_timeout), replier=True)
            except TimeoutError:
                raise RemoteTimeoutError(f"HERO {self._name!r} (realm {self._realm!r}) did not send its capabilities in time") from None
            if reply is not None:
                cap_list = codec.decode(reply.payload, reply.encoding) if reply.ok else None
                if not isinstance(cap_list, list):
                    raise RemoteTransportError(f"HERO {self._name!r} (realm {self._realm!r}) sent no usable capability list")
                self._heros_upstream = cbor.is_cbor(reply.encoding)
                if not self._heros_upstream and reply.replier and reply.replier != self.__dict__.get("_heros_server"):
                    self._heros_server = reply.replier  # the session that serves it: calls go there (heros.rpc)
                    self._heros_call_publisher: z.Matching | None = None
                return cap_list
            if time.monotonic() >= deadline:
                raise NameError(self._heros_not_found(discovery_timeout))
            time.sleep(min(pause, max(deadline - time.monotonic(), 0)))
            pause = min(pause * 2, 0.25)

    def _heros_not_found(self, discovery_timeout: float) -> str:
        msg = f"Remote Object with name {self._name!r} not found in realm {self._realm!r} (discovery timeout {discovery_timeout:g} s)"
        try:
            names = sorted(self._discover(timeout=0.5))
        except Exception:  # noqa: BLE001
            names = []
        close = difflib.get_close_matches(self._name, names, n=1)
        if close:
            msg += f"; did you mean {close[0]!r}?"
        elif names:
            msg += f"; HEROs in this realm: {', '.join(names[:12])}{' …' if len(names) > 12 else ''}"
        return msg

    def _heros_load_descriptor(self) -> dict[str, Any]:
        """The discovery descriptor: from an observer of this process, or asked for now."""
        descriptor = known_descriptor(self._session_manager, self._realm, self._name)
        if descriptor is None:
            descriptor = self._get_object_info(self._name, timeout=DISCOVERY_TIMEOUT).get(self._name)
        if descriptor is None:
            raise RemoteTransportError(f"HERO {self._name!r} (realm {self._realm!r}) did not answer discovery")
        proto = descriptor.get("proto_version")
        d = self.__dict__
        d["_proto_version"] = float(proto) if isinstance(proto, (int, float)) else 0.1
        d["_hero_descriptor"] = descriptor
        d["_hero_tags"] = set(descriptor.get("tags") or ())
        d["_hero_implements"] = set(descriptor.get("implements") or ())
        d["_hero_extra_metadata"] = dict(descriptor.get("extra_metadata") or {})
        return descriptor

    def _heros_apply(self, cap_dicts: list[Any]) -> None:
        # A protocol 0.1 HERO sends parameters without "kind": read its descriptor to be sure.
        legacy = any(isinstance(d, dict) and d.get("flavor") == "method" and any(
            isinstance(p, dict) and "kind" not in p for p in d.get("parameters") or ()) for d in cap_dicts)
        if legacy:
            self._heros_load_descriptor()
        proto = self.__dict__.get("_proto_version", 1.0)
        caps: list[Capability] = []
        for d in cap_dicts:
            try:
                cap = Capability.from_dict(d, proto)
                if cap is not None:
                    keys.validate_name(cap.name, "member name")  # it becomes a key chunk when used
            except (ValueError, TypeError, KeyError) as exc:
                log.warning("HERO %s: ignoring a malformed capability: %s", self._name, exc)
                continue
            if cap is not None:
                caps.append(cap)
        for name in [n for n in self.__dict__ if n in (self.__dict__.get("_heros_caps") or {})]:
            del self.__dict__[name]
        self._remote_capabilities = caps
        self._heros_caps = {c.name: c for c in caps}

    def _refresh(self) -> None:
        """Fetch the HERO's capabilities (and, when next read, its descriptor) again, after it restarted."""
        for name in _DESCRIPTOR_FIELDS:
            self.__dict__.pop(name, None)
        self._heros_apply(self._heros_lookup(DISCOVERY_TIMEOUT))

    # --- remote access ---------------------------------------------------------------------------

    def _heros_encode_value(self, value: Any) -> tuple[bytes, str]:
        """``value`` in the codec this HERO speaks."""
        if self._heros_upstream:
            return cbor.encode(value, _STORE_UNCOUNTED)
        return codec.encode(value, _STORE_UNCOUNTED)

    def _heros_request(self, key: Any, member: str, value: Any, timeout: float | None, write: bool = False) -> Any:
        if self._hero_destroyed:
            raise RemoteTransportError(f"proxy of HERO {self._name!r} is closed; cannot access {member!r}")
        if timeout is None:
            timeout = self._timeout
        upstream = self._heros_upstream
        if upstream:
            payload, encoding = (None, None) if value is None and not write else cbor.encode(value, _STORE_UNCOUNTED)
        elif value is None and not write:  # a read: no payload; ours are asked to answer in msgpack
            payload, encoding = None, codec.ENCODING
        else:
            payload, encoding = _pack_plain(value), codec.ENCODING  # (``codec.encode``'s own first step)
            if payload is None:
                payload, encoding = codec.encode(value, _STORE_UNCOUNTED, join=False)
        status = None
        try:
            publisher = None if upstream else self._heros_publisher()
            if publisher is not None and (payload is None or (type(payload) is bytes and len(payload) < rpc.SMALL)):
                status, data, enc = rpc.call(self._session, self._realm, publisher, member, payload, timeout)
                if status == rpc.HELD:  # the largest answers: fetched by query, in parts as any large reply
                    reply = z.query(self._session, self._heros_key(keys.HELD), _pack_plain([[data], {}]), codec.ENCODING,
                                    timeout=timeout, plain=True)
                else:
                    reply = None  # (with NOBODY: the HERO does not answer it, or is gone)
            else:
                reply = z.query(self._session, key, payload, encoding, timeout=timeout, plain=not upstream)
        except TimeoutError:
            raise RemoteTimeoutError(
                f"HERO {self._name!r} (realm {self._realm!r}) did not answer {member!r} within {timeout:g} s"
            ) from None
        if status == rpc.OK:  # published to the HERO, answered the same way (heros.rpc)
            return self._decoder()(data, enc)
        if status == rpc.ERROR:
            self._heros_raise(key, member, data, enc)
        if isinstance(reply, bytes):  # the commonest answer: one plain msgpack payload
            return self._decoder()(reply, codec.ENCODING)
        if reply is None:
            raise RemoteTransportError(
                f"HERO {self._name!r} (realm {self._realm!r}) is not reachable: nobody answered {member!r} "
                "(is it still running?)"
            )
        if reply.ok:
            return self._decoder()(reply.payload, reply.encoding)  # (``_decode`` is one call more)
        self._heros_raise(key, member, reply.payload, reply.encoding)

    def _heros_raise(self, key: Any, member: str, payload: bytes, encoding: str) -> NoReturn:
        """Raise the exception an error answer carries."""
        try:
            error = self._decode(payload, encoding)
        except Exception as exc:  # noqa: BLE001
            raise RemoteTransportError(f"HERO {self._name!r} answered {member!r} with an undecodable error ({exc})") from None
        raise exception_from_payload(error, str(key))

    def _heros_publisher(self) -> Any:
        """The publisher that sends requests to the HERO (``heros.rpc``), or None: ask by query (the
        HERO's session is not known, or nobody subscribes there: an older version of this library,
        or a HERO that stopped). Declared on the first request."""
        matching = self.__dict__.get("_heros_call_publisher")
        if matching is None:
            server = self.__dict__.get("_heros_server")
            if server is None:
                return None
            publisher = self._declare(z.declare_publisher(self._session, rpc.request_key(self._realm, self._name, server), reliable=True))
            matching = self._heros_call_publisher = z.Matching(publisher)
            self._declare(matching.listener)
        return matching.publisher if matching.confirmed() else None

    def _heros_read(self, name: str) -> Any:
        return self._heros_request(self._heros_key(name), name, None, None)

    def _heros_write(self, name: str, value: Any) -> None:
        self._heros_request(self._heros_key(name), name, value, None, write=True)

    def _heros_key(self, member: str) -> Any:
        """The parsed key of ``member``, kept for the next access."""
        exprs = self.__dict__.setdefault("_heros_key_exprs", {})
        expr = exprs.get(member)
        if expr is None:
            expr = exprs[member] = z.key_expr(keys.member_key(self._realm, self._name, member))
        return expr

    def _heros_caps_now(self, name: str) -> dict[str, Capability] | None:
        """The capability map, looking the HERO up first if this proxy was made from a reference."""
        caps = self.__dict__.get("_heros_caps")
        if caps is None and "_heros_connect_lock" in self.__dict__ and not name.startswith("__"):
            self._heros_connect()
            caps = self.__dict__.get("_heros_caps")
        return caps

    def __getattr__(self, name: str) -> Any:
        if name in _DESCRIPTOR_FIELDS and "_heros_connect_lock" in self.__dict__:
            self._heros_connect()
            self._heros_load_descriptor()
            return self.__dict__[name]
        if name in _LOCAL_NAMES:  # our own state, not set yet: never a remote member
            raise AttributeError(name)
        caps = self._heros_caps_now(name)
        if caps is None:
            raise AttributeError(name)
        cap = caps.get(name)
        if cap is None:
            raise AttributeError(self._heros_no_member(name))
        if isinstance(cap, AttributeCapability):
            return self._heros_read(name)
        if isinstance(cap, MethodCapability):
            method = RemoteMethod(self, cap)
            self.__dict__[name] = method
            return method
        return self._heros_event_ref(name, cap.doc, bool(cap.extra.get("reliable")))

    def _heros_event_ref(self, name: str, doc: str | None = None, reliable: bool = False) -> RemoteEventHandler:
        """The proxy's handler of event ``name`` (made without looking the HERO up)."""
        handler = self._heros_events.get(name)
        if handler is None:
            handler = self._heros_events.setdefault(name, RemoteEventHandler(self, name, doc, reliable))
        return handler

    def _heros_method_ref(self, name: str) -> RemoteMethod:
        """Method ``name`` as a callable (made without looking the HERO up; checked when first called)."""
        caps = self.__dict__.get("_heros_caps")
        if caps is not None:
            cap = caps.get(name)
            return RemoteMethod(self, cap) if isinstance(cap, MethodCapability) else RemoteMethod(self, None, name)
        return RemoteMethod(self, None, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_") and name not in self.__dict__.get("_heros_caps", ()):
            object.__setattr__(self, name, value)
            return
        caps = self._heros_caps_now(name)
        cap = caps.get(name) if caps else None
        if cap is None:
            if name.startswith("_"):
                object.__setattr__(self, name, value)
                return
            raise AttributeError(self._heros_no_member(name))
        if not isinstance(cap, AttributeCapability):
            raise AttributeError(f"{cap.flavor} {name!r} of HERO {self._name!r} cannot be assigned")
        if not cap.writable:
            raise AttributeError(f"attribute {name!r} of HERO {self._name!r} is read-only")
        self._heros_write(name, value)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self.__dict__.get("_heros_caps", {})))

    def _heros_no_member(self, name: str) -> str:
        msg = f"HERO {self._name!r} (realm {self._realm!r}) has no attribute {name!r}"
        close = difflib.get_close_matches(name, list(self.__dict__.get("_heros_caps", {})), n=1)
        return f"{msg}; did you mean {close[0]!r}?" if close else msg

    def _watch_attribute(self, name: str, callback: Callable[[Any], None]) -> Subscription:
        """Call ``callback(value)`` whenever the remote attribute ``name`` is written (by anyone).

        Returns the subscription; ``close()`` it to stop. Callbacks run in order on the
        subscription's thread, never on zenoh's threads. An upstream HEROS HERO publishes no
        attribute changes: for its attributes this raises ``NotImplementedError`` (poll them).
        """
        cap = self._heros_caps.get(name)
        if self._heros_upstream:
            raise NotImplementedError(f"HERO {self._name!r} is an upstream HEROS HERO: it publishes no attribute changes; poll {name!r}")
        if not isinstance(cap, AttributeCapability):
            raise AttributeError(self._heros_no_member(name) if cap is None else f"{name!r} of HERO {self._name!r} is not an attribute")
        key = keys.attr_change_key(self._realm, self._name, name)
        sub = Subscription(self, key, callback, f"attribute {self._name}.{name}", with_key=False, native=True)
        self._heros_watching([name])
        return sub

    def _heros_watching(self, names: list[str]) -> None:
        """Tell the HERO that this process now subscribes to the changes of the attributes
        ``names`` (``["*"]``: all): it then publishes every write from now on without first asking
        zenoh whether anybody watches (``heros.local._Watchers``). A HERO that cannot be told (one
        of an older version, or one gone meanwhile) still publishes every write once zenoh knows
        the subscriber, a few milliseconds later at most: so a failure here is only logged."""
        try:
            self._heros_request(self._heros_key(keys.WATCH), keys.WATCH, [[names], {}], WATCH_TIMEOUT)
        except Exception as exc:  # noqa: BLE001
            log.debug("could not tell HERO %s that attributes %s are watched: %s", self._name, names, exc)

    def _is_alive(self, timeout: float = 1.0) -> bool:
        """Whether the HERO's liveliness token is present now."""
        key = self._endpoints["health"]
        if z.tokens(self._session, key, timeout=timeout) or answers(self._session, self._realm, self._name, timeout):
            return True
        # A session still meeting its peers may get an empty answer for a token that exists:
        # while it is young, ask until the answer holds (see ``ZenohSessionManager.settle``).
        return bool(self._session_manager.settle(self._realm, lambda: set(z.tokens(self._session, key, timeout=timeout))))

    # --- identity and display --------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemoteHERO) and (other._realm, other._name) == (self._realm, self._name)

    def __hash__(self) -> int:
        return hash(("RemoteHERO", self._realm, self._name))

    def __repr__(self) -> str:
        return f"<RemoteHERO {self._realm}/{self._name}>"

    def _heros_summary(self) -> str:
        """A readable text summary: class, tags, attributes, methods with signatures, events."""
        try:
            d = self._hero_descriptor
        except Exception:  # noqa: BLE001 - a summary without the descriptor is still useful
            d = {}
        caps = self.__dict__.get("_remote_capabilities", [])
        title = f"RemoteHERO {self._name!r} (realm {self._realm!r}, class {d.get('class', '?')})"
        return summary_text(self._name, self._realm, d, caps, title=title)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self._heros_summary() if not cycle else repr(self))

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        for hook in _display_hooks:
            bundle = hook(self)
            if bundle:
                return bundle
        return {"text/plain": self._heros_summary()}


def register_display_hook(hook: Callable[[Any], dict[str, Any] | None]) -> Callable[[], None]:
    """Let a frontend (the Jupyter layer) render proxies; returns a function that removes the hook."""
    _display_hooks.insert(0, hook)
    return lambda: _display_hooks.remove(hook) if hook in _display_hooks else None



RemoteHERO._heros_proxy_class = RemoteHERO
