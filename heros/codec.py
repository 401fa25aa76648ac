"""msgpack with ext types: the only place that knows the bytes on the wire.

``encode(obj)`` gives ``(payload, encoding)``; ``decode(payload, encoding)`` gives the object
back. Plain data is plain msgpack (encoding ``application/msgpack``). Python types msgpack
lacks travel as ext types, one code each (the table below). Large numpy arrays travel out of
band: the msgpack document is followed by the raw array bytes, 16-byte aligned, and the
encoding carries the document length (``application/msgpack;oob=<n>``). The sender copies
each array once into the payload, the receiver views it without copying (read-only), so an
array costs what raw bytes cost on zenoh.

HEROs, events, methods and unserializable objects become references: objects that travel by
reference implement ``_heros_ref()`` returning a kind and its fields (``heros.references``), and
the decoder hands references to a ``Resolver`` (supplied by the peer that decodes), so this module
knows nothing about HEROs or sessions.
A type that travels as plain data instead of as itself implements ``_heros_value()`` returning
that data (``DatasourceReturnSet``, a tuple subclass, is sent as a list of maps, as CBOR sends it).

Upstream HEROS peers speak CBOR (``heros.cbor``): ``decode`` picks the codec by the payload's
encoding, so a reply or sample is always read as it was written. Nesting is bounded on decode:
msgpack's own containers by msgpack, the ext types (tuples in tuples...) by ``MAX_EXT_DEPTH``,
before each level recurses.
"""

from __future__ import annotations

import datetime as _dt
import enum
import math
import os
import threading
from collections.abc import Callable
from typing import Any, Protocol

import msgpack
import numpy as np

from . import cbor
from .exceptions import CodecError, HEROSError, error_payload, exception_from_payload
from .references import EVENT_REF, HERO_REF, METHOD_REF, OBJECT_BACK

__all__ = [
    "ENCODING",
    "Buffers",
    "EXT_EVENT_REF",
    "EXT_HERO_REF",
    "EXT_METHOD_REF",
    "EXT_OBJECT_BACK",
    "EXT_OBJECT_REF",
    "CodecError",
    "EncodeContext",
    "decoder",
    "Resolver",
    "decode",
    "encode",
    "pack",
    "pack_plain",
]

ENCODING = "application/msgpack"
_OOB_PREFIX = ENCODING + ";oob="

#: Arrays with at least this many bytes travel out of band (no extra copy); smaller ones inline.
OOB_THRESHOLD = 16 * 1024
_ALIGN = 16

# Ext type codes. The only place these numbers are spelled.
EXT_NDARRAY = 1  # [descr, shape, data bytes] inline, or [descr, shape, offset] out of band
EXT_HERO_REF = 2  # [realm, name]
EXT_EVENT_REF = 3  # [realm, name, event]
EXT_METHOD_REF = 4  # [realm, name, method]
EXT_ERROR = 5  # error payload map (type, module, message, traceback)
EXT_OBJECT_REF = 6  # [type, token, repr, issuer, realm, hero, counted]: an object kept by its issuer
EXT_OBJECT_BACK = 7  # [token, issuer, type]: such a reference sent back
EXT_TUPLE = 8  # msgpack array
EXT_SET = 9
EXT_FROZENSET = 10
EXT_COMPLEX = 11  # [real, imag]
EXT_NPSCALAR = 12  # [descr, raw bytes]
EXT_BIGINT = 13  # decimal text
EXT_DATETIME = 14  # isoformat text
EXT_DATE = 15
EXT_TIME = 16
EXT_TIMEDELTA = 17  # [days, seconds, microseconds]

#: How deep ext types (tuples, sets, arrays, references ...) may nest in a payload. Each level is
#: one more msgpack decode on the C stack, so without a bound a small payload nested a few hundred
#: levels deep would crash the decoding process; msgpack bounds its own containers itself.
MAX_EXT_DEPTH = 32


