"""``heros demo``: serve the demo lab until Ctrl-C, optionally with a loopback hub and a Jupyter frontend.

``--loopback [PORT]`` opens a zenoh hub on 127.0.0.1 (7447, or a free port when that one is
taken) and puts every process of the demo on a loopback configuration (no multicast), for build
machines and containers. ``--lab`` starts JupyterLab on the quickstart notebook, ``--notebook``
Jupyter Notebook 7 on it, ``--dashboard`` a Voila dashboard of the lab's panels. The frontend
inherits the zenoh configuration and the realm (``HEROS_ZENOH_CONFIG``, ``HEROS_REALM``), and so do
its kernels. It opens copies of the notebooks shipped in the package, made in a working folder
(``--workdir``, default ``~/heros-demo``; see ``heros.demo.workdir``), so Jupyter's autosave never
writes into the installed package or a clone's tracked files.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from heros.demo import start_lab
from heros.demo.workdir import DEFAULT_WORKDIR, prepare_workdir
from heros.zenoh import loopback_config, open_hub

from ._progress import Progress
from ._values import UsageError

__all__ = ["DEFAULT_HUB_PORT", "DEFAULT_WORKDIR", "FRONTENDS", "Frontend", "cmd_demo", "open_loopback_hub"]

#: The hub port ``--loopback`` tries first (zenoh's usual port).
DEFAULT_HUB_PORT = 7447
#: Seconds a frontend gets to shut its kernels down before it is killed.
LAB_STOP_TIMEOUT = 15.0
#: Seconds the dashboard server gets to answer before the demo stops waiting to print its address.
DASHBOARD_START_TIMEOUT = 120.0
#: Voila loads every JupyterLab extension installed; these two are Jupyter Notebook's and Voila's own
#: Lab-side extensions, built for a newer JupyterLab than Voila's page: they only fail loudly in its console.
VOILA_DENYLIST = ("@jupyter-notebook/lab-extension", "@voila-dashboards/jupyterlab-preview")


@dataclass(frozen=True)
class Frontend:
    """A Jupyter frontend ``heros demo`` can start: the option, the module to run and the notebook to open."""

    option: str
    title: str
    module: str
    notebook: str
    default_port: int


FRONTENDS = {
    "lab": Frontend("--lab", "JupyterLab", "jupyterlab", "quickstart.ipynb", 8888),
    "notebook": Frontend("--notebook", "Jupyter Notebook", "notebook", "quickstart.ipynb", 8888),
    "dashboard": Frontend("--dashboard", "Voila", "voila", "dashboard.ipynb", 8866),
}


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def open_loopback_hub(port: int) -> tuple[Any, int]:
    """A zenoh hub on 127.0.0.1:``port``, or on a free port if that one is taken; returns (hub, port)."""
    if _port_free(port):
        try:
            return open_hub(port), port
        except Exception:  # noqa: BLE001 - taken between the check and the bind: use another port
            pass
    other = _free_port()
    print(f"port {port} is taken; the loopback hub listens on 127.0.0.1:{other} instead", file=sys.stderr, flush=True)
    return open_hub(other), other


def _option(args: list[str], *names: str) -> str | None:
    """The value of the last ``--name=value`` or ``--name value`` among ``args``, for any of ``names``."""
    found = None
    for i, arg in enumerate(args):
        for name in names:
            if arg.startswith(f"{name}="):
                found = arg.split("=", 1)[1]
            elif arg == name and i + 1 < len(args):
                found = args[i + 1]
    return found


def _frontend_command(frontend: Frontend, workdir: Path, jupyter_args: list[str]) -> tuple[list[str], str | None]:
    """The command line starting ``frontend`` in ``workdir``, and the dashboard's address (None for Jupyter servers)."""
    cmd = [sys.executable, "-m", frontend.module]
    if frontend.module == "voila":
        port = _option(jupyter_args, "--port", "--Voila.port")
        extra = []
        if port is None:
            port = str(frontend.default_port if _port_free(frontend.default_port) else _free_port())
            extra.append(f"--port={port}")
        host = _option(jupyter_args, "--Voila.ip", "--ip") or "localhost"
        url = f"http://{'localhost' if host in ('0.0.0.0', '::', '') else host}:{port}/"
        extra += [f"--VoilaConfiguration.extension_denylist={name}" for name in VOILA_DENYLIST]
        return [*cmd, frontend.notebook, *extra, "--show_tracebacks=True", *jupyter_args], url
    cmd.append(f"--ServerApp.root_dir={workdir}")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # Jupyter servers refuse to start as root otherwise (containers, CI)
    return [*cmd, *jupyter_args, frontend.notebook], None


