"""zenoh configurations for mutual TLS and access control, written from certificate paths.

HEROS adds no cryptography of its own: zenoh encrypts and authenticates links (TLS, QUIC) and a
router enforces access control by certificate common name. This module only writes zenoh's
configuration, whose key names and nesting are easy to get wrong; it never imports zenoh.
``docs/security.md`` is the recipe that uses it; ``heros tls config`` is its command line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from . import keys

__all__ = ["ALL_MESSAGES", "SECURE_PROTOCOLS", "access_rules", "check_pem", "tls_config"]

#: Link protocols that zenoh runs over TLS; the only ones a secured configuration allows.
SECURE_PROTOCOLS = ("tls", "quic")

#: Every message kind zenoh's access control knows (``access_control/rules/messages``).
ALL_MESSAGES = (
    "put", "delete", "declare_subscriber", "query", "reply", "declare_queryable",
    "liveliness_token", "liveliness_query", "declare_liveliness_subscriber",
)

#: What a reader sends: it subscribes to events and attribute changes and watches liveliness.
_READER_DECLARES = ("declare_subscriber", "liveliness_query", "declare_liveliness_subscriber")
#: What a reader receives: publications, replies, and the declarations that tell it who serves what.
#: Not the subscribers of others: a proxy sends its calls as publications to a HERO whose subscriber
#: it sees (``heros.rpc``), which a reader may not send; seeing none, it asks by query, as the rules expect.
_READER_RECEIVES = ("put", "delete", "reply", "declare_queryable", "liveliness_token")

_ENDPOINT = re.compile(r"(?P<proto>[a-z0-9-]+)/(?P<host>\[[0-9a-fA-F:.]+\]|[^/:\[\]\s]+):(?P<port>\d{1,5})(?:[?#]\S*)?")
_PEM_MARKERS = {"certificate": ("-----BEGIN CERTIFICATE-----",), "private key": ("-----BEGIN PRIVATE KEY-----",
                "-----BEGIN EC PRIVATE KEY-----", "-----BEGIN RSA PRIVATE KEY-----")}

Mode = Literal["client", "peer", "router"]


def check_pem(path: str | Path, kind: Literal["certificate", "private key"]) -> str:
    """The absolute path of a PEM file that holds a ``kind``; ``ValueError`` naming the problem otherwise.

    zenoh resolves relative paths against the working directory of whichever process opens the
    session, so the configuration gets absolute ones.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise ValueError(f"{kind} file {str(path)!r} does not exist")
    try:
        text = file.read_text(errors="replace")
    except OSError as exc:
        raise ValueError(f"cannot read {kind} file {str(path)!r}: {exc.strerror}") from None
    if "-----BEGIN ENCRYPTED PRIVATE KEY-----" in text:
        raise ValueError(f"{str(path)!r} is an encrypted private key; zenoh needs it unencrypted (openssl pkey -in KEY -out KEY.pem)")
    if not any(marker in text for marker in _PEM_MARKERS[kind]):
        raise ValueError(f"{str(path)!r} does not look like a PEM {kind} (no {_PEM_MARKERS[kind][0]} line)")
    return str(file.resolve())


def _check_endpoint(endpoint: str) -> str:
    match = _ENDPOINT.fullmatch(endpoint)
    if match is None:
        raise ValueError(f"endpoint {endpoint!r} is not PROTOCOL/HOST:PORT (for example tls/192.168.1.10:7447)")
    if match["proto"] not in SECURE_PROTOCOLS:
        raise ValueError(f"endpoint {endpoint!r} is not encrypted: use tls/HOST:PORT or quic/HOST:PORT")
    if not 0 <= int(match["port"]) <= 65535:
        raise ValueError(f"endpoint {endpoint!r} has no valid port")
    return endpoint


