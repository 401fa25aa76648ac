"""Calls published to a HERO and answered the same way (``heros.rpc``), between peers of ours:
what goes that way, what falls back to queries, and what a wrong or hostile request does."""

from __future__ import annotations

import os
import threading
import time

import msgpack
import numpy as np
import pytest
import zenoh

from heros import LocalHERO, RemoteHERO, RemoteTimeoutError, RemoteTransportError, rpc


class Late(LocalHERO):
    def late(self) -> None:
        raise TimeoutError("the instrument did not answer in 2 s")


def _replier_count(server) -> int:
    server.send("eval len(heroes['dev']._heros_calls.repliers._publishers)")
    return int(server.wait_line("OK").split()[1])


def test_calls_reads_and_writes_of_a_hero_of_ours_are_published(realm, spawn):
    """The proxy sends to the session that serves the HERO; the HERO answers on the caller's reply key."""
    server = spawn(realm, "Device:dev")
    with RemoteHERO("dev", realm=realm) as dev:
        server.send("eval str(heroes['dev']._session.info.zid())")
        assert server.wait_line("OK") == f"OK '{dev._heros_server}'"
        made = next(rpc._ids)
        assert dev.add(1, 2) == 3
        dev.gain = 4.5
        assert dev.gain == 4.5
        assert next(rpc._ids) == made + 4  # three requests published in between
        assert dev._heros_call_publisher.publisher.key_expr == rpc.request_key(realm, "dev", dev._heros_server)
        assert _replier_count(server) == 1  # one calling thread: one reply key
        with pytest.raises(ValueError, match="above the limit of 400 K"):
            dev.setpoint = 500  # an error answer, rebuilt as the built-in class
        with pytest.raises(TypeError, match="must be an int"):
            dev.add("x")


