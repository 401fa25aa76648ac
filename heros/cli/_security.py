"""``heros tls config`` writes a zenoh configuration for mutual TLS (and a router's access rules);
``heros router`` runs a zenoh router from such a configuration and shows who connects.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import queue
import sys
from pathlib import Path

from heros import security
from heros import zenoh as z

from ._values import UsageError

__all__ = ["cmd_router", "cmd_tls_config"]


def cmd_tls_config(args: argparse.Namespace) -> int:
    """``heros tls config --ca CA --cert CERT --key KEY --connect EP``: print (or write) the configuration."""
    acl_wanted = bool(args.writer or args.reader or args.readable or args.acl_realm)
    if acl_wanted and args.mode == "client":
        raise UsageError("access rules belong to the node that accepts connections: add --mode router (and --listen)")
    if (args.reader or args.readable or args.acl_realm) and not args.writer:
        raise UsageError("access rules need at least one --writer (the certificate common name of the control PC)")
    reader_link = None if args.reader_link == "none" else args.reader_link
    try:
        config = security.tls_config(ca=args.ca, cert=args.cert, key=args.key, mode=args.mode, listen=args.listen,
                                     connect=args.connect, mtls=not args.no_mtls, verify_name=not args.no_verify_name)
        if acl_wanted:
            config.update(security.access_rules(writers=args.writer, readers=args.reader, reader_link=reader_link,
                                                readable=args.readable, realms=args.acl_realm))
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    text = json.dumps(config, indent=2) + "\n"
    if args.output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return 0
    path = Path(args.output)
    try:
        path.write_text(text)
    except OSError as exc:
        raise UsageError(f"cannot write {args.output!r}: {exc.strerror}") from None
    print(f"wrote {path} ({args.mode}); use it with --config {path} or HEROS_ZENOH_CONFIG=\"$(cat {path})\"", file=sys.stderr, flush=True)
    return 0


def _stamp() -> str:
    return datetime.datetime.now().strftime("%H:%M:%S.%f")[:-3]


def cmd_router(args: argparse.Namespace) -> int:
    """``heros router --config router.json5``: a zenoh router until Ctrl-C, printing each link that opens or closes."""
    if args.config is None:
        # not HEROS_ZENOH_CONFIG: in a shell set up for clients, that would make a router of a client's configuration
        raise UsageError("a router needs a configuration: --config FILE (see 'heros tls config --mode router')")
    text = os.environ["HEROS_ZENOH_CONFIG"]  # --config, read by the common network options
    endpoints = z.config_entry(text, "listen/endpoints") or []
    if isinstance(endpoints, dict):  # per-mode lists (zenoh's default when the configuration names none)
        endpoints = endpoints.get("router") or []
    acl = bool(z.config_entry(text, "access_control/enabled"))
    session = z.open_router(text)
    links: queue.Queue[tuple[bool, str | None, str]] = queue.Queue()
    watch = z.declare_link_watch(session, lambda added, who, remote: links.put((added, who, remote)))
    try:
        print(f"zenoh router {z.zid(session)} listening on {', '.join(map(str, endpoints))} "
              f"(access control {'on' if acl else 'off'}); Ctrl-C to stop", flush=True)
        while True:
            try:
                added, who, remote = links.get(timeout=0.5)
            except queue.Empty:
                continue
            print(f"{_stamp()}  {'+' if added else '-'} {who or '(no certificate)'}  {remote}", flush=True)
    except KeyboardInterrupt:
        return 0
    finally:
        z.undeclare(watch)
        session.close()
