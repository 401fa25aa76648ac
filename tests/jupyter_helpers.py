"""Helpers for the Jupyter tests: bounded waits, a recording comm, running on the loop thread, driving nbclient kernels."""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
NOTEBOOKS = Path(__file__).resolve().parents[1] / "heros" / "demo" / "notebooks"  # shipped as package data


def ipython_shell() -> Any:
    """The process's IPython shell for kernel-less tests (IPython's test shell; ``Output`` widgets format with it)."""
    from IPython.testing import globalipapp

    globalipapp.start_ipython()
    return globalipapp.get_ipython()


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


class RecordingComm:
    """A comm that records every message a widget sends: ``(monotonic time, comm_id, data)``."""

    kernel = "recording"

    def __init__(self, log: list[tuple[float, str, Any]], **kwargs: Any) -> None:
        self.comm_id = kwargs.get("comm_id") or uuid.uuid4().hex
        self.log = log
        self.log.append((time.monotonic(), self.comm_id, {"method": "open", **(kwargs.get("data") or {})}))

    def send(self, data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        self.log.append((time.monotonic(), self.comm_id, data))

    def open(self, *args: Any, **kwargs: Any) -> None:
        pass

    def on_msg(self, callback: Any) -> None:
        pass

    def on_close(self, callback: Any) -> None:
        pass

    def close(self, *args: Any, **kwargs: Any) -> None:
        self.log.append((time.monotonic(), self.comm_id, {"method": "close"}))


def on_loop(loop: asyncio.AbstractEventLoop, fn: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Run ``fn`` on ``loop``'s thread and return its result (widgets belong to that thread)."""

    async def call() -> Any:
        return fn()

    return asyncio.run_coroutine_threadsafe(call(), loop).result(timeout)


class Kernel:
    """A real IPython kernel driven by nbclient, plus the comm messages a browser would send."""

    def __init__(self, client: Any, nb: Any) -> None:
        self.client = client
        self.nb = nb

    def run(self, code: str, timeout: float = 60) -> str:
        """Execute ``code`` as a new cell; returns its text output; fails the test on an error."""
        import nbformat

        cell = nbformat.v4.new_code_cell(code)
        self.nb.cells.append(cell)
        self.client.execute_cell(cell, len(self.nb.cells) - 1)
        errors = [o for o in cell.outputs if o.get("output_type") == "error"]
        if errors:
            pytest.fail(f"cell failed: {errors[0]['ename']}: {errors[0]['evalue']}\n{code}")
        return "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")

    def settle(self, condition: str, timeout: float = 15.0, action: Callable[[], Any] | None = None) -> None:
        """Let the kernel's loop run (an awaiting cell) until the Python expression ``condition`` is true.

        nbclient keeps only widget messages sent while a cell runs, as children of that cell; updates
        the loop applies between cells reach a browser but not the saved state. So ``action`` (a HERO
        starting, a remote write) is done only once the awaiting cell has started.
        """
        marker = Path(tempfile.mkdtemp()) / "started"
        steps = int(timeout / 0.05)
        code = (
            f"open({str(marker)!r}, 'w').close()\n"
            "import asyncio as _a\n"
            f"for _i in range({steps}):\n"
            f"    if {condition}:\n"
            "        print('SETTLED'); break\n"
            "    await _a.sleep(0.05)\n"
            "else:\n"
            "    print('TIMEOUT')\n"
        )
        if action is None:
            out = self.run(code, timeout=timeout + 30)
        else:
            result: dict[str, Any] = {}

            def execute() -> None:
                try:
                    result["out"] = self.run(code, timeout=timeout + 30)
                except BaseException as exc:
                    result["error"] = exc

            thread = threading.Thread(target=execute)
            thread.start()
            wait_until(lambda: marker.exists() or not thread.is_alive(), 30, "the awaiting cell to start")
            action()
            thread.join(timeout + 60)
            if "error" in result:
                raise result["error"]
            out = result.get("out", "")
        if "SETTLED" not in out:
            pytest.fail(f"kernel never reached {condition!r} within {timeout} s")

    def complete(self, code: str) -> list[str]:
        """The matches the kernel answers to a frontend's Tab at the end of ``code``."""
        return list(self._complete_reply(code)["matches"])

    def completion_types(self, code: str) -> list[str]:
        """The type of each match, as JupyterLab shows it beside the match (ipykernel's experimental metadata)."""
        return [c["type"] for c in self._complete_reply(code)["metadata"]["_jupyter_types_experimental"]]

    def _complete_reply(self, code: str) -> dict[str, Any]:
        from jupyter_core.utils import run_sync

        kc = self.client.kc
        msg_id = kc.complete(code, len(code))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            reply = run_sync(kc.get_shell_msg)(timeout=30)
            if reply["parent_header"].get("msg_id") == msg_id:
                content: dict[str, Any] = reply["content"]
                return content
        pytest.fail(f"no completion reply for {code!r}")

    def resync(self) -> None:
        """Have every widget send its full state now, so the saved state equals the kernel's.

        For changes the loop applied between cells (a fast reply to a frontend message): the browser
        got them as they happened, nbclient dropped them (their parent was no running cell).
        """
        # (not Output widgets: nbclient's stand-in for them trips over a full state with an empty msg_id)
        self.run(
            "from ipywidgets.widgets.widget import _instances as _wi\n"
            "for _w in list(_wi.values()):\n"
            "    if _w._model_name != 'OutputModel':\n"
            "        _w.send_state()"
        )

    @property
    def state(self) -> dict[str, dict[str, Any]]:
        """Widget models the kernel sent so far: model id -> state."""
        return self.client.widget_state

    def models(self, css_class: str) -> list[str]:
        """Ids of the widget models carrying ``css_class``."""
        return [mid for mid, s in self.state.items() if css_class in (s.get("_dom_classes") or ())]

    def model(self, css_class: str) -> str:
        found = self.models(css_class)
        assert len(found) == 1, f"expected one widget with class {css_class!r}, found {len(found)}"
        return found[0]

    def children(self, model_id: str) -> list[str]:
        return [ref.removeprefix("IPY_MODEL_") for ref in self.state[model_id].get("children", [])]

    def descendants(self, model_id: str, css_class: str) -> list[str]:
        """Ids of the widgets under ``model_id`` (depth first, in order) that carry ``css_class``."""
        found = []
        for child in self.children(model_id):
            if css_class in (self.state[child].get("_dom_classes") or ()):
                found.append(child)
            found.extend(self.descendants(child, css_class))
        return found

    def send(self, model_id: str, data: dict[str, Any]) -> None:
        kc = self.client.kc
        kc.shell_channel.send(kc.session.msg("comm_msg", {"comm_id": model_id, "data": data}))

    def set_value(self, model_id: str, value: Any) -> None:
        """What the frontend sends when the user commits a value."""
        self.send(model_id, {"method": "update", "state": {"value": value}, "buffer_paths": []})

    def click(self, model_id: str) -> None:
        """What the frontend sends when the user clicks a button."""
        self.send(model_id, {"method": "custom", "content": {"event": "click"}})


def run_notebook(path: Path, realm: str, timeout: float = 240) -> Any:
    """Execute a notebook top to bottom in a fresh kernel (HEROS_REALM=realm); returns the executed notebook."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    old = os.environ.get("HEROS_REALM")
    os.environ["HEROS_REALM"] = realm
    try:
        client.execute()
    finally:
        if old is None:
            os.environ.pop("HEROS_REALM", None)
        else:
            os.environ["HEROS_REALM"] = old
    return nb
