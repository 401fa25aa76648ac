"""The subcommands that talk to running HEROs: ``list``, ``info``, ``call``, ``get``, ``set``, ``watch``."""

from __future__ import annotations

import argparse
import contextlib
import datetime
import difflib
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from heros.capabilities import AttributeCapability, Capability, MethodCapability, Parameter
from heros.exceptions import ConfigError, RemoteHEROError
from heros.observer import HEROObserver
from heros.remote import RemoteHERO

from ._progress import Progress
from ._values import UsageError, format_value, one_line, parse_arguments, parse_value, split_target

__all__ = ["cmd_call", "cmd_get", "cmd_info", "cmd_list", "cmd_set", "cmd_watch", "connect"]

#: Seconds without a new HERO after which ``heros list`` considers discovery complete.
SETTLE_QUIET = 0.3

_USE = {"attribute": "heros get / heros set", "method": "heros call", "event": "heros watch"}


def connect(name: str, args: argparse.Namespace, timeout: float | None = None) -> RemoteHERO:
    """A proxy for HERO ``name`` of ``args.realm``; an unknown name is a usage error."""
    try:
        with Progress(f"looking for {name!r} in realm {args.realm!r}"):
            return RemoteHERO(name, realm=args.realm, timeout=timeout if timeout is not None else args.timeout)
    except NameError as exc:
        raise UsageError(one_line(str(exc))) from None
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:  # the name cannot be a key chunk
        raise UsageError(one_line(str(exc))) from None


def find_member(proxy: RemoteHERO, member: str, flavor: str) -> Capability:
    """The capability ``member`` of ``proxy``, which must be of ``flavor``; else a usage error."""
    cap = proxy._heros_caps.get(member)
    if cap is None:
        msg = f"HERO {proxy._name!r} (realm {proxy._realm!r}) has no member {member!r}"
        public = [n for n in proxy._heros_caps if not n.startswith("_")]
        close = difflib.get_close_matches(member, public, n=1)
        raise UsageError(f"{msg}; did you mean {close[0]!r}?" if close else f"{msg}; it has: {', '.join(sorted(public))}")
    if cap.flavor != flavor:
        raise UsageError(f"{proxy._name}.{member} is {_article(cap.flavor)} {cap.flavor}, not {_article(flavor)} {flavor}: use {_USE[cap.flavor]}")
    return cap


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


@contextlib.contextmanager
def remote_errors(target: str) -> Iterator[None]:
    """Report an exception raised inside the HERO as one line naming ``target``."""
    try:
        yield
    except RemoteHEROError as exc:
        kind = exc.remote_type or "an error"
        raise UsageError(f"{target} raised {kind}: {one_line(exc.message)}") from None


def _stamp() -> str:
    return datetime.datetime.now().strftime("%H:%M:%S.%f")[:-3]


def _visible_tags(descriptor: dict[str, Any]) -> str:
    return ", ".join(sorted(str(t) for t in descriptor.get("tags") or () if not str(t).startswith("_")))


def _print_table(known: dict[str, dict[str, Any]], realm: str) -> None:
    if not known:
        print(f"no HEROs found in realm {realm!r}", flush=True)
        return
    rows = [("NAME", "CLASS", "TAGS")] + [(n, str(d.get("class", "?")), _visible_tags(d)) for n, d in sorted(known.items())]
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    for name, cls, tags in rows:
        print(f"{name:<{widths[0]}}  {cls:<{widths[1]}}  {tags}".rstrip())
    sys.stdout.flush()


def _settle(observer: HEROObserver, timeout: float) -> None:
    """Wait until discovery has found the HEROs alive: the first within ``timeout``, then until
    none has joined for ``SETTLE_QUIET`` seconds (a new session learns of HEROs one by one)."""
    deadline = time.monotonic() + timeout
    if not observer.wait_for(bool, timeout):
        return
    while True:
        count = len(observer.known_objects)

        def changed(known: dict[str, Any], count: int = count) -> bool:
            return len(known) != count

        remaining = deadline - time.monotonic()
        if remaining <= 0 or not observer.wait_for(changed, min(SETTLE_QUIET, remaining)):
            return


def cmd_list(args: argparse.Namespace) -> int:
    """``heros list [--watch]``: the HEROs alive in the realm; with ``--watch`` follow joins and leaves."""
    events: queue.Queue[tuple[str, str]] = queue.Queue()
    with Progress(f"searching realm {args.realm!r}"):
        observer = HEROObserver(args.realm, timeout=args.timeout)
        _settle(observer, args.timeout)
    try:
        observer.register_object_added_callback(lambda name: events.put(("+", name)))
        observer.register_object_removed_callback(lambda name: events.put(("-", name)))
        shown = dict(observer.known_objects)
        _print_table(shown, args.realm)
        if not args.watch:
            return 0
        print(f"watching realm {args.realm!r} for HEROs joining (+) and leaving (-); Ctrl-C to stop", file=sys.stderr, flush=True)
        while True:
            try:
                sign, name = events.get(timeout=0.5)
            except queue.Empty:
                continue
            if sign == "+":
                descriptor = observer.known_objects.get(name)
                if descriptor is None or name in shown:
                    continue
                shown[name] = descriptor
            elif name in shown:
                descriptor = shown.pop(name)
            else:
                continue
            print(f"{_stamp()}  {sign} {name}  {descriptor.get('class', '?')}  {_visible_tags(descriptor)}".rstrip(), flush=True)
    except KeyboardInterrupt:
        return 0
    finally:
        observer._destroy_hero()