def tls_config(
    *,
    ca: str | Path,
    cert: str | Path | None = None,
    key: str | Path | None = None,
    mode: Mode = "client",
    listen: Sequence[str] = (),
    connect: Sequence[str] = (),
    mtls: bool = True,
    verify_name: bool = True,
) -> dict[str, Any]:
    """A zenoh configuration (for ``HEROS_ZENOH_CONFIG``) whose every link is TLS or QUIC.

    Parameters
    ----------
    ca
        The lab CA's certificate: peers' certificates are accepted only if it signed them.
    cert, key
        This node's certificate and unencrypted private key (PEM). Needed to listen, and to
        connect with mutual TLS; the certificate's common name is what access rules name.
    mode
        ``"client"`` (default: every link goes through the router, whose access rules then see
        all traffic), ``"peer"`` or ``"router"``.
    listen, connect
        Endpoints such as ``tls/0.0.0.0:7447`` and ``tls/router.lab:7447``. Nothing else is
        listened on: zenoh's default listener for peers and routers is plain TCP.
    mtls
        Require certificates from connecting nodes (listeners), present one (connecting nodes).
    verify_name
        Check that the certificate of a node connected to names the host of the endpoint
        (``verify_name_on_connect``; the router's certificate needs that name or IP address).

    Returns
    -------
    dict
        The configuration, to be written as JSON (JSON5 is a superset).

    Raises
    ------
    ValueError
        A file is missing or not PEM, an endpoint is not ``tls/``/``quic/``, or the options
        contradict each other (a client that listens, a listener without certificate, ...).
    """
    if mode not in ("client", "peer", "router"):
        raise ValueError(f"mode must be client, peer or router, not {mode!r}")
    tls: dict[str, Any] = {"root_ca_certificate": check_pem(ca, "certificate")}
    listen = [_check_endpoint(e) for e in listen]
    connect = [_check_endpoint(e) for e in connect]
    if mode == "client" and listen:
        raise ValueError("a client does not listen: give --connect endpoints only, or use mode peer or router")
    if not listen and not connect:
        raise ValueError("give at least one endpoint to listen on or to connect to")
    if (cert is None) != (key is None):
        raise ValueError("a certificate and its private key go together: give both or neither")
    if cert is None and listen:
        raise ValueError("listening with TLS needs this node's certificate and private key")
    if cert is None and mtls:
        raise ValueError("mutual TLS needs this node's certificate and private key (or turn mutual TLS off)")
    if cert is not None and key is not None:
        cert_path, key_path = check_pem(cert, "certificate"), check_pem(key, "private key")
        # the same identity whether this node accepted a link or opened it
        tls.update(listen_certificate=cert_path, listen_private_key=key_path,
                   connect_certificate=cert_path, connect_private_key=key_path)
    tls.update(enable_mtls=mtls, verify_name_on_connect=verify_name)
    return {
        "mode": mode,
        # the endpoints are explicit: no multicast announcements of this node on the LAN
        "scouting": {"multicast": {"enabled": False}},
        "listen": {"endpoints": listen},
        "connect": {"endpoints": connect},
        # zenoh refuses every other protocol, even an endpoint added to this configuration later
        "transport": {"link": {"protocols": list(SECURE_PROTOCOLS), "tls": tls}},
    }


