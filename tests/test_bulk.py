"""Large payloads (``heros.bulk``): whole and in order both ways, through shared memory on one host,
over the network without it, and nothing a bad or dying peer does breaks a HERO or leaks memory.

Sizes straddle the thresholds: below and at ``SHARED_MIN_BYTES`` (shared memory from there on), at
and just past ``PART_BYTES`` (parts from there on), several parts, and a 64 MiB camera frame.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zenoh
from jupyter_helpers import wait_until
from servers import digest, pattern

from heros import RemoteHERO, bulk, codec, keys
from heros import zenoh as hz
from heros.exceptions import CodecError
from heros.tools import subscribe

MIN, PART = bulk.SHARED_MIN_BYTES, bulk.PART_BYTES
SIZES = [0, 1000, MIN - 1, MIN, PART, PART + 1, 3 * PART + 5]


@pytest.fixture
def bulk_hero(realm: str, spawn: Any) -> Any:
    proc = spawn(realm, "Bulk:cam")
    hero = RemoteHERO("cam", realm=realm)
    yield hero, proc
    hero._destroy_hero()


def shm_files_of(pid: int) -> set[str]:
    """The /dev/shm segments of zenoh a process has mapped."""
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return set()
    return set(re.findall(r"(/dev/shm/\d+\.zenoh)", maps))


def frame_collector(count: int, hold: threading.Event | None = None) -> tuple[Any, list[str], threading.Event]:
    """A callback recording the digest of each frame (after ``hold`` is set, if given; bounded), the
    digests, and an event set once ``count`` frames arrived."""
    got: list[str] = []
    done = threading.Event()

    def on_frame(value: Any) -> None:
        if hold is not None:
            hold.wait(10)
        got.append(digest(value))
        if len(got) == count:
            done.set()

    return on_frame, got, done


# --- whole, both ways ---------------------------------------------------------------------------------


@pytest.mark.parametrize("n", SIZES)
def test_arrays_and_bytes_arrive_whole_both_ways(bulk_hero: Any, n: int) -> None:
    cam, _ = bulk_hero
    got = cam.make(n, seed=n)
    assert isinstance(got, np.ndarray) and got.dtype == np.uint8
    assert digest(got) == digest(pattern(n, n))  # returned
    assert cam.digest(pattern(n, n + 1)) == digest(pattern(n, n + 1))  # passed
    cam.frame = pattern(n, n + 2)  # written
    assert cam.frame_digest() == digest(pattern(n, n + 2))
    assert digest(cam.frame) == digest(pattern(n, n + 2))  # read
    assert digest(cam.make_bytes(n, n + 3)) == digest(pattern(n, n + 3).tobytes())
    assert cam.digest(pattern(n, n + 4).tobytes()) == digest(pattern(n, n + 4).tobytes())


def test_a_64_mib_frame_and_several_arrays_in_one_payload(bulk_hero: Any) -> None:
    cam, _ = bulk_hero
    n = 64 << 20
    frame = pattern(n, 7)
    assert cam.digest(frame) == digest(frame)
    assert digest(cam.make(n, 8)) == digest(pattern(n, 8))
    sizes = [PART - 3, 17, 2 * PART + 1, MIN]
    many = cam.make_many(sizes, 100)
    assert many["seed"] == 100 and [digest(a) for a in many["arrays"]] == [digest(pattern(s, 100 + i)) for i, s in enumerate(sizes)]


def test_arrays_that_arrive_in_parts_are_read_only_views_as_every_received_array_is(bulk_hero: Any) -> None:
    cam, _ = bulk_hero
    for n in (MIN + 1, 3 * PART):
        got = cam.make(n, 1)
        assert not got.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            got[0] = 1
        copy = got.copy()
        copy[0] ^= 1  # a copy is the receiver's to change
        assert copy[0] != got[0]


# --- shared memory on one host, the network otherwise ---------------------------------------------------


def test_same_host_payloads_go_through_shared_memory_both_ways(bulk_hero: Any) -> None:
    import heros.zenoh as z

    cam, proc = bulk_hero
    before = cam.shared_memory()
    assert digest(cam.make(2 * PART, 3)) == digest(pattern(2 * PART, 3))
    after = cam.shared_memory()
    assert after["used"] >= before["used"] + 2 and after["full"] == 0
    assert bulk.POOL_MIN_BYTES <= after["size"] <= bulk.POOL_MAX_BYTES
    assert shm_files_of(proc.proc.pid), "the HERO maps no zenoh segment"
    mine = z.shared_memory()["used"]
    assert cam.digest(pattern(2 * PART, 4)) == digest(pattern(2 * PART, 4))
    assert z.shared_memory()["used"] >= mine + 2  # the caller's upload


def test_medium_payloads_take_the_small_pool_and_overflow_into_the_large_one(bulk_hero: Any, realm: str, run_script: Any) -> None:
    cam, _ = bulk_hero
    n = 3 << 19  # 1.5 MiB: with its header still within NEAR_MAX_BYTES
    before = cam.shared_memory()
    for seed in range(3):
        assert digest(cam.make(n, seed)) == digest(pattern(n, seed))
    after = cam.shared_memory()
    assert after["small"] == before["small"] + 3 and after["used"] == before["used"] + 3
    # the caller's small pool, in a process of its own: in this one, payloads of earlier tests may
    # still hold all of it (the argument then rightly takes the large pool)
    result = run_script(f"""
