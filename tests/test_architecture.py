"""Layering, checked on the source with ast: zenoh only in heros/zenoh.py, no Jupyter in heros/."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JUPYTER = {"IPython", "ipywidgets", "ipykernel", "traitlets", "heros_jupyter", "jupyter_client", "nbformat"}


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def core_modules() -> list[Path]:
    return sorted((ROOT / "heros").rglob("*.py"))


def test_only_heros_zenoh_imports_zenoh():
    offenders = [p.relative_to(ROOT) for p in core_modules() if "zenoh" in imports(p) and p.name != "zenoh.py"]
    assert offenders == []


def test_the_core_never_imports_the_jupyter_side():
    offenders = {str(p.relative_to(ROOT)): imports(p) & JUPYTER for p in core_modules() if imports(p) & JUPYTER}
    assert offenders == {}


def test_the_core_imports_and_serves_without_jupyter_packages():
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {sorted(JUPYTER)!r}: raise ImportError('blocked ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import heros, heros.heros, heros.helper, heros.zenoh, heros.event, heros.inspect, heros.exceptions\n"
        "from heros import LocalHERO, RemoteHERO, HEROObserver, EventObserver, event\n"
        "print('ok', heros.helper.generate_multicast_address('x'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok ")


def test_upstream_import_paths_exist():
    import heros
    import heros.event
    import heros.exceptions
    import heros.helper
    import heros.heros
    import heros.inspect
    import heros.zenoh

    assert heros.heros.HEROObserver is heros.HEROObserver
    assert callable(heros.event.reliable) and callable(heros.inspect.local_only) and callable(heros.inspect.force_remote)
    assert issubclass(heros.exceptions.RemoteHEROError, heros.exceptions.HEROSError)
    assert issubclass(heros.exceptions.RemoteTransportError, heros.exceptions.HEROSError)
    assert isinstance(heros.zenoh.session_manager, heros.zenoh.ZenohSessionManager)
    assert callable(heros.zenoh.ZenohSessionManager.update_config)
    assert {"LocalHERO", "RemoteHERO", "HEROObserver", "EventObserver", "event", "HEROPeer"} <= set(heros.__all__)


def test_modules_say_what_they_hold():
    missing = [str(p.relative_to(ROOT)) for p in core_modules() if not ast.get_docstring(ast.parse(p.read_text()))]
    assert missing == []
