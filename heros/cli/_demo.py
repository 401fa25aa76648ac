"""``heros demo``: serve the demo lab until Ctrl-C, optionally with a loopback hub and JupyterLab.

``--loopback [PORT]`` opens a zenoh hub on 127.0.0.1 (7447, or a free port when that one is
taken) and puts every process of the demo on a loopback configuration (no multicast), for build
machines and containers. ``--lab`` starts JupyterLab on the quickstart notebook; it inherits the
zenoh configuration and the realm (``HEROS_ZENOH_CONFIG``, ``HEROS_REALM``), and so do its kernels.
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
from pathlib import Path
from typing import Any

from heros.demo import start_lab
from heros.zenoh import loopback_config, open_hub

from ._progress import Progress
from ._values import UsageError

__all__ = ["DEFAULT_HUB_PORT", "cmd_demo", "find_quickstart", "open_loopback_hub"]

#: The hub port ``--loopback`` tries first (zenoh's usual port).
DEFAULT_HUB_PORT = 7447
#: Seconds JupyterLab gets to shut its kernels down before it is killed.
LAB_STOP_TIMEOUT = 15.0
QUICKSTART = Path("notebooks") / "quickstart.ipynb"


def find_quickstart() -> Path:
    """The directory holding ``notebooks/quickstart.ipynb``: the current one, else the source tree's."""
    candidates = [Path.cwd(), Path(__file__).resolve().parents[2]]
    for root in candidates:
        if (root / QUICKSTART).is_file():
            return root
    raise UsageError(f"cannot find {QUICKSTART}: run 'heros demo --lab' from a clone of the heros-jupyter repository")


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


def _jupyterlab_command(root: Path, jupyter_args: list[str]) -> list[str]:
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={root}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # JupyterLab refuses to start as root otherwise (containers, CI)
    return [*cmd, *jupyter_args, str(QUICKSTART)]


def _stop_process(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()  # JupyterLab shuts its kernels down on SIGTERM
    try:
        proc.wait(LAB_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # its own process group: the server and its kernels
        proc.wait(5)


def cmd_demo(args: argparse.Namespace) -> int:
    """``heros demo [--lab] [--loopback [PORT]]``: serve the demo lab until Ctrl-C."""
    if args.loopback is not None and args.config is not None:
        raise UsageError("--loopback and --config exclude each other: --loopback writes its own loopback configuration")
    if args.jupyter_args and not args.lab:
        raise UsageError("arguments after -- are passed to JupyterLab and need --lab")
    root = None
    if args.lab:
        if importlib.util.find_spec("jupyterlab") is None:
            raise UsageError("JupyterLab is not installed: pip install 'heros-jupyter[jupyter]'")
        root = find_quickstart()
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
              "Ctrl-C stops the demo", file=sys.stderr, flush=True)
        if root is not None:
            env = {**os.environ, "HEROS_REALM": args.realm}
            proc = subprocess.Popen(_jupyterlab_command(root, args.jupyter_args), cwd=root, env=env,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        idle = threading.Event()
        while not idle.wait(0.5):
            if proc is not None and proc.poll() is not None:
                print(f"JupyterLab exited (code {proc.returncode}); stopping the demo", file=sys.stderr, flush=True)
                break
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
