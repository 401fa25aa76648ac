"""The seed document's snippets, verbatim, in separate processes (the first acceptance test)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import HeroProcess

SERVER = '''
import time
from heros import LocalHERO
class TestObject(LocalHERO):
    testme: int = 0
    def __init__(self, name: str, start: int, *args, **kwargs):
        super().__init__(name, *args, **kwargs)
        self.testme = start
    def read_temp(self, min: int, max: int) -> float:
        return (max + min) / 2
    def hello(self) -> str:
        self.testme += 1
        return "world"
with TestObject("my_hero", 5) as obj:
    # keep running with infinite loop
    while True:
        time.sleep(1)
'''

CLIENT = '''
from heros import RemoteHERO
with RemoteHERO("my_hero") as obj:
    # call remote functions
    print(obj.read_temp(0, 10))
    print(obj.hello())
    # access remote attribute
    obj.testme = 10
'''

OBSERVER = '''
from heros.heros import HEROObserver
ob = HEROObserver()
ob.known_objects.keys()
print(sorted(ob.known_objects.keys()))
'''


@pytest.fixture
def seed_server(tmp_path):
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    proc = HeroProcess([str(script)], log_path=tmp_path / "server.log")
    from heros import HEROObserver

    with HEROObserver() as ob:
        assert ob.wait_for(lambda known: "my_hero" in known, timeout=30), proc.log()
    yield proc
    proc.kill()


def test_seed_snippets_run_unchanged_in_two_processes(seed_server, run_script):
    result = run_script(CLIENT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["5.0", "world"]
    from heros import RemoteHERO

    with RemoteHERO("my_hero") as obj:
        assert obj.testme == 10  # the client's write landed (hello() had made it 6 first)


def test_seed_observer_recipe(seed_server, run_script):
    result = run_script(OBSERVER, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "my_hero" in result.stdout


def test_seed_multicast_address_recipe():
    out = subprocess.run(
        [sys.executable, "-c", "import heros; print(heros.helper.generate_multicast_address('my_realm'))"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.strip()
    assert out == "229.33.13.107"  # the address upstream HEROS computes for this realm
