"""CBOR, as upstream HEROS peers speak it: the codec for talking to them (ours talk msgpack).

Upstream's semantic tags, exactly (``../shared/SPEC.md`` sections 6 and 13)::

    4242  ndarray            [shape, dtype text as bytes (b"float64", b">i4", b"<U3"), C-order data]
    9000  HERO reference     [realm, name]
    9001  kept object        [qualified class name, integer id, str(obj)]   (issued by its keeper)
    9002  object sent back   integer id
    9003  event reference    [tag 9000, event name]
    9004  method reference   [tag 9000, method name]
    9005  error              {"__heros_error__": true, "type", "module", "message", "traceback"}

plus cbor2's standard tags (258 sets, 2/3 big integers, 43000 complex, 0/1 datetimes, ...).
Arrays of a dtype that holds Python objects are refused; nesting is bounded (``MAX_DEPTH``
containers and tags, refused before cbor2 recurses further); every problem is a ``CodecError``
naming it. References go to the same ``Resolver`` the msgpack codec uses.
"""

from __future__ import annotations

import ast
import enum
import math
import os
from collections.abc import Callable
from typing import Any

import cbor2
import numpy as np

from .exceptions import CodecError, HEROSError, error_payload, exception_from_payload
from .references import EVENT_REF, HERO_REF, METHOD_REF, OBJECT_BACK, token_number

__all__ = [
    "ENCODING",
    "TAG_ERROR",
    "TAG_EVENT",
    "TAG_HERO",
    "TAG_METHOD",
    "TAG_NDARRAY",
    "TAG_OBJECT",
    "TAG_OBJECT_BACK",
    "decode",
    "encode",
    "is_cbor",
]

ENCODING = "application/cbor"
#: What upstream events carry: zenoh's default encoding (its queries carry none at all).
UPSTREAM_DEFAULT = "zenoh/bytes"

# Upstream's tag numbers. The only place they are spelled.
TAG_NDARRAY = 4242
TAG_HERO = 9000
TAG_OBJECT = 9001
TAG_OBJECT_BACK = 9002
TAG_EVENT = 9003
TAG_METHOD = 9004
TAG_ERROR = 9005

#: How deep containers and tags may nest in a payload (each level is a recursion of the decoder).
MAX_DEPTH = 128


def is_cbor(encoding: str | None) -> bool:
    """Whether a payload of this encoding is CBOR (upstream's replies say so; its events and
    queries carry zenoh's default encoding)."""
    return encoding == ENCODING or encoding == UPSTREAM_DEFAULT or (encoding or "").startswith(ENCODING + ";")


def _array(value: np.ndarray) -> cbor2.CBORTag:
    if value.dtype.hasobject:
        raise CodecError(
            f"cannot send numpy data of dtype {value.dtype}: it holds Python object pointers; "
            "convert it to a list or to a numeric/str dtype first"
        )
    data = value if value.flags.c_contiguous else np.ascontiguousarray(value)
    return cbor2.CBORTag(TAG_NDARRAY, [list(value.shape), str(value.dtype).encode(), data.tobytes()])


def _default(store: Any) -> Callable[[cbor2.CBOREncoder, Any], None]:
    def default(encoder: cbor2.CBOREncoder, value: Any) -> None:
        t = type(value)
        if t is np.ndarray:
            encoder.encode(_array(value))
            return
        if isinstance(value, np.generic):  # upstream peers know Python scalars only
            item = value.item()
            if isinstance(item, (bytes, str, int, float, complex, bool)):
                encoder.encode(item)
                return
            encoder.encode(_array(np.asarray(value)))
            return
        ref = getattr(t, "_heros_ref", None)
        if ref is not None:
            encoder.encode(_ref_tag(ref(value)))
            return
        plain = getattr(t, "_heros_value", None)
        if plain is not None:  # as in heros.codec (cbor2 itself sends tuple and dict subclasses as arrays and maps)
            encoder.encode(plain(value))
            return
        if isinstance(value, BaseException):
            encoder.encode(cbor2.CBORTag(TAG_ERROR, error_payload(value)))
            return
        if isinstance(value, enum.Enum):
            encoder.encode(value.value)
            return
        if isinstance(value, os.PathLike):
            encoder.encode(os.fspath(value))
            return
        if isinstance(value, memoryview):
            encoder.encode(bytes(value))
            return
        if store is None:
            raise CodecError(f"cannot send an object of type {t.__module__}.{t.__qualname__}: {value!r:.80}")
        encoder.encode(cbor2.CBORTag(TAG_OBJECT, store.cbor(value)))

    return default


