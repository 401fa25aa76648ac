"""Sessions and configuration: one session per realm counted by identity, env variables, prompt exit."""

from __future__ import annotations

import itertools
import json
import os
import time

import pytest
import zenoh

from heros import RemoteHERO
from heros import zenoh as z
from heros.exceptions import ConfigError
from heros.helper import generate_multicast_address
from heros.zenoh import ZenohSessionManager, _build_config, session_manager


def test_one_session_per_realm_counted_by_identity(realm, spawn):
    spawn(realm, "Device:dev")
    a = RemoteHERO("dev", realm=realm)
    b = RemoteHERO("dev", realm=realm)
    assert a == b and a._session is b._session
    assert session_manager.referrers(realm) == 2
    a._destroy_hero()
    assert session_manager.referrers(realm) == 1
    assert b.add(1) == 3
    a._destroy_hero()  # idempotent
    b._destroy_hero()
    assert session_manager.referrers(realm) == 0
    assert realm not in session_manager._sessions  # closed with its last referrer


def test_a_failed_lookup_releases_its_session(realm):
    with pytest.raises(NameError):
        RemoteHERO("ghost", realm=realm, discovery_timeout=0.2)
    assert session_manager.referrers(realm) == 0
    assert realm not in session_manager._sessions


def test_a_garbage_collected_proxy_releases_its_session(realm, spawn):
    spawn(realm, "Device:dev")
    proxy = RemoteHERO("dev", realm=realm)
    assert session_manager.referrers(realm) == 1
    del proxy
    import gc

    gc.collect()
    assert session_manager.referrers(realm) == 0


def test_separate_managers_have_separate_sessions(realm, spawn):
    spawn(realm, "Device:dev")
    manager = ZenohSessionManager()
    with RemoteHERO("dev", realm=realm, session_manager=manager) as p, RemoteHERO("dev", realm=realm) as q:
        assert p._session is not q._session and p.add(1) == q.add(1) == 3
    manager.force_close()


def test_config_precedence(monkeypatch):
    monkeypatch.setenv("HEROS_ZENOH_CONFIG", '{mode: "peer", scouting: {multicast: {enabled: false}}, listen: {endpoints: ["tcp/127.0.0.1:0"]}}')
    monkeypatch.setenv("HEROS_SEP_MULTICAST", "true")
    config = _build_config("lab", {"scouting/multicast/enabled": True, "scouting/gossip/enabled": False})
    assert json.loads(config.get_json("scouting/multicast/address")) == f"{generate_multicast_address('lab')}:7446"
    assert json.loads(config.get_json("scouting/multicast/enabled")) is True  # update_config wins over the env
    assert json.loads(config.get_json("listen/endpoints")) == ["tcp/127.0.0.1:0"]
    default_realm = _build_config("heros", {})
    assert json.loads(default_realm.get_json("scouting/multicast/address")) != f"{generate_multicast_address('heros')}:7446"
    monkeypatch.setenv("HEROS_SEP_MULTICAST", "0")
    assert json.loads(_build_config("lab", {}).get_json("scouting/multicast/address")) == json.loads(
        zenoh.Config().get_json("scouting/multicast/address"))


def test_data_queue_is_longer_unless_the_configuration_sets_one(monkeypatch):
    monkeypatch.setenv("HEROS_ZENOH_CONFIG", '{mode: "peer", scouting: {multicast: {enabled: false}}}')
    assert json.loads(zenoh.Config().get_json(z.DATA_QUEUE_KEY)) == z.ZENOH_DATA_QUEUE  # zenoh's own default
    assert json.loads(_build_config("lab", {}).get_json(z.DATA_QUEUE_KEY)) == z.DATA_QUEUE_BATCHES
    monkeypatch.setenv("HEROS_ZENOH_CONFIG", '{transport: {link: {tx: {queue: {size: {data: 5}}}}}}')
    assert json.loads(_build_config("lab", {}).get_json(z.DATA_QUEUE_KEY)) == 5
    assert json.loads(_build_config("lab", {z.DATA_QUEUE_KEY: 3}).get_json(z.DATA_QUEUE_KEY)) == 3  # update_config wins