def _number(value: Any) -> str:
    """``3.0`` as ``3``, ``0.001`` as ``0.001``; anything else as ``str``."""
    return f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else ("" if value is None else str(value))


def _limits(extra: dict[str, Any]) -> str:
    parts = []
    if "unit" in extra:
        parts.append(str(extra["unit"]))
    if "min" in extra or "max" in extra:
        parts.append(f"{_number(extra.get('min'))}..{_number(extra.get('max'))}")
    if "choices" in extra:
        parts.append("one of " + ", ".join(map(str, extra["choices"])))
    return ", ".join(parts)


def _parameter(p: Parameter) -> str:
    prefix = {2: "*", 4: "**"}.get(int(p.kind), "")
    text = prefix + p.name
    if p.type != "undefined":
        text += f": {p.type}"
    limits = _limits(p.extra)
    if limits:
        text += f" [{limits}]"
    if p.has_default_value():
        text += f" = {p.default if p.extra.get('default_repr') else repr(p.default)}"
    return text


def _signature(cap: MethodCapability) -> str:
    params = []
    star = False
    last_positional_only = max((i for i, p in enumerate(cap.parameters) if int(p.kind) == 0), default=-1)
    for i, p in enumerate(cap.parameters):
        if int(p.kind) == 3 and not star:
            params.append("*")
        star = star or int(p.kind) in (2, 3)
        params.append(_parameter(p))
        if i == last_positional_only:
            params.append("/")
    return f"{cap.name}({', '.join(params)}) -> {cap.return_type}"


def describe(proxy: RemoteHERO, values: bool) -> str:
    """What ``heros info`` prints: class, tags, and every attribute, method and event."""
    d = proxy._hero_descriptor
    lines = [f"{proxy._name}  (class {d.get('class', '?')}, realm {proxy._realm!r})"]
    tags = _visible_tags(d)
    if tags:
        lines.append(f"  tags: {tags}")
    caps = [c for c in proxy._remote_capabilities if not c.name.startswith("_")]
    attrs = [c for c in caps if isinstance(c, AttributeCapability)]
    if attrs:
        lines.append("  attributes:")
        for c in attrs:
            text = f"{c.name}: {c.type}"
            if values:
                try:
                    text += f" = {one_line(format_value(getattr(proxy, c.name)))}"
                except Exception as exc:  # noqa: BLE001 - a failing read is shown, the others still are
                    text += f" = <{type(exc).__name__}: {one_line(str(exc))[:80]}>"
            limits = _limits(c.extra)
            text += f"  [{limits}]" if limits else ""
            text += "" if c.writable else "  (read-only)"
            lines.append(f"    {text}" + (f"  - {c.doc.strip().splitlines()[0]}" if c.doc else ""))
    for flavor, title in (("method", "methods"), ("event", "events")):
        group = [c for c in caps if c.flavor == flavor]
        if not group:
            continue
        lines.append(f"  {title}:")
        for member in group:
            lines.append(f"    {_signature(member) if isinstance(member, MethodCapability) else member.name}")
            if member.doc:
                lines.append(f"        {member.doc.strip().splitlines()[0]}")
    return "\n".join(lines)


def cmd_info(args: argparse.Namespace) -> int:
    """``heros info NAME``: capabilities with signatures, types, units, limits and current values."""
    with connect(args.name, args) as proxy:
        print(describe(proxy, values=not args.no_values), flush=True)
    return 0


def cmd_call(args: argparse.Namespace) -> int:
    """``heros call NAME.method ARGS...``: call a method; progress events of the HERO are shown meanwhile."""
    name, method = split_target(args.target)
    call_args, kwargs = parse_arguments(args.args)
    with connect(name, args, timeout=args.timeout) as proxy:
        cap = find_member(proxy, method, "method")
        assert isinstance(cap, MethodCapability)
        if proxy._proto_version >= 1.0:
            try:
                cap.to_signature().bind(*call_args, **kwargs)
            except TypeError as exc:
                raise UsageError(f"{args.target}: {exc}; signature: {_signature(cap)}") from None
        progress_cap = proxy._heros_caps.get("progress")
        with Progress(f"{args.target}") as progress, remote_errors(args.target):
            handler = proxy.progress if progress_cap is not None and progress_cap.flavor == "event" else None
            if handler is not None:
                handler.connect(progress.report)
            try:
                result = getattr(proxy, method)(*call_args, **kwargs)
            finally:
                if handler is not None:
                    handler.disconnect(progress.report)
        if result is not None:
            print(format_value(result), flush=True)
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    """``heros get NAME.attr``: print an attribute's value."""
    name, attr = split_target(args.target)
    with connect(name, args) as proxy:
        find_member(proxy, attr, "attribute")
        with remote_errors(args.target):
            value = getattr(proxy, attr)
        print(format_value(value), flush=True)
    return 0


