"""``%heros``: discover, connect to and drive HEROs from IPython and Jupyter.

Settings are traits of ``HerosMagics``; set them with ``%config HerosMagics.realm = "lab"`` or in
``ipython_config.py``::

    c.HerosMagics.realm = "lab"
    c.HerosMagics.update_rate = 5.0
"""

from __future__ import annotations

import concurrent.futures
import difflib
import functools
import keyword
import logging
import os
import threading
from typing import Any

from IPython.core.error import TryNext, UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display
from traitlets import Float, TraitError, Unicode, default, observe, validate

from heros import RemoteHERO, keys, tools
from heros.remote import register_display_hook

from ._bridge import LoopBridge, kernel_loop
from .panel import Panel, PanelContext, fetch_values
from .plot import DatasourcePlot, EventPlot
from .registry import Registry
from .table import DiscoveryTable

__all__ = ["SUBCOMMANDS", "HerosMagics"]

log = logging.getLogger("heros_jupyter")

SUBCOMMANDS = ("discover", "list", "connect", "panel", "plot", "disconnect")
_OPTIONS = {
    "discover": ("--realm", "--tag"),
    "list": ("--realm", "--tag"),
    "connect": ("--as", "--realm"),
    "panel": ("--realm",),
    "plot": ("--datasource", "--realm"),
    "disconnect": ("--all", "--realm"),
}
#: What Tab shows beside a subcommand (IPython's completion type; JupyterLab shows it in its list).
_SUBCOMMAND_TYPES = {"discover": "live table", "list": "print", "connect": "proxy + panel", "panel": "panel",
                     "plot": "live plot", "disconnect": "close"}