class Resolver(Protocol):
    """Turns references found in a payload into objects; implemented by the decoding peer."""

    def hero(self, realm: str, name: str) -> Any: ...
    def event(self, realm: str, name: str, event: str) -> Any: ...
    def method(self, realm: str, name: str, method: str) -> Any: ...
    def object_ref(self, data: list[Any]) -> Any: ...
    def object_back(self, data: list[Any]) -> Any: ...
    def object_ref_cbor(self, type_: Any, number: Any, representation: Any) -> Any: ...
    def object_back_cbor(self, number: int) -> Any: ...


class Buffers:
    """A payload as the pieces it is made of (the msgpack document, padding, array data), for a
    sender that copies them straight to where they go (``heros.bulk``) instead of joining them
    first: ``encode(..., join=False)`` gives one for payloads with out-of-band arrays.

    ``nbytes`` is the payload's size; ``bytes(buffers)`` joins the pieces.
    """

    __slots__ = ("nbytes", "pieces")

    def __init__(self, pieces: list[Any]) -> None:
        self.pieces = pieces
        self.nbytes = sum(len(p) if type(p) is bytes else p.nbytes for p in pieces)

    def __bytes__(self) -> bytes:
        return b"".join(self.pieces)

    def __len__(self) -> int:
        return self.nbytes


class EncodeContext:
    """Per-message encoding state: where unserializable objects go, and out-of-band arrays."""

    __slots__ = ("buffers", "oob", "oob_size", "store_object")

    def __init__(self, store_object: Callable[[Any], list[Any]] | None = None, oob: bool = True) -> None:
        self.buffers: list[tuple[np.ndarray, int]] = []
        self.oob_size = 0
        self.oob = oob
        self.store_object = store_object


# The descr text of common dtypes and back, worked out once (numpy does it in Python each time).
_DESCRS: dict[np.dtype, str] = {}
_DTYPES: dict[str, np.dtype] = {}
_MAX_CACHED_DTYPES = 256


def _descr(dtype: np.dtype) -> Any:
    known = _DESCRS.get(dtype)
    if known is not None:
        return known
    if dtype.hasobject:
        raise CodecError(
            f"cannot send numpy data of dtype {dtype}: it holds Python object pointers; "
            "convert it to a list or to a numeric/str dtype first"
        )
    descr: Any = np.lib.format.dtype_to_descr(dtype)
    if isinstance(descr, str) and len(_DESCRS) < _MAX_CACHED_DTYPES:  # structured ones (lists) are not kept
        _DESCRS[dtype] = descr
    return descr


def _dtype(descr: Any) -> np.dtype:
    if type(descr) is str:
        dt = _DTYPES.get(descr)
        if dt is not None:
            return dt
    elif isinstance(descr, list):  # structured: fields come back as lists
        descr = [tuple(tuple(x) if isinstance(x, list) else x for x in f) for f in descr]
    dt = np.lib.format.descr_to_dtype(descr)
    if dt.hasobject:
        raise CodecError("refusing a numpy dtype that holds Python objects")
    if type(descr) is str and len(_DTYPES) < _MAX_CACHED_DTYPES:
        _DTYPES[descr] = dt
    return dt


