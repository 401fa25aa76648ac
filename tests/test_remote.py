"""RemoteHERO against HEROs in another process: methods, attributes, errors, timeouts, metadata."""

from __future__ import annotations

import inspect
import threading
import time

import numpy as np
import pytest

from heros import RemoteHERO, RemoteHEROError, RemoteTimeoutError, RemoteTransportError
from heros.exceptions import HEROSError


@pytest.fixture
def dev(realm, spawn):
    server = spawn(realm, "Device:dev")
    with RemoteHERO("dev", realm=realm) as proxy:
        proxy._server = server
        yield proxy


def test_methods_with_positional_keyword_and_defaults(dev):
    assert dev.add(1) == 3
    assert dev.add(1, b=5) == 6
    assert dev.add(a=2, b=2) == 4
    assert dev.signature_zoo(1, 2, 3.0, 4.0, c="y", z=1) == {"a": 1, "b": 2, "args": [3.0, 4.0], "c": "y", "d": None, "kwargs": {"z": 1}}


def test_methods_carry_the_real_signature_and_doc(dev):
    sig = inspect.signature(dev.signature_zoo)
    assert str(sig) == "(a, /, b: 'int', *args: 'float', c: 'str' = 'x', d: 'Any' = None, **kwargs: 'Any') -> 'dict'"
    assert [p.kind for p in sig.parameters.values()] == [0, 1, 2, 3, 3, 4]
    assert inspect.signature(dev.add).parameters["b"].default == 2
    assert dev.add.__doc__ == "Add two numbers."
    assert dev.add.__name__ == "add"


def test_wrong_arity_comes_back_as_type_error_naming_the_method(dev):
    with pytest.raises(TypeError, match="add"):
        dev.add()
    with pytest.raises(TypeError, match="unexpected keyword"):
        dev.add(1, nope=2)


def test_attributes_read_and_write_with_acknowledgement(dev):
    assert dev.counter == 0
    assert dev.increment() == 1
    dev.counter = 41
    assert dev.increment() == 42  # the write had landed before the setter returned
    dev.label = "renamed"
    assert dev.label == "renamed"
    assert dev.power == 1.0 and dev.mode == "fast" and dev.items == [1, 2, 3]
    assert dev.annotated_only is None  # declared, never set: None as upstream


def test_enum_attributes_accept_their_values(dev):
    dev.mode = "slow"
    assert dev.mode == "slow"
    dev._server.send("eval heroes['dev'].mode is Mode.SLOW")
    assert dev._server.wait_line("OK") == "OK True"
    with pytest.raises(ValueError, match="must be one of 'fast', 'slow', not 'warp'"):
        dev.mode = "warp"


def test_read_only_and_failing_setters(dev):
    assert dev.temperature == 20.0
    with pytest.raises(AttributeError, match="read-only"):
        dev.temperature = 3.0
    with pytest.raises(ValueError, match="above the limit of 400 K") as info:
        dev.setpoint = 500
    assert isinstance(info.value, RemoteHEROError)
    dev.setpoint = 300
    assert dev.temperature == 300.0


def test_unknown_members_fail_locally_with_a_suggestion(dev):
    with pytest.raises(AttributeError, match="has no attribute 'countr'; did you mean 'counter'"):
        dev.countr  # noqa: B018
    with pytest.raises(AttributeError, match="has no attribute 'newattr'"):
        dev.newattr = 1
    with pytest.raises(AttributeError, match="cannot be assigned"):
        dev.add = 1


def test_visibility_rules(dev):
    names = set(dir(dev))
    assert {"add", "counter", "changed", "_forced"} <= names
    assert not {"hidden_method", "_private", "_secret", "calls_in_flight", "capabilities"} & set(dev._heros_caps)
    assert dev._forced() == "forced"
    assert dev.async_double(21) == 42


