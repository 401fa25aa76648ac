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

from heros import tools
from heros.capabilities import AttributeCapability, Capability, MethodCapability
from heros.exceptions import ConfigError, RemoteHEROError
from heros.observer import HEROObserver
from heros.remote import RemoteHERO
from heros.render import number_text, signature_text, summary_text, value_text

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
    cap = tools.capability(proxy, member)
    if cap is None:
        msg = f"HERO {proxy._name!r} (realm {proxy._realm!r}) has no member {member!r}"
        public = [c.name for c in tools.capabilities(proxy)]
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


def describe(proxy: RemoteHERO, values: bool) -> str:
    """What ``heros info`` prints: class, tags, and every attribute, method and event."""
    shown: dict[str, Any] = {}
    if values:
        for cap in tools.capabilities(proxy):
            if isinstance(cap, AttributeCapability):
                try:
                    shown[cap.name] = one_line(value_text(getattr(proxy, cap.name)))
                except Exception as exc:  # noqa: BLE001 - a failing read is shown, the others still are
                    shown[cap.name] = f"<{type(exc).__name__}: {one_line(str(exc))[:80]}>"
    return summary_text(proxy._name, proxy._realm, tools.descriptor(proxy), tools.capabilities(proxy), shown)


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
        if tools.protocol_version(proxy) >= 1.0:
            try:
                cap.to_signature().bind(*call_args, **kwargs)
            except TypeError as exc:
                raise UsageError(f"{args.target}: {exc}; signature: {signature_text(cap)}") from None
        progress_cap = tools.capability(proxy, "progress")
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
            raise UsageError(f"{target}: {value!r}{unit} is outside the allowed range {number_text(low)}..{number_text(high)}{unit}")


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
        cap = tools.capability(proxy, member)
        if cap is None or cap.flavor == "method":
            cap = find_member(proxy, member, "event")
        close: Callable[[], Any]
        if cap.flavor == "event":
            handler = getattr(proxy, member)
            handler.connect(values.put)
            close = lambda: handler.disconnect(values.put)  # noqa: E731
        elif tools.is_upstream(proxy):  # an upstream HEROS HERO publishes no attribute changes: poll
            close = _poll_attribute(proxy, member, values.put, POLL_SECONDS)
            print(f"polling {args.target} every {POLL_SECONDS:g} s (upstream HEROS HEROs publish no attribute changes)",
                  file=sys.stderr, flush=True)
        else:
            close = tools.watch_attribute(proxy, member, values.put).close
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
