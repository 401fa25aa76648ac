"""Pyro5 and RPyC call latency on loopback, the same ``add(1, 2)`` call as the HERO scenario.

Roles: ``pyro-serve`` / ``rpyc-serve`` print ``READY {"address": ...}`` and serve until stdin
closes; ``pyro-client ADDRESS`` / ``rpyc-client ADDRESS`` report the call latency.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading

from _common import latency_stats, ready, result, timed


class BenchObject:
    def add(self, a: int, b: int) -> int:
        return a + b


def pyro_serve() -> None:
    import Pyro5.api

    daemon = Pyro5.api.Daemon(host="127.0.0.1", port=0)
    uri = daemon.register(Pyro5.api.expose(BenchObject)(), "bench")
    threading.Thread(target=daemon.requestLoop, daemon=True).start()
    ready({"address": str(uri), "pyro5": Pyro5.__version__, "serializer": Pyro5.config.SERIALIZER})
    sys.stdin.read()
    daemon.shutdown()


def pyro_client(address: str, n: int) -> None:
    import Pyro5.api

    with Pyro5.api.Proxy(address) as proxy:
        proxy._pyroBind()
        assert proxy.add(1, 2) == 3
        result("call", {**latency_stats(timed(n, lambda: proxy.add(1, 2))), "serializer": Pyro5.config.SERIALIZER})


def rpyc_serve() -> None:
    import rpyc
    from rpyc.utils.server import ThreadedServer

    class BenchService(rpyc.Service):
        def exposed_add(self, a: int, b: int) -> int:
            return a + b

    server = ThreadedServer(BenchService, hostname="127.0.0.1", port=0)
    threading.Thread(target=server.start, daemon=True).start()
    ready({"address": f"127.0.0.1:{server.port}", "rpyc": rpyc.__version__})
    sys.stdin.read()
    server.close()


def rpyc_client(address: str, n: int) -> None:
    import rpyc

    host, port = address.rsplit(":", 1)
    conn = rpyc.connect(host, int(port))
    add = conn.root.add  # bound once: one round trip per call, as a HERO proxy's cached method
    assert add(1, 2) == 3
    result("call", latency_stats(timed(n, lambda: add(1, 2))))
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("role", choices=["pyro-serve", "pyro-client", "rpyc-serve", "rpyc-client"])
    parser.add_argument("address", nargs="?")
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    {"pyro-serve": pyro_serve, "rpyc-serve": rpyc_serve}.get(args.role, lambda: None)()
    if args.role == "pyro-client":
        pyro_client(args.address, args.n)
    elif args.role == "rpyc-client":
        rpyc_client(args.address, args.n)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
