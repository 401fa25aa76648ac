"""LocalHERO itself: what it exposes of its own, metadata handling, construction and destruction."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from jupyter_helpers import wait_until

from heros import LocalHERO, RemoteHERO, RemoteTransportError, keys, serving
from heros import zenoh as z
from heros.observer import HEROObserver
from heros.peer import answers


class Bare(LocalHERO):
    """Adds nothing."""


class Counter(LocalHERO):
    count: int = 0

    def bump(self) -> int:
        self.count += 1
        return self.count


def test_nothing_of_localhero_itself_leaks(realm):
    with Bare("bare", realm=realm) as bare:
        assert sorted(c.name for c in bare.capabilities) == [
            "_connect_local_hero_callback", "_disconnect_local_hero_callback", "_get_local_hero_callbacks"]


def test_the_callers_lists_are_never_mutated(realm):
    tags, implements, extra = ["mine"], ["iface"], {"k": "v"}
    with Bare("bare", realm=realm, tags=tags, implements=implements, extra_metadata=extra):
        pass
    assert tags == ["mine"] and implements == ["iface"] and extra == {"k": "v"}


def test_a_hero_is_reachable_from_its_own_process_and_stops_with_destroy(realm):
    hero = Counter("c", realm=realm)
    with RemoteHERO("c", realm=realm) as proxy:
        assert proxy.bump() == 1 and hero.count == 1
        hero.count = 5
        assert proxy.count == 5
        hero._destroy_hero()
        hero._destroy_hero()  # idempotent
        with HEROObserver(realm=realm) as ob:
            assert "c" not in ob.known_objects
        with pytest.raises(RemoteTransportError, match="nobody answered 'bump'"):
            proxy.bump()  # its queryable is gone too
        deadline = time.monotonic() + 10
        while any(t.name.startswith("heros-c-") for t in threading.enumerate()) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not any(t.name.startswith("heros-c-") for t in threading.enumerate())  # and so are its workers


@pytest.mark.parametrize("threads", ["dedicated", "pooled"])
def test_a_leaving_hero_stops_answering_discovery_before_its_token_goes(realm, threads):
    """An observer told that a token went may ask the HERO's ``_discover`` (upstream's does, and keeps
    a HERO listed that answers). The queryable goes a moment after the token, longer on a busy
    machine: here the HERO is held in that moment, and discovery already finds nobody, while a
    read is still answered. Both ways a HERO serves: threads of its own, or the shared pool (which
    answers discovery on zenoh's thread)."""
    fillers = [Bare(f"filler{i}", realm=realm) for i in range(serving.DEDICATED if threads == "pooled" else 0)]
    hero = Counter("c", realm=realm)
    for filler in fillers:
        filler._destroy_hero()
    gone = threading.Event()
    with hero, HEROObserver(realm=realm) as ob:  # (the HERO goes also if the test fails: it would hold a dedicated slot)
        assert hero._heros_requests.dedicated is (threads == "dedicated")
        assert ob.wait_for(lambda known: "c" in known, 10)
        ob.register_object_removed_callback(lambda name: name == "c" and gone.set())
        session = ob._session
        count = keys.member_key(realm, "c", "count")
        assert answers(session, realm, "c", 2.0) and z.query(session, count, timeout=2.0).ok  # (the read's key is known now)
        with hero._heros_anchor_lock:  # ``_destroy_hero`` takes it after the token, before the queryable
            leaving = threading.Thread(target=hero._destroy_hero)
            leaving.start()
            assert gone.wait(10)
            assert not answers(session, realm, "c", 2.0)
            reply = z.query(session, count, timeout=2.0)
            assert reply is not None and reply.ok
        leaving.join(10)
        assert not leaving.is_alive()
        reply = z.query(session, count, timeout=2.0)
        assert reply is None  # and then the queryable went


def test_every_key_a_peer_calls_is_known_to_the_other_peers_and_goes_with_the_hero(realm, caplog):
    """The key of a method or attribute is anchored with a liveliness token once a peer asks for
    it (zenoh then keeps the route of a call on both sides, instead of matching it against
    ``<name>/**`` every time): a separate session sees exactly the keys called, none of the
    members nobody asked for, and none once the HERO is gone; undeclaring them is quiet also when
    the HERO's session closed first."""
    import os

    import zenoh

    from heros import zenoh as z

    other = zenoh.open(zenoh.Config.from_json5(os.environ["HEROS_ZENOH_CONFIG"]))
    try:
        def seen() -> list[str]:
            return sorted(k for k in z.tokens(other, f"@object/{realm}/c/*", timeout=2.0) if not k.endswith("/_health"))

        def wait_for(expected: list[str]) -> None:
            wait_until(lambda: seen() == expected, 10, f"the member tokens {expected}")

        hero = Counter("c", realm=realm)
        with RemoteHERO("c", realm=realm) as proxy:
            assert proxy.count == 0  # the capability list and the descriptor are not anchored
            wait_for([f"@object/{realm}/c/count"])
            for _ in range(3):
                proxy.bump()
            wait_for([f"@object/{realm}/c/bump", f"@object/{realm}/c/count"])
        hero._destroy_hero()
        assert hero._declared == []
        wait_for([])
    finally:
        other.close()
    with caplog.at_level(logging.WARNING, logger="heros"):
        closed = Counter("d", realm=realm)
        with RemoteHERO("d", realm=realm) as proxy:
            proxy.bump()
        closed._session.close()
        closed._destroy_hero()
    assert not [r for r in caplog.records if "could not undeclare" in r.getMessage()]


def test_a_second_hero_with_a_taken_name_is_refused_unless_it_replaces_deliberately(realm, caplog):
    from heros.exceptions import NameTakenError

    with Bare("twin", realm=realm), HEROObserver(realm=realm) as ob:
        assert ob.wait_for(lambda known: "twin" in known, timeout=10)
        with pytest.raises(NameTakenError, match=r"a HERO named 'twin' is already alive .* \(in this process\)"):
            Bare("twin", realm=realm)
        with caplog.at_level(logging.WARNING, logger="heros"), Bare("twin", realm=realm, replace=True):
            pass
    assert any("already alive" in r.getMessage() for r in caplog.records)


def test_extra_positional_arguments_are_reported_not_silently_dropped(realm, caplog):
    with caplog.at_level(logging.WARNING, logger="heros"), Bare("b", 1, 2, realm=realm):
        pass
    assert any("extra positional arguments (1, 2) are ignored" in r.getMessage() for r in caplog.records)


def test_unknown_keyword_arguments_are_an_error(realm):
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        Bare("b", realm=realm, colour="red")


@pytest.mark.parametrize("name", ["a/b", "", "x*"])
def test_bad_names_fail_before_serving(realm, name):
    with pytest.raises(ValueError, match="HERO name"):
        Bare(name, realm=realm)


def test_bad_realms_fail_before_serving():
    with pytest.raises(ValueError, match="HERO realm"):
        Bare("b", realm="lab/1")


def test_a_constructor_failure_releases_the_session(realm):
    from heros.zenoh import session_manager

    class Broken(LocalHERO):
        def __init__(self, name, **kw):
            super().__init__(name, **kw)
            raise RuntimeError("driver failed")

    with pytest.raises(RuntimeError, match="driver failed"):
        Broken("x", realm=realm)
    assert session_manager.referrers(realm) == 0  # destroyed at once, not at garbage collection


def test_events_called_before_the_hero_serves_still_work():
    from heros import event

    class Early(LocalHERO):
        def __init__(self, name, **kw):
            self.first = self.ping()  # before LocalHERO.__init__: no session yet
            super().__init__(name, **kw)

        @event
        def ping(self) -> str:
            return "pong"

    import uuid

    with Early("early", realm=f"t{uuid.uuid4().hex[:8]}") as hero:
        assert hero.first == "pong" and hero.ping() == "pong"
