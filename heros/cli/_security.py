"""``heros tls config`` writes a zenoh configuration for mutual TLS (and a router's access rules);
``heros router`` runs a zenoh router from such a configuration and shows who connects.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from heros import security

from ._values import UsageError

__all__ = ["cmd_tls_config"]


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
