"""The msgpack codec: every type round-trips, bad payloads raise CodecError, arrays avoid copies."""

from __future__ import annotations

import datetime as dt
import enum
import pathlib
from collections import OrderedDict, namedtuple

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heros import codec
from heros.codec import CodecError, decode, encode
from heros.exceptions import RemoteHEROError


def roundtrip(value, **kw):
    payload, encoding = encode(value, **kw)
    return decode(bytes(payload), encoding)


@pytest.mark.parametrize(
    "value",
    [None, True, False, 0, -1, 2**63 - 1, -(2**63), 2**64 - 1, 1.5, float("inf"), "", "häß✓", b"\x00\xff",
     [], [1, [2, [3]]], {}, {"a": 1, 2: "b"}, {(1, 2): "tuple key"}],
)
def test_msgpack_types_roundtrip(value):
    assert roundtrip(value) == value


@pytest.mark.parametrize("value", [None, True, 7, 2**64 - 1, 1.5, "häß✓", b"\x00", [1, "a", [2.5]], {"a": {"b": [None]}}])
def test_pack_plain_packs_plain_data_byte_for_byte_as_encode(value):
    payload, encoding = encode(value)
    assert encoding == codec.ENCODING
    assert codec.pack_plain(value) == payload  # a subscriber cannot tell the two apart


@pytest.mark.parametrize("value", [2**80, (1, 2), {1, 2}, np.float64(1.5), [1, (2,)], {"a": np.arange(3)}, np.arange(3),
                                   OrderedDict(a=1)])
def test_pack_plain_leaves_everything_else_to_encode(value):
    assert codec.pack_plain(value) is None
    assert codec.pack_plain(["plain again"]) == encode(["plain again"])[0]  # the thread's packer was reset


def test_nan_roundtrips():
    assert np.isnan(roundtrip(float("nan")))


@pytest.mark.parametrize(
    "value", [(), (1, "a", (2.0, None)), {1, 2, 3}, frozenset({"x"}), 1 + 2j, 2**80, -(2**70),
              dt.datetime(2026, 11, 25, 14, 0, 1, 123), dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
              dt.date(2026, 11, 25), dt.time(12, 30), dt.timedelta(days=2, seconds=3, microseconds=4)],
)
def test_python_types_roundtrip_with_their_type(value):
    out = roundtrip(value)
    assert out == value and type(out) is type(value)


def test_bytearray_and_subclasses_travel_as_their_base():
    Point = namedtuple("Point", "x y")

    class Color(enum.Enum):
        RED = "red"

    class Level(enum.IntEnum):
        HIGH = 3

    assert roundtrip(bytearray(b"ab")) == b"ab"
    assert roundtrip(OrderedDict(a=1)) == {"a": 1}
    assert roundtrip(Point(1, 2)) == (1, 2)
    assert roundtrip(Color.RED) == "red"
    assert roundtrip(Level.HIGH) == 3 and type(roundtrip(Level.HIGH)) is int
    assert roundtrip(pathlib.PurePosixPath("/data/run1.h5")) == "/data/run1.h5"


ALL_DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16",
              "float32", "float64", "longdouble", "complex64", "complex128", ">i4", ">f8", "<U4", "S3",
              "M8[ns]", "m8[s]", "V4"]


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("size", [0, 7, 40_000])
def test_ndarray_roundtrips_every_dtype(dtype, size):
    arr = np.zeros(size, dtype=dtype)
    if arr.dtype.kind in "iufc":
        arr = (np.arange(size) % 100).astype(dtype)
    out = roundtrip(arr)
    assert out.dtype == arr.dtype and out.shape == arr.shape
    assert out.tobytes() == arr.tobytes()


@pytest.mark.parametrize(
    "make",
    [lambda: np.arange(24.0).reshape(2, 3, 4), lambda: np.asfortranarray(np.arange(12).reshape(3, 4)),
     lambda: np.arange(100)[::3], lambda: np.arange(100)[::-1], lambda: np.broadcast_to(np.arange(3), (4, 3)),
     lambda: np.array(5.0), lambda: np.zeros((0, 3)), lambda: np.arange(200_000.0).reshape(400, 500).T,
     lambda: np.arange(10, dtype=np.int64).byteswap().view(np.dtype(np.int64).newbyteorder())],
)
def test_ndarray_layouts_roundtrip(make):
    arr = make()
    out = roundtrip(arr)
    assert out.shape == arr.shape and out.dtype == arr.dtype
    np.testing.assert_array_equal(out, arr)