def check_value(cap: Capability, value: Any, target: str) -> None:
    """Refuse a value outside the limits or choices the HERO declares, before sending it."""
    extra = cap.extra
    unit = f" {extra['unit']}" if "unit" in extra else ""
    if "choices" in extra and value not in extra["choices"]:
        raise UsageError(f"{target} must be one of {', '.join(map(repr, extra['choices']))}, not {value!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        low, high = extra.get("min"), extra.get("max")
        if (low is not None and value < low) or (high is not None and value > high):
            raise UsageError(f"{target}: {value!r}{unit} is outside the allowed range {_number(low)}..{_number(high)}{unit}")


def cmd_set(args: argparse.Namespace) -> int:
    """``heros set NAME.attr VALUE``: write an attribute and print the value read back."""
    name, attr = split_target(args.target)
    value = parse_value(args.value)
    with connect(name, args) as proxy:
        cap = find_member(proxy, attr, "attribute")
        assert isinstance(cap, AttributeCapability)
        if not cap.writable:
            raise UsageError(f"{args.target} is read-only")
        check_value(cap, value, args.target)
        with remote_errors(args.target):
            setattr(proxy, attr, value)
            readback = getattr(proxy, attr)
        unit = f" {cap.extra['unit']}" if "unit" in cap.extra else ""
        print(f"{args.target} = {format_value(readback)}{unit}", flush=True)
    return 0


#: How often ``heros watch`` reads an attribute that is not published (upstream HEROs).
POLL_SECONDS = 0.5


def _poll_attribute(proxy: RemoteHERO, member: str, put: Callable[[Any], None], seconds: float) -> Callable[[], None]:
    """Read ``member`` every ``seconds`` on a thread and ``put`` each new value; returns the stop function."""
    stop = threading.Event()

    def poll() -> None:
        last: Any = _UNSEEN
        while not stop.is_set():
            try:
                value = getattr(proxy, member)
            except Exception as exc:  # noqa: BLE001 - shown as a line, polling goes on
                value = f"<could not read: {type(exc).__name__}: {exc}>"
            try:
                changed = last is _UNSEEN or bool(value != last)
            except Exception:  # noqa: BLE001 - arrays and other odd equality
                changed = True
            if changed:
                put(value)
                last = value
            stop.wait(seconds)

    threading.Thread(target=poll, name=f"heros-watch-{member}", daemon=True).start()
    return stop.set


_UNSEEN: Any = object()


def cmd_watch(args: argparse.Namespace) -> int:
    """``heros watch NAME.event``: print each value of an event (or each new value of an attribute)."""
    name, member = split_target(args.target)
    if args.count is not None and args.count < 1:
        raise UsageError(f"--count must be at least 1, not {args.count}")
    values: queue.Queue[Any] = queue.Queue()
    with connect(name, args) as proxy:
        cap = proxy._heros_caps.get(member)
        if cap is None or cap.flavor == "method":
            find_member(proxy, member, "event")
        close: Callable[[], Any]
        if cap.flavor == "event":
            handler = getattr(proxy, member)
            handler.connect(values.put)
            close = lambda: handler.disconnect(values.put)  # noqa: E731
        elif proxy._heros_upstream:  # an upstream HEROS HERO publishes no attribute changes: poll
            close = _poll_attribute(proxy, member, values.put, POLL_SECONDS)
            print(f"polling {args.target} every {POLL_SECONDS:g} s (upstream HEROS HEROs publish no attribute changes)",
                  file=sys.stderr, flush=True)
        else:
            close = proxy._watch_attribute(member, values.put).close
        print(f"watching {args.target}; Ctrl-C to stop", file=sys.stderr, flush=True)
        deadline = None if args.duration is None else time.monotonic() + args.duration
        seen = 0
        try:
            while args.count is None or seen < args.count:
                wait = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
                if wait <= 0:
                    break
                try:
                    value = values.get(timeout=wait)
                except queue.Empty:
                    continue
                text = repr(value) if isinstance(value, (dict, list, tuple, set)) else format_value(value)
                print(f"{_stamp()}  {one_line(text)}", flush=True)
                seen += 1
        except KeyboardInterrupt:
            pass
        finally:
            close()
    return 0
