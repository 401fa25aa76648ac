"""The ``heros`` command: find, inspect, drive and serve HEROs from a terminal.

::

    heros list [--watch]                  HEROs alive in the realm (follow joins and leaves)
    heros info NAME                       capabilities, signatures, units, limits, values
    heros call NAME.method ARGS...        call a method (ARGS: literals, key=value keywords)
    heros get NAME.attr                   read an attribute
    heros set NAME.attr VALUE             write an attribute
    heros watch NAME.event                print an event's values (or an attribute's changes)
    heros serve module:Class --name N     serve a class (--arg k=v, --tag T)
    heros serve config.json               serve HEROs described as for the BOSS starter
    heros demo [--lab|--notebook|--dashboard] [--loopback]
                                          the demo lab (with JupyterLab, Notebook 7 or Voila, on a loopback hub)
    heros tls config --ca CA --cert C ... a zenoh configuration for mutual TLS (and a router's access rules)
    heros router [--listen E] [--connect E] [--lease S] [--config router.json5]
                                          a zenoh router joining subnets or sites, showing who connects

Every subcommand takes ``--realm`` (default ``$HEROS_REALM`` or ``heros``) and ``--config`` (a
zenoh JSON5 file or text, as ``HEROS_ZENOH_CONFIG``). Mistakes are reported as one line on
stderr with exit code 2; a HERO that cannot be reached or does not answer in time gives exit
code 1.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from ._values import UsageError, one_line

__all__ = ["UsageError", "build_parser", "main"]

EXIT_USAGE = 2
EXIT_FAILURE = 1


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (argparse prints the usage block as well)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be a number, not {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be between 1 and 65535, not {port}")
    return port


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, not {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, not {text!r}")
    return value


def _add_network_options(parser: argparse.ArgumentParser, top: bool) -> None:
    """``--realm``, ``--config``, ``--debug``: on the main parser with defaults, on subcommands without
    (so ``heros --realm x list`` and ``heros list --realm x`` both work)."""

    def default(value: Any) -> Any:
        return value if top else argparse.SUPPRESS

    group = parser.add_argument_group("network options")
    group.add_argument("--realm", default=default(os.environ.get("HEROS_REALM", "heros")),
                       help="realm of the HEROs (default: $HEROS_REALM or 'heros')")
    group.add_argument("--config", default=default(None), metavar="JSON5",
                       help="zenoh configuration: a JSON5 file or text (default: $HEROS_ZENOH_CONFIG, else zenoh's defaults)")
    group.add_argument("--debug", action="store_true", default=default(False), help="show tracebacks of unexpected errors")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``heros`` command."""
    from . import _demo, _network, _router, _security, _serve

    parser = _Parser(prog="heros", description="Find, inspect, drive and serve HEROs (lab objects on the zenoh network).")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    _add_network_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, func: Callable[[argparse.Namespace], int], help: str, epilog: str = "") -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
        _add_network_options(p, top=False)
        p.set_defaults(func=func)
        return p

    p = command("list", _network.cmd_list, "list the HEROs alive in the realm")
    p.add_argument("--watch", action="store_true", help="keep running and print HEROs joining (+) and leaving (-)")
    p.add_argument("--timeout", type=_seconds, default=2.0, help="seconds to wait for discovery answers (default 2)")

    p = command("info", _network.cmd_info, "show a HERO's attributes, methods and events", "example: heros info laser")
    p.add_argument("name", help="the HERO's name")
    p.add_argument("--no-values", action="store_true", help="do not read the attributes' current values")
    p.add_argument("--timeout", type=_seconds, default=10.0, help="seconds to wait for each answer (default 10)")

    p = command("call", _network.cmd_call, "call a method of a HERO and print the result",
                "ARGS are Python literals (3, 1e-3, True, [1, 2], 'text'; other words stay strings),\n"
                "key=value gives a keyword argument. examples:\n"
                "  heros call stage.move_to 20\n  heros call cryostat.ramp 77 rate=5\n  heros call laser.pulse duration=0.2")
    p.add_argument("target", metavar="NAME.method")
    p.add_argument("args", nargs="*", metavar="ARG", help="positional values, then key=value keywords")
    p.add_argument("--timeout", type=_seconds, default=60.0, help="seconds to wait for the result (default 60)")

    p = command("get", _network.cmd_get, "print an attribute of a HERO", "example: heros get cryostat.temperature")
    p.add_argument("target", metavar="NAME.attr")
    p.add_argument("--timeout", type=_seconds, default=10.0, help="seconds to wait for the answer (default 10)")

    p = command("set", _network.cmd_set, "write an attribute of a HERO", "example: heros set laser.power 12.5")
    p.add_argument("target", metavar="NAME.attr")
    p.add_argument("value", metavar="VALUE", help="a Python literal (other words stay strings)")
    p.add_argument("--timeout", type=_seconds, default=10.0, help="seconds to wait for the answer (default 10)")

    p = command("watch", _network.cmd_watch, "print the values of a HERO's event (or the changes of an attribute)",
                "example: heros watch cryostat.temperature_changed --count 10")
    p.add_argument("target", metavar="NAME.event")
    p.add_argument("--count", type=int, default=None, help="stop after this many values")
    p.add_argument("--duration", type=_seconds, default=None, help="stop after this many seconds")
    p.add_argument("--timeout", type=_seconds, default=10.0, help="seconds to wait for the HERO's answers (default 10)")

    p = command("serve", _serve.cmd_serve, "serve HEROs until Ctrl-C: a class, or a JSON config as for the BOSS starter",
                "examples:\n  heros serve heros.demo.instruments:Stage --name stage2 --arg position=10 --tag optics\n"
                "  heros serve lab.json   (documents with _id, classname, arguments, tags; \"$name\" arguments\n"
                "                         become RemoteHERO(name); a list or {\"rows\": [{\"doc\": ...}]} works too)")
    p.add_argument("target", metavar="module:Class|config.json")
    p.add_argument("--name", help="the HERO's name (with module:Class)")
    p.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE", help="a constructor keyword argument (repeatable)")
    p.add_argument("--tag", action="append", default=[], metavar="TAG", help="a tag for discovery (repeatable)")
    p.add_argument("--wait", type=_seconds, default=_serve.REFERENCE_WAIT,
                   help=f"seconds a \"$name\" argument waits for its HERO (default {_serve.REFERENCE_WAIT:g})")

    p = command("demo", _demo.cmd_demo, "serve the demo lab (cryostat, laser, stage, camera, lab) until Ctrl-C",
                "The frontends open copies of the notebooks shipped with heros, made in --workdir on the first start;\n"
                "later starts keep your edited copies (a newer shipped version is saved next to yours as NAME.new.ipynb).\n"
                "examples:\n  heros demo --loopback             (this machine only: no multicast, a hub on 127.0.0.1:7447)\n"
                "  heros demo --lab --loopback       (and JupyterLab on quickstart.ipynb, in ~/heros-demo)\n"
                "  heros demo --dashboard --loopback (and a Voila dashboard of the instruments' panels; prints its address)\n"
                "  heros demo --lab -- --no-browser  (arguments after -- go to the frontend)")
    frontends = p.add_mutually_exclusive_group()
    frontends.add_argument("--lab", action="store_true", help="also start JupyterLab on quickstart.ipynb")
    frontends.add_argument("--notebook", action="store_true", help="also start Jupyter Notebook 7 on quickstart.ipynb")
    frontends.add_argument("--dashboard", action="store_true", help="also serve dashboard.ipynb as a Voila dashboard")
    p.add_argument("--workdir", metavar="DIR", default=None,
                   help=f"where the notebooks are copied and opened (default {_demo.DEFAULT_WORKDIR}); "
                        "given without a frontend, the demo only copies them there")
    p.add_argument("--loopback", type=_port, nargs="?", const=_demo.DEFAULT_HUB_PORT, default=None, metavar="PORT",
                   help=f"open a zenoh hub on 127.0.0.1:PORT (default {_demo.DEFAULT_HUB_PORT}, a free port if taken) "
                        "and keep every process on loopback")
    p.add_argument("jupyter_args", nargs="*", metavar="-- JUPYTER_ARGS", help="arguments for the frontend (after --)")

    p = sub.add_parser("tls", help="zenoh configurations for mutual TLS and access control (docs/security.md)",
                       description="zenoh configurations for mutual TLS and access control (docs/security.md)")
    tls = p.add_subparsers(dest="tls_command", metavar="COMMAND", required=True)
    p = tls.add_parser("config", help="print a HEROS_ZENOH_CONFIG for mutual TLS from certificate paths",
                       description="print a HEROS_ZENOH_CONFIG for mutual TLS from certificate paths",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=(
                           "examples:\n"
                           "  heros tls config --ca ca.pem --cert nb1.pem --key nb1.key --connect quic/router.lab:7447\n"
                           "  heros tls config --mode router --ca ca.pem --cert router.pem --key router.key \\\n"
                           "      --listen tls/0.0.0.0:7447 --listen quic/0.0.0.0:7447 --writer control-pc --reader nb1 -o router.json5\n"
                           "  export HEROS_ZENOH_CONFIG=\"$(heros tls config --ca ca.pem --cert pc.pem --key pc.key --connect tls/router.lab:7447)\""))
    p.set_defaults(func=_security.cmd_tls_config)
    p.add_argument("--ca", required=True, metavar="PEM", help="the lab CA's certificate")
    p.add_argument("--cert", metavar="PEM", help="this node's certificate (its common name is what access rules name)")
    p.add_argument("--key", metavar="PEM", help="this node's private key (unencrypted PEM)")
    p.add_argument("--mode", choices=("client", "peer", "router"), default="client",
                   help="zenoh mode (default client: every link goes through the router and its access rules)")
    p.add_argument("--listen", action="append", default=[], metavar="ENDPOINT", help="tls/HOST:PORT or quic/HOST:PORT to listen on (repeatable)")
    p.add_argument("--connect", action="append", default=[], metavar="ENDPOINT", help="tls/HOST:PORT or quic/HOST:PORT to connect to (repeatable)")
    p.add_argument("--no-mtls", action="store_true", help="do not require (or present) client certificates")
    p.add_argument("--no-verify-name", action="store_true", help="do not check that the router's certificate names the host connected to")
    p.add_argument("--writer", action="append", default=[], metavar="CN", help="router: a certificate common name allowed everything (repeatable)")
    p.add_argument("--reader", action="append", default=[], metavar="CN", help="router: a common name that may discover, read and receive events (repeatable)")
    p.add_argument("--reader-link", choices=("quic", "tls", "none"), default="quic",
                   help="router: the protocol readers must use, on which queries with a payload (calls, writes) are dropped "
                        "(default quic; none: readers query only _discover, _capabilities and --readable members)")
    p.add_argument("--readable", action="append", default=[], metavar="MEMBER", help="router, with --reader-link none: a member readers may query (repeatable)")
    p.add_argument("--acl-realm", action="append", default=[], metavar="REALM", help="router: realms the access rules cover (default all)")
    p.add_argument("-o", "--output", metavar="FILE", help="write the configuration to FILE instead of printing it")

    p = command("router", _router.cmd_router, "run a zenoh router until Ctrl-C, for HEROs on several subnets or sites",
                "It prints the HEROS_ZENOH_CONFIG lines that peers and clients use to reach it, then each link that\n"
                "opens (+) or closes (-) with the common name of its certificate. It starts from --config (never from\n"
                "HEROS_ZENOH_CONFIG, which may be a client's), else from zenoh's defaults. examples:\n"
                "  heros router --listen tcp/10.0.1.1:7447 --listen tcp/10.0.2.1:7447   (joins two subnets)\n"
                "  heros router --connect tcp/lab2.example.org:7447                      (links with another site's router)\n"
                "  heros router --lease 1   (a lost link is noticed within about 1 s, instead of zenoh's 10 s)\n"
                "  heros router --config router.json5   (TLS and access rules: 'heros tls config --mode router')")
    p.add_argument("--listen", type=_router.endpoint, action="extend", nargs="+", default=[], metavar="ENDPOINT",
                   help="where peers and clients reach it (default: the configuration's, else tcp/[::]:7447)")
    p.add_argument("--connect", type=_router.endpoint, action="extend", nargs="+", default=[], metavar="ENDPOINT",
                   help="another router to link with (another site)")
    p.add_argument("--lease", type=_seconds, default=None, metavar="SECONDS",
                   help="drop links silent this long and retry lost endpoints this often (zenoh's default lease: 10 s); "
                        "the printed lines carry the same setting")
    p.add_argument("--host", default=None, metavar="NAME",
                   help="the name or address others use for this PC, printed in place of an unspecified listen address "
                        "(default: this PC's name)")
    p.add_argument("--single-region", action="store_true",
                   help="keep zenoh's default of one subregion for all peers (only when they all reach each other directly)")
    return parser