def _default(ctx: EncodeContext) -> Callable[[Any], Any]:
    def default(obj: Any) -> Any:
        t = type(obj)
        if t is tuple:
            return msgpack.ExtType(EXT_TUPLE, pack(list(obj), ctx))
        if t is np.ndarray:
            descr = _descr(obj.dtype)
            shape = list(obj.shape)
            if obj.nbytes < OOB_THRESHOLD or not ctx.oob:
                return msgpack.ExtType(EXT_NDARRAY, pack([descr, shape, obj.tobytes()], ctx))
            offset = ctx.oob_size
            ctx.buffers.append((obj, offset))
            ctx.oob_size = offset + -(-obj.nbytes // _ALIGN) * _ALIGN
            return msgpack.ExtType(EXT_NDARRAY, pack([descr, shape, offset], ctx))
        if isinstance(obj, (np.str_, np.bytes_)):  # variable-size scalars travel as plain str/bytes
            return obj.item()
        if isinstance(obj, np.generic):
            return msgpack.ExtType(EXT_NPSCALAR, pack([_descr(obj.dtype), obj.tobytes()], ctx))
        ref = getattr(t, "_heros_ref", None)
        if ref is not None:
            kind, *fields = ref(obj)
            return msgpack.ExtType(_REF_CODES[kind], pack(fields, ctx))
        plain = getattr(t, "_heros_value", None)
        if plain is not None:  # a type that travels as plain data (a DatasourceReturnSet: a list of maps)
            return plain(obj)
        if isinstance(obj, enum.Enum):  # a member travels as its value; LocalHERO coerces it back
            return obj.value
        if isinstance(obj, int):
            if -(2**63) <= obj < 2**64:
                return int(obj)
            return msgpack.ExtType(EXT_BIGINT, str(int(obj)).encode())
        if isinstance(obj, float):
            return float(obj)
        if isinstance(obj, str):
            return str(obj)
        if isinstance(obj, (bytearray, memoryview)):
            return bytes(obj)
        if isinstance(obj, (set, frozenset)):
            code = EXT_FROZENSET if isinstance(obj, frozenset) else EXT_SET
            return msgpack.ExtType(code, pack(list(obj), ctx))
        if isinstance(obj, complex):
            return msgpack.ExtType(EXT_COMPLEX, pack([obj.real, obj.imag], ctx))
        if isinstance(obj, dict):
            return dict(obj)
        if isinstance(obj, list):
            return list(obj)
        if isinstance(obj, tuple):  # namedtuple and friends
            return msgpack.ExtType(EXT_TUPLE, pack(list(obj), ctx))
        if isinstance(obj, _dt.datetime):
            return msgpack.ExtType(EXT_DATETIME, obj.isoformat().encode())
        if isinstance(obj, _dt.date):
            return msgpack.ExtType(EXT_DATE, obj.isoformat().encode())
        if isinstance(obj, _dt.time):
            return msgpack.ExtType(EXT_TIME, obj.isoformat().encode())
        if isinstance(obj, _dt.timedelta):
            return msgpack.ExtType(EXT_TIMEDELTA, pack([obj.days, obj.seconds, obj.microseconds], ctx))
        if isinstance(obj, os.PathLike):
            return os.fspath(obj)
        if isinstance(obj, BaseException):
            return msgpack.ExtType(EXT_ERROR, pack(error_payload(obj), ctx))
        if ctx.store_object is not None:
            return msgpack.ExtType(EXT_OBJECT_REF, pack(ctx.store_object(obj), ctx))
        raise CodecError(f"cannot send an object of type {t.__module__}.{t.__qualname__}: {obj!r:.80}")

    return default


_REF_CODES = {HERO_REF: EXT_HERO_REF, EVENT_REF: EXT_EVENT_REF, METHOD_REF: EXT_METHOD_REF, OBJECT_BACK: EXT_OBJECT_BACK}


def pack(obj: Any, ctx: EncodeContext) -> bytes:
    """msgpack bytes of ``obj`` (ext types included); arrays may be queued out of band in ``ctx``."""
    try:
        packed: bytes = msgpack.packb(obj, default=_default(ctx), strict_types=True, use_bin_type=True, datetime=False)
        return packed
    except CodecError:
        raise
    except (TypeError, ValueError, OverflowError) as exc:
        raise CodecError(f"cannot encode {type(obj).__name__}: {exc}") from exc


#: Types msgpack packs natively; a value of these (lists and dicts of them too) skips the ext machinery.
_PLAIN_TYPES = frozenset({int, float, bool, str, bytes, type(None), list, dict})


_local = threading.local()


def _packer() -> msgpack.Packer:
    # One Packer per thread (a Packer is not thread-safe); it resets itself after an error.
    try:
        return _local.packer
    except AttributeError:
        packer = _local.packer = msgpack.Packer(strict_types=True, use_bin_type=True, datetime=False)
        return packer


def pack_plain(obj: Any) -> bytes | None:
    """The msgpack bytes of plain data (``encode``'s fast path, its payload byte for byte), or None
    for anything else. For the hottest callers, such as an event emitted for every reading."""
    if type(obj) not in _PLAIN_TYPES:
        return None
    try:
        packer = _local.packer
    except AttributeError:
        packer = _packer()
    try:
        data: bytes = packer.pack(obj)
        return data
    except (TypeError, ValueError, OverflowError):  # something not plain inside: the general way
        return None


def encode(obj: Any, store_object: Callable[[Any], list[Any]] | None = None, *, oob: bool = True,
           join: bool = True) -> tuple[Any, str]:
    """Encode ``obj`` for the wire; returns the payload and its encoding.

    ``store_object`` is called for values that cannot be encoded; it keeps them and returns
    the reference data. Without it such values raise ``CodecError``. ``oob=False`` keeps every
    array inside the msgpack document (one self-contained msgpack value, one more copy).
    The payload is ``bytes``; with ``join=False``, a payload with out-of-band arrays is left as
    its ``Buffers`` (the arrays not copied yet).
    """
    plain = pack_plain(obj)  # fast path: plain data packs without the ext hook
    if plain is not None:
        return plain, ENCODING
    if type(obj) is np.ndarray and oob and obj.nbytes >= OOB_THRESHOLD:
        encoded = _encode_array(obj)
        if encoded is not None:
            return (b"".join(encoded[0].pieces) if join else encoded[0]), encoded[1]
    payload, encoding = _encode(obj, store_object, oob)
    if join and type(payload) is Buffers:
        return b"".join(payload.pieces), encoding
    return payload, encoding


def _encode_array(arr: np.ndarray) -> tuple[Buffers, str] | None:
    """What ``_encode`` makes of one large array, made directly (None: leave it to ``_encode``).

    A returned image or trace is the most common large payload; this skips the ext machinery
    and its calls, and the payload is byte for byte the same.
    """
    descr = _descr(arr.dtype)
    if type(descr) is not str:  # structured dtypes go the general way
        return None
    packer = getattr(_local, "packer", None) or _packer()
    body = packer.pack(msgpack.ExtType(EXT_NDARRAY, packer.pack([descr, list(arr.shape), 0])))
    base = -(-len(body) // _ALIGN) * _ALIGN
    data = arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)
    end = -(-arr.nbytes // _ALIGN) * _ALIGN
    raw = data.reshape(-1).view(np.uint8).data
    return Buffers([body, bytes(base - len(body)), raw, bytes(end - arr.nbytes)]), f"{_OOB_PREFIX}{len(body)}"


def _encode(obj: Any, store_object: Callable[[Any], list[Any]] | None, oob: bool) -> tuple[Any, str]:
    """``encode``, the general way: msgpack with the ext hook, arrays out of band after the document."""
    ctx = EncodeContext(store_object, oob)
    body = pack(obj, ctx)
    if not ctx.buffers:
        return body, ENCODING
    # One copy of each array into the payload (bytes, which zenoh takes as they are).
    base = -(-len(body) // _ALIGN) * _ALIGN
    pieces: list[Any] = [body, bytes(base - len(body))]
    position = 0
    for arr, offset in ctx.buffers:
        if not arr.size:
            continue
        if offset > position:
            pieces.append(bytes(offset - position))
        pieces.append(np.ascontiguousarray(arr).reshape(-1).view(np.uint8).data)
        position = offset + arr.nbytes
    if ctx.oob_size > position:
        pieces.append(bytes(ctx.oob_size - position))
    return Buffers(pieces), f"{_OOB_PREFIX}{len(body)}"


class _Decoder:
    __slots__ = ("base", "buffer", "depth", "make_resolver", "resolver")

    def __init__(self, buffer: Any, base: int, resolver: Resolver | None, make_resolver: Callable[[], Resolver] | None = None) -> None:
        self.buffer = buffer
        self.base = base
        self.resolver = resolver
        self.make_resolver = make_resolver
        self.depth = 0

    def unpack(self, data: Any) -> Any:
        """Decode the msgpack document inside an ext type: one level deeper."""
        if self.depth >= MAX_EXT_DEPTH:
            raise CodecError(f"payload nests tuples, sets, arrays or references more than {MAX_EXT_DEPTH} levels deep (the limit)")
        self.depth += 1
        try:
            return msgpack.unpackb(
                data,
                ext_hook=self.ext_hook,
                strict_map_key=False,
                use_list=True,
                raw=False,
                timestamp=3,
            )
        finally:
            self.depth -= 1

    def ext_hook(self, code: int, data: bytes) -> Any:
        handler = _EXT_DECODERS.get(code)
        if handler is None:
            return msgpack.ExtType(code, data)
        return handler(self, data)

    def ndarray(self, data: bytes) -> np.ndarray:
        descr, shape, raw = self.unpack(data)
        dtype = _dtype(descr)
        shape = tuple(int(n) for n in shape)
        count = math.prod(shape)
        if isinstance(raw, bytes):
            if len(raw) != count * dtype.itemsize:
                raise CodecError(f"array data holds {len(raw)} bytes, shape {shape} of {dtype} needs {count * dtype.itemsize}")
            return np.frombuffer(raw, dtype=dtype, count=count).reshape(shape)
        if self.buffer is None or not isinstance(raw, int) or raw < 0:
            raise CodecError("out-of-band array without its buffer")
        start = self.base + raw
        if start + count * dtype.itemsize > len(self.buffer):
            raise CodecError("out-of-band array runs past the end of the payload")
        return np.ndarray(shape, dtype, buffer=self.buffer, offset=start)

    def scalar(self, data: bytes) -> Any:
        descr, raw = self.unpack(data)
        return np.frombuffer(raw, dtype=_dtype(descr), count=1)[0]

    def ref(self, code: int, data: bytes) -> Any:
        fields = self.unpack(data)
        if self.resolver is None and self.make_resolver is not None:
            self.resolver = self.make_resolver()
        if self.resolver is None:
            raise CodecError("received a reference but nothing resolves references here")
        if not isinstance(fields, list) or not all(isinstance(f, (str, int, bool)) or f is None for f in fields):
            raise CodecError(f"malformed reference {fields!r:.80}")
        if code == EXT_HERO_REF:
            return self.resolver.hero(*fields[:2])
        if code == EXT_EVENT_REF:
            return self.resolver.event(*fields[:3])
        if code == EXT_METHOD_REF:
            return self.resolver.method(*fields[:3])
        if code == EXT_OBJECT_REF:
            return self.resolver.object_ref(fields)
        return self.resolver.object_back(fields)


def _list(dec: _Decoder, data: bytes) -> list[Any]:
    value = dec.unpack(data)
    if not isinstance(value, list):
        raise CodecError("malformed container ext")
    return value


_EXT_DECODERS: dict[int, Callable[[_Decoder, bytes], Any]] = {
    EXT_TUPLE: lambda d, b: tuple(_list(d, b)),
    EXT_SET: lambda d, b: set(_list(d, b)),
    EXT_FROZENSET: lambda d, b: frozenset(_list(d, b)),
    EXT_COMPLEX: lambda d, b: complex(*_list(d, b)),
    EXT_NDARRAY: _Decoder.ndarray,
    EXT_NPSCALAR: _Decoder.scalar,
    EXT_BIGINT: lambda d, b: int(b.decode()),
    EXT_DATETIME: lambda d, b: _dt.datetime.fromisoformat(b.decode()),
    EXT_DATE: lambda d, b: _dt.date.fromisoformat(b.decode()),
    EXT_TIME: lambda d, b: _dt.time.fromisoformat(b.decode()),
    EXT_TIMEDELTA: lambda d, b: _dt.timedelta(*_list(d, b)),
    EXT_ERROR: lambda d, b: exception_from_payload(d.unpack(b)),
    EXT_HERO_REF: lambda d, b: d.ref(EXT_HERO_REF, b),
    EXT_EVENT_REF: lambda d, b: d.ref(EXT_EVENT_REF, b),
    EXT_METHOD_REF: lambda d, b: d.ref(EXT_METHOD_REF, b),
    EXT_OBJECT_REF: lambda d, b: d.ref(EXT_OBJECT_REF, b),
    EXT_OBJECT_BACK: lambda d, b: d.ref(EXT_OBJECT_BACK, b),
}


def decode(payload: bytes | bytearray | memoryview, encoding: str | None = None, resolver: Resolver | None = None) -> Any:
    """Decode a payload produced by ``encode``; references go to ``resolver``.

    Raises ``CodecError`` naming the problem for anything that is not such a payload.
    """
    base = 0
    body: Any = payload
    buffer = None
    if encoding and encoding.startswith(_OOB_PREFIX):
        try:
            size = int(encoding[len(_OOB_PREFIX):])
        except ValueError:
            raise CodecError(f"malformed encoding {encoding!r}") from None
        if not 0 <= size <= len(payload):
            raise CodecError(f"encoding {encoding!r} does not fit a payload of {len(payload)} bytes")
        buffer = payload
        body = memoryview(payload)[:size]
        base = -(-size // _ALIGN) * _ALIGN
    elif encoding and not encoding.startswith(ENCODING):
        if cbor.is_cbor(encoding):
            return cbor.decode(payload, resolver)
        raise CodecError(f"cannot decode payloads of encoding {encoding!r} (expected {ENCODING} or {cbor.ENCODING})")
    return _unpack(_Decoder(buffer, base, resolver), body)


def _unpack(decoder: _Decoder, body: Any) -> Any:
    try:
        return msgpack.unpackb(body, ext_hook=decoder.ext_hook, strict_map_key=False, use_list=True, raw=False, timestamp=3)
    except HEROSError:
        raise
    except _MALFORMED as exc:
        raise _malformed(exc) from None


#: What msgpack (or an ext decoder) raises for a payload it cannot decode.
_MALFORMED = (ValueError, TypeError, KeyError, IndexError, UnicodeDecodeError, OverflowError, RecursionError)


def _malformed(exc: BaseException) -> CodecError:
    """The ``CodecError`` naming why a payload could not be decoded."""
    if isinstance(exc, msgpack.ExtraData):
        return CodecError(f"payload has {len(exc.extra)} bytes after the msgpack document")
    return CodecError(f"malformed msgpack payload ({type(exc).__name__}: {exc})")


def decoder(make_resolver: Callable[[], Resolver]) -> Callable[[Any, str | None], Any]:
    """``decode`` for one thread that decodes payload after payload (a worker's, a subscription's).

    Plain msgpack payloads reuse one decoder, and a resolver is made only for a payload that
    holds references (each payload gets its own, as with ``decode``).
    """
    plain = _Decoder(None, 0, None, make_resolver)
    unpackb, ext_hook = msgpack.unpackb, plain.ext_hook

    def run(payload: Any, encoding: str | None) -> Any:
        if encoding != ENCODING:
            return decode(payload, encoding, make_resolver())
        outer = plain.resolver  # resolving a reference may decode another payload on this thread
        plain.resolver = None
        try:  # what _Decoder.unpack does, without its two calls: this runs once per sample
            return unpackb(payload, ext_hook=ext_hook, strict_map_key=False, use_list=True, raw=False, timestamp=3)
        except HEROSError:
            raise
        except _MALFORMED as exc:
            raise _malformed(exc) from None
        finally:
            plain.resolver = outer

    return run
