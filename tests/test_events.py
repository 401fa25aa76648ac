"""Events and callbacks: the four cases, reliability, ordering, isolation, EventObserver, attribute changes."""

from __future__ import annotations

import logging
import os
import queue
import threading
import time

import msgpack
import numpy as np
import pytest
import zenoh

import heros.local
import heros.remote
from heros import EventObserver, LocalHERO, RemoteHERO, event, keys, tools
from heros import zenoh as hz
from heros.event import reliable


class Alarm(LocalHERO):
    """Served by the test process: emits locally."""

    level: int = 0

    @event
    def tripped(self, value: int) -> int:
        return value

    @reliable
    @event
    def reliable_first(self) -> str:
        return "r"

    @event
    @reliable
    def event_first(self) -> str:
        return "e"


def collect(n: int, timeout: float = 30.0):
    """A callback and a function that waits (bounded) until it saw ``n`` values."""
    seen: list = []
    threads: set = set()
    done = threading.Event()

    def cb(value):
        seen.append(value)
        threads.add(threading.current_thread().name)
        if len(seen) >= n:
            done.set()

    def wait():
        assert done.wait(timeout), f"saw {len(seen)} of {n}"
        return seen

    cb.threads = threads
    return cb, wait


def wait_until(predicate, timeout=20.0, interval=0.01):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def test_reliable_works_in_either_decorator_order(realm):
    with Alarm("alarm", realm=realm) as alarm:
        assert alarm.reliable_first.reliable and alarm.event_first.reliable and not alarm.tripped.reliable
        assert alarm.reliable_first() == "r" and alarm.event_first() == "e"
        caps = {c.name: c.to_dict() for c in alarm.capabilities}
        assert caps["reliable_first"]["flavor"] == "event" and caps["reliable_first"].get("reliable") is True


def test_case_a_local_event_local_callback_and_errors_are_isolated(realm, caplog):
    with Alarm("alarm", realm=realm) as alarm:
        seen = []

        def bad(value):
            raise RuntimeError("callback broke")

        alarm.tripped.connect(bad)
        alarm.tripped.connect(seen.append)
        alarm.tripped.connect(seen.append)  # twice: fires once
        with caplog.at_level(logging.ERROR, logger="heros.event"):
            assert alarm.tripped(3) == 3  # the emitter never sees the callback's error
        assert seen == [3]
        assert any("alarm.tripped" in r.getMessage() and "raised" in r.getMessage() for r in caplog.records)
        assert alarm.tripped.is_callback(seen.append)
        names = [c["name"] for c in alarm.tripped.get_callbacks()]
        assert len(names) == 2 and all(c["context"] == "LocalHERO" for c in alarm.tripped.get_callbacks())
        assert alarm.tripped.disconnect(bad) is True and alarm.tripped.disconnect(bad) is False
        alarm.tripped(4)
        assert seen == [3, 4]


def test_case_b_local_event_remote_callback(realm, spawn):
    spawn(realm, "Recorder:bob")
    with Alarm("alarm", realm=realm) as alarm, RemoteHERO("bob", realm=realm) as bob:
        assert alarm.tripped.connect(bob.record) == "bob.record"
        assert alarm.tripped.connect(bob.record) == "bob.record"  # duplicate: once
        for i in range(5):
            alarm.tripped(i)
        assert wait_until(lambda: len(bob.seen()) >= 5)
        assert sorted(bob.seen()) == [0, 1, 2, 3, 4]
        [cb] = alarm.tripped.get_callbacks()
        assert cb["is_remote_hero"] and cb["name"] == "bob.record"


def test_case_c_remote_event_local_callback_in_order_off_zenoh_threads(realm, spawn):
    spawn(realm, "Device:dev")
    with RemoteHERO("dev", realm=realm) as dev:
        cb, wait = collect(50)
        dev.changed.connect(cb)
        dev.changed.connect(cb)  # duplicate: once
        for i in range(50):
            dev.emit_changed(i)
        assert wait() == list(range(50))
        assert not any("pyo3" in t for t in cb.threads) and threading.main_thread().name not in cb.threads
        assert dev.changed.get_callbacks()[0]["context"] == "RemoteHERO"
        declared = len(dev._declared)
        assert dev.changed.disconnect(cb) is True
        assert len(dev._declared) == declared - 1  # the last callback gone: the subscription is released
        again, wait_again = collect(1)
        dev.changed.connect(again)  # and comes back with the next one
        dev.emit_changed("again")
        assert wait_again() == ["again"]


