"""The binder files work from scratch: a fresh virtualenv gets ``binder/requirements.txt`` and runs
``binder/postBuild``, then ``binder/start`` starts the demo lab on its own loopback hub, copies the
demo notebooks to ``~/heros-demo`` and runs every one with ``jupyter execute`` in its place of
JupyterLab, as mybinder would.

Takes a minute or two (it installs JupyterLab); deselect locally with ``-m "not binder"``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT

BINDER = ROOT / "binder"


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[; ]", line.strip(), maxsplit=1)[0].lower() for line in requirements if line.strip() and not line.startswith("#")}


def _extra(project: dict, name: str) -> set[str]:
    """The names an extra installs, extras it pulls in (``heros-jupyter[plot]``) followed."""
    names = set()
    for line in project["optional-dependencies"][name]:
        own = re.fullmatch(rf"{re.escape(project['name'])}\[([\w,-]+)\]", line.strip())
        if own:
            for inner in own.group(1).split(","):
                names |= _extra(project, inner)
        else:
            names |= _names([line])
    return names


def test_binder_requirements_cover_the_package_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = _names(project["dependencies"]) | _extra(project, "jupyter")
    assert "bqplot" in wanted and project["name"] not in wanted
    assert _names((BINDER / "requirements.txt").read_text().splitlines()) == wanted
    assert (BINDER / "runtime.txt").read_text().strip() == f"python-{project['requires-python'].lstrip('>=')}"
    for script in ("postBuild", "start"):
        assert os.access(BINDER / script, os.X_OK), f"binder/{script} must be executable"


def _copy_checkout(dest: Path) -> None:
    """The files a clone would have (tracked and new, not ignored ones)."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True)
    for name in listed.stdout.splitlines():
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def _run(cmd: list[str], *, cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.mark.binder
@pytest.mark.kernel
@pytest.mark.timeout(900)
def test_binder_steps_from_scratch(tmp_path: Path) -> None:
    repo, venv = tmp_path / "repo", tmp_path / "venv"
    _copy_checkout(repo)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if k not in ("HEROS_ZENOH_CONFIG", "HEROS_REALM", "PYTHONPATH", "PYTHONHOME")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", VIRTUAL_ENV=str(venv), HOME=str(tmp_path / "home"),
               HEROS_DEMO_LOG=str(tmp_path / "demo.log"))
    for var in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR"):
        env[var] = str(tmp_path / var.lower())
    t0 = time.monotonic()
    _run(["python", "-m", "pip", "install", "-q", "-r", "binder/requirements.txt"], cwd=repo, env=env, timeout=600)
    _run(["binder/postBuild"], cwd=repo, env=env, timeout=300)
    installed = time.monotonic() - t0
    # binder/start copies the shipped notebooks into ~/heros-demo before it execs the command
    workdir = Path(env["HOME"]) / "heros-demo"
    notebooks = sorted(str(workdir / p.name) for p in (repo / "heros" / "demo" / "notebooks").glob("*.ipynb"))
    assert str(workdir / "quickstart.ipynb") in notebooks
    # binder/start backgrounds the demo lab, then execs the command: a session of its own, so the
    # demo it leaves behind is stopped with the group (by the id of the process this test started).
    proc = subprocess.Popen(["binder/start", "jupyter", "execute", "--output={notebook_name}_executed", *notebooks],
                            cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=300)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    demo_log = tmp_path / "demo.log"
    assert proc.returncode == 0, f"{output[-4000:]}\ndemo log:\n{demo_log.read_text()[-2000:] if demo_log.exists() else ''}"
    quickstart = nbformat.read(workdir / "quickstart_executed.ipynb", as_version=4)
    first = "".join(o.get("text", "") for o in quickstart.cells[1].outputs)
    assert first.startswith("realm 'heros', network: loopback (HEROS_ZENOH_CONFIG)")
    assert all(cell.get("execution_count") for cell in quickstart.cells if cell.cell_type == "code")
    deadline = time.monotonic() + 30
    while "demo stopped" not in demo_log.read_text():
        assert time.monotonic() < deadline, f"the demo lab did not stop: {demo_log.read_text()[-2000:]}"
        time.sleep(0.1)
    print(f"binder install steps took {installed:.0f} s")
