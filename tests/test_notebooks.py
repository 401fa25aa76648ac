"""The notebooks shipped in ``heros/demo/notebooks/`` run top to bottom in a real kernel (nbclient)
against the demo lab running in another process; a cell that raises fails the test. Running them
never writes into the shipped files. ``panels.ipynb``'s "When a HERO goes away" cells, run one by
one, grey the laser's panel out and bring it back."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import nbformat
import pytest
from jupyter_helpers import NOTEBOOKS, Kernel
from lab_process import start_demo
from nbclient import NotebookClient

from heros.demo.workdir import shipped_notebooks

pytest_plugins = ["jupyter_fixtures"]

PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
VIEW = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def lab_realm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    realm = f"nb{uuid.uuid4().hex[:10]}"
    proc = start_demo(realm, tmp_path_factory.mktemp("demo") / "demo.log")
    yield realm
    assert proc.terminate() == 0, proc.log()


def execute(path: Path, workdir: Path) -> nbformat.NotebookNode:
    """Run the notebook in a new kernel (which inherits HEROS_ZENOH_CONFIG and HEROS_REALM)."""
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=120, startup_timeout=90, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}).execute()
    return nb


def text_of(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def tagged(nb: nbformat.NotebookNode, tag: str) -> nbformat.NotebookNode:
    cells = [c for c in nb.cells if tag in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"expected one cell tagged {tag!r}, found {len(cells)}"
    return cells[0]


def test_the_notebooks_ship_clean_with_the_package() -> None:
    assert [p.name for p in PATHS] == ["dashboard.ipynb", "panels.ipynb", "quickstart.ipynb"]
    assert sorted(shipped_notebooks()) == [p.name for p in PATHS]  # what an installed package finds
    for path in PATHS:  # no outputs committed: a copy starts clean
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert all(not c.outputs and c.execution_count is None for c in nb.cells if c.cell_type == "code"), path.name


@pytest.mark.kernel
@pytest.mark.parametrize("path", PATHS, ids=[p.name for p in PATHS])
def test_notebook_runs_against_the_demo_lab(path: Path, lab_realm: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEROS_REALM", lab_realm)
    shipped = path.read_bytes()
    nb = execute(path, tmp_path)
    assert path.read_bytes() == shipped, "running a notebook wrote into the shipped file"
    assert all(cell.get("execution_count") for cell in nb.cells if cell.cell_type == "code" and cell.source.strip())
    if path.name == "quickstart.ipynb":
        out = text_of(nb)
        assert f"realm '{lab_realm}', network: loopback" in out
        assert "world" in out and "['hello zenoh']" in out
        assert "refused: attribute 'setpoint' of HERO 'cryostat' must be within 3..350 K, not 1000" in out
        assert "InterlockError: laser 'laser' cannot be enabled: the interlock is open" in out
        assert "my_hero: TestObject with 1 attributes, 2 methods, 1 events, seen from the lab HERO 'lab'" in out
        assert "Unserializable Remote Object (heros.demo.instruments.Logbook)" in out
        assert "done" in out
        # the camera's image, drawn by matplotlib (the [jupyter] extra brings it): a PNG, no "install" hint
        image = tagged(nb, "camera-image")
        assert any(o.get("data", {}).get("image/png") for o in image.outputs), image.outputs
        assert "install matplotlib" not in out
    if path.name == "dashboard.ipynb":
        views = [c for c in nb.cells if c.cell_type == "code" and any(VIEW in o.get("data", {}) for o in c.outputs)]
        assert len(views) == 2  # the discovery table, the grid of panels
        models = {s["model_name"] for s in nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"].values()}
        assert "GridBoxModel" in models and "FloatSliderModel" in models
    if path.name == "panels.ipynb":
        out = text_of(nb)
        assert "laser switched off" in out and "laser switched on" in out


@pytest.mark.kernel
def test_a_failing_cell_fails_the_run(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("from heros import RemoteHERO"),
        nbformat.v4.new_code_cell(f"RemoteHERO('nobody', realm='empty{uuid.uuid4().hex[:8]}', discovery_timeout=0.5)"),
        nbformat.v4.new_code_cell("print('never reached')"),
    ])
    path = tmp_path / "failing.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(Exception, match="NameError") as info:
        execute(path, tmp_path)
    assert type(info.value).__name__ == "CellExecutionError"


@pytest.mark.kernel
def test_panels_notebook_switches_the_laser_off_and_on(lab_realm: str, kernel: Callable[..., Kernel]) -> None:
    """The notebook's own cells, one by one: switch_off greys the laser's panel out, switch_on rebinds it."""
    nb = nbformat.read(NOTEBOOKS / "panels.ipynb", as_version=4)
    off, on = tagged(nb, "switch-off"), tagged(nb, "switch-on")
    with kernel(HEROS_REALM=lab_realm) as k:
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            if cell is off:
                k.run("import os\n_panel = lambda name: get_ipython()._heros_magics.panels[(os.environ['HEROS_REALM'], name)]\n"
                      "_before = laser")
                assert k.run(cell.source + "\nprint(lab.switched_off)").strip().endswith("['laser']")
                # what the page shows: the panel greyed out, saying so, its run buttons disabled
                k.settle("'heros-disconnected' in _panel('laser').widget._dom_classes and 'is gone' in _panel('laser').conn.value"
                         " and _panel('laser').forms['pulse'].button.disabled")
                assert "cryostat" in k.run("print(sorted(n for (r, n), p in get_ipython()._heros_magics.panels.items() if p.alive))")
            elif cell is on:
                assert k.run(cell.source + "\nprint(lab.switched_off)").strip().endswith("[]")
                k.settle("'heros-disconnected' not in _panel('laser').widget._dom_classes and 'reconnected' in _panel('laser').conn.value"
                         " and not _panel('laser').forms['pulse'].button.disabled")
                # the variable holds a fresh proxy, to a laser in its start state
                out = k.run("print(laser is _panel('laser').proxy, laser is not _before, laser.power, laser.enabled, laser.wavelength)")
                assert out.split() == ["True", "True", "0.0", "False", "532"], out
                assert k.run("print(_panel('laser').bindings['power'].control.widget.value)").strip() == "0.0"
            else:
                k.run(cell.source)