def test_a_remote_callback_that_raises_does_not_stop_the_others(realm, spawn, caplog):
    spawn(realm, "Device:dev")
    with RemoteHERO("dev", realm=realm) as dev:
        cb, wait = collect(3)
        dev.changed.connect(lambda v: 1 / 0)
        dev.changed.connect(cb)
        with caplog.at_level(logging.ERROR, logger="heros.event"):
            for i in range(3):
                assert dev.emit_changed(i) == i
            assert wait() == [0, 1, 2]
        assert any(".changed raised" in r.getMessage() for r in caplog.records)


def test_callbacks_connected_and_disconnected_one_by_one_get_exactly_what_follows(realm, spawn, caplog):
    """One callback is called directly by the subscription, several through the event's own loop:
    each change of the set takes effect from the next sample on, and a lone callback that raises
    is logged like any other."""
    spawn(realm, "Device:dev")
    bad_seen: list = []

    def bad(value):
        bad_seen.append(value)
        raise ZeroDivisionError("bad callback")

    with RemoteHERO("dev", realm=realm) as dev, caplog.at_level(logging.ERROR, logger="heros"):
        dev.changed.connect(bad)
        assert dev.emit_changed(0) == 0
        assert wait_until(lambda: bad_seen == [0]), bad_seen
        assert wait_until(lambda: any("dev.changed" in r.getMessage() and "raised" in r.getMessage() and r.exc_info
                                      for r in caplog.records))  # logged once the callback has raised
        a, wait_a = collect(1)
        dev.changed.connect(a)
        dev.emit_changed(1)
        assert wait_a() == [1] and wait_until(lambda: bad_seen == [0, 1]), bad_seen
        assert dev.changed.disconnect(bad)
        dev.emit_changed(2)
        assert wait_until(lambda: len(wait_a()) == 2)
        b, wait_b = collect(1)
        dev.changed.connect(b)
        dev.emit_changed(3)
        assert wait_b() == [3]
        assert dev.changed.disconnect(a)
        dev.emit_changed(4)
        assert wait_until(lambda: len(wait_b()) == 2)
        assert wait_b() == [3, 4] and wait_a() == [1, 2, 3] and bad_seen == [0, 1]


CONNECT_AND_EXIT = """
from heros import RemoteHERO
alice = RemoteHERO("alice", realm={realm!r})
bob = RemoteHERO("bob", realm={realm!r})
print(alice.changed.connect(bob.record))
print(alice.changed.connect(bob.record))
"""


def test_case_d_remote_event_remote_callback_survives_the_connecting_process(realm, spawn, run_script):
    spawn(realm, "Device:alice")
    spawn(realm, "Recorder:bob")
    result = run_script(CONNECT_AND_EXIT.format(realm=realm))  # EVE: connects, then exits
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["bob.record", "bob.record"]
    with RemoteHERO("alice", realm=realm) as alice, RemoteHERO("bob", realm=realm) as bob:
        for i in range(3):
            alice.emit_changed(i)
        assert wait_until(lambda: len(bob.seen()) >= 3)
        # fired once each: the duplicate connect did not double it (bob serves calls on two threads,
        # so fire-and-forget calls sent in order may run in either order)
        assert sorted(bob.seen()) == [0, 1, 2]
        cbs = alice.changed.get_callbacks()
        assert [(c["name"], c["context"], c["is_remote_hero"]) for c in cbs] == [("bob.record", "LocalHERO", True)]
        assert alice.changed.is_callback(bob.record)
        assert alice.changed.disconnect(bob.record) is True
        alice.emit_changed(99)
        assert alice.emit_changed(100) == 100
        assert 99 not in bob.seen()