def test_structured_arrays_and_scalars_roundtrip():
    dt_ = np.dtype([("t", "<f8"), ("n", "<i4"), ("name", "<U5"), ("v", "<f4", (2,))])
    arr = np.zeros(3, dtype=dt_)
    arr["t"] = [1.0, 2.0, 3.0]
    arr["name"] = ["a", "bb", "ccc"]
    out = roundtrip(arr)
    assert out.dtype == dt_ and out.tobytes() == arr.tobytes()
    scalar = roundtrip(arr[1])
    assert scalar["name"] == "bb" and scalar["t"] == 2.0


@pytest.mark.parametrize("dtype", [d for d in ALL_DTYPES if d not in ("V4", "<U4", "S3")])
def test_numpy_scalars_keep_their_dtype(dtype):
    value = np.zeros(1, dtype=dtype)[0]
    out = roundtrip(value)
    assert type(out) is type(value) and out.dtype == value.dtype and out == value


def test_numpy_str_and_bytes_scalars_travel_as_str_and_bytes():
    assert roundtrip(np.str_("abc")) == "abc" and type(roundtrip(np.str_("abc"))) is str
    assert roundtrip(np.bytes_(b"ab")) == b"ab"


def test_object_arrays_are_refused_with_a_clear_error():
    with pytest.raises(CodecError, match="dtype object"):
        encode(np.array([object(), 1], dtype=object))
    with pytest.raises(CodecError, match="Python object"):
        encode(np.zeros(2, dtype=[("a", "O")]))


def test_large_arrays_travel_out_of_band_and_decode_without_copy():
    arr = np.arange(1 << 20, dtype=np.float64)  # 8 MiB
    payload, encoding = encode({"image": arr})
    assert encoding.startswith("application/msgpack;oob=")
    body_len = int(encoding.split("=")[1])
    assert body_len < 200 and len(payload) >= arr.nbytes  # header tiny, data once
    buf = bytes(payload)
    out = decode(buf, encoding)["image"]
    assert np.shares_memory(out, np.frombuffer(buf, np.uint8))  # a view of the received bytes
    assert not out.flags.writeable
    np.testing.assert_array_equal(out, arr)
    small_payload, small_encoding = encode(np.arange(10))
    assert small_encoding == "application/msgpack"
    assert msgpack.unpackb(small_payload, strict_map_key=False) is not None  # plain msgpack


@pytest.mark.parametrize(
    "make",
    [lambda: np.arange(5000, dtype="<f8"), lambda: np.arange(40_000, dtype=">i4").reshape(200, 200),
     lambda: np.asfortranarray(np.arange(40_000, dtype="u1").reshape(200, 200)), lambda: (np.arange(100_000) * 1j)[::3],
     lambda: np.full((3, 7001), 1.5, dtype=np.float32), lambda: np.zeros(20_000, dtype=[("a", "<f4"), ("b", "<i2")])],
)
def test_a_large_top_level_array_is_encoded_byte_for_byte_as_the_general_way_does(make):
    arr = make()
    payload, encoding = encode(arr)  # the direct way for one large array
    general, general_encoding = codec._encode(arr, None, True)  # the ext machinery
    assert (payload, encoding) == (bytes(general), general_encoding)
    pieces, pieces_encoding = encode(arr, join=False)  # what a sender copies straight to zenoh
    assert isinstance(pieces, codec.Buffers) and pieces_encoding == encoding
    assert bytes(pieces) == payload and pieces.nbytes == len(payload)
    assert encoding.startswith("application/msgpack;oob=")
    out = decode(payload, encoding)
    assert np.shares_memory(out, np.frombuffer(payload, np.uint8))
    assert out.dtype == arr.dtype and out.shape == arr.shape
    np.testing.assert_array_equal(out, arr)


