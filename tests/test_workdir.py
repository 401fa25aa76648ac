"""The demo's working folder (``heros.demo.workdir``): the shipped notebooks are copied on the first
start, the user's edits are never overwritten, and a newer shipped version lands next to an edited copy."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from lab_process import start_demo

from heros.demo.workdir import MANIFEST, prepare_workdir, shipped_notebooks, shipped_notebooks_dir


def actions(copies: list) -> dict[str, str]:
    return {c.name: c.action for c in copies}


def test_the_first_start_copies_every_shipped_notebook(tmp_path: Path) -> None:
    folder = tmp_path / "nested" / "heros-demo"
    copies = prepare_workdir(folder)
    shipped = shipped_notebooks()
    assert set(shipped) == {"dashboard.ipynb", "panels.ipynb", "quickstart.ipynb"}
    assert actions(copies) == dict.fromkeys(shipped, "copied")
    for name, data in shipped.items():
        assert (folder / name).read_bytes() == data
    assert set(json.loads((folder / MANIFEST).read_text())["notebooks"]) == set(shipped)
    assert sorted(p.name for p in folder.iterdir()) == sorted([MANIFEST, *shipped])  # no temporary files left


def test_later_starts_keep_the_users_copies(tmp_path: Path) -> None:
    prepare_workdir(tmp_path)
    edited = (tmp_path / "quickstart.ipynb").read_bytes().replace(b"HEROS quickstart", b"My quickstart")
    (tmp_path / "quickstart.ipynb").write_bytes(edited)
    (tmp_path / "panels.ipynb").unlink()  # deleted: it comes back
    copies = prepare_workdir(tmp_path)
    assert actions(copies) == {"dashboard.ipynb": "kept", "panels.ipynb": "copied", "quickstart.ipynb": "kept"}
    assert (tmp_path / "quickstart.ipynb").read_bytes() == edited


def test_a_newer_shipped_version_replaces_unchanged_copies_and_lands_beside_edited_ones(tmp_path: Path) -> None:
    old = {"a.ipynb": b'{"v": 1}', "b.ipynb": b'{"v": 1}'}
    prepare_workdir(tmp_path, shipped=old)
    (tmp_path / "b.ipynb").write_bytes(b'{"v": 1, "outputs": "saved by Jupyter"}')
    new = {"a.ipynb": b'{"v": 2}', "b.ipynb": b'{"v": 2}'}
    copies = prepare_workdir(tmp_path, shipped=new)
    assert actions(copies) == {"a.ipynb": "updated", "b.ipynb": "new-version"}
    assert (tmp_path / "a.ipynb").read_bytes() == b'{"v": 2}'
    assert (tmp_path / "b.ipynb").read_bytes() == b'{"v": 1, "outputs": "saved by Jupyter"}'
    assert (tmp_path / "b.new.ipynb").read_bytes() == b'{"v": 2}'
    assert copies[1].new_path == tmp_path / "b.new.ipynb"
    assert "your edited copy is kept" in copies[1].describe()
    # the same version again: nothing more to say
    assert actions(prepare_workdir(tmp_path, shipped=new)) == {"a.ipynb": "kept", "b.ipynb": "kept"}


def test_a_file_of_the_same_name_the_demo_never_wrote_is_kept(tmp_path: Path) -> None:
    (tmp_path / "a.ipynb").write_bytes(b"mine")
    copies = prepare_workdir(tmp_path, shipped={"a.ipynb": b"shipped"})
    assert actions(copies) == {"a.ipynb": "new-version"}
    assert (tmp_path / "a.ipynb").read_bytes() == b"mine" and (tmp_path / "a.new.ipynb").read_bytes() == b"shipped"


def test_the_shipped_folder_itself_is_refused() -> None:
    source = shipped_notebooks_dir()
    assert source is not None and (source / "quickstart.ipynb").is_file()
    with pytest.raises(ValueError, match="is where the notebooks ship"):
        prepare_workdir(source)


def test_heros_demo_workdir_copies_then_keeps(tmp_path: Path) -> None:
    """``heros demo --workdir DIR`` without a frontend copies the notebooks and serves the lab (what Binder runs)."""
    realm = f"wd{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "work"
    demo = start_demo(realm, tmp_path / "demo1.log", "--workdir", str(folder))
    assert demo.terminate() == 0
    assert f"notebooks in {folder}: dashboard.ipynb: copied; panels.ipynb: copied; quickstart.ipynb: copied" in demo.log()
    (folder / "panels.ipynb").write_text("{}")
    demo = start_demo(realm, tmp_path / "demo2.log", "--workdir", str(folder))
    assert demo.terminate() == 0
    assert f"notebooks in {folder} (your copies: nothing shipped since changed them)" in demo.log()
    assert (folder / "panels.ipynb").read_text() == "{}"