def test_many_threads_each_get_their_own_answers(realm, spawn):
    server = spawn(realm, "Device:dev")
    wrong: list = []
    with RemoteHERO("dev", realm=realm) as dev:
        def work(k: int) -> None:
            for i in range(200):
                got = dev.add(k, i)
                if got != k + i:
                    wrong.append((k, i, got))

        threads = [threading.Thread(target=work, args=(1000 * k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads)
        assert wrong == []
        assert _replier_count(server) == 8


def test_large_answers_are_published_whole_or_fetched_in_parts(realm, spawn):
    """An answer too large to publish with its header goes whole through shared memory, the header
    attached; one larger than ``bulk.PART_BYTES`` waits on the HERO until its caller fetches it by
    query (in parts), and nothing stays behind. A large request goes as a query."""
    from heros import bulk

    server = spawn(realm, "Device:dev")
    with RemoteHERO("dev", realm=realm) as dev:
        made = next(rpc._ids)
        sizes = (10, 1 << 17, bulk.PART_BYTES // 8 + 1, 3 * bulk.PART_BYTES // 8)  # 80 bytes, 1 MiB, 2 and 3 parts
        for n in sizes:
            np.testing.assert_array_equal(dev.array(n), np.arange(n, dtype="float64"))
        assert next(rpc._ids) == made + len(sizes) + 1  # all published
        assert dev.echo(b"x" * (rpc.SMALL + 1)) == b"x" * (rpc.SMALL + 1)  # a large request goes by query
        assert next(rpc._ids) == made + len(sizes) + 2
        assert dev.add(1) == 3  # and the next call is answered as before
        server.send("eval (len(heroes['dev']._heros_calls.held._items), heroes['dev']._heros_calls.held._bytes)")
        assert server.wait_line("OK") == "OK (0, 0)"


def test_a_timeout_the_hero_raises_is_not_taken_for_the_call_timing_out(realm):
    with Late("late", realm=realm), RemoteHERO("late", realm=realm) as proxy:
        with pytest.raises(TimeoutError, match="the instrument did not answer in 2 s") as raised:
            proxy.late()
        assert not isinstance(raised.value, RemoteTimeoutError)
        assert proxy._heros_call_publisher is not None  # (it went the published way)


def test_a_timeout_and_the_late_answer_after_it(realm, spawn):
    """A published call waits no longer than its timeout; its answer, arriving later, is not taken
    for the answer to the next call of the same thread."""
    server = spawn(realm, "Device:dev")
    with RemoteHERO("dev", realm=realm) as dev:
        started = time.monotonic()
        with pytest.raises(RemoteTimeoutError, match="did not answer 'sleep' within 0.3 s"):
            dev.sleep.with_timeout(0.3)(1.0)
        assert time.monotonic() - started < 0.9
        deadline = time.monotonic() + 10
        while dev.in_flight() and time.monotonic() < deadline:  # until the late answer has been sent
            time.sleep(0.05)
        assert dev.in_flight() == 0
        assert [dev.add(i) for i in range(5)] == [2, 3, 4, 5, 6]
        assert dev.sleep(0.01) == 0.01
    assert server.proc.poll() is None


def test_a_call_to_a_hero_whose_process_dies_fails_at_once(realm, spawn):
    """Not after the timeout: the HERO's subscriber goes with its process, and the call is woken."""
    server = spawn(realm, "Device:dev")
    with RemoteHERO("dev", realm=realm, timeout=30) as dev:
        assert dev.add(1) == 3
        killer = threading.Timer(0.5, server.kill)
        killer.start()
        started = time.monotonic()
        with pytest.raises(RemoteTransportError, match="is not reachable"):
            dev.sleep(20)
        assert time.monotonic() - started < 10
        with pytest.raises(RemoteTransportError, match="is not reachable"):
            dev.add(1)


def test_a_serial_hero_runs_one_request_at_a_time_whichever_way_it_came(realm, spawn):
    """Published calls and queries of the same serial HERO never overlap."""
    spawn(realm, "Serial:dev")
    with RemoteHERO("dev", realm=realm) as published, RemoteHERO("dev", realm=realm) as queried:
        queried._heros_server = None  # this proxy asks by query
        threads = [threading.Thread(target=p.sleep, args=(0.2,)) for p in (published, queried, published, queried)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert published.peak_concurrency() == 1


def test_a_hero_nobody_subscribes_for_is_asked_by_query(realm, spawn):
    """A proxy whose HERO does not subscribe to published calls (an older version of this library,
    here: another session's id) asks by query and gets the same answers."""
    spawn(realm, "Device:dev")
    with RemoteHERO("dev", realm=realm) as dev:
        dev._heros_server = "0" * 32
        dev._heros_call_publisher = None
        made = next(rpc._ids)
        assert dev.add(2) == 4
        dev.label = "by query"
        assert dev.label == "by query"
        assert next(rpc._ids) == made + 1  # nothing published


def test_wrong_and_hostile_requests_leave_the_hero_serving(realm, spawn):
    """Requests too short for their header, with lengths beyond their end, with a reply key
    outside the reply keys, with garbage bodies or for members that do not exist: no answer goes
    anywhere but to a reply key, and the HERO keeps serving."""
    server = spawn(realm, "Device:dev")
    with RemoteHERO("dev", realm=realm) as dev:
        assert dev.add(1) == 3
        zid = dev._heros_server
    session = zenoh.open(zenoh.Config.from_json5(os.environ["HEROS_ZENOH_CONFIG"]))
    try:
        event_key = f"@object/{realm}/dev/_event/changed"
        leaked: list = []
        spy = session.declare_subscriber(event_key, lambda sample: leaked.append(sample))  # an answer sent there lands here
        reply_key = f"@object/{realm}/_reply/{session.info.zid()}/x"
        answers = session.declare_subscriber(reply_key, zenoh.handlers.FifoChannel(64))
        enc = zenoh.Encoding("application/msgpack")
        requests = session.declare_publisher(rpc.request_key(realm, "dev", zid))
        deadline = time.monotonic() + 10
        while not requests.matching_status.matching and time.monotonic() < deadline:  # a new session learns the HERO's subscriber
            time.sleep(0.01)
        assert requests.matching_status.matching

        def request(ident: int, member: str, key: str, body: bytes) -> bytes:
            m, k = member.encode(), key.encode()
            return ident.to_bytes(8, "little") + len(m).to_bytes(2, "little") + len(k).to_bytes(2, "little") + m + k + body

        add = msgpack.packb([[1, 2], {}])
        for payload in (b"", b"\x07" * 11, request(7, "add", reply_key, add)[:20], request(7, "add", event_key, add),
                        request(7, "add", f"@object/{realm}/_reply/*", add), request(7, "add", reply_key, b"\xc1\xff\x00"),
                        request(7, "nothing_here", reply_key, msgpack.packb([[], {}])), request(7, "a/b", reply_key, add),
                        request(7, "**", reply_key, add), request(8, "add", reply_key, add)):
            requests.put(payload, encoding=enc)
        got = []
        deadline = time.monotonic() + 20
        while len(got) < 5 and time.monotonic() < deadline:
            sample = answers.handler.try_recv()
            if sample is None:
                time.sleep(0.01)
                continue
            got.append(sample.payload.to_bytes())
        statuses = sorted((a[:8], a[8]) for a in got)
        seven, eight = (7).to_bytes(8, "little"), (8).to_bytes(8, "little")
        assert statuses == [(seven, rpc.ERROR), (seven, rpc.ERROR), (seven, rpc.NOBODY), (seven, rpc.NOBODY), (eight, rpc.OK)], got
        assert [a[9:] for a in got if a[8] == rpc.OK] == [msgpack.packb(3)]
        with RemoteHERO("dev", realm=realm) as dev:
            assert dev.add(5) == 7
        assert leaked == []
        spy.undeclare()
    finally:
        session.close()
    assert server.proc.poll() is None
