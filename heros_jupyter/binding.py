"""Two-way binding of one widget to one attribute of a remote HERO.

Widget -> HERO: a committed change (Enter, release, pick) is written on a worker thread; the row
shows it as pending until the HERO acknowledges it, and on failure the widget reverts to the
remote value and the row says why. Changes made while a write is in flight are merged into one
follow-up write of the latest value, so a burst of changes never becomes a burst of writes.

Nothing the HERO would refuse is written: the control checks a committed value against the
HERO's type, range and choices first (``Control.watch``), and a refused value goes back with a
sentence naming the limit. Errors stay in the row they belong to and clear when that row next
succeeds.

HERO -> widget: attribute-change publications (the panel's one ``heros.tools.watch_attributes``
subscription, or the binding's own ``watch_attribute``), the event that publishes the value
(``heros.tools.value_event``: ``temperature_changed`` for ``temperature``) and, for values nobody
publishes (read-only properties, upstream HEROS), polling. Everything reaches the widget only
through the loop bridge's coalescing buffer; the control's quiet flag keeps a value we put into
the widget from being written back (no echo loops).
"""

from __future__ import annotations

import html
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from heros.exceptions import RemoteHEROError
from heros.tools import Subscription, is_upstream, subscribe, watch_attribute

from ._bridge import LoopBridge
from .widgets import Control, format_value

__all__ = ["AttributeBinding"]

log = logging.getLogger("heros_jupyter")

_NOTHING: Any = object()


def error_text(exc: BaseException) -> str:
    """One line for an exception: its type and first message line (for a remote error, the HERO's own)."""
    if isinstance(exc, RemoteHEROError) and exc.remote_type:
        name, message = exc.remote_type, str(exc.message).strip().splitlines()
    else:
        name, message = type(exc).__name__, str(exc).strip().splitlines()
    return f"{name}: {message[0]}" if message else name


