"""The CBOR codec upstream HEROS peers speak: upstream's tags byte for byte, bounds, and bad input."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import cbor2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heros import cbor
from heros.exceptions import CodecError, RemoteHEROError
from heros.references import HERORef, UnserializableRemoteObject


def roundtrip(value):
    payload, encoding = cbor.encode(value)
    assert encoding == "application/cbor"
    return cbor.decode(payload)


plain = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**100), 2**100) | st.floats(allow_nan=False) | st.text() | st.binary()
    | st.complex_numbers(allow_nan=False),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=5) | st.integers(), children, max_size=5)
    | st.frozensets(st.integers() | st.text(max_size=3), max_size=4),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(plain)
def test_plain_values_roundtrip(value):
    assert roundtrip(value) == value


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_raises_only_codec_error(data):
    try:
        cbor.decode(data)
    except CodecError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([cbor.TAG_NDARRAY, cbor.TAG_HERO, cbor.TAG_OBJECT, cbor.TAG_OBJECT_BACK, cbor.TAG_EVENT, cbor.TAG_METHOD,
                        cbor.TAG_ERROR]), plain)
def test_malformed_heros_tags_raise_only_codec_error(tag, value):
    try:
        cbor.decode(cbor2.dumps(cbor2.CBORTag(tag, value)))
    except CodecError:
        pass
    except RemoteHEROError:  # tag 9005 with any value is an error value, as upstream makes it
        assert tag == cbor.TAG_ERROR


def test_tuples_become_lists_and_sets_stay_sets_as_upstream_decodes_them():
    assert roundtrip((1, (2, 3))) == [1, [2, 3]]
    assert roundtrip({"s": {1, 2}}) == {"s": {1, 2}}
    assert roundtrip(dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)).year == 2026


@pytest.mark.parametrize("make", [
    lambda: np.arange(10.0), lambda: np.arange(12, dtype=np.int16).reshape(3, 4), lambda: np.array([True, False]),
    lambda: np.array([1 + 2j]), lambda: np.arange(6, dtype=">i4"), lambda: np.array(["ab", "c"]), lambda: np.zeros((0, 2)),
    lambda: np.array(2.5), lambda: np.asfortranarray(np.arange(6.0).reshape(2, 3)), lambda: np.arange(20.0)[::3],
    lambda: np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8")]), lambda: np.arange(300_000, dtype=np.uint8),
])
def test_arrays_roundtrip_with_dtype_and_shape(make):
    arr = make()
    out = roundtrip(arr)
    assert out.dtype == arr.dtype and out.shape == arr.shape
    np.testing.assert_array_equal(out, arr)
    assert not out.flags.writeable  # a view of the received bytes, as upstream's


def test_object_arrays_are_refused_both_ways():
    with pytest.raises(CodecError, match="Python object"):
        cbor.encode(np.array([object(), 1], dtype=object))
    with pytest.raises(CodecError, match="Python objects"):
        cbor.decode(cbor2.dumps(cbor2.CBORTag(4242, [[1], b"object", b"\x00" * 8])))
    with pytest.raises(CodecError, match="needs"):
        cbor.decode(cbor2.dumps(cbor2.CBORTag(4242, [[10], b"float64", b"abc"])))


def test_nesting_is_bounded_before_it_recurses():
    payload = b"\x81" * 10_000 + b"\x00"
    with pytest.raises(CodecError, match=f"more than {cbor.MAX_DEPTH} levels deep"):
        cbor.decode(payload)
    nested = b"\xd9\x23\x28\x82\x61a" * 0 + b"\xc6" * 5000 + b"\x00"  # tags in tags
    with pytest.raises(CodecError):
        cbor.decode(nested)


def test_numpy_scalars_travel_as_python_numbers():
    assert roundtrip([np.float32(1.5), np.int16(3), np.bool_(True), np.uint64(7)]) == [1.5, 3, True, 7]


def test_references_need_a_resolver_and_keep_upstreams_layout():
    assert cbor2.loads(cbor.encode(HERORef("lab", "laser"))[0]) == cbor2.CBORTag(9000, ["lab", "laser"])
    with pytest.raises(CodecError, match="nothing resolves references"):
        cbor.decode(cbor2.dumps(cbor2.CBORTag(9000, ["lab", "laser"])))
    back = cbor2.loads(cbor.encode(UnserializableRemoteObject("x.Y", 0x1234, "y", "cbor:lab/cam"))[0])
    assert back == cbor2.CBORTag(9002, 0x1234)
    with pytest.raises(CodecError, match="cannot send an object"):
        cbor.encode(object())


def test_errors_carry_upstreams_marker():
    tag = cbor2.loads(cbor.encode(ValueError("bad"))[0])
    assert tag.tag == 9005 and tag.value["__heros_error__"] is True and tag.value["type"] == "ValueError"
    out = cbor.decode(cbor.encode(KeyError("k"))[0])
    assert isinstance(out, KeyError) and isinstance(out, RemoteHEROError)


def test_naive_datetimes_are_refused_clearly():
    with pytest.raises(CodecError, match="timezone|naive"):
        cbor.encode(dt.datetime(2026, 1, 1))


VALUES = "[1, -2, 2**70, 1.5, 'x', b'y', None, True, {'a': [1, {2, 3}]}, 3+4j, np.arange(5.0), np.arange(6, dtype='>i4').reshape(2, 3), " \
         "np.array(['ab']), np.asfortranarray(np.arange(6.0).reshape(2, 3)), np.arange(70000, dtype=np.uint8), (1, 2)]"


def test_bytes_are_upstreams_own(upstream_python: Path):
    """Our encoder writes what upstream's ``heros.serdes.serialize`` writes, and decodes what it writes."""
    code = f"import numpy as np, sys; from heros.serdes import serialize; sys.stdout.buffer.write(b''.join(serialize(v).hex().encode() + b'\\n' for v in {VALUES}))"
    from upstream import upstream_env

    out = subprocess.run([str(upstream_python), "-c", code], capture_output=True, timeout=120, env=upstream_env(), cwd="/")
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    theirs = [bytes.fromhex(line) for line in out.stdout.decode().split()]
    values = eval(VALUES, {"np": np})
    assert len(theirs) == len(values)
    for value, expected in zip(values, theirs, strict=True):
        assert cbor.encode(value)[0] == expected, value
        decoded = cbor.decode(expected)
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(decoded, value)
        else:
            assert decoded == (list(value) if isinstance(value, tuple) else value)