def _apply_network_options(args: argparse.Namespace) -> None:
    from heros import keys

    try:
        keys.validate_name(args.realm, "realm")
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--realm: {exc}") from None
    if args.config is None:
        return
    text = args.config
    if not text.lstrip().startswith("{"):
        path = Path(text)
        if not path.is_file():
            raise UsageError(f"--config: {text!r} is neither a JSON5 object nor an existing file")
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--config: cannot read {text!r}: {exc}") from None
    os.environ["HEROS_ZENOH_CONFIG"] = text  # read when the first zenoh session opens


def _configure_logging(debug: bool) -> None:
    """Library warnings as ``heros: warning: ...`` lines (``HEROS_LOG`` set: the library's own setup)."""
    logger = logging.getLogger("heros")
    if logger.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("heros: %(levelname)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.WARNING)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _fail(message: str, code: int) -> int:
    print(f"heros: error: {one_line(message)}", file=sys.stderr, flush=True)
    return code


def main(argv: list[str] | None = None) -> int:
    """Run the ``heros`` command; returns the exit code."""
    from heros.exceptions import ConfigError, RemoteTransportError

    args: argparse.Namespace | None = None
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops serve, demo and watch as Ctrl-C does
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.version:
            from heros import __version__

            print(f"heros {__version__}")
            return 0
        if args.command is None:
            parser.print_help()
            return 0
        _configure_logging(args.debug)
        _apply_network_options(args)
        return int(args.func(args) or 0)
    except UsageError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except ConfigError as exc:
        message = str(exc)
        if args is not None and args.config is not None:
            message = message.replace("HEROS_ZENOH_CONFIG", "--config", 1)
        return _fail(message, EXIT_USAGE)
    except RemoteTransportError as exc:
        return _fail(str(exc), EXIT_FAILURE)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away (heros list | head): nothing left to report
        return EXIT_FAILURE
    except Exception as exc:
        if args is not None and getattr(args, "debug", False):
            raise
        return _fail(f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)", EXIT_FAILURE)
