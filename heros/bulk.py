"""Large payloads: how they are cut into parts, and put back together.

A payload of at least ``SHARED_MIN_BYTES`` is copied into zenoh shared memory by the sender
(``heros.zenoh``): a peer on the same host then reads it there, a peer elsewhere gets it over the
network as before (zenoh decides per link, nothing to set). A payload larger than ``PART_BYTES``
travels as parts of at most that size, each marked in its encoding (``<encoding>;part=<id>,<offset>,<size>``):

- a reply, as several replies to the one query;
- an event or attribute change, as several publications (parts of different messages may
  interleave: each part names its message); a reliable event's parts are of at most
  ``RELIABLE_PART_BYTES``, which bounds what a reliable subscriber that falls behind holds;
- a request (a call's arguments, a written value), as a query that names where the caller holds
  the parts (``<encoding>;upload=<key>,<size>``); the HERO fetches them with one query, which the
  caller answers with the parts while it waits for its answer.

Only our own peers (msgpack) get parts; upstream peers get a payload whole. Why parts at all: a
receiver copies each payload out of zenoh into a new ``bytes``, and a fresh allocation of 64 MiB
costs the page faults of 64 MiB on every transfer, where parts of a few MiB reuse memory the
allocator already holds; the receiver then copies the parts into one buffer (numpy's allocator
asks the kernel for huge pages), which the decoder views without another copy. Over loopback TCP
parts also beat one large message (bench/RESULTS.md has both).

This module only plans and reassembles; ``heros.zenoh`` does the sending.
"""

from __future__ import annotations

import itertools
import os
import secrets
from collections.abc import Iterator
from typing import Any

import numpy as np

from .exceptions import CodecError

__all__ = [
    "PART_BYTES",
    "RELIABLE_PART_BYTES",
    "POOL_ENV",
    "pool_size",
    "SHARED_MIN_BYTES",
    "Assembler",
    "is_part",
    "is_upload",
    "parse_upload",
    "plan",
    "slices",
    "upload_encoding",
]

#: Payloads larger than this travel in parts of this size (our peers only).
PART_BYTES = 4 << 20
#: Parts of a reliable event: smaller, since a subscriber that falls behind holds up to
#: ``heros.subscription.FIFO_CAPACITY`` of them in zenoh's channel (1,024 samples: at most 1 GiB).
RELIABLE_PART_BYTES = 1 << 20
#: Payloads of at least this size are copied into shared memory (smaller ones: zenoh's own
#: transport already moves them through its shared memory pool between peers of one host).
SHARED_MIN_BYTES = 512 << 10
#: Shared memory a process holds for its payloads once it sends a large one: twice that first
#: payload, at least ``POOL_MIN_BYTES`` and at most ``POOL_MAX_BYTES`` (``HEROS_SHM_MB`` sets the
#: most, 0 turns shared memory off); never more than a quarter of what ``/dev/shm`` has free.
POOL_MIN_BYTES = 64 << 20
POOL_MAX_BYTES = 256 << 20
POOL_ENV = "HEROS_SHM_MB"
#: Largest message put back together from parts.
MAX_MESSAGE_BYTES = 4 << 30
#: Messages a receiver puts together at the same time (per subscription); one more drops the oldest.
MAX_OPEN = 4

_PART = ";part="
_UPLOAD = ";upload="
_ids = itertools.count(1)
_prefix = secrets.token_hex(4)


def pool_size(first: int) -> int:
    """Bytes of shared memory for a process whose first large payload has ``first`` bytes (0: none)."""
    most = POOL_MAX_BYTES
    text = os.environ.get(POOL_ENV, "").strip()
    if text:
        try:
            most = max(int(float(text) * (1 << 20)), 0)
        except ValueError:
            raise ValueError(f"{POOL_ENV}={text!r} is not a number of MiB (0 turns shared memory off)") from None
    return min(max(2 * first, POOL_MIN_BYTES), most)


def is_part(encoding: str) -> bool:
    """Whether a received payload of this encoding is one part of a message."""
    return _PART in encoding


def is_upload(encoding: str) -> bool:
    """Whether a request of this encoding names an upload instead of carrying its payload."""
    return _UPLOAD in encoding


