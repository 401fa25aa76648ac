"""Threads and memory of a real Jupyter kernel with 20 panels open (20 HEROs, 10 attributes and 3 events each).

    python bench/kernel_panels.py [--panels 20] [--root PATH]

A server process serves the HEROs; an nbclient kernel loads ``heros_jupyter``, connects a panel
to each HERO, lets them run for a few seconds (one event of each HERO fires 5 times a second) and
reports its OS threads and RSS before and after. ``--root`` runs another checkout's code (for a
before/after comparison: ``git worktree add /tmp/old <commit>``, then ``--root /tmp/old``).
Everything talks over a loopback zenoh hub.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Annotated, Any

HERE = Path(__file__).resolve().parent


def serve(realm: str, count: int) -> None:
    from heros import LocalHERO, event
    from heros.meta import Range, Unit

    class Instrument(LocalHERO):
        """Ten attributes, three events, three methods."""

        a0: Annotated[float, Range(0, 10), Unit("V")] = 1.0
        a1: Annotated[float, Range(0, 10), Unit("V")] = 1.0
        a2: Annotated[float, Range(0, 10), Unit("V")] = 1.0
        a3: Annotated[float, Range(0, 10), Unit("V")] = 1.0
        a4: int = 0
        a5: int = 0
        a6: str = "x"
        a7: str = "y"
        a8: bool = False
        a9: float = 0.5

        def m0(self, x: float = 1.0) -> float:
            return x

        def m1(self) -> str:
            return "ok"

        def m2(self, n: int = 2) -> list:
            return list(range(n))

        @event
        def e0(self, v: float) -> float:
            return v

        @event
        def e1(self, v: float) -> float:
            return v

        @event
        def e2(self, v: float) -> float:
            return v

    heroes = [Instrument(f"inst{i}", realm=realm) for i in range(count)]
    stop = threading.Event()

    def tick() -> None:
        i = 0
        while not stop.wait(0.2):
            i += 1
            for h in heroes:
                h.e0(float(i))

    threading.Thread(target=tick, daemon=True).start()
    print("READY", flush=True)
    sys.stdin.read()
    stop.set()


MEASURE = r"""
import os, threading
def heros_kernel_figures():
    rss = int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20
    import collections, re
    names = collections.Counter(re.sub(r'[-_ ]?\d+.*$', '', t.name) for t in threading.enumerate())
    return {'os_threads': len(os.listdir('/proc/self/task')), 'py_threads': threading.active_count(), 'rss_mib': round(rss, 1), 'python_threads_by_name': dict(names)}
"""


def measure(realm: str, panels: int, root: Path, settle: float) -> dict[str, Any]:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    client = NotebookClient(nb, timeout=180, kernel_name="python3")
    env = {**os.environ, "HEROS_REALM": realm, "PYTHONPATH": str(root)}
    out: dict[str, Any] = {}

    def run(code: str) -> str:
        cell = nbformat.v4.new_code_cell(code)
        nb.cells.append(cell)
        client.execute_cell(cell, len(nb.cells) - 1)
        errors = [o for o in cell.outputs if o.get("output_type") == "error"]
        if errors:
            raise RuntimeError(f"{errors[0]['ename']}: {errors[0]['evalue']}")
        return "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")

    with client.setup_kernel(env=env):
        run(MEASURE)
        out["before"] = json.loads(run("import json; print(json.dumps(heros_kernel_figures()))"))
        run("import heros; print(heros.__file__)")
        run("%load_ext heros_jupyter")
        t0 = time.monotonic()
        run("from IPython.display import display\n"
            f"panels = [get_ipython().run_line_magic('heros', f'connect inst{{i}}') for i in range({panels})]\n"
            "for p in panels: display(p)")
        out["connect_seconds"] = round(time.monotonic() - t0, 2)
        run(f"import asyncio\nawait asyncio.sleep({settle})")
        out["after"] = json.loads(run("import json; print(json.dumps(heros_kernel_figures()))"))
        out["heros_file"] = run("print(heros.__file__)").strip()
    out["threads_per_panel"] = round((out["after"]["os_threads"] - out["before"]["os_threads"]) / panels, 2)
    out["rss_per_panel_mib"] = round((out["after"]["rss_mib"] - out["before"]["rss_mib"]) / panels, 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("role", nargs="?", default="measure", choices=["measure", "serve"])
    parser.add_argument("realm", nargs="?")
    parser.add_argument("--panels", type=int, default=20)
    parser.add_argument("--root", type=Path, default=HERE.parent, help="the checkout whose heros and heros_jupyter run")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds the panels run before the figures are taken")
    args = parser.parse_args()
    if args.role == "serve":
        serve(args.realm, args.panels)
        return
    sys.path.insert(0, str(args.root))
    from heros.zenoh import loopback_config, open_hub

    with socket_port() as port:
        pass
    hub = open_hub(port)
    os.environ["HEROS_ZENOH_CONFIG"] = loopback_config(port)
    realm = f"k{uuid.uuid4().hex[:10]}"
    env = {**os.environ, "PYTHONPATH": str(args.root)}
    server = subprocess.Popen([sys.executable, __file__, "serve", realm, "--panels", str(args.panels)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert server.stdout.readline().strip() == "READY"
        figures = measure(realm, args.panels, args.root.resolve(), args.settle)
    finally:
        server.stdin.close()
        server.wait(10)
        hub.close()
    print(json.dumps(figures, indent=1))


class socket_port:
    """A free loopback port (``with socket_port() as port``)."""

    def __enter__(self) -> int:
        import socket

        self._s = socket.socket()
        self._s.bind(("127.0.0.1", 0))
        return int(self._s.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self._s.close()


if __name__ == "__main__":
    main()