@pytest.mark.parametrize(
    "kind, builtin", [("value", ValueError), ("key", KeyError), ("type", TypeError), ("zero", ZeroDivisionError)]
)
def test_builtin_exceptions_keep_their_class(dev, kind, builtin):
    with pytest.raises(builtin) as info:
        dev.fail(kind)
    exc = info.value
    assert isinstance(exc, RemoteHEROError) and isinstance(exc, HEROSError)
    assert exc.remote_type == builtin.__name__
    assert "in fail" in exc.remote_traceback  # the remote traceback names the remote function
    assert exc.endpoint.endswith("/dev/fail")
    assert "--- remote traceback ---" in str(exc)


def test_user_defined_and_base_exceptions(dev):
    with pytest.raises(RemoteHEROError, match="CustomError: custom failure") as info:
        dev.fail("custom")
    assert not isinstance(info.value, ValueError)
    with pytest.raises(RemoteHEROError, match="SystemExit: 3"):
        dev.fail("exit")
    with pytest.raises(RemoteHEROError, match="KeyboardInterrupt"):
        dev.fail("interrupt")
    assert dev.add(1) == 3  # the HERO survived all of it


def test_user_defined_exceptions_are_caught_by_their_builtin_base(dev):
    with pytest.raises(ValueError, match="above the limit") as info:
        dev.fail("limit")
    exc = info.value
    assert isinstance(exc, RemoteHEROError) and type(exc).__name__ == "LimitError"
    assert exc.remote_type == "LimitError" and exc.remote_base == "ValueError"
    assert "servers.LimitError: above the limit" in str(exc) or "__main__.LimitError" in str(exc)


def test_lookup_error_catches_a_remote_key_error(dev):
    with pytest.raises(LookupError):
        dev.fail("key")


def test_a_call_that_runs_too_long_raises_a_timeout_naming_hero_and_member(dev):
    with pytest.raises(RemoteTimeoutError, match=r"HERO 'dev' \(realm '.*'\) did not answer 'sleep' within 0.3 s") as info:
        dev.sleep.with_timeout(0.3)(5)
    assert isinstance(info.value, TimeoutError) and isinstance(info.value, RemoteTransportError)
    dev._timeout = 0.2
    with pytest.raises(TimeoutError):
        dev.sleep(5)
    dev._timeout = 10
    assert dev.sleep.with_timeout(5)(0.01) == 0.01


def test_proxy_level_timeout_from_the_constructor(realm, spawn):
    spawn(realm, "Device:dev")
    with RemoteHERO("dev", realm=realm, timeout=0.2) as proxy:
        assert proxy._timeout == 0.2
        with pytest.raises(RemoteTimeoutError):
            proxy.sleep(3)


def test_a_hero_that_is_gone_raises_instead_of_returning_none(dev):
    dev._server.kill()
    # Usually zenoh knows at once that nobody serves the key any more ("nobody answered"); for a
    # moment after the kill it may still route a query to the dead process, which then times out
    # (RemoteTimeoutError, a RemoteTransportError too). Either way the call raises, never None.
    with pytest.raises(RemoteTransportError, match=r"HERO 'dev' .* (is not reachable: nobody answered|did not answer) 'add'"):
        dev.add.with_timeout(3)(1)
    with pytest.raises(RemoteTransportError, match="HERO 'dev' .* (is not reachable: nobody answered|did not answer) 'counter'"):
        dev.counter  # noqa: B018


def test_unknown_hero_raises_name_error(realm, spawn):
    spawn(realm, "Device:dev")
    with pytest.raises(NameError, match="'deb' not found .* did you mean 'dev'"):
        RemoteHERO("deb", realm=realm, discovery_timeout=0.5)
    with pytest.raises(NameError, match="not found"):
        RemoteHERO("dev", realm=realm + "x", discovery_timeout=0.3)


@pytest.mark.parametrize("bad", ["a/b", "*", "x$", ""])
def test_bad_names_are_refused_before_anything_is_sent(bad):
    with pytest.raises(ValueError, match="HERO name"):
        RemoteHERO(bad)


