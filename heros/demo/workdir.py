"""The demo's working folder: the notebooks shipped in the package, copied where the user may edit them.

The notebooks are package data (``heros/demo/notebooks/``), so ``heros demo --lab`` works from an
installed wheel as well as from a clone, and Jupyter's autosave never writes into the installed
package or into the repository's tracked files: the frontends open the copies.

The folder keeps a small manifest (``.heros-demo.json``: the digest of each shipped notebook when
it was copied) so that later starts can tell a copy nobody changed from one the user edited:

- a notebook missing from the folder is copied;
- when the shipped version is unchanged, the copy is left alone, edited or not;
- when a newer version ships, an unchanged copy is replaced by it; an edited copy (saving a
  notebook with its outputs counts as an edit) is kept, and the new version is written next to it
  as ``NAME.new.ipynb`` (replaced again by the next newer version).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

__all__ = ["DEFAULT_WORKDIR", "MANIFEST", "NotebookCopy", "prepare_workdir", "shipped_notebooks", "shipped_notebooks_dir"]

log = logging.getLogger("heros.demo")

#: Where ``heros demo`` copies the notebooks when no ``--workdir`` is given.
DEFAULT_WORKDIR = Path("~") / "heros-demo"
#: The manifest file in the working folder: notebook name -> digest of the shipped version copied.
MANIFEST = ".heros-demo.json"

Action = Literal["copied", "kept", "updated", "new-version"]


@dataclass(frozen=True)
class NotebookCopy:
    """What ``prepare_workdir`` did with one shipped notebook.

    Attributes
    ----------
    name
        The shipped notebook's file name (``quickstart.ipynb``).
    action
        ``copied`` (it was missing), ``kept`` (the copy stays as it is), ``updated`` (an unchanged
        copy replaced by a newer shipped version) or ``new-version`` (the user's edited copy kept,
        the newer shipped version written next to it).
    path
        The copy in the working folder.
    new_path
        With ``new-version``: where the newer shipped version was written; else None.
    """

    name: str
    action: Action
    path: Path
    new_path: Path | None = None

    def describe(self) -> str:
        """One sentence for a terminal, e.g. ``quickstart.ipynb: copied``."""
        if self.action == "new-version":
            return f"{self.name}: your edited copy is kept; the version shipped now is {self.new_path}"
        if self.action == "updated":
            return f"{self.name}: replaced by the version shipped now (you had not changed it)"
        return f"{self.name}: {self.action}"


def shipped_notebooks_dir() -> Path | None:
    """The folder the notebooks ship in, when it is a folder on disk (None inside a zip archive)."""
    folder = resources.files("heros.demo") / "notebooks"
    return folder if isinstance(folder, Path) else None


def shipped_notebooks() -> dict[str, bytes]:
    """The notebooks shipped with the package: file name -> content."""
    folder = resources.files("heros.demo") / "notebooks"
    return {item.name: item.read_bytes() for item in sorted(folder.iterdir(), key=lambda i: i.name)
            if item.name.endswith(".ipynb") and item.is_file()}


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_manifest(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    notebooks = data.get("notebooks") if isinstance(data, dict) else None
    return {k: v for k, v in notebooks.items() if isinstance(k, str) and isinstance(v, str)} if isinstance(notebooks, dict) else {}


def _write(path: Path, data: bytes) -> None:
    # write then rename, so an interrupted start never leaves half a notebook behind
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def prepare_workdir(workdir: Path | str, *, shipped: Mapping[str, bytes] | None = None) -> list[NotebookCopy]:
    """Copy the shipped notebooks into ``workdir`` (created if needed), never overwriting the user's edits.

    Parameters
    ----------
    workdir
        The working folder (``~`` is expanded).
    shipped
        The notebooks to install, file name -> content (default: ``shipped_notebooks()``).

    Returns
    -------
    list of NotebookCopy
        One entry per shipped notebook, in name order.

    Raises
    ------
    ValueError
        If ``workdir`` is the folder the notebooks ship in (the copies would be the package's files).
    OSError
        If the folder cannot be created or written.
    """
    folder = Path(workdir).expanduser().resolve()
    source = shipped_notebooks_dir()
    if source is not None and folder == source.resolve():
        raise ValueError(f"the working folder {folder} is where the notebooks ship; choose another one")
    notebooks = shipped_notebooks() if shipped is None else dict(shipped)
    folder.mkdir(parents=True, exist_ok=True)
    manifest_path = folder / MANIFEST
    manifest = _read_manifest(manifest_path)
    done: list[NotebookCopy] = []
    for name in sorted(notebooks):
        data = notebooks[name]
        new = _digest(data)
        target = folder / name
        if not target.exists():
            _write(target, data)
            done.append(NotebookCopy(name, "copied", target))
        else:
            current = _digest(target.read_bytes())
            recorded = manifest.get(name)
            if current == new or recorded == new:
                done.append(NotebookCopy(name, "kept", target))  # up to date, or edited since this version was copied
            elif current == recorded:
                _write(target, data)  # nobody touched the old version: take the new one
                done.append(NotebookCopy(name, "updated", target))
            else:
                side = target.with_name(f"{target.stem}.new{target.suffix}")
                _write(side, data)
                done.append(NotebookCopy(name, "new-version", target, side))
        manifest[name] = new
    _write(manifest_path, (json.dumps({"notebooks": manifest}, indent=1, sort_keys=True) + "\n").encode())
    log.debug("demo working folder %s: %s", folder, ", ".join(f"{c.name} {c.action}" for c in done))
    return done