def _ref_tag(ref: tuple[Any, ...]) -> cbor2.CBORTag:
    kind = ref[0]
    if kind == HERO_REF:
        return cbor2.CBORTag(TAG_HERO, [ref[1], ref[2]])
    if kind == EVENT_REF:
        return cbor2.CBORTag(TAG_EVENT, [cbor2.CBORTag(TAG_HERO, [ref[1], ref[2]]), ref[3]])
    if kind == METHOD_REF:
        return cbor2.CBORTag(TAG_METHOD, [cbor2.CBORTag(TAG_HERO, [ref[1], ref[2]]), ref[3]])
    if kind == OBJECT_BACK:
        return cbor2.CBORTag(TAG_OBJECT_BACK, token_number(ref[1]))
    raise CodecError(f"unknown reference kind {kind!r}")


def encode(obj: Any, store: Any = None) -> tuple[bytes, str]:
    """CBOR bytes of ``obj`` as upstream HEROS writes them, and their encoding.

    ``store`` keeps values CBOR cannot carry (``references.store_object``); without it such
    values raise ``CodecError``. A single large array is written without going through cbor2.
    """
    if type(obj) is np.ndarray and obj.nbytes >= 4096 and not obj.dtype.hasobject:
        return _encode_array(obj), ENCODING
    try:
        return cbor2.dumps(obj, default=_default(store)), ENCODING
    except HEROSError:
        raise
    except (cbor2.CBOREncodeError, TypeError, ValueError, OverflowError, RecursionError) as exc:
        cause = _cause(exc)
        if cause is not None:
            raise cause from None
        raise CodecError(f"cannot encode {type(obj).__name__} as CBOR for an upstream HEROS peer: {exc}") from None


def _head(major: int, n: int) -> bytes:
    """A CBOR item head: major type and argument."""
    if n < 24:
        return bytes([major << 5 | n])
    for size, code in ((1, 24), (2, 25), (4, 26), (8, 27)):
        if n < 1 << (8 * size):
            return bytes([major << 5 | code]) + n.to_bytes(size, "big")
    raise CodecError("CBOR length too large")


def _encode_array(arr: np.ndarray) -> bytes:
    """Tag 4242 of one array, written directly: one copy of the data instead of two."""
    data = arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)
    dtype = str(arr.dtype).encode()
    head = b"".join((
        _head(6, TAG_NDARRAY), _head(4, 3), cbor2.dumps(list(arr.shape)), _head(2, len(dtype)), dtype, _head(2, arr.nbytes),
    ))
    return b"".join((head, data.reshape(-1).view(np.uint8).data))


def _dtype(text: Any) -> np.dtype:
    if isinstance(text, bytes):
        try:
            text = text.decode()
        except UnicodeDecodeError:
            raise CodecError("malformed ndarray dtype") from None
    if not isinstance(text, str) or len(text) > 1000:
        raise CodecError(f"malformed ndarray dtype {text!r:.80}")
    try:
        if text.startswith(("[", "{")):  # structured: str(dtype) is a Python literal
            dtype: np.dtype[Any] = np.dtype(ast.literal_eval(text))
        else:
            dtype = np.dtype(text)
    except (ValueError, TypeError, SyntaxError, MemoryError) as exc:
        raise CodecError(f"malformed ndarray dtype {text!r:.80}: {exc}") from None
    if dtype.hasobject:
        raise CodecError("refusing a numpy dtype that holds Python objects")
    return dtype


def _ndarray(value: Any) -> np.ndarray:
    if not isinstance(value, list) or len(value) != 3:
        raise CodecError("malformed ndarray tag (expected [shape, dtype, data])")
    shape, dtype_text, data = value
    if not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape) or not isinstance(data, bytes):
        raise CodecError("malformed ndarray tag (expected [shape, dtype, data])")
    dtype = _dtype(dtype_text)
    count = math.prod(shape)
    if count * dtype.itemsize != len(data):
        raise CodecError(f"array data holds {len(data)} bytes, shape {tuple(shape)} of {dtype} needs {count * dtype.itemsize}")
    return np.frombuffer(data, dtype=dtype, count=count).reshape(shape)


def _ident(hero: Any) -> tuple[str, str]:
    realm, name = getattr(hero, "_realm", None), getattr(hero, "_name", None)
    if not isinstance(realm, str) or not isinstance(name, str):
        raise CodecError("malformed HERO reference inside an event or method reference")
    return realm, name