def plan(size: int, encoding: str, part_bytes: int = PART_BYTES) -> list[tuple[int, int, str]]:
    """How a payload of ``size`` bytes travels: ``(start, end, encoding)`` of each part of at most
    ``part_bytes`` (one part, with the encoding unchanged, when it fits in one)."""
    if size <= part_bytes:
        return [(0, size, encoding)]
    message = f"{_prefix}{next(_ids):x}"
    return [(start, min(start + part_bytes, size), f"{encoding}{_PART}{message},{start},{size}")
            for start in range(0, size, part_bytes)]


def slices(pieces: list[Any], start: int, end: int) -> Iterator[Any]:
    """The pieces of a payload (``bytes`` and byte memoryviews, as ``codec.Buffers`` holds them)
    that cover ``[start, end)``, cut to it, without copying."""
    position = 0
    for piece in pieces:
        size = len(piece) if type(piece) is bytes else piece.nbytes
        if position + size > start and position < end:
            lo, hi = max(start - position, 0), min(end - position, size)
            yield piece if (lo, hi) == (0, size) else memoryview(piece)[lo:hi]
        position += size
        if position >= end:
            return


def upload_encoding(encoding: str, key: str, size: int) -> str:
    """The encoding of a request whose ``size``-byte payload waits at ``key`` (see ``parse_upload``)."""
    return f"{encoding}{_UPLOAD}{key},{size}"


def parse_upload(encoding: str, realm_prefix: str) -> tuple[str, str, int]:
    """``(key, payload encoding, size)`` of a request naming an upload; ``CodecError`` if it is
    malformed or names a key outside ``realm_prefix`` (``@object/<realm>/``) that is not an upload key."""
    base, _, spec = encoding.partition(_UPLOAD)
    key, _, size_text = spec.rpartition(",")
    try:
        size = int(size_text)
    except ValueError:
        raise CodecError(f"malformed upload encoding {encoding[:200]!r}") from None
    if not key.startswith(realm_prefix) or "/_upload/" not in key or any(c in key for c in "*$?#"):
        raise CodecError(f"an upload must be fetched from an upload key of this realm, not {key[:200]!r}")
    if not 0 <= size <= MAX_MESSAGE_BYTES:
        raise CodecError(f"an upload of {size} bytes is out of range (at most {MAX_MESSAGE_BYTES})")
    return key, base, size


class Assembler:
    """Puts messages back together from their parts (``add`` each part as it arrives).

    At most ``max_open`` messages are open at once: a part of one more drops the oldest open one
    (its sender's parts were lost on the way, as a best-effort subscriber may lose them), and
    ``dropped`` counts such messages.
    """

    __slots__ = ("_open", "dropped", "max_open")

    def __init__(self, max_open: int = MAX_OPEN) -> None:
        self._open: dict[str, tuple[np.ndarray, set[int], list[int], str]] = {}
        self.max_open = max_open
        self.dropped = 0

    def add(self, payload: Any, encoding: str) -> tuple[memoryview, str] | None:
        """Add one part; returns ``(payload, encoding)`` of its message once complete, else None.

        Raises ``CodecError`` for a part that does not fit its message.
        """
        base, _, spec = encoding.partition(_PART)
        try:
            message, start_text, size_text = spec.split(",")
            start, size = int(start_text), int(size_text)
        except ValueError:
            raise CodecError(f"malformed part encoding {encoding[:200]!r}") from None
        length = len(payload)
        if not (0 < size <= MAX_MESSAGE_BYTES and 0 <= start and start + length <= size and length):
            raise CodecError(f"a part of {length} bytes at {start} does not fit a message of {size} bytes")
        entry = self._open.get(message)
        if entry is None:
            while len(self._open) >= self.max_open:
                del self._open[next(iter(self._open))]
                self.dropped += 1
            entry = self._open[message] = (np.empty(size, np.uint8), set(), [0], base)
        buffer, starts, received, _ = entry
        if len(buffer) != size:
            raise CodecError(f"parts of message {message[:40]!r} disagree on its size")
        if start in starts:  # the same part twice: keep the first
            return None
        starts.add(start)
        buffer[start:start + length] = np.frombuffer(payload, np.uint8)
        received[0] += length
        if received[0] < size:
            return None
        del self._open[message]
        return buffer.data.toreadonly(), base  # read-only, as every received payload is
