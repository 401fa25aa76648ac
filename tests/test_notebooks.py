"""Every notebook in ``notebooks/`` runs top to bottom in a real kernel (nbclient) against the demo
lab running in another process; a cell that raises fails the test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT
from lab_process import start_demo
from nbclient import NotebookClient

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


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


def test_quickstart_is_there() -> None:
    assert ROOT / "notebooks" / "quickstart.ipynb" in NOTEBOOKS


@pytest.mark.kernel
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_against_the_demo_lab(path: Path, lab_realm: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEROS_REALM", lab_realm)
    nb = execute(path, tmp_path)
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