class _Hook:
    """cbor2's tag hook for one payload."""

    __slots__ = ("resolver",)

    def __init__(self, resolver: Any) -> None:
        self.resolver = resolver

    def _need_resolver(self) -> Any:
        if self.resolver is None:
            raise CodecError("received a reference but nothing resolves references here")
        return self.resolver

    def __call__(self, first: Any, second: Any = None) -> Any:
        # cbor2 5 calls hook(decoder, tag), cbor2 6 hook(tag, immutable)
        tag = first if isinstance(first, cbor2.CBORTag) else second
        number, value = tag.tag, tag.value
        if isinstance(value, tuple):  # cbor2 6 decodes tag contents immutably
            value = list(value)
        if number == TAG_NDARRAY:
            return _ndarray(value)
        if number == TAG_ERROR:
            return exception_from_payload(value)
        if number == TAG_HERO:
            if not isinstance(value, list) or len(value) != 2 or not all(isinstance(v, str) for v in value):
                raise CodecError(f"malformed HERO reference {value!r:.80}")
            return self._need_resolver().hero(value[0], value[1])
        if number in (TAG_EVENT, TAG_METHOD):
            if not isinstance(value, list) or len(value) != 2 or not isinstance(value[1], str):
                raise CodecError(f"malformed {'event' if number == TAG_EVENT else 'method'} reference {value!r:.80}")
            realm, name = _ident(value[0])
            resolver = self._need_resolver()
            return resolver.event(realm, name, value[1]) if number == TAG_EVENT else resolver.method(realm, name, value[1])
        if number == TAG_OBJECT:
            if not isinstance(value, list) or len(value) != 3:
                raise CodecError(f"malformed object reference {value!r:.80}")
            return self._need_resolver().object_ref_cbor(*value)
        if number == TAG_OBJECT_BACK:
            if not isinstance(value, int) or isinstance(value, bool):
                raise CodecError(f"malformed object reference {value!r:.80}")
            return self._need_resolver().object_back_cbor(value)
        return tag  # as upstream: an unknown tag comes back as it is


def _cause(exc: BaseException) -> HEROSError | None:
    """The HEROS error a cbor2 error wraps (a tag hook's), if any."""
    seen = 0
    while exc is not None and seen < 1000:
        if isinstance(exc, HEROSError):
            return exc
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
        seen += 1
    return None


def decode(payload: bytes | bytearray | memoryview, resolver: Any = None) -> Any:
    """The value of a CBOR payload; references go to ``resolver``; ``CodecError`` for anything malformed."""
    if len(payload) >= 8 and payload[0] == 0xD9 and bytes(payload[:3]) == b"\xd9\x10\x92":
        array = _decode_array(payload)  # one large array: viewed where it lies, not copied by cbor2
        if array is not None:
            return array
    try:
        return cbor2.loads(bytes(payload), tag_hook=_Hook(resolver), max_depth=MAX_DEPTH)
    except HEROSError:
        raise
    except (cbor2.CBORDecodeError, ValueError, TypeError, KeyError, IndexError, OverflowError, RecursionError,
            MemoryError, UnicodeDecodeError) as exc:
        cause = _cause(exc)
        if cause is not None:
            raise cause from None
        if not payload:
            raise CodecError("empty CBOR payload") from None
        if "nesting depth" in str(exc):
            raise CodecError(f"CBOR payload nests containers more than {MAX_DEPTH} levels deep (the limit)") from None
        raise CodecError(f"malformed CBOR payload ({type(exc).__name__}: {exc})") from None


def _read_head(buf: memoryview, pos: int) -> tuple[int, int, int]:
    """(major type, argument, next position) of the CBOR item head at ``pos``."""
    first = buf[pos]
    major, info = first >> 5, first & 31
    if info < 24:
        return major, info, pos + 1
    size = {24: 1, 25: 2, 26: 4, 27: 8}.get(info)
    if size is None:
        raise ValueError("indefinite or reserved length")
    return major, int.from_bytes(buf[pos + 1:pos + 1 + size], "big"), pos + 1 + size


def _decode_array(payload: Any) -> np.ndarray | None:
    """A payload that is exactly one tag-4242 array, as a read-only view of the payload; None otherwise."""
    buf = memoryview(payload)
    try:
        major, _tag, pos = _read_head(buf, 0)
        major, length, pos = _read_head(buf, pos)
        if major != 4 or length != 3:
            return None
        major, ndim, pos = _read_head(buf, pos)
        if major != 4 or ndim > 64:
            return None
        shape = []
        for _ in range(ndim):
            major, n, pos = _read_head(buf, pos)
            if major != 0:
                return None
            shape.append(n)
        major, n, pos = _read_head(buf, pos)
        if major != 2:
            return None
        dtype = _dtype(bytes(buf[pos:pos + n]))
        pos += n
        major, n, pos = _read_head(buf, pos)
    except (ValueError, IndexError):
        return None
    if major != 2 or pos + n != len(buf):
        return None
    count = math.prod(shape)
    if count * dtype.itemsize != n:
        raise CodecError(f"array data holds {n} bytes, shape {tuple(shape)} of {dtype} needs {count * dtype.itemsize}")
    return np.frombuffer(payload, dtype=dtype, count=count, offset=pos).reshape(shape)