import heros.zenoh as z
from heros import RemoteHERO
from servers import digest, pattern
cam = RemoteHERO("cam", realm={realm!r})
assert cam.digest(pattern({n}, 7)) == digest(pattern({n}, 7))
mine = z.shared_memory()
assert mine["used"] == 1 and mine["small"] == 1, mine
print("OK")
""", timeout=60)
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr[-2000:]
    # more in flight than the small pool holds: a stalled callback leaves frames waiting in zenoh's channel
    count, release = 12, threading.Event()
    on_frame, got, done = frame_collector(count, hold=release)
    sub = subscribe(cam, "frame_out", on_frame, reliable=True)
    try:
        time.sleep(0.3)  # the subscriber's declaration reaches the HERO's publisher (no event to await)
        calling = threading.Thread(target=lambda: cam.publish(n, 50, count))
        calling.start()
        # six frames out (the small pool of 8 MiB holds five) while the callback still holds the first
        wait_until(lambda: cam.shared_memory()["used"] >= after["used"] + 6, 30, "six frames sent")
        release.set()
        calling.join(30)
        assert done.wait(30), f"{len(got)} of {count} frames arrived"
        assert got == [digest(pattern(n, 50 + i)) for i in range(count)]
        final = cam.shared_memory()
        assert final["used"] == after["used"] + count and final["full"] == 0
        assert final["small"] >= after["small"] + 1
    finally:
        sub.close()


def test_without_shared_memory_payloads_still_arrive_in_parts(realm: str, spawn: Any, run_script: Any) -> None:
    """A peer whose zenoh has shared memory off (as a peer on another host): the HERO's shared
    memory buffers reach it over the network, and its own payloads go as bytes."""
    spawn(realm, "Bulk:cam")
    config = json.loads(os.environ["HEROS_ZENOH_CONFIG"])
    config["transport"] = {"shared_memory": {"enabled": False}}
    result = run_script(f"""