def test_update_config_applies_to_new_sessions():
    manager = ZenohSessionManager()
    manager.update_config({"scouting/gossip/enabled": True})
    assert manager._config_dict == {"scouting/gossip/enabled": True}


def test_a_young_session_settles_on_what_its_probes_saw_together():
    """zenoh's liveliness answers can leave tokens out at random: answers that differ but add
    nothing new must not keep a young session from settling (before, each restarted the wait)."""
    manager = ZenohSessionManager()
    manager._opened_at["lab"] = time.monotonic()  # as if its session had just been opened
    answers = itertools.chain([set(), {"a"}, {"a", "b"}], itertools.cycle([{"a"}, set(), {"b"}]))
    asked = []

    def probe() -> set[str]:
        asked.append(time.monotonic())
        return next(answers)

    assert manager.settle("lab", probe) == {"a", "b"}
    # settled once what they saw stopped growing, long before the session's age would end it
    assert len(asked) <= 3 + 20 and asked[-1] - asked[2] < z.SETTLE_SECONDS / 2, len(asked)
    assert manager.settle("lab", probe) is None  # settled for good: no more probes
    assert len(asked) <= 23


def test_malformed_config_raises_a_clear_error(monkeypatch):
    monkeypatch.setenv("HEROS_ZENOH_CONFIG", "{mode: ")
    with pytest.raises(ConfigError, match="HEROS_ZENOH_CONFIG is not a valid zenoh JSON5 configuration"):
        ZenohSessionManager().request_session(object(), "x")
    monkeypatch.setenv("HEROS_ZENOH_CONFIG", '{"mode": "teleport"}')
    with pytest.raises(ConfigError):
        ZenohSessionManager().request_session(object(), "x")


def test_malformed_config_in_a_script_names_the_variable(run_script):
    result = run_script("from heros import RemoteHERO\nRemoteHERO('x')\n", env={"HEROS_ZENOH_CONFIG": "{not json"})
    assert result.returncode == 1
    assert "ConfigError: HEROS_ZENOH_CONFIG is not a valid zenoh JSON5 configuration" in result.stderr


def test_import_installs_no_logging_handler_and_heros_log_sets_the_level(run_script):
    code = (
        "import logging, heros\n"
        "print(len(logging.getLogger().handlers), logging.getLogger().level, len(logging.getLogger('heros').handlers),"
        " logging.getLogger('heros').level)\n"
    )
    quiet = run_script(code, env={"HEROS_LOG": ""})
    assert quiet.stdout.split() == ["0", "30", "0", "0"]
    loud = run_script(code, env={"HEROS_LOG": "debug"})
    assert loud.stdout.split() == ["0", "30", "1", "10"]
    bad = run_script(code, env={"HEROS_LOG": "chatty"})
    assert "HEROS_LOG='CHATTY' is not a log level" in bad.stderr


FORGETFUL = """
import sys
from heros import RemoteHERO, HEROObserver, EventObserver
proxy = RemoteHERO("dev", realm=sys.argv[1] if len(sys.argv) > 1 else {realm!r})
proxy.changed.connect(print)
proxy._watch_attribute("counter", print)
ob = HEROObserver(realm={realm!r})
ev = EventObserver("*", "changed", realm={realm!r})
print(proxy.add(1))
# no close, no destroy: the interpreter must still exit promptly
"""


def test_a_script_that_forgets_to_close_exits_promptly(realm, spawn, run_script):
    spawn(realm, "Device:dev")
    result = run_script(FORGETFUL.format(realm=realm), timeout=20)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3"