@magics_class
class HerosMagics(Magics):
    """The ``%heros`` magic, the live registries and the open panels of one IPython session."""

    realm = Unicode(help="Realm used when a command gives no --realm (default: $HEROS_REALM, else 'heros').").tag(config=True)
    discovery_timeout = Float(2.0, help="Seconds to wait for discovery answers and for a HERO to appear.").tag(config=True)
    call_timeout = Float(10.0, help="Seconds a method call, read or write waits for the HERO's answer.").tag(config=True)
    update_rate = Float(10.0, help="Most widget updates per second sent to the frontend (coalesced; the latest value always lands).").tag(config=True)
    poll_interval = Float(1.0, help="Seconds between polls of read-only attributes (0 disables polling).").tag(config=True)

    @default("realm")
    def _default_realm(self) -> str:
        return os.environ.get("HEROS_REALM", "heros")

    @validate("realm")
    def _check_realm(self, proposal: dict[str, Any]) -> str:
        try:
            return keys.validate_name(proposal["value"], "realm")
        except ValueError as exc:
            raise TraitError(str(exc)) from None

    @validate("discovery_timeout", "call_timeout", "update_rate")
    def _check_positive(self, proposal: dict[str, Any]) -> float:
        if not proposal["value"] > 0:
            raise TraitError(f"HerosMagics.{proposal['trait'].name} must be positive, not {proposal['value']}")
        return float(proposal["value"])

    @validate("poll_interval")
    def _check_poll(self, proposal: dict[str, Any]) -> float:
        if proposal["value"] < 0:
            raise TraitError(f"HerosMagics.poll_interval must be 0 (off) or positive, not {proposal['value']}")
        return float(proposal["value"])

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self.bridge = LoopBridge(kernel_loop(shell), self.update_rate)
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="heros-jupyter")
        self.context = PanelContext(self.bridge, self._submit, self._new_proxy, call_timeout=self.call_timeout, poll_interval=self.poll_interval)
        self.registries: dict[str, Registry] = {}
        self.panels: dict[tuple[str, str], Panel] = {}
        self.tables: list[DiscoveryTable] = []
        self.plots: dict[tuple[str, str, bool], tuple[EventPlot | DatasourcePlot, RemoteHERO | None]] = {}
        self._panel_vars: dict[tuple[str, str], str] = {}
        self._lock = threading.RLock()
        self._trackers: dict[tuple[str, str], tuple[Registry, Any]] = {}
        self._remove_hook = register_display_hook(self._display_hook)
        self.registry(self.realm)  # discovery starts with the extension

    @observe("update_rate")
    def _rate_changed(self, change: dict[str, Any]) -> None:
        if "bridge" in self.__dict__:  # config is applied before __init__ built the bridge
            self.bridge.rate = change["new"]

    @observe("call_timeout", "poll_interval")
    def _setting_changed(self, change: dict[str, Any]) -> None:
        if "context" in self.__dict__:
            setattr(self.context, change["name"], change["new"])

    @observe("realm")
    def _realm_changed(self, change: dict[str, Any]) -> None:
        if "registries" in self.__dict__:
            self.registry(change["new"])

    @property
    def _user_ns(self) -> dict[str, Any]:
        assert self.shell is not None, "HerosMagics needs a shell"
        user_ns: dict[str, Any] = self.shell.user_ns
        return user_ns

    @property
    def in_kernel(self) -> bool:
        """Whether a Jupyter kernel runs this shell (so a frontend may render widgets)."""
        return getattr(self.shell, "kernel", None) is not None

    def registry(self, realm: str) -> Registry:
        """The live registry of ``realm`` (started on first use)."""
        reg = self.registries.get(realm)
        if reg is None:
            reg = self.registries[realm] = Registry(realm, self.bridge, discovery_timeout=self.discovery_timeout)
        return reg

    def _submit(self, fn: Any, *args: Any) -> concurrent.futures.Future[Any]:
        future = self.pool.submit(fn, *args)
        future.add_done_callback(_log_failure)
        return future

    def _new_proxy(self, name: str, realm: str, discovery_timeout: float | None = None) -> RemoteHERO:
        timeout = self.discovery_timeout if discovery_timeout is None else discovery_timeout
        return RemoteHERO(name, realm=realm, timeout=self.call_timeout, discovery_timeout=timeout)

    @line_magic
    @magic_arguments()
    @argument("subcommand", nargs="?", help="discover | list | connect | panel | plot | disconnect")
    @argument("name", nargs="?", help="the HERO's name (connect, panel, disconnect); NAME.EVENT (plot)")
    @argument("--realm", help="realm to use instead of HerosMagics.realm")
    @argument("--tag", help="discover/list: only HEROs with this tag")
    @argument("--as", dest="var", metavar="VAR", help="connect: the variable to hold the proxy (default: the HERO's name)")
    @argument("--all", action="store_true", help="disconnect: every connected HERO")
    @argument("--datasource", action="store_true",
              help="plot: every observable of the datasource HEROs of the realm (NAME: a HERO name or wildcard; default all)")
    def heros(self, line: str = "") -> Any:
        """Discover, connect to and drive HEROs from this notebook.

        ::

          %heros discover [--realm R] [--tag T]      live table of the HEROs alive, with connect buttons
          %heros list [--realm R] [--tag T]          print the HEROs alive, once
          %heros connect NAME [--as VAR] [--realm R] proxy into the namespace (as NAME or VAR), panel shown
          %heros panel NAME [--realm R]              show the panel of NAME (connects if needed)
          %heros plot NAME.EVENT [--realm R]         a live plot of an event's numbers (or of ATTRIBUTE's
                                                     values, through the event that publishes them)
          %heros plot --datasource [NAME] [--realm R] a live plot of every datasource observable of the realm
          %heros disconnect NAME | --all             close panels and release their subscriptions

        Examples::

          %heros discover
          cryo = %heros connect cryostat             # returns the RemoteHERO
          %heros connect laser --as l
          %heros panel cryostat
          %heros plot cryostat.temperature_changed
          %heros plot --datasource
          %heros disconnect --all

        HERO names and subcommands complete with Tab (HERO names first, each shown with its class).
        Plots need bqplot (``pip install heros-jupyter[plot]``); without it they show sparklines. Settings, with ``%config HerosMagics.<name> = value``
        or ``c.HerosMagics.<name>`` in ipython_config.py: realm, discovery_timeout, call_timeout,
        update_rate (widget updates per second), poll_interval (seconds; 0 turns polling off).
        """
        try:
            args = parse_argstring(self.heros, line)
        except UsageError as exc:
            raise UsageError(f"%heros: {exc} (see %heros?)") from None
        sub = args.subcommand
        if sub is None:
            raise UsageError(f"%heros needs a subcommand: {', '.join(SUBCOMMANDS)} (see %heros?).")
        if sub not in SUBCOMMANDS:
            close = difflib.get_close_matches(sub, SUBCOMMANDS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise UsageError(f"%heros: unknown subcommand {sub!r}; {hint}use one of {', '.join(SUBCOMMANDS)}.")
        given = {"--realm": args.realm, "--tag": args.tag, "--as": args.var, "--all": args.all or None,
                 "--datasource": args.datasource or None}
        wrong = [opt for opt, value in given.items() if value is not None and opt not in _OPTIONS[sub]]
        if wrong:
            raise UsageError(f"%heros {sub} does not take {', '.join(wrong)}.")
        realm = self._realm_arg(args.realm)
        if sub in ("discover", "list"):
            if args.name is not None:
                raise UsageError(f"%heros {sub} takes no HERO name (got {args.name!r}); use --tag to filter.")
            return self.discover(realm, args.tag) if sub == "discover" else self.show_list(realm, args.tag)
        if sub == "disconnect":
            if args.all == (args.name is not None):
                raise UsageError("%heros disconnect needs either a HERO name or --all.")
            return self.disconnect(None if args.all else args.name, realm)
        if sub == "plot":
            return self.plot(args.name, realm, datasource=args.datasource)
        if args.name is None:
            raise UsageError(f"%heros {sub} needs a HERO name, e.g. %heros {sub} cryostat.")
        name = self._name_arg(args.name)
        if sub == "panel":
            return self.panel(name, realm)
        return self.connect(name, realm, args.var)

    def _realm_arg(self, realm: str | None) -> str:
        if realm is None:
            return self.realm
        try:
            return keys.validate_name(realm, "realm")
        except ValueError as exc:
            raise UsageError(str(exc)) from None

    @staticmethod
    def _name_arg(name: str) -> str:
        try:
            return keys.validate_name(name, "name")
        except ValueError as exc:
            raise UsageError(str(exc)) from None

    def show_list(self, realm: str, tag: str | None = None) -> None:
        """Print the HEROs alive in ``realm`` once."""
        reg = self.registry(realm)
        reg.wait_ready(self.discovery_timeout + 1)
        self._raise_discovery_error(reg)
        print(reg.text(tag))

    def discover(self, realm: str, tag: str | None = None) -> DiscoveryTable | None:
        """A live table of the HEROs of ``realm`` (plain text outside a kernel)."""
        reg = self.registry(realm)
        reg.wait_ready(self.discovery_timeout + 1)
        self._raise_discovery_error(reg)
        if not self.in_kernel:
            print(reg.text(tag))
            return None
        for old in [t for t in self.tables if (t.registry.realm, t.tag) == (realm, tag)]:
            old.close()  # re-running the cell replaces its table instead of leaking one
            self.tables.remove(old)
        table = DiscoveryTable(reg, self._connect_from_table, tag)
        self.tables.append(table)
        return table

    @staticmethod
    def _raise_discovery_error(reg: Registry) -> None:
        if reg.error:
            raise UsageError(f"discovery in realm {reg.realm!r} could not start: {reg.error}")

    def connect(self, name: str, realm: str, var: str | None = None) -> RemoteHERO:
        """Connect to ``name``, bind the proxy in the namespace, show the panel and return the proxy."""
        var = name if var is None else var
        if var is not None and (not var.isidentifier() or keyword.iskeyword(var)):
            if var != name:
                raise UsageError(f"%heros connect --as needs a Python variable name, not {var!r}.")
            var = None  # a HERO name like 'stage-1' is not a variable; the proxy is still returned
        proxy = self._proxy(name, realm)
        panel = self._open_panel(proxy, fetch_values(proxy), var)
        if var is not None:
            self._user_ns[var] = proxy
        display(panel)
        panel.displayed_in = getattr(self.shell, "execution_count", None)
        return proxy

    def panel(self, name: str, realm: str) -> Panel:
        """The panel of ``name`` (connecting first if no panel is open)."""
        panel = self.panels.get((realm, name))
        if panel is not None and not panel.closed:
            return panel
        proxy = self._proxy(name, realm)
        return self._open_panel(proxy, fetch_values(proxy), None)

    def plot(self, target: str | None, realm: str, *, datasource: bool = False) -> EventPlot | DatasourcePlot:
        """A live plot: of the numbers of ``NAME.EVENT`` (``NAME.ATTRIBUTE``: of the event that publishes
        its values), or with ``datasource`` of every observable of the datasource HEROs ``target``
        (a name or wildcard, default all) of ``realm``. Running it again replaces the old plot."""
        if datasource:
            selector = target or "*"
            key = (realm, selector, True)
            self._close_plot(key)
            try:
                made: EventPlot | DatasourcePlot = DatasourcePlot(realm, self.bridge, selector)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
            self.plots[key] = (made, None)
            return made
        hero, _, member = (target or "").rpartition(".")
        if not hero or not member:
            raise UsageError("%heros plot needs NAME.EVENT, e.g. %heros plot cryostat.temperature_changed (or --datasource).")
        name = self._name_arg(hero)
        panel = self.panels.get((realm, name))
        proxy = panel.proxy if panel is not None and not panel.closed else self._proxy(name, realm)
        owned = None if panel is not None and proxy is panel.proxy else proxy
        cap = tools.capability(proxy, member)
        event = member if cap is not None and cap.flavor == "event" else None
        if cap is not None and cap.flavor == "attribute":
            event = tools.value_event(proxy, member)
        if event is None:
            if owned is not None:
                owned._destroy_hero()
            events = ", ".join(c.name for c in tools.capabilities(proxy) if c.flavor == "event") or "none"
            what = "publishes no event with the values of" if cap is not None else "has no event"
            raise UsageError(f"HERO {name!r} {what} {member!r}; its events: {events}.")
        key = (realm, f"{name}.{event}", False)
        self._close_plot(key)
        made = EventPlot(proxy, event, self.bridge)
        self.plots[key] = (made, owned)
        return made

    def _close_plot(self, key: tuple[str, str, bool]) -> None:
        old = self.plots.pop(key, None)
        if old is not None:
            old[0].close()
            if old[1] is not None:
                old[1]._destroy_hero()

    def disconnect(self, name: str | None, realm: str) -> None:
        """Close the panel of ``name`` (every panel if None), release its subscriptions and close its proxy.

        The variable ``%heros connect`` bound is removed if it still holds that proxy.
        """
        if name is None:
            targets = list(self.panels)
        else:
            targets = [(realm, name)]
            if targets[0] not in self.panels:
                connected = ", ".join(sorted(n for r, n in self.panels if r == realm)) or "none"
                raise UsageError(f"HERO {name!r} is not connected in realm {realm!r} (connected: {connected}).")
        for key in targets:
            panel = self._close_panel(key)
            if panel is None:
                continue
            var = self._panel_vars.pop(key, None)
            if var is not None and self._user_ns.get(var) is panel.proxy:
                del self._user_ns[var]
            panel.proxy._destroy_hero()

    def _proxy(self, name: str, realm: str) -> RemoteHERO:
        """A new proxy; ``UsageError`` with a sentence if the HERO cannot be reached."""
        reg = self.registry(realm)
        known = name in reg.snapshot() or reg.wait_for(name, self.discovery_timeout)
        try:
            # not seen by discovery within its timeout: one short look, for the error's did-you-mean
            return self._new_proxy(name, realm) if known else self._new_proxy(name, realm, discovery_timeout=0.5)
        except NameError as exc:
            raise UsageError(str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - transport trouble is reported as a sentence too
            raise UsageError(f"could not connect to HERO {name!r} in realm {realm!r}: {exc}") from None

    def _open_panel(self, proxy: RemoteHERO, values: dict[str, Any], var: str | None) -> Panel:
        """Loop thread: a new panel for ``proxy``, replacing (and closing) any open one for that HERO."""
        key = (proxy._realm, proxy._name)
        panel = Panel(proxy, self.context, values)
        reg = self.registry(proxy._realm)

        def follow(change: dict[str, Any]) -> None:
            was, now = panel.name in change["old"], panel.name in change["new"]
            if was != now:
                panel.set_alive(now)

        with self._lock:  # a connect button (kernel subshell) and a cell may race
            self._close_panel(key)
            self.panels[key] = panel
            self._trackers[key] = (reg, follow)
            if var is not None:
                self._panel_vars[key] = var
            else:
                self._panel_vars.pop(key, None)
        reg.observe(follow, names="heroes")
        panel.on_rebind(lambda old, new: self._rebound(key, old, new))
        return panel

    def _rebound(self, key: tuple[str, str], old: Any, new: Any) -> None:
        var = self._panel_vars.get(key)
        if var is not None and self._user_ns.get(var) is old:
            self._user_ns[var] = new

    def _close_panel(self, key: tuple[str, str]) -> Panel | None:
        with self._lock:
            panel = self.panels.pop(key, None)
            tracker = self._trackers.pop(key, None)
        if tracker is not None:
            tracker[0].unobserve(tracker[1], names="heroes")
        if panel is not None:
            panel.close()
        return panel

    def _connect_from_table(self, name: str, table: DiscoveryTable) -> None:
        """Loop thread (a button click): connect on a worker, then show the panel under the table."""
        table.say(f"connecting to {name} …")
        realm = table.registry.realm

        def work() -> None:
            try:
                proxy = self._new_proxy(name, realm)
                values = fetch_values(proxy)
            except Exception as exc:  # noqa: BLE001 - said under the table
                self.bridge.call(functools.partial(table.say, error=True), f"could not connect to {name!r}: {exc}")
                return
            self.bridge.call(finish, proxy, values)

        def finish(proxy: RemoteHERO, values: dict[str, Any]) -> None:
            var = name if name.isidentifier() and not keyword.iskeyword(name) else None
            panel = self._open_panel(proxy, values, var)
            if var is not None:
                self._user_ns[var] = proxy
            table.show(panel)

        self._submit(work)

    def _display_hook(self, proxy: Any) -> dict[str, Any] | None:
        """How a RemoteHERO displays in a notebook: its panel (text in a terminal)."""
        if not self.in_kernel or getattr(proxy, "_hero_destroyed", True):
            return None
        key = (proxy._realm, proxy._name)
        panel = self.panels.get(key)
        if panel is not None and panel.proxy is proxy and panel.displayed_in == getattr(self.shell, "execution_count", None):
            return {"text/plain": repr(proxy)}  # `%heros connect` already showed the panel in this cell
        if panel is None or panel.closed:
            panel = self._open_panel(proxy, fetch_values(proxy), None)
        return panel._repr_mimebundle_()

    def complete(self, event: Any) -> list[str]:
        """Tab completion for ``%heros``: subcommands, options, HERO names, connected names."""
        return [text for text, _ in self.completions(event.text_until_cursor)]

    def completions(self, text: str) -> list[tuple[str, str]]:
        """What Tab offers at the end of ``text``, as (completion, type): HERO names typed
        ``HERO (Laser)``, subcommands with what they give, options as ``option``."""
        if "%heros" not in text:
            raise TryNext
        after = text.split("%heros", 1)[1]
        words = after.split()
        if after and not after[-1].isspace():
            current = words.pop() if words else ""
        else:
            current = ""
        if not words:
            return [(s, _SUBCOMMAND_TYPES[s]) for s in SUBCOMMANDS]
        sub = words[0]
        if sub not in SUBCOMMANDS:
            return []
        options = [(o, "option") for o in _OPTIONS[sub]]
        if words[-1] == "--realm":
            return [(r, "realm") for r in sorted(self.registries)]
        if words[-1] == "--tag":
            return [(t, "tag") for t in sorted({t for h in self.registry(self.realm).snapshot().values() for t in h["tags"]})]
        if words[-1] == "--as" or current.startswith("-"):
            return options if current.startswith("-") else []
        positional = [w for i, w in enumerate(words[1:], 1) if not w.startswith("-") and words[i - 1] not in ("--realm", "--tag", "--as")]
        if positional or sub in ("discover", "list"):
            return options
        realm = words[words.index("--realm") + 1] if "--realm" in words[:-1] else self.realm
        reg = self.registries.get(realm)
        heroes = reg.snapshot() if reg is not None else {}
        if sub == "disconnect":
            return [*((n, _hero_type(heroes.get(n))) for n in sorted(n for r, n in self.panels if r == realm)), ("--all", "option")]
        return [(n, _hero_type(heroes[n])) for n in sorted(heroes)]

    def matcher(self, context: Any) -> dict[str, Any]:
        """IPython completion matcher (API v2) for ``%heros`` lines: typed completions, in order,
        suppressing every other matcher (Jedi would put Python keywords and builtins first)."""
        from IPython.core.completer import SimpleCompletion

        try:
            found = self.completions(context.text_until_cursor)
        except TryNext:
            return {"completions": [], "suppress": False}
        token = context.token
        typed = [SimpleCompletion(text, type=kind) for text, kind in found if text.startswith(token)]
        return {"completions": typed, "suppress": bool(typed), "ordered": True}

    def close(self) -> None:
        """Close every table, panel and registry, and stop the workers."""
        self._remove_hook()
        for table in self.tables:
            table.close()
        self.tables.clear()
        for plot_key in list(self.plots):
            self._close_plot(plot_key)
        for key in list(self.panels):
            self._close_panel(key)
        for reg in self.registries.values():
            reg.close()
        self.registries.clear()
        self.bridge.close()
        self.pool.shutdown(wait=False, cancel_futures=True)


def _hero_type(row: dict[str, Any] | None) -> str:
    """The completion type of a HERO name: ``HERO (Laser)``."""
    return f"HERO ({row['class']})" if row else "HERO"


def _log_failure(future: concurrent.futures.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("heros_jupyter worker task failed", exc_info=future.exception())