def test_reliable_burst_of_10000_arrives_complete_and_in_order(realm, spawn):
    spawn(realm, "Device:dev")
    with RemoteHERO("dev", realm=realm, timeout=60) as dev:
        cb, wait = collect(10_000, timeout=60)
        dev.burst_item.connect(cb)
        assert dev.emit_burst(10_000) == 10_000
        assert wait() == list(range(10_000))


def test_a_slow_or_dead_callback_target_never_stalls_the_emitter(realm, spawn):
    spawn(realm, "Device:dev")
    target = spawn(realm, "Recorder:slow:delay=1.0")
    with RemoteHERO("dev", realm=realm) as dev, RemoteHERO("slow", realm=realm) as slow:
        dev.changed.connect(slow.record)
        dev.emit_timed(20)  # 20 events, each making the target sleep 1 s
        assert len(slow.seen()) < 20  # the emitter returned before the target finished them
        assert wait_until(lambda: len(slow.seen()) == 20, timeout=30)  # and none was lost
        target.kill()
        assert dev.emit_timed(20) >= 0  # a dead target: the emitter carries on
        assert dev.add(1) == 3


def test_event_observer_over_heroes_in_two_processes(realm, spawn):
    spawn(realm, "Device:a")
    spawn(realm, "Device:b", "Hub:c")
    got = queue.Queue()
    with EventObserver("*", "changed", realm=realm) as ob, RemoteHERO("a", realm=realm) as a, RemoteHERO("b", realm=realm) as b:
        uid = ob.register_callback(lambda name, value: got.put((name, value)))
        assert ob.register_callback(ob._event_callbacks[uid]) is False
        a.emit_changed(1)
        b.emit_changed(2)
        assert {got.get(timeout=20), got.get(timeout=20)} == {("a", 1), ("b", 2)}
        assert ob.remove_callback_uid(uid) is True
        with pytest.raises(KeyError):
            ob.remove_callback_uid(uid)
    with EventObserver("b", "changed", realm=realm) as only_b, RemoteHERO("a", realm=realm) as a, RemoteHERO("b", realm=realm) as b:
        seen = queue.Queue()
        handler = lambda name, value: seen.put(name)
        only_b.register_callback(handler)
        a.emit_changed(1)
        b.emit_changed(2)
        assert seen.get(timeout=20) == "b"
        assert only_b.remove_callback(handler) is True and only_b.remove_callback(handler) is False
    with pytest.raises(ValueError, match="one key chunk"):
        EventObserver("a/b", "changed", realm=realm)


def test_attribute_changes_are_published_for_remote_and_local_writes(realm, spawn):
    spawn(realm, "Device:dev")
    with RemoteHERO("dev", realm=realm) as dev, RemoteHERO("dev", realm=realm) as other_client:
        cb, wait = collect(4)
        sub = dev._watch_attribute("label", cb)
        other_client.label = "from another client"
        dev.set_label_locally("from its own code")
        dev.label = "from me"
        dev.label = "from me"  # the same value again is still a write
        assert wait() == ["from another client", "from its own code", "from me", "from me"]
        setpoints, wait_sp = collect(1)
        dev._watch_attribute("setpoint", setpoints)
        dev.setpoint = 250
        assert wait_sp() == [250.0]  # a property publishes what its getter returns after the write
        sub.close()
        with pytest.raises(AttributeError, match="not an attribute"):
            dev._watch_attribute("add", print)