import heros.zenoh as z
from heros import RemoteHERO
from servers import digest, pattern
cam = RemoteHERO("cam", realm={realm!r})
n = {3 * PART + 11}
assert digest(cam.make(n, 5)) == digest(pattern(n, 5))
assert cam.digest(pattern(n, 6)) == digest(pattern(n, 6))
assert z.shared_memory() == {{"size": 0, "used": 0, "small": 0, "full": 0}}, z.shared_memory()
print("OK")
""", env={"HEROS_ZENOH_CONFIG": json.dumps(config)}, timeout=120)
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr[-2000:]


def test_heros_shm_mb_bounds_the_pool_and_zero_turns_it_off(realm: str, spawn: Any) -> None:
    spawn(realm, "Bulk:small", env={"HEROS_SHM_MB": "16"})
    spawn(realm, "Bulk:none", env={"HEROS_SHM_MB": "0"})
    small, none = RemoteHERO("small", realm=realm), RemoteHERO("none", realm=realm)
    try:
        for hero in (small, none):
            assert digest(hero.make(3 * PART, 9)) == digest(pattern(3 * PART, 9))
        assert small.shared_memory()["size"] == 16 << 20 and small.shared_memory()["used"] >= 3
        assert none.shared_memory() == {"size": 0, "used": 0, "small": 0, "full": 0}
    finally:
        small._destroy_hero()
        none._destroy_hero()


# --- events ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reliable", [False, True])
def test_events_in_parts_arrive_whole_and_in_order(bulk_hero: Any, reliable: bool) -> None:
    cam, _ = bulk_hero
    n, count = 2 * PART + 3, 5
    on_frame, got, done = frame_collector(count)
    sub = subscribe(cam, "frame_out_r" if reliable else "frame_out", on_frame, reliable=reliable)
    try:
        time.sleep(0.3)  # the subscriber's declaration reaches the HERO's publisher (no event to await)
        assert cam.publish(n, 40, count, reliable) == count
        assert done.wait(30), f"{len(got)} of {count} frames arrived"
        assert got == [digest(pattern(n, 40 + i)) for i in range(count)]
        assert sub.dropped == 0
    finally:
        sub.close()


def test_a_reliable_event_travels_in_smaller_parts(bulk_hero: Any, realm: str) -> None:
    """A reliable subscriber that falls behind holds up to ``FIFO_CAPACITY`` samples in zenoh's
    channel: a reliable event's parts are of ``RELIABLE_PART_BYTES``, which bounds that memory."""
    from heros import subscription

    assert subscription.FIFO_CAPACITY * bulk.RELIABLE_PART_BYTES <= 1 << 30
    cam, _ = bulk_hero
    n = 2 * PART + 3
    sizes: dict[str, list[int]] = {"frame_out": [], "frame_out_r": []}
    session = zenoh.open(zenoh.Config.from_json5(os.environ["HEROS_ZENOH_CONFIG"]))
    lock = threading.Lock()

    def record(sample: Any) -> None:
        with lock:
            sizes[str(sample.key_expr).rsplit("/", 1)[1]].append(len(sample.payload))

    subs = [session.declare_subscriber(keys.event_key(realm, "cam", name), record) for name in sizes]
    try:
        time.sleep(0.3)  # the subscriptions reach the HERO's publishers (no event to await)
        cam.publish(n, 1, 1)
        cam.publish(n, 2, 1, True)
        wait_until(lambda: sum(sizes["frame_out"]) >= n and sum(sizes["frame_out_r"]) >= n, 20, "every part")
        with lock:
            assert max(sizes["frame_out"]) == PART and len(sizes["frame_out"]) == 3
            assert max(sizes["frame_out_r"]) == bulk.RELIABLE_PART_BYTES < PART
            assert len(sizes["frame_out_r"]) == -(-n // bulk.RELIABLE_PART_BYTES)
    finally:
        for sub in subs:
            sub.undeclare()
        session.close()


def test_a_malformed_part_is_left_out_and_the_next_event_still_arrives(bulk_hero: Any, realm: str, caplog: Any) -> None:
    cam, _ = bulk_hero
    got: list[Any] = []
    arrived = threading.Event()
    sub = subscribe(cam, "frame_out", lambda v: (got.append(v), arrived.set()))
    session = zenoh.open(zenoh.Config.from_json5(os.environ["HEROS_ZENOH_CONFIG"]))
    try:
        time.sleep(0.3)
        key = keys.event_key(realm, "cam", "frame_out")
        with caplog.at_level(logging.WARNING):
            for enc in ("application/msgpack;part=a,b", "application/msgpack;part=m,0,10", "application/msgpack;part=m,8,4",
                        "application/msgpack;part=m,0,99999999999999"):
                session.put(key, b"\x00" * 16, encoding=zenoh.Encoding(enc), attachment=hz.NOT_PLAIN)
            # unmarked, a sample on our key is plain msgpack (as our HEROs publish): this one is not
            session.put(key, b"\x00" * 16, encoding=zenoh.Encoding("application/msgpack;part=m,0,16"))
            cam.publish(10, 1, 1)
            assert arrived.wait(10)
        assert len(got) == 1 and digest(got[0]) == digest(pattern(10, 1))
        assert sum("malformed part" in r.getMessage() for r in caplog.records) == 4
        assert sum("could not decode a sample" in r.getMessage() for r in caplog.records) == 1
    finally:
        session.close()
        sub.close()


# --- requests that name an upload ------------------------------------------------------------------------


def raw_query(realm: str, member: str, encoding: str, payload: bytes = b"") -> Any:
    """Ask ``cam`` directly with a hand-made encoding; the decoded answer (an exception for an error reply)."""
    session = zenoh.open(zenoh.Config.from_json5(os.environ["HEROS_ZENOH_CONFIG"]))
    try:
        deadline = time.monotonic() + 10
        while True:  # a new session learns the HERO's queryable a moment after it opens
            try:
                reply = session.get(keys.member_key(realm, "cam", member), payload=payload, encoding=zenoh.Encoding(encoding),
                                    timeout=20).recv()
                break
            except zenoh.ZError:  # closed without a reply: nobody matched yet
                assert time.monotonic() < deadline, "the HERO never answered"
                time.sleep(0.05)
        sample = reply.ok if reply.ok is not None else reply.err
        return codec.decode(sample.payload.to_bytes(), str(sample.encoding))
    finally:
        session.close()


def test_an_upload_from_elsewhere_than_an_upload_key_of_the_realm_is_refused(bulk_hero: Any, realm: str) -> None:
    for key in ("@object/other/_upload/x/1", f"@object/{realm}/cam/digest", f"@object/{realm}/_upload/*/1"):
        answer = raw_query(realm, "digest", f"application/msgpack;upload={key},{PART + 1}")
        assert isinstance(answer, Exception) and "upload key of this realm" in str(answer), answer
    answer = raw_query(realm, "digest", "application/msgpack;upload=nonsense")
    assert isinstance(answer, Exception) and "malformed upload" in str(answer)


def test_an_upload_larger_than_the_hero_accepts_is_refused_before_it_is_fetched(bulk_hero: Any, realm: str) -> None:
    answer = raw_query(realm, "digest", f"application/msgpack;upload=@object/{realm}/_upload/x/1,{(1 << 30) + 1}")
    assert isinstance(answer, ValueError) and "more than this HERO accepts" in str(answer)


def test_an_upload_nobody_holds_fails_quickly_with_a_clear_error(bulk_hero: Any, realm: str) -> None:
    t0 = time.monotonic()
    answer = raw_query(realm, "digest", f"application/msgpack;upload=@object/{realm}/_upload/gone/1,{PART + 1}")
    assert isinstance(answer, Exception) and "did not arrive in full" in str(answer)
    assert time.monotonic() - t0 < 5


# --- releasing shared memory ------------------------------------------------------------------------------


def mapped_by_living_processes() -> set[str]:
    found: set[str] = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            found |= shm_files_of(int(entry.name))
    return found


def test_the_shared_memory_of_a_killed_hero_is_removed_by_the_next_process(realm: str, spawn: Any, run_script: Any) -> None:
    proc = spawn(realm, "Bulk:cam")
    cam = RemoteHERO("cam", realm=realm)
    try:
        assert digest(cam.make(2 * PART, 2)) == digest(pattern(2 * PART, 2))
        segments = shm_files_of(proc.proc.pid)  # its own, and those of peers it read from
        assert segments and all(os.path.exists(s) for s in segments)
        os.kill(proc.proc.pid, signal.SIGKILL)
        proc.proc.wait(10)  # a killed process cannot clean up: the next process that opens zenoh does
        result = run_script("import zenoh, os\nzenoh.open(zenoh.Config.from_json5(os.environ['HEROS_ZENOH_CONFIG'])).close()\n")
        assert result.returncode == 0, result.stderr
        left = {s for s in segments if os.path.exists(s)}
        assert len(left) < len(segments), "nothing of the killed HERO was removed"
        assert not left - mapped_by_living_processes(), "segments nobody uses stayed in /dev/shm"
    finally:
        cam._destroy_hero()


def test_callers_killed_while_fetching_leave_the_hero_serving(realm: str, spawn: Any, run_script: Any, tmp_path: Path) -> None:
    import subprocess
    import sys

    spawn(realm, "Bulk:cam")
    script = tmp_path / "fetch.py"
    script.write_text(f"""
from heros import RemoteHERO
cam = RemoteHERO("cam", realm={realm!r})
print("START", flush=True)
while True:
    cam.make({16 * PART}, 1)
""")
    for _ in range(4):
        p = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=os.environ.copy())
        try:
            assert p.stdout.readline().strip() == "START"
            time.sleep(0.3)  # in the middle of some transfer (no event marks one)
        finally:
            p.kill()
            p.wait(10)
    cam = RemoteHERO("cam", realm=realm)
    try:
        for seed in range(5):
            assert digest(cam.make(16 * PART, seed)) == digest(pattern(16 * PART, seed))
    finally:
        cam._destroy_hero()