def access_rules(
    *,
    writers: Sequence[str],
    readers: Sequence[str] = (),
    reader_link: str | None = "quic",
    readable: Sequence[str] = (),
    realms: Sequence[str] = (),
) -> dict[str, Any]:
    """The ``access_control`` (and ``low_pass_filter``) blocks for the router: readers may
    look, writers may act.

    zenoh's access control matches a message's kind and key, never its payload. An attribute
    read and an attribute write are both queries on ``@object/<realm>/<name>/<attr>``, a read
    without payload, a write with the value; a method call is a query with ``[args, kwargs]``.
    Two ways to keep readers read-only follow from that:

    - ``reader_link`` set (default ``"quic"``): readers may only use that link protocol, and
      the router drops every query with a payload that arrives over it (a ``low_pass_filter``
      of size 0). Readers discover, read every attribute and receive events; calls and writes
      never reach a HERO. Writers must then connect over the other protocol (``tls/``).
    - ``reader_link=None``: readers may query only ``_discover``, ``_capabilities``, ``_watch``
      (which tells a HERO that they watch its attributes) and the members named in
      ``readable``. They cannot call the other methods, but they *can* write the ``readable``
      attributes: the rules cannot tell that query from a read.

    Parameters
    ----------
    writers
        Certificate common names allowed everything on HEROS keys: the control PC and every
        machine that serves HEROs (serving is declaring queryables and publishing).
    readers
        Certificate common names that may discover, read and receive events.
    reader_link
        The link protocol readers connect with, on which queries with a payload are dropped.
    readable
        With ``reader_link=None``, the member names readers may query (in every HERO).
    realms
        Realms the rules cover (default: every realm).

    Returns
    -------
    dict
        ``{"access_control": ..., "low_pass_filter": [...]}`` to merge into the router's
        configuration (``config.update(access_rules(...))``).
    """
    if not writers:
        raise ValueError("name at least one writer (the common name of the certificate of the control PC)")
    for cn in (*writers, *readers):
        if not isinstance(cn, str) or not cn.strip():
            raise ValueError(f"a certificate common name must be a non-empty text, not {cn!r}")
    both = sorted(set(writers) & set(readers))
    if both:
        raise ValueError(f"{', '.join(both)} cannot be a writer and a reader at once")
    if reader_link is not None and reader_link not in SECURE_PROTOCOLS:
        raise ValueError(f"readers connect over {' or '.join(SECURE_PROTOCOLS)}, not {reader_link!r}")
    if readable and reader_link is not None:
        raise ValueError("readable members only apply without a reader link (reader_link=None): over it every member is readable")
    # zenoh applies a rule to a message whose key the rule's key includes: '@object/*/**' covers
    # every key of every realm, and a query on a wider key ('**') matches no rule and is denied
    realm_keys = [f"{keys.NAMESPACE}/{keys.validate_name(r, 'realm')}" for r in realms] or [f"{keys.NAMESPACE}/*"]
    prefixes = [f"{r}/**" for r in realm_keys]
    rules: list[dict[str, Any]] = [
        {"id": "heros-write", "messages": list(ALL_MESSAGES), "flows": ["ingress", "egress"], "permission": "allow",
         "key_exprs": prefixes},
    ]
    subjects: list[dict[str, Any]] = [{"id": "heros-writers", "cert_common_names": list(writers)}]
    policies: list[dict[str, Any]] = [{"id": "heros-writers", "rules": ["heros-write"], "subjects": ["heros-writers"]}]
    filters: list[dict[str, Any]] = []
    if readers:
        if reader_link is None:
            members = [keys.DISCOVER, keys.CAPABILITIES, keys.WATCH, *(keys.validate_name(m, "member") for m in readable)]
            queried = [f"{r}/*/{m}/**" for r in realm_keys for m in members]
        else:
            queried = prefixes
        rules += [
            {"id": "heros-read-declare", "messages": list(_READER_DECLARES), "flows": ["ingress"], "permission": "allow",
             "key_exprs": prefixes},
            {"id": "heros-read-query", "messages": ["query"], "flows": ["ingress"], "permission": "allow", "key_exprs": queried},
            {"id": "heros-read-receive", "messages": list(_READER_RECEIVES), "flows": ["egress"], "permission": "allow",
             "key_exprs": prefixes},
        ]
        reader = {"id": "heros-readers", "cert_common_names": list(readers)}
        if reader_link is not None:
            # a reader's certificate over any other protocol matches no subject: denied everything
            reader["link_protocols"] = [reader_link]
            filters.append({"id": "heros-readers-send-no-payload", "link_protocols": [reader_link], "flows": ["ingress"],
                            "messages": ["query"], "key_exprs": prefixes, "size_limit": 0})
        subjects.append(reader)
        policies.append({"id": "heros-readers", "rules": ["heros-read-declare", "heros-read-query", "heros-read-receive"],
                         "subjects": ["heros-readers"]})
    config: dict[str, Any] = {
        "access_control": {"enabled": True, "default_permission": "deny", "rules": rules, "subjects": subjects, "policies": policies},
    }
    if filters:
        config["low_pass_filter"] = filters
    return config