def test_a_hero_script_that_forgets_to_close_exits_promptly(realm, run_script):
    code = (
        "from heros import LocalHERO, event\n"
        "class H(LocalHERO):\n"
        "    x: int = 1\n"
        "    @event\n"
        "    def e(self): return 1\n"
        f"h = H('h', realm={realm!r})\n"
        "h.e(); h.x = 2\n"
        "print('served')\n"
    )
    result = run_script(code, timeout=20)
    assert result.returncode == 0 and result.stdout.strip() == "served", result.stderr


BUSY_AT_EXIT = """
import threading
from heros import LocalHERO, RemoteHERO, event

realm = {realm!r}


class Src(LocalHERO):
    @event
    def tick(self, x: float) -> float:
        return x


src = Src("src", realm=realm)
dev = RemoteHERO("dev", realm=realm)
got, calls = [], []
busy = threading.Event()  # set once events arrive and calls are answered: the daemon threads are at work


def on_tick(value):
    got.append(value)
    if len(got) >= 1000 and len(calls) >= 20:
        busy.set()


RemoteHERO("src", realm=realm).tick.connect(on_tick)


def emit():
    while True:
        src.tick(1.0)


def call():
    while True:
        calls.append(dev.add(1))


for target in (emit, call, call, lambda: dev.sleep(5.0)):
    threading.Thread(target=target, daemon=True).start()
busy.wait(10)
print(len(got) >= 1000, len(calls) >= 20, flush=True)
# the script ends here, its daemon threads in the middle of calls and emissions, one waiting in a long call
"""


def test_a_script_ending_while_its_daemon_threads_call_and_emit_exits_cleanly(realm, spawn, run_script):
    """A daemon thread inside zenoh when the interpreter finalizes aborts the process ("FATAL:
    exception not rethrown", SIGABRT) as it takes the GIL back. The exit waits for the threads in a
    query to leave it (no query starts once the exit has begun) and gives the others a moment: 2-3
    of 60 such exits aborted before, and an exit hook could fail on a thread not yet started."""
    import time

    spawn(realm, "Device:dev")
    for run in range(6):
        t0 = time.monotonic()
        result = run_script(BUSY_AT_EXIT.format(realm=realm), timeout=30)
        took = time.monotonic() - t0
        assert result.returncode == 0, (run, result.returncode, result.stderr[-2000:])
        assert result.stdout.split() == ["True", "True"], (run, result.stdout, result.stderr[-2000:])
        assert "FATAL" not in result.stderr and "cannot join thread" not in result.stderr, result.stderr[-2000:]
        assert "could not publish" not in result.stderr, result.stderr[-2000:]  # nothing to warn of at exit
        assert took < 5.0, took  # the call waiting for 5 s does not hold the exit


def test_env_is_what_subprocesses_get():
    assert "tcp/127.0.0.1" in os.environ["HEROS_ZENOH_CONFIG"]
    assert json.loads(os.environ["HEROS_ZENOH_CONFIG"])["scouting"]["multicast"]["enabled"] is False


def test_a_finalizer_on_the_idle_timers_thread_can_release_another_object(realm, monkeypatch):
    """Releasing a realm's last holder starts the idle timer's thread, and ``Thread.start`` waits
    for that thread; the garbage collector may run a finalizer there that releases another object
    of the same manager (CI hung for good on this once). The timer starts with the lock released."""
    import threading

    from heros import HEROPeer
    from heros import zenoh as hz

    manager = ZenohSessionManager()
    acquired = []

    class Timer(threading.Timer):
        def _bootstrap_inner(self) -> None:  # what a finalizer on the new thread does first
            got = manager._lock.acquire(timeout=5)
            acquired.append(got)
            if got:
                manager._lock.release()
            super()._bootstrap_inner()

    monkeypatch.setattr(hz.threading, "Timer", Timer)
    peer = HEROPeer(realm, session_manager=manager)
    peer._destroy_hero()
    manager.force_close()
    assert acquired == [True]
