"""``heros router``: a zenoh router opened from Python, for HEROs on several subnets or sites.

It prints where it listens and the ``HEROS_ZENOH_CONFIG`` lines that peers and clients use to
reach it, then each link that opens or closes (with the common name of its certificate, under
mutual TLS), and routes until Ctrl-C. zenoh does the routing; this command only configures it:

- ``--config FILE``: the configuration to start from (TLS certificates and access rules, as
  ``heros tls config --mode router`` writes them); never ``HEROS_ZENOH_CONFIG``, which in a shell
  set up for a client would make a router of the client's configuration. Without it: zenoh's
  defaults, and then ``--listen`` or ``--connect`` is required;
- ``--lease S``: links silent for S seconds are dropped, and configured endpoints are tried
  again at least every S seconds (``heros.zenoh.link_settings``); the printed lines carry the
  same settings, because each end of a link applies the lease the other end announces;
- one zenoh subregion per network interface (``heros.zenoh.interface_subregions``), so that
  peers on two subnets, which cannot connect to each other, hear each other through the router.
"""

from __future__ import annotations

import argparse
import datetime
import os
import queue
import re
import shlex
import socket
import sys

from heros import zenoh as z
from heros.zenoh import link_settings, open_router, router_configs

from ._values import UsageError

__all__ = ["cmd_router", "endpoint"]

#: ``<protocol>/<address>``, optionally with ``?metadata`` and ``#config`` parts (zenoh's locators).
_ENDPOINT = re.compile(r"^[a-z][a-z0-9-]*/[^/\s?#][^\s]*$")


def endpoint(text: str) -> str:
    """An argparse type: a zenoh endpoint such as ``tcp/10.0.1.5:7447``."""
    if not _ENDPOINT.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a zenoh endpoint like tcp/192.168.1.10:7447")
    return text


def _stamp() -> str:
    return datetime.datetime.now().strftime("%H:%M:%S.%f")[:-3]


def cmd_router(args: argparse.Namespace) -> int:
    """``heros router [--listen E ...] [--connect E ...] [--lease S] [--config FILE]``: route until Ctrl-C."""
    config = os.environ.get("HEROS_ZENOH_CONFIG") if args.config is not None else None  # --config, read by the network options
    if config is None and not args.listen and not args.connect:
        raise UsageError("a router needs a configuration: --config FILE (see 'heros tls config --mode router') "
                         "or the endpoints to --listen on")
    overrides = link_settings(args.lease) if args.lease is not None else {}
    router = open_router(args.listen, args.connect, realm=args.realm, overrides=overrides, by_interface=not args.single_region,
                         config=config)
    links: queue.Queue[tuple[bool, str | None, str]] = queue.Queue()
    watch = router.watch_links(lambda added, who, remote: links.put((added, who, remote)))
    try:
        reachable, peer, client = router_configs(router, host=args.host or socket.gethostname(), overrides=overrides)
        linked = f", linking with {', '.join(args.connect)}" if args.connect else ""
        acl = " (access control on)" if config and z.config_entry(config, "access_control/enabled") else ""
        print(f"zenoh router {router.zid} listening on {', '.join(router.endpoints) or 'nothing'}{linked}{acl}; Ctrl-C to stop",
              flush=True)
        extra = "" if args.realm == "heros" else f" HEROS_REALM={shlex.quote(args.realm)}"
        if os.environ.get("HEROS_SEP_MULTICAST", "").strip().lower() in ("1", "true", "yes", "on"):
            extra += " HEROS_SEP_MULTICAST=1"
        print(f"export HEROS_ZENOH_CONFIG={shlex.quote(peer)}{extra}   # peers: run this on each PC that reaches this router", flush=True)
        print(f"# clients (they talk to this router only): export HEROS_ZENOH_CONFIG={shlex.quote(client)}{extra}", flush=True)
        if not reachable:
            print("the router listens on no endpoint: give --listen so that others can reach it", file=sys.stderr, flush=True)
        while True:
            try:
                added, who, remote = links.get(timeout=0.5)
            except queue.Empty:
                continue
            print(f"{_stamp()}  {'+' if added else '-'} {who or '(no certificate)'}  {remote}", flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        z.undeclare(watch)
        router.close()
    print("router stopped", file=sys.stderr, flush=True)
    return 0