def test_metadata_from_constructor_and_class_tuples(realm, spawn):
    spawn(realm, "Tagged:tagged")
    with RemoteHERO("tagged", realm=realm) as proxy:
        assert {"ctor-tag", "class-tag", "_proto_version:1.0"} <= proxy._hero_tags
        assert any(t.startswith("_zid:") for t in proxy._hero_tags)
        assert proxy._hero_implements == {"iface", "heros.demo.Thermometer"}
        assert proxy._hero_extra_metadata["vendor"] == "ACME" and proxy._hero_extra_metadata["serial"] == "42"
        assert "pkg_versions" in proxy._hero_extra_metadata
        assert proxy.ping() == "pong"


def test_equality_hash_and_independent_lifetimes(dev, realm):
    other = RemoteHERO("dev", realm=realm)
    assert other == dev and hash(other) == hash(dev) and len({other, dev}) == 1
    other._destroy_hero()
    assert dev.add(1) == 3  # destroying one proxy never closes the session under another
    with pytest.raises(RemoteTransportError, match="closed"):
        other.add(1)


def test_concurrent_callers_share_one_proxy(dev):
    results = []

    def work(i):
        results.append(dev.add(i, b=i))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == [2 * i for i in range(20)]


@pytest.mark.parametrize("dtype", ["float64", "float32", "int16", "uint8", "complex128", "bool", ">i4", "<U3"])
def test_arrays_travel_both_ways(dev, dtype):
    arr = dev.array(1000, dtype)
    assert arr.dtype == np.dtype(dtype) and arr.shape == (1000,)
    big = np.ones((512, 600))[:, ::2]  # non-contiguous, out of band
    assert dev.array_sum(big) == big.sum()
    echoed = dev.echo(np.asfortranarray(np.arange(12.0).reshape(3, 4)))
    np.testing.assert_array_equal(echoed, np.arange(12.0).reshape(3, 4))


def test_values_keep_their_python_types(dev):
    value = (1, {2, 3}, frozenset({4}), 1 + 2j, np.float32(1.5), 2**80, b"\x00", {"k": (1, 2)})
    assert dev.echo(value) == value
    assert dev.kind((1, 2)) == "tuple" and dev.kind({1}) == "set" and dev.kind(np.int16(3)) == "int16"


def test_text_summary_and_repr(dev):
    assert repr(dev).startswith("<RemoteHERO ") and "/dev>" in repr(dev)
    text = dev._heros_summary()
    assert "class Device" in text and "    add(a: int, b: int = 2) -> int\n        Add two numbers." in text  # as heros info shows it
    assert "power: float  [mW, 0..50]" in text and "temperature: float  (read-only)" in text
    assert dev._repr_mimebundle_()["text/plain"] == text


def test_refresh_and_alive(dev):
    assert dev._is_alive()
    dev._refresh()
    assert dev.add(2) == 4
    dev._server.kill()
    deadline = time.monotonic() + 20  # zenoh notices a killed peer within milliseconds on loopback
    while dev._is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not dev._is_alive()


def test_connect_takes_the_descriptor_lazily_or_from_an_observer(realm, spawn):
    from heros import HEROObserver
    from heros.peer import known_descriptor
    from heros.zenoh import session_manager

    spawn(realm, "Tagged:t")
    with RemoteHERO("t", realm=realm) as proxy:
        assert "_hero_descriptor" not in proxy.__dict__  # connecting asked for the capabilities only
        assert "class-tag" in proxy._hero_tags and proxy._hero_descriptor["class"] == "Tagged"
    with HEROObserver(realm=realm) as ob:
        assert ob.wait_for(lambda k: "t" in k, timeout=20)
        assert known_descriptor(session_manager, realm, "t") is ob.known_objects["t"]
        with ob.get_object("t") as proxy:
            assert proxy._hero_descriptor is ob.known_objects["t"]