def test_dtypes_worked_out_once_still_refuse_python_objects():
    encode(np.arange(5000.0))  # '<f8' is now known both ways
    with pytest.raises(CodecError, match="Python object"):
        codec._dtype("|O")
    with pytest.raises(CodecError, match="dtype object"):
        encode(np.array([object()] * 5000, dtype=object))


def test_inline_mode_gives_one_self_contained_msgpack_value():
    arr = np.arange(100_000)
    payload, encoding = encode(arr, oob=False)
    assert encoding == "application/msgpack"
    np.testing.assert_array_equal(decode(payload, encoding), arr)


def test_unserializable_values_need_a_store():
    with pytest.raises(CodecError, match="cannot send an object of type"):
        encode(object())
    stored = []

    def store(obj):
        stored.append(obj)
        return ["builtins.object", "tok", "obj", "issuer", None, None, False]

    payload, enc = encode([object()], store)
    assert len(stored) == 1
    with pytest.raises(CodecError, match="nothing resolves references"):
        decode(payload, enc)


def test_exceptions_travel_as_values():
    out = roundtrip(ValueError("x"))
    assert isinstance(out, RemoteHEROError) and isinstance(out, ValueError) and out.message == "x"


@pytest.mark.parametrize(
    "payload, encoding, match",
    [
        (b"\xc1", None, "malformed msgpack"),
        (b"\x92\x01", None, "malformed msgpack"),
        (b"\x01\x02", None, "after the msgpack document"),
        (msgpack.packb(msgpack.ExtType(codec.EXT_NDARRAY, msgpack.packb(["<f8", [10], b"abc"]))), None, "array data holds"),
        (msgpack.packb(msgpack.ExtType(codec.EXT_NDARRAY, msgpack.packb(["<f8", [10], 0]))), None, "out-of-band"),
        (msgpack.packb(msgpack.ExtType(codec.EXT_NDARRAY, msgpack.packb(["|O", [1], b"12345678"]))), None, "Python objects"),
        (msgpack.packb(msgpack.ExtType(codec.EXT_NDARRAY, msgpack.packb(["not a dtype", [1], b"1"]))), None, "malformed"),
        (msgpack.packb(msgpack.ExtType(codec.EXT_TUPLE, b"\x01")), None, "malformed container"),
        (b"\x90", "application/msgpack;oob=999", "does not fit"),
        (b"\x90", "application/msgpack;oob=x", "malformed encoding"),
        (b"\x90", "text/plain", "cannot decode payloads of encoding"),
        (b"\x91" * 100_000 + b"\x90", None, "malformed msgpack"),
    ],
)
def test_malformed_payloads_raise_codec_error(payload, encoding, match):
    with pytest.raises(CodecError, match=match):
        decode(payload, encoding)


def test_out_of_band_offsets_are_checked():
    arr = np.arange(10_000.0)
    payload, encoding = encode(arr)
    with pytest.raises(CodecError, match="runs past the end"):
        decode(bytes(payload)[:-100], encoding)


def test_unknown_ext_types_come_back_as_ext_type():
    assert decode(msgpack.packb(msgpack.ExtType(99, b"x"))) == msgpack.ExtType(99, b"x")


def test_a_deeply_nested_value_is_refused_on_encode():
    value: list = []
    for _ in range(2000):
        value = [value]
    with pytest.raises(CodecError):
        encode(value)


plain = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**100), 2**100) | st.floats(allow_nan=False) | st.text() | st.binary()
    | st.complex_numbers(allow_nan=False),
    lambda children: st.lists(children, max_size=5) | st.tuples(children, children)
    | st.dictionaries(st.text(max_size=5) | st.integers(), children, max_size=5)
    | st.frozensets(st.integers() | st.text(max_size=3), max_size=4),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(plain)
def test_any_plain_value_roundtrips(value):
    assert roundtrip(value) == value


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([None, "application/msgpack", "application/msgpack;oob=3"]))
def test_decoding_garbage_raises_only_codec_error(data, encoding):
    try:
        decode(data, encoding)
    except CodecError:
        pass
