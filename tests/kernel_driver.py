"""A Jupyter kernel driven by nbclient from a process of its own, so that it can run on another
"host" (inside a network namespace: ``ip netns exec NS python tests/kernel_driver.py``).

It starts a kernel (which inherits this process's environment: ``HEROS_ZENOH_CONFIG``,
``HEROS_REALM``), prints ``READY``, then obeys stdin lines as ``tests/servers.py`` does:
``eval EXPR`` evaluates EXPR with ``k``, a ``jupyter_helpers.Kernel``, and prints ``OK <json>``
(or ``ERR <message>``); it stops the kernel on EOF or ``exit``.
"""

from __future__ import annotations

import json
import sys
import traceback

import nbformat
from jupyter_helpers import Kernel
from nbclient import NotebookClient


def main() -> None:
    nb = nbformat.v4.new_notebook()
    # Now and then (about one run in ten here) nbclient never sees the "idle" of a cell that awaited
    # while a panel was rebuilt, and waits iopub_timeout for it before dropping the cell's output: the
    # tests read their answers from files, and a short wait keeps such a run short.
    client = NotebookClient(nb, timeout=120, kernel_name="python3", iopub_timeout=5)
    with client.setup_kernel():
        k = Kernel(client, nb)
        print("READY", flush=True)
        for line in sys.stdin:
            line = line.strip()
            if line == "exit":
                break
            if not line.startswith("eval "):
                continue
            try:
                result = eval(line[5:], {"k": k, "json": json})
                print("OK", json.dumps(result, default=repr), flush=True)
            except BaseException as exc:  # pytest.fail raises an outcome that is no Exception: report it too
                print("ERR", " ".join(f"{type(exc).__name__}: {exc}".split()), flush=True)
                traceback.print_exc()
    print("BYE", flush=True)


if __name__ == "__main__":
    main()