class AttributeBinding:
    """Keeps ``control`` and the remote attribute ``name`` of ``proxy`` in step.

    Parameters
    ----------
    proxy
        The RemoteHERO.
    name
        The attribute.
    control
        The widget and its converters (``widgets.Control``).
    bridge
        Where widget updates are run (the kernel's loop) and coalesced.
    submit
        Runs a blocking function on a worker thread (never the kernel's shell thread).
    initial
        The value read when the panel was built (an exception if that read failed).
    watch
        How attribute-change publications reach the binding: True subscribes to them itself; a
        ``Subscription`` is one shared by the panel, which hands the values to ``on_remote``
        (the binding does not close it); False: none.
    event
        An event whose payload is the attribute's new value (``heros.tools.value_event``): the
        binding follows it, and is polled only while it stays silent.
    """

    def __init__(
        self,
        proxy: Any,
        name: str,
        control: Control,
        *,
        bridge: LoopBridge,
        submit: Callable[..., Any],
        initial: Any = _NOTHING,
        watch: bool | Subscription = True,
        event: str | None = None,
    ) -> None:
        self.proxy = proxy
        self.name = name
        self.control = control
        self._bridge = bridge
        self._submit = submit
        self._lock = threading.Lock()
        self._closed = False
        self._pending: Any = _NOTHING
        self._queued: Any = _NOTHING
        self._remote_while_pending: Any = _NOTHING
        self._writes_begun = 0  # a read begun before the latest write began may hold an older value
        self.confirmed: Any = _NOTHING
        self.writes = 0
        self.refused = 0
        self.pushes = 0
        self._last_push = float("-inf")
        self._state_kind = ""
        # its own line under the control: a long message never squeezes the control or its unit
        self.state = w.HTML(layout=w.Layout(display="none", margin="0 0 0 10.5em"))
        self.state.add_class("heros-attr-state")
        self._subscription: Subscription | None = None
        self._owns_subscription = False
        self._event_subscription: Subscription | None = None
        self.event = event
        if isinstance(initial, BaseException):
            self._show_state(f"could not read: {error_text(initial)}", kind="read-error")
        elif initial is not _NOTHING:
            self._apply(initial)
        if control.editable:
            control.watch(self._commit, self._refused_input)
        if isinstance(watch, Subscription):
            self._subscription = watch
        elif watch and not is_upstream(proxy):  # upstream HEROS HEROs publish no attribute changes: polled
            try:
                self._subscription = watch_attribute(proxy, name, self.on_remote)
                self._owns_subscription = True
            except Exception as exc:  # noqa: BLE001 - the binding still works by polling
                log.warning("cannot watch %s.%s: %s", proxy._name, name, exc)
        if event is not None:
            try:
                self._event_subscription = subscribe(proxy, event, self.on_remote)
            except Exception as exc:  # noqa: BLE001 - polled instead
                log.warning("cannot follow %s.%s: %s", proxy._name, event, exc)
                self.event = None
        self.source = w.HTML(layout=w.Layout(width="1.2em", flex="0 0 auto"))
        self.source.add_class("heros-attr-source")
        self._show_source(pushed=(self._subscription is not None and control.editable) or self._event_subscription is not None)

    def _show_source(self, *, pushed: bool) -> None:
        """How the row stays current, said quietly: a dot for pushed values, a circle arrow for polled ones."""
        self._source_pushed = pushed
        if pushed:
            how = f"follows the event {self.event}" if self.event else "the HERO publishes every change"
            self.source.value = f"<span title='live: {html.escape(how)}'>●</span>"
        else:
            self.source.value = "<span title='polled: read again every poll_interval (this value is not published)'>↻</span>"
        self.source.remove_class("heros-polled" if pushed else "heros-pushed")
        self.source.add_class("heros-pushed" if pushed else "heros-polled")

    @property
    def watched(self) -> bool:
        """Whether publications (attribute changes or the value's event) keep this binding current."""
        return self._subscription is not None or self._event_subscription is not None

    def needs_poll(self, interval: float) -> bool:
        """Whether the poller should read the value again: never for a writable attribute whose writes
        are published; otherwise while nothing was pushed for ``interval`` seconds (polling is the
        fallback for values nobody publishes, or an event that went silent)."""
        if self._subscription is not None and self.control.editable:
            return False
        return time.monotonic() - self._last_push > interval

    @property
    def pending(self) -> bool:
        """Whether a write is waiting for the HERO's acknowledgement."""
        return self._pending is not _NOTHING

    def _refused_input(self, text: str) -> None:
        """Loop thread: the control refused what the user committed; nothing was written."""
        self.refused += 1
        self._show_state(f"refused, nothing written: {text}", kind="write-error")

    def _commit(self, value: Any) -> None:
        if self._closed:
            return
        with self._lock:
            if self._pending is not _NOTHING:
                self._queued = value
                return
            self._pending = value
            self._writes_begun += 1
        self._mark_pending(value)
        self._submit(self._write, value)

    def _write(self, value: Any) -> None:
        """Worker thread: the blocking write."""
        try:
            setattr(self.proxy, self.name, value)
        except Exception as exc:  # noqa: BLE001 - shown in the panel, never lost in a log
            self._bridge.call(self._failed, value, exc)
        else:
            self._bridge.call(self._acked, value)

    def _acked(self, value: Any) -> None:
        with self._lock:
            self.writes += 1
            following = self._queued
            self._queued = _NOTHING
            self._pending = following
            if following is not _NOTHING:
                self._writes_begun += 1
            remote = self._remote_while_pending
            self._remote_while_pending = _NOTHING
        if self._closed:
            return
        self.confirmed = value
        if following is not _NOTHING:
            self._mark_pending(following)
            self._submit(self._write, following)
            return
        self._show_state("")  # success: an earlier error of this row is over
        if remote is not _NOTHING and not _same(remote, value):
            # another value came while ours was on its way: someone else's later write, or one
            # older than ours (a poll sent before it, the publication of an earlier write): ask
            self._submit(self.refresh)

    def _failed(self, value: Any, exc: BaseException) -> None:
        with self._lock:
            self._pending = _NOTHING
            self._queued = _NOTHING
            self._remote_while_pending = _NOTHING
        if self._closed:
            return
        self._revert()
        self._show_state(f"could not set {format_value(value)}: {error_text(exc)}", kind="write-error")
        self._submit(self.refresh)  # the HERO's own value wins, whatever we last saw

    def _mark_pending(self, value: Any) -> None:
        self._show_state(f"setting {format_value(value)} …", kind="pending")

    def _revert(self) -> None:
        if self.confirmed is not _NOTHING:
            self._apply(self.confirmed)

    def on_remote(self, value: Any) -> None:
        """Any thread (a subscription's worker): a value the HERO published; handed to the coalescing buffer."""
        self._last_push = time.monotonic()
        self.pushes += 1
        self._bridge.post(("attr", id(self)), self._apply_pushed, value)

    def refresh(self) -> None:
        """Worker thread: read the remote value and show it (the poll, and after a failed write)."""
        if self._closed:
            return
        begun = self._writes_begun
        try:
            value = getattr(self.proxy, self.name)
        except Exception as exc:  # noqa: BLE001
            self._bridge.post(("attr-error", id(self)), self._read_failed, exc)
            return
        self._bridge.post(("attr", id(self)), self._apply_read, (value, begun))

    def _apply_read(self, read: tuple[Any, int]) -> None:
        value, begun = read
        if begun != self._writes_begun:
            return  # a write began after this read was sent: its acknowledgement (or the next poll) decides
        self._apply_remote(value)

    def _read_failed(self, exc: BaseException) -> None:
        if not self._closed:
            self._show_state(f"could not read: {error_text(exc)}", kind="read-error")

    def _apply_pushed(self, value: Any) -> None:
        if not self._source_pushed and not self._closed:
            self._show_source(pushed=True)  # a read-only value the HERO turns out to publish
        self._apply_remote(value)

    def _apply_remote(self, value: Any) -> None:
        if self._closed:
            return
        with self._lock:
            if self._pending is not _NOTHING:
                self._remote_while_pending = value
                return
        self._apply(value)

    def _apply(self, value: Any) -> None:
        """Loop thread: show ``value`` without writing it back."""
        self.confirmed = value
        try:
            self.control.show(value)
        except Exception as exc:  # noqa: BLE001 - e.g. None in a FloatText
            self._show_state(f"cannot show {repr(value)[:40]}: {error_text(exc)}", kind="read-error")
            return
        shown = getattr(self.control.widget, "value", None)
        if self.control.editable and not _same(self.control.to_widget(value), shown):
            self._show_state(f"HERO holds {repr(value)[:40]}, outside what this control shows", kind="read-error")
        elif self._state_kind == "read-error":
            self._show_state("")

    def _show_state(self, text: str, *, kind: str = "") -> None:
        """The row's message line; ``kind`` is "", "pending", "write-error" or "read-error"."""
        self._state_kind = kind if text else ""
        error = kind.endswith("error") and bool(text)
        self.state.value = f"<span style='color:#b00'>{html.escape(text)}</span>" if error else html.escape(text)
        self.state.layout.display = "" if text else "none"
        for cls, on in (("heros-error", error), ("heros-pending", kind == "pending")):
            (self.state.add_class if on else self.state.remove_class)(cls)
        if self.control.editable:
            for widget in self.control.inputs:
                (widget.add_class if kind == "pending" else widget.remove_class)("heros-pending")

    def set_enabled(self, enabled: bool) -> None:
        """Enable or disable the control (a panel disables everything when its HERO is gone)."""
        if self.control.editable:
            for widget in self.control.inputs:
                if hasattr(widget, "disabled"):
                    widget.disabled = not enabled

    def close(self) -> None:
        """Stop following the HERO and the widget."""
        self._closed = True
        if self._subscription is not None and self._owns_subscription:
            self._subscription.close()
        self._subscription = None
        if self._event_subscription is not None:
            self._event_subscription.close()
            self._event_subscription = None
        if self.control.editable:
            self.control.unwatch()


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - arrays and other odd equality
        return a is b
