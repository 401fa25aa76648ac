"""``heros router``: a zenoh router opened from Python, for HEROs on several subnets or sites.

It prints where it listens and the ``HEROS_ZENOH_CONFIG`` lines that peers and clients use to
reach it, then routes until Ctrl-C. zenoh does the routing; this command only configures it as
the HEROS sessions are configured (``--config``/``HEROS_ZENOH_CONFIG``, ``HEROS_SEP_MULTICAST``
with ``--realm``), plus:

- ``--lease S``: links silent for S seconds are dropped, and configured endpoints are tried
  again at least every S seconds (``heros.zenoh.link_settings``); the printed lines carry the
  same settings, because each end of a link applies the lease the other end announces;
- one zenoh subregion per network interface (``heros.zenoh.interface_subregions``), so that
  peers on two subnets, which cannot connect to each other, hear each other through the router.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import socket
import sys
import threading

from heros.zenoh import link_settings, open_router, router_configs

__all__ = ["cmd_router", "endpoint"]

#: ``<protocol>/<address>``, optionally with ``?metadata`` and ``#config`` parts (zenoh's locators).
_ENDPOINT = re.compile(r"^[a-z][a-z0-9-]*/[^/\s?#][^\s]*$")


def endpoint(text: str) -> str:
    """An argparse type: a zenoh endpoint such as ``tcp/10.0.1.5:7447``."""
    if not _ENDPOINT.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a zenoh endpoint like tcp/192.168.1.10:7447")
    return text


def cmd_router(args: argparse.Namespace) -> int:
    """``heros router [--listen E ...] [--connect E ...] [--lease S]``: route until Ctrl-C."""
    overrides = link_settings(args.lease) if args.lease is not None else {}
    router = open_router(args.listen, args.connect, realm=args.realm, overrides=overrides, by_interface=not args.single_region)
    try:
        reachable, peer, client = router_configs(router, host=args.host or socket.gethostname(), overrides=overrides)
        linked = f", linking with {', '.join(args.connect)}" if args.connect else ""
        print(f"zenoh router {router.zid} listening on {', '.join(router.endpoints) or 'nothing'}{linked}; Ctrl-C to stop", flush=True)
        extra = "" if args.realm == "heros" else f" HEROS_REALM={shlex.quote(args.realm)}"
        if os.environ.get("HEROS_SEP_MULTICAST", "").strip().lower() in ("1", "true", "yes", "on"):
            extra += " HEROS_SEP_MULTICAST=1"
        print(f"export HEROS_ZENOH_CONFIG={shlex.quote(peer)}{extra}   # peers: run this on each PC that reaches this router", flush=True)
        print(f"# clients (they talk to this router only): export HEROS_ZENOH_CONFIG={shlex.quote(client)}{extra}", flush=True)
        if not reachable:
            print("the router listens on no endpoint: give --listen so that others can reach it", file=sys.stderr, flush=True)
        idle = threading.Event()
        while not idle.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        router.close()
    print("router stopped", file=sys.stderr, flush=True)
    return 0