def test_a_watcher_gets_every_write_made_after_it_started_watching(realm, spawn):
    """A write trusts zenoh's last answer to whether anybody watches the attribute for
    ``WATCH_RECHECK`` seconds (here a minute, so that the answer "nobody" is certain to be trusted).
    A watcher of ours tells the HERO once it has subscribed, so no write after that goes
    unpublished: for one attribute, and for all of them (the panels' way)."""
    server = spawn(realm, "Device:dev")
    server.send("eval setattr(sys.modules['heros.local'], 'WATCH_RECHECK', 60.0)")
    server.wait_line("OK")
    with RemoteHERO("dev", realm=realm) as dev:
        dev.label = "nobody watches"
        dev.counter = 1
        # A write's publication follows its answer: wait until the HERO has asked zenoh about both
        # (and heard "nobody"), or a subscriber declared at once could be the answer it trusts.
        asked = "[(w.next_look > 0, w.watched) for w in map(heroes['dev']._heros_publishers.get, ('label', 'counter'))]"
        deadline = time.monotonic() + 10
        while True:
            server.send(f"eval {asked}")
            state = server.wait_line("OK")
            if state == "OK [(True, False), (True, False)]" or time.monotonic() > deadline:
                break
        assert state == "OK [(True, False), (True, False)]"
        labels, wait_label = collect(1, timeout=10)
        one = dev._watch_attribute("label", labels)
        dev.label = "watched"
        assert wait_label() == ["watched"]
        changes, wait_all = collect(1, timeout=10)
        every = tools.watch_attributes(dev, lambda name, value: changes((name, value)))
        dev.counter = 2
        assert wait_all() == [("counter", 2)]
        one.close()
        every.close()
        with pytest.raises(TypeError, match=r"a watch request carries \[\[attribute names\], \{\}\]"):
            dev._heros_request(dev._heros_key(keys.WATCH), keys.WATCH, [["label"]], 10.0)


def test_a_watcher_that_does_not_tell_gets_the_writes_spaced_beyond_the_recheck(realm, spawn):
    """A subscriber that does not tell the HERO it watches (an older version of this library, or
    raw zenoh) is seen within ``WATCH_RECHECK`` of zenoh knowing it: from then on, writes further
    apart than that all reach it, as every write did before writes trusted zenoh's answer."""
    spawn(realm, "Device:dev")
    session = zenoh.open(zenoh.Config.from_json5(os.environ["HEROS_ZENOH_CONFIG"]))
    seen: queue.SimpleQueue = queue.SimpleQueue()
    raw = session.declare_subscriber(keys.attr_change_key(realm, "dev", "counter"),
                                     lambda sample: seen.put(msgpack.unpackb(sample.payload.to_bytes())))
    spacing = 2 * heros.local.WATCH_RECHECK
    try:
        with RemoteHERO("dev", realm=realm) as dev:
            deadline = time.monotonic() + 10
            value = 0
            while seen.empty():  # until the HERO's zenoh knows the subscriber (the hub tells it)
                assert time.monotonic() < deadline, "no write reached the raw subscriber within 10 s"
                value += 1
                dev.counter = value
                time.sleep(spacing)
            for value in range(100, 110):
                time.sleep(spacing)  # (the spacing is what the test is about)
                dev.counter = value
            got = []
            while not got or got[-1] != 109:  # (anything before 100 was still finding the subscriber)
                got.append(seen.get(timeout=10))
            assert 100 in got and got[got.index(100):] == list(range(100, 110)), got
    finally:
        raw.undeclare()
        session.close()


class BusyOneAtATime(LocalHERO):
    """Serves one request at a time; ``hold`` keeps it busy until ``release``."""

    _hero_serial = True
    level: int = 0

    def __init__(self, name: str, realm: str) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        super().__init__(name, realm=realm)

    def hold(self) -> None:
        self.entered.set()
        self.release.wait(20)


def test_starting_to_watch_a_busy_serial_hero_waits_for_it_only_so_long(realm, monkeypatch):
    """A serial HERO busy in a long call answers nothing else until it returns, a watcher's word
    neither: starting to watch waits for that answer at most ``WATCH_TIMEOUT``, and the writes
    after the long call reach the watcher all the same."""
    monkeypatch.setattr(heros.remote, "WATCH_TIMEOUT", 0.5)
    with BusyOneAtATime("busy", realm) as hero, RemoteHERO("busy", realm=realm) as proxy:
        caller = threading.Thread(target=proxy.hold)
        caller.start()
        try:
            assert hero.entered.wait(10)
            changes, wait = collect(1, timeout=10)
            started = time.monotonic()
            sub = proxy._watch_attribute("level", changes)
            took = time.monotonic() - started
        finally:
            hero.release.set()
            caller.join(10)
        assert 0.4 < took < 3.0, took
        proxy.level = 3
        assert wait() == [3]
        sub.close()