# --- the planning and the putting together (one function each) -----------------------------------------


def test_plan_cuts_only_what_is_larger_than_a_part() -> None:
    assert bulk.plan(PART, "e") == [(0, PART, "e")]
    parts = bulk.plan(2 * PART + 1, "application/msgpack;oob=9")
    assert [(s, e) for s, e, _ in parts] == [(0, PART), (PART, 2 * PART), (2 * PART, 2 * PART + 1)]
    assert len({enc.split("part=")[1].split(",")[0] for _, _, enc in parts}) == 1
    assert all(enc.startswith("application/msgpack;oob=9;part=") for _, _, enc in parts)
    assert bulk.plan(2 * PART + 1, "e")[0][2] != parts[0][2]  # each message its own id


def test_slices_cover_a_range_of_pieces_without_copying() -> None:
    a, b = b"abcdef", memoryview(np.arange(10, dtype=np.uint8))
    got = list(bulk.slices([a, b, b"xyz"], 4, 13))
    assert b"".join(bytes(g) for g in got) == (a + bytes(b) + b"xyz")[4:13]
    assert all(isinstance(g, memoryview) for g in got)


def test_the_assembler_puts_parts_together_in_any_order_and_refuses_what_does_not_fit() -> None:
    data = pattern(10, 3).tobytes()
    asm = bulk.Assembler()
    assert asm.add(data[5:], "b;part=m,5,10") is None
    assert asm.add(data[5:], "b;part=m,5,10") is None  # again: ignored
    payload, encoding = asm.add(data[:5], "b;part=m,0,10")
    assert bytes(payload) == data and encoding == "b"
    for bad in ("b;part=m,8,10", "b;part=m,-1,10", "b;part=x", "b;part=m,0,0", f"b;part=m,0,{(4 << 30) + 1}"):
        with pytest.raises(CodecError):
            asm.add(data[:5], bad)


def test_the_assembler_drops_the_oldest_message_beyond_its_bound() -> None:
    asm = bulk.Assembler(max_open=2)
    for m in "abc":
        assert asm.add(b"x", f"e;part={m},0,2") is None
    assert asm.dropped == 1  # "a", the oldest
    payload, _ = asm.add(b"y", "e;part=b,1,2")
    assert bytes(payload) == b"xy"
    assert asm.add(b"y", "e;part=a,1,2") is None  # "a" is gone: its second part starts it anew


def test_parse_upload_names_what_is_wrong() -> None:
    assert bulk.parse_upload("a;upload=@object/r/_upload/z/1,5", "@object/r/") == ("@object/r/_upload/z/1", "a", 5)
    with pytest.raises(CodecError, match="upload key of this realm"):
        bulk.parse_upload("a;upload=@object/q/_upload/z/1,5", "@object/r/")
    with pytest.raises(CodecError, match="out of range"):
        bulk.parse_upload(f"a;upload=@object/r/_upload/z/1,{(4 << 30) + 1}", "@object/r/")

