"""Mixed labs: our HEROS and upstream HEROS 2026.2.2 (CBOR) in one realm, every item both ways.

Upstream runs in its own cached virtualenv (``tests/upstream.py``), in separate processes that
evaluate what the tests ask of them (``tests/upstream_peer.py``). The realm and two server
processes (one of ours, one of upstream's) are shared by the module; tests that change who is
alive start processes of their own.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from heros import EventObserver, HEROObserver, LocalHERO, RemoteHERO
from heros.exceptions import RemoteHEROError
from heros.references import UnserializableRemoteObject

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent

# Upstream's timeouts and thread model make these tests slower than the rest; keep each bounded.
pytestmark = pytest.mark.timeout(240)


def wait_until(predicate: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            return value
        time.sleep(0.02)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: Any, upstream_python: Path) -> Any:
    """A realm with our ``dev`` (Device), ``rec`` (Recorder), ``hub`` (Hub) in one process and
    upstream's ``up`` (UpDevice), ``uprec`` (UpRecorder) in another; ``up_client`` is that upstream
    process acting as a client too (its proxies ``dev``, ``rec``, ``hub`` of our HEROs)."""
    from conftest import HeroProcess
    from upstream import UpstreamPeer, upstream_env

    realm = f"t{uuid.uuid4().hex[:12]}"
    tmp = tmp_path_factory.mktemp("upstream-lab")
    ours = HeroProcess([str(TESTS / "servers.py"), realm, "Device:dev", "Recorder:rec", "Hub:hub"], log_path=tmp / "ours.log")
    ours.wait_line("READY")
    proc = HeroProcess([str(TESTS / "upstream_peer.py"), realm, "UpDevice:up", "UpRecorder:uprec"], log_path=tmp / "up.log",
                       python=upstream_python, base_env=upstream_env())
    up = UpstreamPeer(proc)
    proc.wait_line("READY", timeout=60)
    up.exec("dev = RemoteHERO('dev', realm=realm); rec = RemoteHERO('rec', realm=realm); hub = RemoteHERO('hub', realm=realm)")
    proxies = {n: RemoteHERO(n, realm=realm) for n in ("up", "uprec", "dev", "rec", "hub")}

    class Lab:
        pass

    lab = Lab()
    lab.realm, lab.ours, lab.up_client, lab.proxies = realm, ours, up, proxies
    yield lab
    for p in proxies.values():
        p._destroy_hero()
    up.stop()
    ours.kill()


# --- discovery and metadata --------------------------------------------------------------------------


def test_our_observer_lists_upstream_heros_with_their_metadata(lab: Any) -> None:
    with HEROObserver(realm=lab.realm) as obs:
        assert obs.wait_for(lambda k: {"up", "uprec", "dev", "rec", "hub"} <= set(k), 20)
        up = obs.known_objects["up"]
    assert up["proto_version"] == 1.0 and up["name"] == "up" and up["class"] == "UpDevice"
    assert up["implements"] == {"lab.Device", "iface"}
    assert {"up-tag", "class-tag", "_proto_version:1.0"} <= up["tags"] and "_codec:msgpack" not in up["tags"]
    assert any(t.startswith("_zid:") for t in up["tags"])
    assert up["extra_metadata"]["serial"] == "7" and up["extra_metadata"]["vendor"] == "upstream"
    assert json.loads(up["extra_metadata"]["pkg_versions"])["heros"] == "2026.2.2"
    assert "_codec:msgpack" in obs.known_objects["dev"]["tags"]


def test_upstream_observer_lists_our_heros_with_their_metadata(lab: Any) -> None:
    up = lab.up_client
    up.exec("obs = HEROObserver(realm=realm)")
    assert up.eval("wait_until(lambda: {'dev', 'rec', 'hub', 'up'} <= set(obs.known_objects))")
    dev = up.eval("obs.known_objects['dev']")
    assert dev["proto_version"] == 1.0 and up.eval("type(obs.known_objects['dev']['proto_version']).__name__") == "float"
    assert dev["name"] == "dev" and dev["class"] == "Device"
    assert up.eval("type(obs.known_objects['dev']['tags']).__name__") == "set"  # CBOR tag 258, as upstream sends
    assert {"_proto_version:1.0", "_codec:msgpack"} <= dev["tags"] and any(t.startswith("_zid:") for t in dev["tags"])
    assert isinstance(dev["implements"], set)
    assert "heros" in json.loads(dev["extra_metadata"]["pkg_versions"])


def test_our_tagged_hero_keeps_its_class_metadata_for_upstream(lab: Any, spawn: Any) -> None:
    spawn(lab.realm, "Tagged:tagged")
    up = lab.up_client
    d = up.eval("HEROObserver(realm=realm)._get_object_info('tagged')['tagged']")
    assert {"class-tag", "ctor-tag"} <= d["tags"] and d["implements"] == {"heros.demo.Thermometer", "iface"}
    assert d["extra_metadata"]["vendor"] == "ACME" and d["extra_metadata"]["serial"] == "42"


# --- capabilities and signatures ---------------------------------------------------------------------


def test_upstream_capabilities_become_real_signatures_here(lab: Any) -> None:
    up = lab.proxies["up"]
    assert str(inspect.signature(up.zoo)) == "(a, /, b: 'int', *args, c: 'str' = 'x', **kwargs) -> 'dict'"
    assert str(inspect.signature(up.add)) == "(a: 'int', b: 'int' = 2) -> 'int'"
    kinds = [p.kind for p in up._heros_caps["zoo"].parameters]
    assert [int(k) for k in kinds] == [0, 1, 2, 3, 4]
    echo = up._heros_caps["echo"].parameters[0]
    assert echo.default == "undefined" and not echo.has_default_value()  # upstream's "no default"
    assert {c.name: c.flavor for c in up._remote_capabilities if c.name in ("counter", "changed", "add")} == {
        "counter": "attribute", "changed": "event", "add": "method"}


def test_our_capabilities_become_the_same_signatures_upstream(lab: Any) -> None:
    up = lab.up_client
    dev = lab.proxies["dev"]
    for method in ("signature_zoo", "add", "echo", "sleep"):
        assert up.eval(f"str(inspect.signature(dev.{method}))") == str(inspect.signature(getattr(dev, method)))
    assert up.eval("[int(p.kind) for p in next(c for c in dev._remote_capabilities if c.name == 'signature_zoo').parameters]") == \
        [0, 1, 2, 3, 3, 4]
    assert up.eval("next(c for c in dev._remote_capabilities if c.name == 'echo').parameters[0].default") == "undefined"
    assert up.eval("sorted(c.name for c in dev._remote_capabilities if c.flavor == 'event')") == \
        sorted(c.name for c in dev._remote_capabilities if c.flavor == "event")


# --- calls, attributes, errors -----------------------------------------------------------------------


def test_method_calls_with_args_and_kwargs_both_ways(lab: Any) -> None:
    up, client = lab.proxies["up"], lab.up_client
    assert up.add(1, 5) == 6 and up.add(a=3) == 5 and up.add(2, b=10) == 12
    assert up.zoo(1, 2, 3, 4, c="y", q=1) == {"a": 1, "b": 2, "args": [3, 4], "c": "y", "kwargs": {"q": 1}}
    assert client.eval("dev.add(1, 5)") == 6 and client.eval("dev.add(a=3)") == 5
    assert client.eval("dev.signature_zoo(1, 2, 3.5, c='z', w=1)") == {"a": 1, "b": 2, "args": [3.5], "c": "z", "d": None,
                                                                       "kwargs": {"w": 1}}
    assert client.eval("dev.echo({'k': [1, 2.5, 'x', None, True, b'raw']})") == {"k": [1, 2.5, "x", None, True, b"raw"]}
    assert client.eval("dev.echo({1, 2})") == {1, 2} and client.eval("dev.echo(3 + 4j)") == 3 + 4j
    assert client.eval("dev.echo(2**70)") == 2**70
    assert up.echo({"k": (1, 2), "s": {3}, "c": 1 - 2j, "big": -(2**80)}) == {"k": [1, 2], "s": {3}, "c": 1 - 2j, "big": -(2**80)}


def test_attributes_read_and_written_both_ways(lab: Any) -> None:
    up, client, dev = lab.proxies["up"], lab.up_client, lab.proxies["dev"]
    up.gain = 2.25
    assert up.gain == 2.25 and client.eval("heroes['up'].gain") == 2.25
    assert up.annotated_only is None  # declared but never set, as upstream answers
    client.exec("dev.label = 'set upstream'")
    assert dev.label == "set upstream" and client.eval("dev.label") == "set upstream"
    assert client.eval("dev.annotated_only") is None
    assert client.eval("catch(setattr, dev, 'setpoint', 500)")[0] == "RemoteValueError"  # the write is acknowledged or refused
    dev.label = "dev"


def test_remote_exceptions_keep_their_class_both_ways(lab: Any) -> None:
    up, client = lab.proxies["up"], lab.up_client
    with pytest.raises(KeyError) as info:
        up.fail("key")
    assert isinstance(info.value, RemoteHEROError) and "missing" in info.value.message
    with pytest.raises(ZeroDivisionError):
        up.fail("zero")
    with pytest.raises(RemoteHEROError, match="interlock open") as custom:
        up.fail("custom")
    assert custom.value.remote_type == "InterlockError"
    name, mro, message = client.eval("catch(dev.fail, 'value')")
    assert name == "RemoteValueError" and {"ValueError", "RemoteHEROError"} <= set(mro) and message == "bad value 7"
    name, mro, _ = client.eval("catch(dev.fail, 'key')")
    assert "KeyError" in mro and "LookupError" in mro
    name, mro, message = client.eval("catch(dev.fail, 'custom')")
    assert name == "RemoteHEROError" and "custom failure" in message


# --- HEROs and references inside payloads -------------------------------------------------------------


def test_nested_heros_both_ways(lab: Any) -> None:
    up, dev, hub, client = lab.proxies["up"], lab.proxies["dev"], lab.proxies["hub"], lab.up_client
    assert up.name_of(dev) == "dev"  # our proxy, passed to an upstream HERO, arrives as its proxy of our HERO
    assert up.call(dev, "add", 1, 2) == 3
    me = up.me()
    assert isinstance(me, RemoteHERO) and me == up and me.add(1) == 3
    assert hub.call(up, "add", 2, 3) == 5  # an upstream HERO, passed to ours, is called back over CBOR
    assert hub.name_of(up) == "up"
    assert client.eval("hub.name_of(heroes['up'])") == "up"
    assert client.eval("type(hub.me()).__name__").startswith("RemoteHERO")
    assert client.eval("hub.call(RemoteHERO('up', realm=realm), 'add', 4, 4)") == 8


def test_references_issued_upstream_are_used_and_sent_back_from_here(lab: Any) -> None:
    up, dev = lab.proxies["up"], lab.proxies["dev"]
    ref = up.make_opaque(5)
    assert isinstance(ref, UnserializableRemoteObject) and ref.type.endswith("Opaque") and "Opaque(5)" in ref.representation
    assert up.read_opaque(ref) == 5
    assert dev.kind(ref) == "UnserializableRemoteObject"  # forwarded to one of ours: stays a reference there
    back = dev.echo(ref)
    assert back == ref and up.read_opaque(back) == 5


def test_references_issued_here_are_used_and_sent_back_from_upstream(lab: Any) -> None:
    client = lab.up_client
    client.exec("ref = dev.make_opaque(7)")
    assert client.eval("type(ref).__name__") == "UnserializableRemoteObject" and client.eval("ref.type").endswith("Opaque")
    assert client.eval("dev.read_opaque(ref)") == 7
    assert client.eval("str(ref)").startswith("Unserializable Remote Object (")
    assert client.eval("heroes['up'].kind(ref)") == "UnserializableRemoteObject"


def test_objects_our_client_cannot_encode_come_back_as_themselves_from_upstream(lab: Any) -> None:
    up = lab.proxies["up"]
    thing = threading.Lock()  # nothing can serialize a lock
    assert up.kind(thing) == "UnserializableRemoteObject"
    assert up.echo(thing) is thing


# --- events ---------------------------------------------------------------------------------------------


def test_events_of_upstream_heros_reach_our_callbacks_and_observers(lab: Any) -> None:
    up = lab.proxies["up"]
    seen: list = []
    observed: list = []
    with EventObserver("*", "changed", realm=lab.realm) as obs:
        obs.register_callback(lambda name, value: observed.append((name, value)))
        up.changed.connect(seen.append)
        try:
            ping = uuid.uuid4().hex
            assert wait_until(lambda: (up.emit_changed(ping), ping in seen)[1], 10)  # until the subscription is in place
            marker = uuid.uuid4().hex  # emitted once: whatever follows it in ``seen`` was emitted after it
            up.emit_changed(marker)
            up.emit_changed({"x": [1, 2]})
            up.emit_changed(np.arange(3.0))
            assert wait_until(lambda: marker in seen and len(seen) >= seen.index(marker) + 3)
            tail = seen[seen.index(marker) + 1:]
            assert tail[0] == {"x": [1, 2]} and np.array_equal(tail[1], [0.0, 1.0, 2.0])
            assert wait_until(lambda: ("up", {"x": [1, 2]}) in observed)
        finally:
            up.changed.disconnect(seen.append)


def test_events_of_our_heros_reach_upstream_callbacks_and_observers_once(lab: Any) -> None:
    client, dev = lab.up_client, lab.proxies["dev"]
    client.exec("got = Collector(); dev.changed.connect(got); seen_by_obs = Collector(); eobs = EventObserver('*', 'changed', realm=realm); "
                "eobs.register_callback(seen_by_obs)")
    ours: list = []
    with EventObserver("dev", "changed", realm=lab.realm) as obs:
        obs.register_callback(lambda name, value: ours.append(value))
        ping = uuid.uuid4().hex
        assert wait_until(lambda: (dev.emit_changed(ping), client.eval("got.get()").count(ping) > 0)[1], 15)
        assert wait_until(lambda: ping in ours)
        dev.emit_changed([1, "two", 3.0])
        assert wait_until(lambda: client.eval("got.get()")[-1:] == [[1, "two", 3.0]])
        assert wait_until(lambda: ["dev", [1, "two", 3.0]] in client.eval("seen_by_obs.get()"))
        assert wait_until(lambda: [1, "two", 3.0] in ours)
        time.sleep(0.2)  # a duplicate (the CBOR copy) would arrive right behind the original
        assert ours.count([1, "two", 3.0]) == 1  # our observer skips the copy published for upstream subscribers
    client.exec("dev.changed.disconnect(got)")


def test_case_d_across_implementations(lab: Any) -> None:
    """alice's event calls bob's method directly, as connected by EVE, for each mix of implementations."""
    p, client = lab.proxies, lab.up_client
    mixes = [  # (who connects, alice, bob)
        ("ours", "up", "rec"),
        ("ours", "dev", "uprec"),
        ("upstream", "dev", "uprec"),
        ("upstream", "up", "rec"),
        ("upstream", "dev", "rec"),
    ]
    for eve, alice, bob in mixes:
        marker = f"{eve}-{alice}-{bob}-{uuid.uuid4().hex[:6]}"
        if eve == "ours":
            name = p[alice].changed.connect(p[bob].record)
        else:
            client.exec(f"a_ = RemoteHERO('{alice}', realm=realm); b_ = RemoteHERO('{bob}', realm=realm)")
            name = client.eval("a_.changed.connect(b_.record)")
        assert name == f"{bob}.record", (eve, alice, bob)
        try:
            p[alice].emit_changed(marker)
            assert wait_until(lambda marker=marker, bob=bob: marker in p[bob].seen()), (eve, alice, bob, p[bob].seen()[-3:])
            callbacks = p[alice].changed.get_callbacks()
            assert any(cb["name"] == f"{bob}.record" and cb["context"] == "LocalHERO" for cb in callbacks)
        finally:
            if eve == "ours":
                assert p[alice].changed.disconnect(p[bob].record)
            else:
                assert client.eval("a_.changed.disconnect(b_.record)")
        after = f"after-{marker}"
        p[alice].emit_changed(after)
        time.sleep(0.3)
        assert after not in p[bob].seen(), (eve, alice, bob)


# --- numpy ----------------------------------------------------------------------------------------------


ARRAYS = {
    "float64": lambda: np.linspace(0, 1, 7),
    "float32 2-D": lambda: np.arange(12, dtype=np.float32).reshape(3, 4),
    "int16": lambda: np.arange(-5, 5, dtype=np.int16),
    "uint8 image": lambda: (np.arange(64 * 48) % 256).astype(np.uint8).reshape(48, 64),
    "bool": lambda: np.array([True, False, True]),
    "complex128": lambda: np.array([1 + 2j, -3j]),
    "big-endian int32": lambda: np.arange(6, dtype=">i4"),
    "unicode": lambda: np.array(["ab", "cde"]),
    "fortran order": lambda: np.asfortranarray(np.arange(20.0).reshape(4, 5)),
    "strided": lambda: np.arange(40.0)[::3],
    "0-d": lambda: np.array(3.5),
    "empty": lambda: np.zeros((0, 3)),
    "1 MiB": lambda: np.arange(131072, dtype=np.float64),
    "24 MiB (one payload through shared memory, never parts)": lambda: np.arange(3 << 20, dtype=np.float64),
}


@pytest.mark.parametrize("label", list(ARRAYS))
def test_arrays_travel_to_upstream_and_back(lab: Any, label: str) -> None:
    arr = ARRAYS[label]()
    up = lab.proxies["up"]
    back = up.echo(arr)
    assert isinstance(back, np.ndarray) and back.dtype == arr.dtype and back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)
    if arr.dtype.kind in "biufc" and arr.dtype.kind != "c":
        shape, dtype, total, _contiguous = up.describe_array(arr)
        assert shape == list(arr.shape) and dtype == str(arr.dtype) and total == pytest.approx(float(arr.astype(float).sum()))


@pytest.mark.parametrize("dtype", ["float64", "float32", "int16", "uint8", "bool", "complex64", ">i4"])
def test_arrays_from_upstream_clients_reach_our_heros(lab: Any, dtype: str) -> None:
    client = lab.up_client
    expected = np.arange(10).astype(dtype)
    assert client.eval(f"str(dev.array(10, '{dtype}').dtype)") == str(expected.dtype)
    assert client.eval(f"dev.array(10, '{dtype}').tolist()") == expected.tolist()
    assert client.eval(f"dev.array_sum(np.arange(10).astype('{dtype}').reshape(2, 5).T)") == pytest.approx(float(expected.real.sum()))
    assert client.eval("dev.array(200000).shape") == (200000,)  # out-of-band arrays of ours become upstream's tag 4242
    # large ones go whole (upstream knows nothing of parts), through shared memory on this host
    assert client.eval("float(dev.array(3 << 20).sum())") == float(np.arange(3 << 20, dtype=np.float64).sum())
    assert client.eval("dev.array_sum(np.arange(3 << 20, dtype=np.float64))") == float(np.arange(3 << 20, dtype=np.float64).sum())


# --- liveliness -----------------------------------------------------------------------------------------


def test_our_observer_sees_upstream_heros_join_and_leave(lab: Any, spawn_upstream: Any) -> None:
    joined, left = threading.Event(), threading.Event()
    with HEROObserver(realm=lab.realm) as obs:
        obs.register_object_added_callback(lambda n: n == "late" and joined.set())
        obs.register_object_removed_callback(lambda n: n == "late" and left.set())
        late = spawn_upstream(lab.realm, "UpRecorder:late")
        assert joined.wait(20) and "late" in obs.known_objects
        assert obs.known_objects["late"]["class"] == "UpRecorder"
        late.process.kill()  # no goodbye: liveliness alone tells
        assert left.wait(20) and "late" not in obs.known_objects


def test_upstream_observer_sees_our_heros_join_and_leave(lab: Any) -> None:
    client = lab.up_client
    client.exec("added = Collector(); removed = Collector(); obs2 = HEROObserver(realm=realm); "
                "obs2.register_object_added_callback(added); obs2.register_object_removed_callback(removed)")

    class Joiner(LocalHERO):
        def hello(self) -> str:
            return "hi"

    hero = Joiner("joiner", realm=lab.realm)
    try:
        assert wait_until(lambda: "joiner" in client.eval("added.get()"))
        assert client.eval("obs2.known_objects['joiner']['class']") == "Joiner"
        assert client.eval("RemoteHERO('joiner', realm=realm).hello()") == "hi"
    finally:
        # Upstream's observer, told that the token went, asks the HERO's _discover and keeps it
        # listed if it answers. Hold the HERO between its token and its queryable, as a busy
        # machine does for a moment (``_destroy_hero`` takes this lock there): it must not answer.
        with hero._heros_anchor_lock:
            leaving = threading.Thread(target=hero._destroy_hero)
            leaving.start()
            removed = wait_until(lambda: "joiner" in client.eval("removed.get()"))
        leaving.join(10)
    assert removed and not leaving.is_alive()
    assert client.eval("'joiner' in obs2.known_objects") is False


# --- protocol 0.1 ---------------------------------------------------------------------------------------


def test_protocol_01_call_form_both_ways(lab: Any, spawn_upstream: Any) -> None:
    # an upstream client sends a 0.1 map of arguments to our HERO
    assert lab.up_client.eval("dev._query_endpoint('add', payload={'a': 1, 'b': 5})") == 6
    # our client talks to a 0.1 HERO (no proto_version, parameters without kind): it sends maps
    old = spawn_upstream(lab.realm, "UpDevice:old")
    old.exec("make_legacy(heroes['old'])")
    with RemoteHERO("old", realm=lab.realm) as proxy:
        assert proxy._proto_version == 0.1
        assert proxy.add(1, b=4) == 5 and proxy.add(2) == 4


# --- the command line on upstream HEROs ------------------------------------------------------------------


def heros_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).parent / "heros"), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=str(ROOT))


def test_the_command_line_drives_upstream_heros(lab: Any) -> None:
    realm = lab.realm
    out = heros_cli("list", "--realm", realm)
    assert out.returncode == 0 and "up" in out.stdout and "UpDevice" in out.stdout, out.stderr
    out = heros_cli("info", "up", "--realm", realm)
    assert out.returncode == 0 and "zoo(a, /, b: int, *args, c: str = 'x', **kwargs) -> dict" in out.stdout, out.stdout + out.stderr
    assert heros_cli("set", "up.label", "from-cli", "--realm", realm).returncode == 0
    out = heros_cli("get", "up.label", "--realm", realm)
    assert out.returncode == 0 and "from-cli" in out.stdout
    out = heros_cli("call", "up.add", "2", "b=40", "--realm", realm)
    assert out.returncode == 0 and "42" in out.stdout
    out = heros_cli("call", "up.fail", "key", "--realm", realm)
    assert out.returncode != 0 and "KeyError: 'missing'" in out.stderr


def test_heros_watch_follows_an_upstream_event_and_polls_an_upstream_attribute(lab: Any) -> None:
    up = lab.proxies["up"]
    heros = str(Path(sys.executable).parent / "heros")
    for target, trigger, expect in (("up.changed", lambda i: up.emit_changed(f"ev{i}"), "ev"),
                                    ("up.counter", lambda i: setattr(up, "counter", 1000 + i), "100")):
        proc = subprocess.Popen([heros, "watch", target, "--realm", lab.realm], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, cwd=str(ROOT))
        lines: list[str] = []
        reader = threading.Thread(target=lambda lines=lines, proc=proc: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
        reader.start()
        try:
            i = 0
            deadline = time.monotonic() + 30
            while not any(expect in line for line in lines) and time.monotonic() < deadline:
                trigger(i)
                i += 1
                time.sleep(0.2)
            assert any(expect in line for line in lines), (target, lines, proc.stderr.read() if proc.poll() is not None else "")
        finally:
            proc.terminate()
            proc.wait(10)
