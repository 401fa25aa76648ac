"""The ``heros`` command, every subcommand in a subprocess, against the demo lab in another one.

Mistakes must give exactly one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, free_port
from lab_process import HerosProcess, heros_command, start_demo

from heros import RemoteHERO

STAMP = r"\d\d:\d\d:\d\d\.\d{3}"


@pytest.fixture(scope="module")
def lab_realm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``heros demo`` in a subprocess for the whole module (the test of the plain ``demo`` subcommand)."""
    realm = f"cli{uuid.uuid4().hex[:10]}"
    proc = start_demo(realm, tmp_path_factory.mktemp("demo") / "demo.log")
    yield realm
    assert proc.terminate() == 0
    assert "demo stopped" in proc.log()


def heros(*args: str, realm: str | None = None, timeout: float = 60, env: dict[str, str] | None = None,
          cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run ``heros ARGS`` to completion (the realm through ``HEROS_REALM``, as a user may set it)."""
    full_env = {**os.environ, **(env or {})}
    if realm is not None:
        full_env["HEROS_REALM"] = realm
    return subprocess.run([*heros_command(), *args], capture_output=True, text=True, timeout=timeout, env=full_env, cwd=str(cwd))


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"rc={result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert "Traceback" not in result.stderr
    return result.stdout


def background(tmp_path: Path, *args: str, realm: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> HerosProcess:
    """A long-running ``heros`` subcommand in ``realm`` (through ``HEROS_REALM``)."""
    return HerosProcess(list(args), tmp_path / f"heros-{uuid.uuid4().hex[:6]}.log", env={**(env or {}), "HEROS_REALM": realm}, cwd=cwd)


def test_console_script_version_and_help() -> None:
    script = Path(sys.executable).parent / "heros"
    assert script.exists(), "the console script 'heros' is not installed next to this python"
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and re.fullmatch(r"heros \S+\n", result.stdout)
    text = ok(heros("--help"))
    for command in ("list", "info", "call", "get", "set", "watch", "serve", "demo", "tls", "router"):
        assert f"    {command} " in text
    assert "usage: heros" in ok(heros())
    assert "key=value gives a keyword argument" in ok(heros("call", "--help"))


def test_list(lab_realm: str) -> None:
    out = ok(heros("list", "--realm", lab_realm))
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "CLASS", "TAGS"]
    rows = {line.split()[0]: line.split(None, 2)[1:] for line in lines[1:]}
    assert rows == {
        "camera": ["Camera", "demo, imaging"],
        "cryostat": ["TemperatureController", "demo, temperature"],
        "lab": ["Lab", "demo"],
        "laser": ["Laser", "demo, light"],
        "stage": ["Stage", "demo, motion"],
    }
    assert ok(heros("--realm", lab_realm, "list")) == out  # the option before the subcommand works too
    assert ok(heros("list", realm=lab_realm)) == out  # and HEROS_REALM


def test_list_empty_realm() -> None:
    t0 = time.monotonic()
    out = ok(heros("list", "--timeout", "0.5", realm="nobody" + uuid.uuid4().hex[:8]))
    assert out.startswith("no HEROs found in realm 'nobody")
    assert time.monotonic() - t0 < 15


def test_list_watch_follows_joins_and_leaves(realm: str, tmp_path: Path) -> None:
    watcher = background(tmp_path, "list", "--watch", "--timeout", "0.5", realm=realm)
    try:
        watcher.wait_line("no HEROs found")
        server = background(tmp_path, "serve", "heros.demo.instruments:Stage", "--name", "s1", "--tag", "optics", realm=realm)
        server.wait_line("serving 1 HERO")
        assert re.fullmatch(STAMP + r"  \+ s1  Stage  optics", watcher.wait_line(""))
        assert server.terminate() == 0
        assert re.fullmatch(STAMP + r"  - s1  Stage  optics", watcher.wait_line(""))
        assert watcher.terminate() == 0
    finally:
        watcher.kill()


def test_info(lab_realm: str) -> None:
    out = ok(heros("info", "cryostat", realm=lab_realm))
    assert out.startswith("cryostat  (class TemperatureController, realm ")
    assert "  tags: demo, temperature" in out
    assert re.search(r"    setpoint: float = [\d.]+  \[K, 3\.\.350\]  - temperature the controller regulates to", out)
    assert re.search(r"    temperature: float = [\d.]+  \[K\]  \(read-only\)", out)
    assert "    ramp(target: float [K, 3..350], rate: float [K/s, 0.01..50] = 1.0) -> float" in out
    assert "    temperature_changed\n        The measured temperature (K), about 5 times a second." in out
    quiet = ok(heros("info", "laser", "--no-values", realm=lab_realm))
    assert "    wavelength: int  [nm, one of 405, 532, 633, 780]  - emission wavelength" in quiet
    assert "    pulse(duration: float [s, 0.001..10] = 0.1) -> str" in quiet


def test_call_get_set(lab_realm: str) -> None:
    assert ok(heros("set", "laser.power", "12.5", realm=lab_realm)) == "laser.power = 12.5 mW\n"
    assert ok(heros("get", "laser.power", realm=lab_realm)) == "12.5\n"
    assert ok(heros("set", "laser.power", "0", realm=lab_realm)) == "laser.power = 0.0 mW\n"
    assert ok(heros("set", "laser.wavelength", "633", realm=lab_realm)) == "laser.wavelength = 633 nm\n"
    assert ok(heros("set", "cryostat.setpoint", "300", realm=lab_realm)) == "cryostat.setpoint = 300.0 K\n"
    assert float(ok(heros("call", "cryostat.ramp", "290", "rate=50", realm=lab_realm))) == pytest.approx(0.2)
    assert ok(heros("call", "cryostat.stop_ramp", realm=lab_realm)).strip()
    out = ok(heros("call", "lab.instruments", realm=lab_realm))
    assert "'laser': <RemoteHERO " in out and "'stage': <RemoteHERO " in out
    assert re.fullmatch(r"array shape \(96, 128\) uint16: min \d+, max \d+, mean [\d.]+\n", ok(heros("call", "camera.snap", realm=lab_realm)))
    assert ok(heros("call", "lab.open_logbook", "'from the shell'", realm=lab_realm)).startswith(
        "<Unserializable Remote Object (heros.demo.instruments.Logbook)")
    assert ok(heros("call", "lab.instrument", "name=stage", realm=lab_realm)).startswith("<RemoteHERO ")


def test_call_shows_progress(lab_realm: str) -> None:
    ok(heros("set", "stage.speed", "20", realm=lab_realm))
    start = float(ok(heros("get", "stage.position", realm=lab_realm)))
    target = 30.0 if start < 15 else 0.0
    result = heros("call", "stage.move_to", str(target), realm=lab_realm)
    assert float(ok(result)) == target
    progress = [line for line in result.stderr.splitlines() if line.startswith("stage.move_to: [")]
    assert progress, result.stderr
    assert all(re.match(r"stage\.move_to: \[[#.]{20}\] +\d+ % position [\d.e+-]+, target [\d.]+, moving (True|False)", line) for line in progress)


def test_watch_event(lab_realm: str) -> None:
    result = heros("watch", "cryostat.temperature_changed", "--count", "3", realm=lab_realm)
    lines = ok(result).splitlines()
    assert len(lines) == 3 and all(re.fullmatch(STAMP + r"  \d+\.\d+", line) for line in lines), lines
    assert "watching cryostat.temperature_changed" in result.stderr


def test_watch_attribute(lab_realm: str, tmp_path: Path) -> None:
    watcher = background(tmp_path, "watch", "laser.power", "--count", "1", realm=lab_realm)
    try:
        with RemoteHERO("laser", realm=lab_realm) as laser:
            line = None
            for i in range(1, 40):  # the watcher subscribes asynchronously: write until it sees one
                laser.power = float(i)
                try:
                    line = watcher.wait_line("", timeout=0.5)
                    break
                except TimeoutError:
                    continue
            laser.power = 0
        assert line is not None and re.fullmatch(STAMP + r"  \d+\.0", line)
        assert watcher.proc.wait(10) == 0
    finally:
        watcher.kill()


def test_watch_duration_ends_quietly(lab_realm: str) -> None:
    t0 = time.monotonic()
    assert ok(heros("watch", "stage.progress", "--duration", "1", realm=lab_realm)) == ""
    assert time.monotonic() - t0 >= 1


def test_timeout_is_a_failure_not_a_usage_error(lab_realm: str) -> None:
    with RemoteHERO("camera", realm=lab_realm) as camera:
        camera.exposure = 2
        try:
            result = heros("call", "camera.snap", "--timeout", "0.3", realm=lab_realm)
        finally:
            camera.exposure = 0.01
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [result.stderr.strip()] and "did not answer 'snap' within 0.3 s" in result.stderr


def test_serve_class(realm: str, tmp_path: Path) -> None:
    server = background(tmp_path, "serve", "heros.demo.instruments:Stage", "--name", "s2", "--arg", "position=10", "--tag", "optics",
                        "--tag", "bench", realm=realm)
    try:
        assert server.wait_line("serving") == f"serving 1 HERO in realm '{realm}': s2 (Stage); Ctrl-C to stop"
        with RemoteHERO("s2", realm=realm) as stage:
            assert stage.position == 10.0
            assert {"optics", "bench"} <= stage._hero_tags
        assert server.terminate() == 0
        assert "stopped" in server.log()
    finally:
        server.kill()


PLAIN_MODULE = '''
class Plain:
    """Not a HERO: heros serve wraps it."""

    def __init__(self, gain=1.0):
        self.gain = gain

    def double(self, x: float) -> float:
        return 2 * x * self.gain

    def changed(self, value: float) -> float:
        return value
'''


def test_serve_plain_class_from_the_current_directory(realm: str, tmp_path: Path) -> None:
    (tmp_path / "plainmod.py").write_text(PLAIN_MODULE)
    config = tmp_path / "plain.json"
    config.write_text(json.dumps([
        {"_id": "p1", "classname": "plainmod.Plain", "arguments": {"gain": 3}, "tags": ["plain"],
         "extra_decorators": [["changed", "heros.event.event"]]},
        {"_id": "p2", "classname": "plainmod:Plain"},
    ]))
    server = background(tmp_path, "serve", "plain.json", realm=realm, cwd=tmp_path)
    try:
        server.wait_line("serving 2 HEROs")
        with RemoteHERO("p1", realm=realm) as p1, RemoteHERO("p2", realm=realm) as p2:
            assert p1.double(2) == 12 and p2.double(2) == 4
            assert p1._hero_descriptor["class"] == "Plain_HERO" and "plain" in p1._hero_tags
            assert p1._heros_caps["changed"].flavor == "event" and p2._heros_caps["changed"].flavor == "method"
        assert server.terminate() == 0
    finally:
        server.kill()


def test_serve_config_with_references(lab_realm: str, tmp_path: Path) -> None:
    config = tmp_path / "lab3.json"
    config.write_text(json.dumps({"total_rows": 2, "rows": [
        {"id": "lab3", "doc": {"_id": "lab3", "classname": "heros.demo.instruments.Lab",
                               "arguments": {"instruments": {"cam": "$cam3", "laser": "$laser"}}, "tags": ["extra"]}},
        {"id": "cam3", "doc": {"_id": "cam3", "classname": "heros.demo.instruments.Camera", "arguments": {"laser": "$laser"}}},
    ]}))
    server = background(tmp_path, "serve", str(config), "--tag", "cfg", realm=lab_realm)
    try:
        assert server.wait_line("serving") == f"serving 2 HEROs in realm '{lab_realm}': cam3 (Camera), lab3 (Lab); Ctrl-C to stop"
        log = server.log()
        assert log.index("started 'cam3'") < log.index("started 'lab3'")  # the HERO referred to starts first
        with RemoteHERO("lab3", realm=lab_realm) as lab3:
            assert {"extra", "cfg"} <= lab3._hero_tags
            assert lab3.instrument("cam").snap().shape == (96, 128)
            assert lab3.instrument("laser").wavelength in (405, 532, 633, 780)
        assert server.terminate() == 0
    finally:
        server.kill()


def _taken_port() -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock, sock.getsockname()[1]


def test_demo_loopback_falls_back_to_a_free_port(tmp_path: Path) -> None:
    realm = f"loop{uuid.uuid4().hex[:8]}"
    sock, taken = _taken_port()
    demo = None
    try:
        demo = start_demo(realm, tmp_path / "demo.log", "--loopback", str(taken))
        words = shlex.split(demo.wait_line("export HEROS_ZENOH_CONFIG="), comments=True)
        assert words[0] == "export"
        exported = dict(word.split("=", 1) for word in words[1:])
        assert exported["HEROS_REALM"] == realm
        config = json.loads(exported["HEROS_ZENOH_CONFIG"])
        assert config["scouting"]["multicast"]["enabled"] is False
        port = int(config["connect"]["endpoints"][0].rsplit(":", 1)[1])
        assert port != taken and f"port {taken} is taken" in demo.log()
        # another terminal with the exported line reaches the lab; the test hub's network does not
        out = ok(heros("list", env=exported))
        assert {line.split()[0] for line in out.splitlines()[1:]} == {"camera", "cryostat", "lab", "laser", "stage"}
        assert ok(heros("list", "--timeout", "0.5", realm=realm)).startswith("no HEROs found")
        assert demo.terminate() == 0
        assert "demo stopped" in demo.log()
    finally:
        sock.close()
        if demo is not None:
            demo.kill()


def test_router_prints_the_lines_that_reach_it(tmp_path: Path) -> None:
    """``heros router`` on loopback (the multi-host tests run it across network namespaces)."""
    realm = f"rt{uuid.uuid4().hex[:8]}"
    port = free_port()
    no_multicast = {"scouting": {"multicast": {"enabled": False}}}
    router = HerosProcess(["router", "--listen", f"tcp/127.0.0.1:{port}", "--lease", "1.5", "--realm", realm, "--config", json.dumps(no_multicast)],
                          tmp_path / "router.log")
    server = None
    try:
        assert re.fullmatch(rf"zenoh router [0-9a-f]+ listening on tcp/127\.0\.0\.1:{port}; Ctrl-C to stop", router.wait_line("zenoh router"))
        peer_words = shlex.split(router.wait_line("export HEROS_ZENOH_CONFIG="), comments=True)
        peer_env = dict(word.split("=", 1) for word in peer_words[1:])
        assert peer_env["HEROS_REALM"] == realm
        peer = json.loads(peer_env["HEROS_ZENOH_CONFIG"])
        assert peer["mode"] == "peer" and peer["connect"]["endpoints"] == [f"tcp/127.0.0.1:{port}"]
        assert peer["transport"]["link"]["tx"] == {"lease": 1500, "keep_alive": 4}
        client_words = shlex.split(router.wait_line("# clients").split("export ", 1)[1], comments=True)
        client_env = dict(word.split("=", 1) for word in client_words)
        client = json.loads(client_env["HEROS_ZENOH_CONFIG"])
        assert client["mode"] == "client" and client["scouting"]["multicast"]["enabled"] is False
        # a HERO with the peers' line (kept on loopback here), found with the clients' line through the router only
        peer.update(no_multicast, listen={"endpoints": ["tcp/127.0.0.1:0"]})
        server = background(tmp_path, "serve", "heros.demo.instruments:Stage", "--name", "far", realm=realm, env={"HEROS_ZENOH_CONFIG": json.dumps(peer)})
        server.wait_line("serving 1 HERO")
        out = ok(heros("list", env=client_env))
        assert [line.split()[0] for line in out.splitlines()[1:]] == ["far"]
        assert ok(heros("get", "far.position", env=client_env)) == "0.0\n"
        assert server.terminate() == 0
        assert router.terminate() == 0
        assert "router stopped" in router.log()
    finally:
        router.kill()
        if server is not None:
            server.kill()


def _http(url: str, token: str, data: bytes | None = None, method: str | None = None) -> dict:
    request = urllib.request.Request(url, data=data, headers={"Authorization": f"token {token}"},
                                     method=method or ("POST" if data is not None else "GET"))
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def git_status() -> tuple[str, list[str]]:
    """``git status --porcelain`` of the clone, and what lies beside the shipped notebooks (git ignores
    the .ipynb_checkpoints folder Jupyter would make there)."""
    status = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return status, sorted(p.name for p in (ROOT / "heros" / "demo" / "notebooks").iterdir())


def _wait_http(url: str, token: str, proc: HerosProcess, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.proc.poll() is None, f"heros demo --lab exited: {proc.log()}"
        try:
            _http(url, token)
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout} s: {proc.log()}")


@pytest.mark.kernel
def test_demo_lab_starts_jupyterlab_on_the_same_network(tmp_path: Path) -> None:
    import psutil
    from jupyter_client import BlockingKernelClient

    realm = f"lab{uuid.uuid4().hex[:8]}"
    port, token = free_port(), "heros-test-token"
    dirs = {var: str(tmp_path / var.lower()) for var in ("JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTERLAB_SETTINGS_DIR", "JUPYTERLAB_WORKSPACES_DIR")}
    dirs["HOME"] = str(tmp_path / "home")  # the default working folder is ~/heros-demo
    args = ["--lab", "--loopback", str(free_port()), "--", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
            f"--IdentityProvider.token={token}", "--ServerApp.password=", "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    status_before = git_status()
    demo = start_demo(realm, tmp_path / "demo.log", *args, env=dirs)
    kc = None
    lab_pids: list[int] = []
    workdir = tmp_path / "home" / "heros-demo"
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_http(f"{base}/api/status", token, demo)
        # JupyterLab serves the working folder, where the shipped notebooks were copied
        listing = _http(f"{base}/api/contents?content=1", token)
        assert {"dashboard.ipynb", "panels.ipynb", "quickstart.ipynb"} <= {item["name"] for item in listing["content"]}
        quickstart = _http(f"{base}/api/contents/quickstart.ipynb?content=1", token)
        assert quickstart["type"] == "notebook"
        # what JupyterLab's autosave sends: the file changes in the working folder, never in the clone
        quickstart["content"]["cells"][0]["source"] = "# saved by JupyterLab"
        _http(f"{base}/api/contents/quickstart.ipynb", token, data=json.dumps({"type": "notebook", "content": quickstart["content"]}).encode(),
              method="PUT")
        assert "# saved by JupyterLab" in (workdir / "quickstart.ipynb").read_text()
        kernel = _http(f"{base}/api/kernels", token, data=b"{}")
        connection = Path(dirs["JUPYTER_RUNTIME_DIR"]) / f"kernel-{kernel['id']}.json"
        deadline = time.monotonic() + 30
        while not connection.exists():
            assert time.monotonic() < deadline, "the kernel's connection file never appeared"
            time.sleep(0.1)
        kc = BlockingKernelClient()
        kc.load_connection_file(str(connection))
        kc.start_channels()
        kc.wait_for_ready(60)
        code = ("import os; from heros import RemoteHERO; "
                "print(os.environ['HEROS_REALM'], RemoteHERO('laser', realm=os.environ['HEROS_REALM']).wavelength)")
        outputs: list[str] = []
        reply = kc.execute_interactive(code, timeout=60, output_hook=lambda msg: outputs.append(msg["content"].get("text", "")))
        assert reply["content"]["status"] == "ok", reply["content"]
        assert "".join(outputs).strip() == f"{realm} 532"
        lab_pids = [p.pid for p in psutil.Process(demo.proc.pid).children()]
        assert lab_pids
    finally:
        if kc is not None:
            kc.stop_channels()
        rc = demo.terminate(40)
    assert rc == 0
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in lab_pids)
    assert git_status() == status_before, "the demo wrote into the clone"


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("bad")
    files = {
        "bad_json": "{not json",
        "no_id": json.dumps({"classname": "heros.demo.instruments.Stage"}),
        "no_class": json.dumps({"_id": "x"}),
        "bad_args": json.dumps({"_id": "x", "classname": "heros.demo.instruments.Stage", "arguments": [1]}),
        "cycle": json.dumps([{"_id": "a", "classname": "heros.demo.instruments.Lab", "arguments": {"instruments": {"b": "$b"}}},
                             {"_id": "b", "classname": "heros.demo.instruments.Lab", "arguments": {"instruments": {"a": "$a"}}}]),
        "missing_ref": json.dumps({"_id": "c", "classname": "heros.demo.instruments.Camera", "arguments": {"laser": "$nolaser"}}),
        "twice": json.dumps([{"_id": "d", "classname": "heros.demo.instruments.Stage"}, {"_id": "d", "classname": "heros.demo.instruments.Stage"}]),
        "datasource": json.dumps({"_id": "e", "classname": "heros.demo.instruments.Stage", "datasource": {"interval": 1}}),
        "datasource_eval": json.dumps({"_id": "f", "classname": "collections.OrderedDict",
                                       "datasource": {"observables": {"T": {"conversion": "x.__class__"}}}}),
        "datasource_interval": json.dumps({"_id": "g", "classname": "collections.OrderedDict", "datasource": {"interval": 0}}),
    }
    paths = {}
    for key, text in files.items():
        path = d / f"{key}.json"
        path.write_text(text)
        paths[key] = str(path)
    return paths


BAD_INPUT = [
    (["nosuch"], "invalid choice: 'nosuch'"),
    (["call"], "the following arguments are required: NAME.method"),
    (["call", "laser"], "expected NAME.member (like laser.power), got 'laser'"),
    (["call", "laser."], "expected NAME.member"),
    (["call", "nohero.method"], "Remote Object with name 'nohero' not found in realm"),
    (["call", "a/b.method"], "contains /"),
    (["call", "stage.move"], "has no member 'move'; did you mean 'move_to'?"),
    (["call", "stage.move_to"], "stage.move_to: missing a required argument: 'x'; signature: move_to(x: float [mm, 0..50]) -> float"),
    (["call", "stage.move_to", "1", "2"], "too many positional arguments"),
    (["call", "stage.move_to", "x=1", "2"], "positional argument '2' follows keyword arguments"),
    (["call", "stage.move_to", "80"], "stage.move_to raised ValueError: argument 'x' of move_to() of HERO 'stage' must be within 0..50 mm, not 80"),
    (["call", "laser.pulse"], "laser.pulse raised RuntimeError: laser 'laser' cannot pulse: it is not enabled"),
    (["call", "laser.power"], "laser.power is an attribute, not a method: use heros get / heros set"),
    (["get", "stage.move_to"], "stage.move_to is a method, not an attribute: use heros call"),
    (["get", "cryostat.temperature_changed"], "is an event, not an attribute: use heros watch"),
    (["set", "stage.position", "3"], "stage.position is read-only"),
    (["set", "laser.power", "60"], "laser.power: 60 mW is outside the allowed range 0..50 mW"),
    (["set", "laser.wavelength", "500"], "laser.wavelength must be one of 405, 532, 633, 780, not 500"),
    (["set", "laser.power", "bright"], "laser.power raised TypeError: attribute 'power' of HERO 'laser' must be a number, not str ('bright')"),
    (["set", "laser.power"], "the following arguments are required: VALUE"),
    (["watch", "stage.move_to"], "stage.move_to is a method, not an event"),
    (["watch", "cryostat.temperature_changed", "--count", "0"], "--count must be at least 1"),
    (["watch", "laser.power", "--duration", "soon"], "expected a number of seconds, not 'soon'"),
    (["info", "nohero"], "not found in realm"),
    (["--realm", "a/b", "list"], "--realm: HERO realm 'a/b' contains /"),
    (["list", "--timeout", "-1"], "expected a positive number of seconds, not '-1'"),
    (["list", "--config", "{not json"], "--config is not a valid zenoh JSON5 configuration"),
    (["list", "--config", "/nonexistent/zenoh.json5"], "--config: '/nonexistent/zenoh.json5' is neither a JSON5 object nor an existing file"),
    (["serve", "nosuchmodule:Thing", "--name", "a"], "cannot import 'nosuchmodule' for 'nosuchmodule:Thing': No module named 'nosuchmodule'"),
    (["serve", "heros.demo.instruments:Nope", "--name", "a"], "module 'heros.demo.instruments' has no 'Nope'"),
    (["serve", "heros.demo.instruments:T_MIN", "--name", "a"], "'heros.demo.instruments:T_MIN' is not a class"),
    (["serve", "heros.demo.instruments:Stage"], "needs --name NAME"),
    (["serve", "heros.demo.instruments:Stage", "--name", "s", "--arg", "position=99"],
     "cannot start HERO 's' (heros.demo.instruments:Stage): ValueError: position 99 mm is outside the allowed range 0..50 mm"),
    (["serve", "heros.demo.instruments:Stage", "--name", "s", "--arg", "bogus=1"], "unexpected keyword argument 'bogus'"),
    (["serve", "heros.demo.instruments:Stage", "--name", "s", "--arg", "nokey"], "--arg expects key=value, got 'nokey'"),
    (["serve", "heros.demo.instruments:Stage", "--name", "a*b"], "HERO name 'a*b' contains *"),
    (["serve", "missing.json"], "config file 'missing.json' does not exist"),
    (["serve", "{bad_json}", "--name", "x"], "--name and --arg apply to 'heros serve module:Class', not to a config file"),
    (["serve", "{bad_json}"], "is not valid JSON"),
    (["serve", "{no_id}"], "document 1 has no '_id'"),
    (["serve", "{no_class}"], "HERO 'x' has no 'classname'"),
    (["serve", "{bad_args}"], "'arguments' must be an object"),
    (["serve", "{cycle}"], "HEROs refer to each other in a cycle: a -> b -> a"),
    (["serve", "{missing_ref}", "--wait", "0.5"], "HERO 'c' refers to '$nolaser', but no HERO 'nolaser' answered"),
    (["serve", "{twice}"], "HERO 'd' is described more than once"),
    (["serve", "{datasource}"], "'heros.demo.instruments.Stage' is a LocalHERO but not a PolledLocalDatasourceHERO, which its 'datasource' block asks for"),
    (["serve", "{datasource_eval}"], "HERO 'f': datasource: conversion of observable 'T' 'x.__class__': attribute access 'x.__class__' is not allowed"),
    (["serve", "{datasource_interval}"], "HERO 'g': datasource 'interval' must be a positive number of seconds, not 0"),
    (["demo", "--loopback", "70000"], "port must be between 1 and 65535, not 70000"),
    (["demo", "--loopback", "--config", "{}"], "--loopback and --config exclude each other"),
    (["demo", "extra"], "arguments after -- are passed to the frontend and need --lab, --notebook or --dashboard"),
    (["demo", "--lab", "--dashboard"], "argument --dashboard: not allowed with argument --lab"),
    (["router", "--listen", "nonsense"], "argument --listen: 'nonsense' is not a zenoh endpoint like tcp/192.168.1.10:7447"),
    (["router", "--connect", "tcp/"], "argument --connect: 'tcp/' is not a zenoh endpoint"),
    (["router", "--lease", "0"], "argument --lease: expected a positive number of seconds, not '0'"),
    (["router", "--listen", "tcp/127.0.0.1:99999"], "zenoh could not open the router: invalid port value"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUT, ids=[" ".join(a) for a, _ in BAD_INPUT])
def test_bad_input_gives_one_line_and_exit_code_2(args: list[str], message: str, lab_realm: str, bad_files: dict[str, str]) -> None:
    args = [a.format(**bad_files) if a.startswith("{") and a.endswith("}") and a[1:-1] in bad_files else a for a in args]
    result = heros(*args, realm=lab_realm, timeout=60)
    assert result.returncode == 2, f"rc={result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("heros: error: ") and message in lines[0], lines[0]


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A CA and one certificate it signed, as files (for ``heros tls config``)."""
    from certs import Authority

    folder = tmp_path_factory.mktemp("tls")
    ca = Authority(folder, "lab-ca")
    node = ca.issue("control-pc")
    return {"ca": str(ca.cert), "cert": str(node.cert), "key": str(node.key), "dir": str(folder)}


def test_tls_config_writes_what_zenoh_reads(certificates: dict[str, str], tmp_path: Path) -> None:
    from heros.zenoh import config_entry

    files = ["--ca", certificates["ca"], "--cert", certificates["cert"], "--key", certificates["key"]]
    text = ok(heros("tls", "config", *files, "--connect", "tls/127.0.0.1:7447"))
    assert config_entry(text, "mode") == "client"
    assert config_entry(text, "connect/endpoints") == ["tls/127.0.0.1:7447"]
    assert config_entry(text, "scouting/multicast/enabled") is False
    assert config_entry(text, "transport/link/protocols") == ["tls", "quic"]
    assert config_entry(text, "transport/link/tls/enable_mtls") is True
    assert config_entry(text, "transport/link/tls/connect_certificate") == str(Path(certificates["cert"]).resolve())
    out = tmp_path / "router.json5"
    result = heros("tls", "config", *files, "--mode", "router", "--listen", "tls/0.0.0.0:7447", "--listen", "quic/0.0.0.0:7447",
                   "--writer", "control-pc", "--reader", "nb1", "--reader", "nb2", "-o", str(out))
    assert ok(result) == "" and f"wrote {out} (router)" in result.stderr
    text = out.read_text()
    assert config_entry(text, "listen/endpoints") == ["tls/0.0.0.0:7447", "quic/0.0.0.0:7447"]
    assert config_entry(text, "access_control/enabled") is True
    readers = config_entry(text, "access_control/subjects")[1]
    assert (readers["id"], readers["cert_common_names"], readers["link_protocols"]) == ("heros-readers", ["nb1", "nb2"], ["quic"])
    assert config_entry(text, "low_pass_filter")[0]["size_limit"] == 0


TLS_MISTAKES = [
    (["tls"], "the following arguments are required: COMMAND"),
    (["tls", "config", "--connect", "tls/h:1"], "the following arguments are required: --ca"),
    (["tls", "config", "--ca", "nosuch.pem", "--connect", "tls/h:1"], "certificate file 'nosuch.pem' does not exist"),
    (["tls", "config", "--ca", "{key}", "--connect", "tls/h:1"], "does not look like a PEM certificate"),
    (["tls", "config", "--ca", "{ca}", "--cert", "{cert}", "--key", "{cert}", "--connect", "tls/h:1"], "does not look like a PEM private key"),
    (["tls", "config", "--ca", "{ca}", "--cert", "{cert}", "--connect", "tls/h:1"], "give both or neither"),
    (["tls", "config", "--ca", "{ca}", "--connect", "tls/h:1"], "mutual TLS needs this node's certificate and private key"),
    (["tls", "config", "--ca", "{ca}", "--cert", "{cert}", "--key", "{key}"], "give at least one endpoint"),
    (["tls", "config", "--ca", "{ca}", "--cert", "{cert}", "--key", "{key}", "--connect", "tcp/h:7447"],
     "endpoint 'tcp/h:7447' is not encrypted: use tls/HOST:PORT or quic/HOST:PORT"),
    (["tls", "config", "--ca", "{ca}", "--cert", "{cert}", "--key", "{key}", "--connect", "tls/h"], "is not PROTOCOL/HOST:PORT"),
    (["tls", "config", "--ca", "{ca}", "--cert", "{cert}", "--key", "{key}", "--listen", "tls/h:1"], "a client does not listen"),
    (["tls", "config", "--ca", "{ca}", "--cert", "{cert}", "--key", "{key}", "--connect", "tls/h:1", "--writer", "pc"],
     "access rules belong to the node that accepts connections"),
    (["tls", "config", "--ca", "{ca}", "--cert", "{cert}", "--key", "{key}", "--mode", "router", "--listen", "tls/h:1", "--reader", "nb"],
     "access rules need at least one --writer"),
    (["tls", "config", "--ca", "{ca}", "--cert", "{cert}", "--key", "{key}", "--mode", "router", "--listen", "tls/h:1", "--writer", "pc",
      "--reader", "pc"], "pc cannot be a writer and a reader at once"),
    (["tls", "config", "--ca", "{ca}", "--cert", "{cert}", "--key", "{key}", "--mode", "router", "--listen", "tls/h:1", "--writer", "pc",
      "--readable", "power"], "readable members only apply without a reader link"),
    (["router"], "a router needs a configuration: --config FILE"),
    (["router", "--config", '{mode: "router", scouting: {multicast: {enabled: false}}, listen: {endpoints: ["tls/127.0.0.1:1"]}, '
      'transport: {link: {tls: {root_ca_certificate: "/nonexistent/ca.pem"}}}}'], "zenoh could not open the router: "),
]


@pytest.mark.parametrize(("args", "message"), TLS_MISTAKES, ids=[" ".join(a)[:60] for a, _ in TLS_MISTAKES])
def test_tls_mistakes_give_one_line_and_exit_code_2(args: list[str], message: str, certificates: dict[str, str]) -> None:
    result = heros(*[certificates.get(a[1:-1], a) if a.startswith("{") and a.endswith("}") else a for a in args], timeout=60)
    assert result.returncode == 2, f"rc={result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert result.stdout == "" and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("heros: error: ") and message in result.stderr, result.stderr