class SlowToPublish(LocalHERO):
    """Its publications wait for ``release``: a remote write must be answered all the same."""

    level: int = 0

    def __init__(self, name: str, realm: str) -> None:
        self.release = threading.Event()
        self.published: queue.SimpleQueue[str] = queue.SimpleQueue()
        super().__init__(name, realm=realm)

    @property
    def checked(self) -> int:
        return self.level

    @checked.setter
    def checked(self, value: int) -> None:
        self.level = value
        if value < 0:
            raise ValueError(f"checked must not be negative, got {value}")

    def _heros_publish_attribute(self, name: str) -> None:
        self.release.wait(20)
        self.published.put(name)
        super()._heros_publish_attribute(name)


def test_a_remote_write_is_answered_before_its_value_is_published(realm):
    """The writer does not wait for the publication to the watchers, which follows the answer; a
    write that fails after it changed a watched attribute still publishes that change."""
    with SlowToPublish("slow", realm) as hero, RemoteHERO("slow", realm=realm) as proxy:
        changes, wait = collect(2)
        proxy._watch_attribute("level", changes)
        proxy.level = 5  # answered while the publication waits
        assert hero.level == 5 and hero.published.empty()
        hero.release.set()
        assert hero.published.get(timeout=20) == "level"
        with pytest.raises(ValueError, match="must not be negative"):
            proxy.checked = -1
        assert hero.published.get(timeout=20) == "level"  # what the setter changed before it failed
        assert wait() == [5, -1]


def test_what_is_not_plain_msgpack_is_marked_and_every_kind_arrives_on_our_keys(realm, spawn):
    """Our subscribers read a sample's encoding only when it carries ``NOT_PLAIN`` (heros.zenoh):
    plain values go unmarked, arrays out of band and anything in another encoding are marked, and
    all of them arrive as they were sent, in events and in attribute changes alike."""
    spawn(realm, "Device:dev")
    session = zenoh.open(zenoh.Config.from_json5(os.environ["HEROS_ZENOH_CONFIG"]))
    raw: queue.SimpleQueue = queue.SimpleQueue()
    watcher = session.declare_subscriber(keys.event_key(realm, "dev", "changed"),
                                         lambda s: raw.put((s.attachment.to_bytes() if s.attachment is not None else None, str(s.encoding))))
    try:
        with RemoteHERO("dev", realm=realm) as dev:
            values = [1.5, {"a": [1, 2]}, np.arange(8192.0), np.arange(4.0), "text"]  # the large array goes out of band
            cb, wait = collect(len(values))
            dev.changed.connect(cb)
            changes, wait_changes = collect(2)
            dev._watch_attribute("items", changes)
            time.sleep(0.3)  # the subscriptions reach the HERO's session
            for value in values:
                dev.emit_changed(value)
            seen = wait()
            for got, sent in zip(seen, values, strict=True):
                np.testing.assert_equal(got, sent)
            marks = [raw.get(timeout=10) for _ in values]
            assert [mark for mark, _ in marks] == [None, None, hz.NOT_PLAIN, None, None], marks
            assert all(encoding.startswith("application/msgpack") for _, encoding in marks)
            dev.items = [np.arange(5000.0)]
            dev.items = [7]
            got_items = wait_changes()
            np.testing.assert_equal(got_items[0], [np.arange(5000.0)])
            assert got_items[1] == [7]
    finally:
        watcher.undeclare()
        session.close()


def test_events_on_a_hero_of_this_process_publish_to_remote_subscribers(realm):
    code = (
        "import sys, threading\n"
        "from heros import RemoteHERO\n"
        f"alarm = RemoteHERO('alarm', realm={realm!r})\n"
        "got = threading.Event(); values = []\n"
        "alarm.tripped.connect(lambda v: (values.append(v), got.set()))\n"
        "print('SUBSCRIBED', flush=True)\n"
        "assert got.wait(20)\n"
        "print('GOT', values[0])\n"
    )
    import subprocess
    import sys

    with Alarm("alarm", realm=realm) as alarm:
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == "SUBSCRIBED"
            assert wait_until(lambda: (alarm.tripped(7), proc.poll() is not None)[1], timeout=20, interval=0.05)
            assert proc.stdout.read().strip() == "GOT 7"
        finally:
            proc.kill()
