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
        "import heros.datasource.datasource, heros.datasource.types, heros.datasource.observables\n"
        "from heros import LocalHERO, RemoteHERO, HEROObserver, EventObserver, event, DatasourceObserver\n"
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


def test_upstream_datasource_import_paths_exist():
    import heros
    import heros.datasource.datasource as datasource
    import heros.datasource.observables as observables
    import heros.datasource.types as types

    assert {"LocalDatasourceHERO", "PolledLocalDatasourceHERO", "DatasourceObserver", "DatasourceReturnSet",
            "DatasourceReturnValue"} <= set(heros.__all__)
    assert datasource.LocalDatasourceHERO is heros.LocalDatasourceHERO
    assert datasource.PolledLocalDatasourceHERO is heros.PolledLocalDatasourceHERO
    assert datasource.DatasourceObserver is heros.DatasourceObserver
    assert types.DatasourceReturnSet is heros.DatasourceReturnSet and types.DatasourceReturnValue is heros.DatasourceReturnValue
    assert all(callable(getattr(observables, name)) for name in ("ObservableProcessor", "Observable", "Converter",
                                                                  "BoundaryChecker", "lambdify"))


def test_modules_say_what_they_hold():
    missing = [str(p.relative_to(ROOT)) for p in core_modules() if not ast.get_docstring(ast.parse(p.read_text()))]
    assert missing == []


# --- no import cycles in the core, lazy imports included ---------------------------------------------


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported_modules(path: Path, known: set[str]) -> set[str]:
    """The heros modules ``path`` imports anywhere (top level, inside functions, under TYPE_CHECKING)."""
    me = _module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            names = [prefix] + [f"{prefix}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != me:
                found.add(name)
    return found


def test_the_core_has_no_import_cycles_lazy_imports_included():
    paths = {(_module_name(p)): p for p in core_modules()}
    known = set(paths)
    graph = {name: _imported_modules(path, known) - {"heros"} for name, path in paths.items()}
    cycles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt):], nxt])
            elif state.get(nxt) is None:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


# --- the Jupyter layer and the CLI use the core's public surface only --------------------------------

#: Underscore names upstream HEROS documents (they stay as they are), and IPython's display protocol.
ALLOWED_PRIVATE = {"_name", "_realm", "_destroy_hero", "_repr_mimebundle_", "_repr_pretty_", "_ipython_display_"}


def _core_private_names() -> set[str]:
    """Every ``_``-prefixed name the core defines: functions, methods, attributes, module globals."""
    names: set[str] = set()
    for path in core_modules():
        if "cli" in path.relative_to(ROOT).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
    return {n for n in names if n.startswith("_") and not (n.startswith("__") and n.endswith("__"))} - ALLOWED_PRIVATE


def _tool_modules() -> list[Path]:
    return sorted((ROOT / "heros_jupyter").rglob("*.py")) + sorted((ROOT / "heros" / "cli").rglob("*.py"))


def test_the_jupyter_layer_and_the_cli_use_only_the_cores_public_surface():
    private = _core_private_names()
    core = {_module_name(p) for p in core_modules() if "cli" not in p.relative_to(ROOT).parts}
    offenders = []
    for path in _tool_modules():
        where = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in private:
                owner = node.value
                if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                    continue  # the tool's own state
                offenders.append(f"{where}:{node.lineno} .{node.attr}")
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "heros":
                module = node.module or ""
                if any(part.startswith("_") for part in module.split(".")):
                    offenders.append(f"{where}:{node.lineno} from {module}")
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.endswith("__") and module in core:
                        offenders.append(f"{where}:{node.lineno} from {module} import {alias.name}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("heros.") and any(p.startswith("_") for p in alias.name.split(".")):
                        offenders.append(f"{where}:{node.lineno} import {alias.name}")
    assert offenders == []
