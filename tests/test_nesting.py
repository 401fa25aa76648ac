"""Nested HEROs (passed, returned, held) and references to objects that cannot be serialized."""

from __future__ import annotations

import gc
import time

import pytest

from heros import LocalHERO, RemoteHERO
from heros.exceptions import ReferenceExpiredError
from heros.references import ObjectStore, UnserializableRemoteObject


class Local(LocalHERO):
    """Served by the test process itself."""

    value: int = 7

    def whoami(self) -> str:
        return f"local {self._name}"


@pytest.fixture
def pair(realm, spawn):
    server = spawn(realm, "Device:dev", "Hub:hub")
    with RemoteHERO("dev", realm=realm) as dev, RemoteHERO("hub", realm=realm) as hub:
        yield server, dev, hub


def test_a_returned_hero_arrives_as_a_usable_proxy(pair):
    _, _, hub = pair
    me = hub.me()
    assert isinstance(me, RemoteHERO) and me == hub
    assert me.ping().startswith("pong from hub")


def test_a_proxy_passed_as_argument_arrives_usable(pair):
    _, dev, hub = pair
    assert hub.name_of(dev) == "dev"
    assert hub.call(dev, "add", 3, 4) == 7


def test_a_local_hero_passed_as_argument_is_called_back_across_processes(pair, realm):
    _, _, hub = pair
    with Local("here", realm=realm) as local:
        assert hub.call(local, "whoami") == "local here"
        assert hub.name_of(local) == "here"


def test_heroes_in_lists_and_attributes(pair):
    _, dev, hub = pair
    listed = hub.heroes(["dev", "hub"])
    assert [type(h) for h in listed] == [RemoteHERO, RemoteHERO]
    assert listed[0].add(1) == 3
    hub.keep(dev)
    held = hub.partner
    assert isinstance(held, RemoteHERO) and held == dev
    hub.partner = hub  # an attribute written with a HERO
    assert hub.partner_ping().startswith("pong")


def test_a_hero_of_the_same_process_resolves_to_itself(pair):
    _, dev, hub = pair
    # dev and hub share a process: the hub receives the LocalHERO object, not a proxy of itself
    assert hub.keep(dev) == "Device"


def test_unserializable_results_become_references_that_resolve_when_sent_back(pair):
    _, dev, _ = pair
    ref = dev.make_opaque(11)
    assert isinstance(ref, UnserializableRemoteObject)
    assert ref.type.endswith("Opaque") and "Opaque(11)" in ref.representation
    assert str(ref).startswith("Unserializable Remote Object (")
    assert dev.read_opaque(ref) == 11
    assert dev.read_opaque(ref) == 11  # still alive: we still hold the reference


def test_a_reference_stays_alive_while_held_and_is_released_after(pair):
    server, dev, _ = pair
    refs = [dev.make_opaque(i) for i in range(5)]
    server.send("eval len(obj_store)")
    assert int(server.wait_line("OK").split()[1]) >= 5
    assert [dev.read_opaque(r) for r in refs] == list(range(5))
    del refs
    gc.collect()
    deadline = time.monotonic() + 30  # releases are sent in the background: wait for them, bounded
    while True:
        server.send("eval len(obj_store)")
        if server.wait_line("OK") == "OK 0":
            break
        if time.monotonic() > deadline:
            pytest.fail("the object store never emptied after the references were dropped")
        time.sleep(0.05)


def test_an_unknown_or_expired_reference_raises_lookup_error(pair):
    _, dev, _ = pair
    ref = dev.make_opaque(1)
    forged = UnserializableRemoteObject(ref.type, "0" * 32, "", ref.issuer)
    with pytest.raises(LookupError, match="unknown here or has expired"):
        dev.read_opaque(forged)


def test_a_reference_forwarded_to_another_process_stays_a_reference(realm, spawn):
    spawn(realm, "Device:dev")
    spawn(realm, "Device:other")
    with RemoteHERO("dev", realm=realm) as dev, RemoteHERO("other", realm=realm) as other:
        ref = dev.make_opaque(3)
        assert other.kind(ref) == "UnserializableRemoteObject"  # never mistaken for one of other's objects
        back = other.echo(ref)
        assert back == ref and dev.read_opaque(back) == 3


def test_object_store_is_bounded_and_lru():
    store = ObjectStore(max_objects=3)
    objs = [object() for _ in range(4)]
    tokens = [store.add(o) for o in objs[:3]]
    store.get(tokens[0])  # touch: now the most recently used
    store.add(objs[3])
    assert len(store) == 3
    with pytest.raises(ReferenceExpiredError):
        store.get(tokens[1])
    assert store.get(tokens[0]) is objs[0]
    assert store.add(objs[0]) == tokens[0]  # the same object keeps its token
    store.release(tokens[0])
    assert tokens[0] in store  # two holders, one released
    store.release(tokens[0])
    assert tokens[0] not in store
    assert len(tokens[2]) == 32 and tokens[2] != tokens[0]


def test_non_weakrefable_values_can_be_returned():
    store = ObjectStore()
    token = store.add(object())  # upstream could not keep these at all
    assert store.get(token) is not None