def _answers(url: str) -> bool:
    """Whether a web server answers at ``url`` (any HTTP status counts: it listens)."""
    try:
        urllib.request.urlopen(url, timeout=1).close()
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


def _stop_process(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()  # Jupyter servers and Voila shut their kernels down on SIGTERM
    try:
        proc.wait(LAB_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # its own process group: the server and its kernels
        proc.wait(5)


def _chosen_frontend(args: argparse.Namespace) -> Frontend | None:
    # the parser lets at most one of them through (a mutually exclusive group)
    return next((FRONTENDS[key] for key in FRONTENDS if getattr(args, key, False)), None)


def _prepare_notebooks(workdir: Path) -> None:
    try:
        copies = prepare_workdir(workdir)
    except (OSError, ValueError) as exc:
        raise UsageError(f"--workdir: {exc}") from None
    folder = workdir.expanduser().resolve()
    changed = [c for c in copies if c.action != "kept"]
    if changed:
        print(f"notebooks in {folder}: " + "; ".join(c.describe() for c in changed), file=sys.stderr, flush=True)
    else:
        print(f"notebooks in {folder} (your copies: nothing shipped since changed them)", file=sys.stderr, flush=True)


def cmd_demo(args: argparse.Namespace) -> int:
    """``heros demo [--lab | --notebook | --dashboard] [--workdir DIR] [--loopback [PORT]]``: serve the demo lab until Ctrl-C."""
    if args.loopback is not None and args.config is not None:
        raise UsageError("--loopback and --config exclude each other: --loopback writes its own loopback configuration")
    frontend = _chosen_frontend(args)
    if args.jupyter_args and frontend is None:
        raise UsageError("arguments after -- are passed to the frontend and need --lab, --notebook or --dashboard")
    workdir = None
    if frontend is not None or args.workdir is not None:
        if frontend is not None and importlib.util.find_spec(frontend.module) is None:
            raise UsageError(f"{frontend.title} is not installed: pip install 'heros-jupyter[jupyter]'")
        workdir = Path(args.workdir or DEFAULT_WORKDIR).expanduser().resolve()
        _prepare_notebooks(workdir)
    hub = lab = proc = None
    try:
        if args.loopback is not None:
            hub, port = open_loopback_hub(args.loopback)
            os.environ["HEROS_ZENOH_CONFIG"] = loopback_config(port)
        with Progress(f"starting the demo lab in realm {args.realm!r}"):
            lab = start_lab(args.realm)
        print(f"demo lab ready: {', '.join(lab)} (realm {args.realm!r})", flush=True)
        if hub is not None:
            realm = "" if args.realm == "heros" else f" HEROS_REALM={shlex.quote(args.realm)}"
            print(f"export HEROS_ZENOH_CONFIG={shlex.quote(os.environ['HEROS_ZENOH_CONFIG'])}{realm}"
                  "   # run this in another terminal to reach the demo lab", flush=True)
        print("try: heros list | heros info laser | heros call stage.move_to 20 | heros watch cryostat.temperature_changed; "
              "lab.switch_off('laser') in a notebook; Ctrl-C stops the demo", file=sys.stderr, flush=True)
        url = None
        if frontend is not None and workdir is not None:
            cmd, url = _frontend_command(frontend, workdir, args.jupyter_args)
            env = {**os.environ, "HEROS_REALM": args.realm}
            proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + DASHBOARD_START_TIMEOUT
        idle = threading.Event()
        while not idle.wait(0.5):
            if proc is not None and proc.poll() is not None:
                assert frontend is not None
                print(f"{frontend.title} exited (code {proc.returncode}); stopping the demo", file=sys.stderr, flush=True)
                break
            if url is not None and (_answers(f"{url}voila/static/") or time.monotonic() > deadline):
                print(f"dashboard: {url}", flush=True)  # a Voila page runs dashboard.ipynb in a kernel of its own
                url = None
    except KeyboardInterrupt:
        pass
    finally:
        if proc is not None:
            _stop_process(proc)
        if lab is not None:
            lab.stop()
        if hub is not None:
            hub.close()
    print("demo stopped", file=sys.stderr, flush=True)
    return 0
