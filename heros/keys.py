"""Key expressions. The only place that spells ``@object/<realm>/<name>/...``.

Layout (HEROS protocol 1.0, see ``../shared/SPEC.md`` section 13)::

    @object/<realm>/<name>/<member>        method and attribute queryables
    @object/<realm>/<name>/_discover       discovery descriptor
    @object/<realm>/<name>/_capabilities   capability list
    @object/<realm>/<name>/_health         liveliness token
    @object/<realm>/<name>/<event>         event publications in CBOR (upstream's key, for upstream subscribers)
    @object/<realm>/<name>/_event/<event>  event publications in msgpack (ours)
    @object/<realm>/<name>/_attr/<attr>    attribute-change publications (ours)
    @object/<realm>/<name>/_watch          a watcher of ours tells that it subscribed to them (ours)
    @object/<realm>/_upload/<zid>/<id>     a large request payload its caller holds for the HERO to fetch (ours)
    @object/<realm>/<name>/_call/<zid>     calls published to the HERO served by session <zid> (ours, heros.rpc)
    @object/<realm>/_reply/<zid>/<n>       the answers published to one calling thread of session <zid> (ours)
    @object/<realm>/<name>/_held           the largest answers to published calls, fetched by query (ours)

A LocalHERO declares one queryable on ``@object/<realm>/<name>/**`` and dispatches on the
member chunk; upstream clients query ``.../<member>/**``, which that queryable answers too.
"""

from __future__ import annotations

__all__ = [
    "ATTR_CHANGES",
    "CAPABILITIES",
    "DISCOVER",
    "EVENTS",
    "HEALTH",
    "MAX_NAME_BYTES",
    "NAMESPACE",
    "RELEASE",
    "WATCH",
    "attr_change_key",
    "discover_selector",
    "event_key",
    "hero_key",
    "health_key",
    "member_key",
    "name_from_key",
    "parse_member",
    "upload_key",
    "validate_name",
]

NAMESPACE = "@object"
DISCOVER = "_discover"
CAPABILITIES = "_capabilities"
HEALTH = "_health"
ATTR_CHANGES = "_attr"
EVENTS = "_event"
RELEASE = "_release"
WATCH = "_watch"
UPLOADS = "_upload"
CALLS = "_call"
REPLIES = "_reply"
HELD = "_held"

_FORBIDDEN = frozenset("/*$?#")

#: Longest name (in UTF-8 bytes) of a HERO, realm, member or event. zenoh itself fails on key
#: expressions of about 64 KiB (a panic that breaks the session), and names are meant to be read.
MAX_NAME_BYTES = 256


def validate_name(value: object, what: str = "name") -> str:
    """Return ``value`` if it can be one key chunk, else raise ``ValueError`` naming the problem.

    HERO names, realms, member and event names all become single chunks of a zenoh key
    expression: they must be non-empty strings of at most ``MAX_NAME_BYTES`` bytes, without
    ``/ * $ ? #``, without surrounding whitespace, and must not start with ``@`` (a zenoh
    verbatim chunk).
    """
    if not isinstance(value, str):
        raise TypeError(f"HERO {what} must be a str, not {type(value).__name__} ({value!r})")
    if not value:
        raise ValueError(f"HERO {what} must not be empty")
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > MAX_NAME_BYTES:
        raise ValueError(f"HERO {what} {value[:40]!r}… is {size} bytes long; at most {MAX_NAME_BYTES} are allowed")
    bad = sorted(set(value) & _FORBIDDEN)
    if bad:
        raise ValueError(f"HERO {what} {value!r} contains {' '.join(bad)}; these characters are not allowed")
    if value.startswith("@"):
        raise ValueError(f"HERO {what} {value!r} must not start with '@'")
    if value != value.strip():
        raise ValueError(f"HERO {what} {value!r} must not start or end with whitespace")
    return value


def hero_key(realm: str, name: str) -> str:
    """The key prefix of one HERO: ``@object/<realm>/<name>``."""
    return f"{NAMESPACE}/{realm}/{name}"


def member_key(realm: str, name: str, member: str) -> str:
    """The key of one member (method, attribute, event, or one of the ``_`` endpoints)."""
    return f"{NAMESPACE}/{realm}/{name}/{member}"


def health_key(realm: str, name: str = "*") -> str:
    """The liveliness key of a HERO, or of every HERO of the realm with ``name='*'``."""
    return f"{NAMESPACE}/{realm}/{name}/{HEALTH}"


def discover_selector(realm: str, name: str = "*") -> str:
    """The discovery selector as upstream clients send it."""
    return f"{NAMESPACE}/{realm}/{name}/{DISCOVER}/**"


def event_key(realm: str, name: str, event: str) -> str:
    """Where a HERO of ours publishes an event in msgpack (``name`` may be a wildcard to subscribe).

    Upstream subscribers listen on ``member_key(realm, name, event)``, where our HEROs publish the
    same event in CBOR while anybody listens there.
    """
    return f"{NAMESPACE}/{realm}/{name}/{EVENTS}/{event}"


def attr_change_key(realm: str, name: str, attr: str) -> str:
    """Where a LocalHERO publishes the new value of an attribute after each write."""
    return f"{NAMESPACE}/{realm}/{name}/{ATTR_CHANGES}/{attr}"


def upload_key(realm: str, zid: str) -> str:
    """Where the session ``zid`` holds the large payloads of its requests for HEROs to fetch
    (``/<id>`` each; see ``heros.bulk``)."""
    return f"{NAMESPACE}/{realm}/{UPLOADS}/{zid}"


def name_from_key(key: str, realm: str) -> str | None:
    """The HERO name of a concrete key inside ``realm``, or None if the key is not one of ours."""
    prefix = f"{NAMESPACE}/{realm}/"
    if not key.startswith(prefix):
        return None
    name, _, _ = key[len(prefix):].partition("/")
    return name or None


def parse_member(key: str, prefix: str) -> str | None:
    """The member a query for ``key`` addresses in the HERO whose key prefix is ``prefix``.

    ``prefix/<member>`` and ``prefix/<member>/**`` address ``<member>``; anything else (a
    wildcard member, extra chunks) addresses no member and gives None. The name chunk of
    ``key`` may be a wildcard (discovery queries ``@object/<realm>/*/_discover/**``).
    """
    if key.startswith(prefix) and key[len(prefix):len(prefix) + 1] == "/":  # the common case: prefix/member
        member = key[len(prefix) + 1:]
        if member and "/" not in member and "*" not in member and "$" not in member:
            return member
    parts = key.split("/")
    base = prefix.split("/")
    if len(parts) < len(base) + 1:
        return None
    member = parts[len(base)]
    rest = parts[len(base) + 1:]
    if rest not in ([], ["**"]):
        return None
    if "*" in member or "$" in member:
        return None
    return member
