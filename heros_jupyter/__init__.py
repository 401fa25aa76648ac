"""Jupyter layer for HEROS: ``%load_ext heros_jupyter``, then ``%heros discover`` and ``%heros connect NAME``.

Importing this package imports neither IPython nor ipywidgets; the extension loads them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_ipython_extension", "unload_ipython_extension"]

_COMPLETER_KEY = "%heros"
_COMPLETER_RE = r"^\s*[A-Za-z_]\w*\s*=\s*%heros\b"


def load_ipython_extension(ip: Any) -> None:
    """Register the ``%heros`` magic and its Tab completion; discovery starts (``%load_ext heros_jupyter``)."""
    from .magics import HerosMagics

    if getattr(ip, "_heros_magics", None) is not None:
        return
    from IPython.core.completer import context_matcher

    magics = HerosMagics(shell=ip)
    ip.register_magics(magics)
    # typed completions that come first (a v2 matcher of high priority); the hooks serve old shells
    def heros_matcher(context: Any) -> dict[str, Any]:
        return magics.matcher(context)

    matcher = context_matcher(priority=100, identifier="heros_jupyter.magics")(heros_matcher)
    completer = getattr(ip, "Completer", None)
    if completer is not None:
        completer.custom_matchers.append(matcher)
    ip.set_hook("complete_command", lambda _shell, event: magics.complete(event), str_key=_COMPLETER_KEY)
    ip.set_hook("complete_command", lambda _shell, event: magics.complete(event), re_key=_COMPLETER_RE)
    ip._heros_magics = magics
    ip._heros_matcher = matcher


def unload_ipython_extension(ip: Any) -> None:
    """Close every panel, table and registry the extension opened, and remove its completion."""
    import re

    magics = getattr(ip, "_heros_magics", None)
    if magics is None:
        return
    ip._heros_magics = None
    magics.close()
    completer = getattr(ip, "Completer", None)
    matcher = getattr(ip, "_heros_matcher", None)
    if completer is not None and matcher in completer.custom_matchers:
        completer.custom_matchers.remove(matcher)
    dispatcher = getattr(ip, "strdispatchers", {}).get("complete_command")
    if dispatcher is not None:
        dispatcher.strs.pop(_COMPLETER_KEY, None)
        dispatcher.regexs.pop(re.compile(_COMPLETER_RE), None)
    ip.magics_manager.magics["line"].pop("heros", None)
    ip.configurables = [c for c in ip.configurables if c is not magics]
