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
    magics = HerosMagics(shell=ip)
    ip.register_magics(magics)
    ip.set_hook("complete_command", lambda _shell, event: magics.complete(event), str_key=_COMPLETER_KEY)
    ip.set_hook("complete_command", lambda _shell, event: magics.complete(event), re_key=_COMPLETER_RE)
    ip._heros_magics = magics


def unload_ipython_extension(ip: Any) -> None:
    """Close every panel, table and registry the extension opened, and remove its completion."""
    import re

    magics = getattr(ip, "_heros_magics", None)
    if magics is None:
        return
    ip._heros_magics = None
    magics.close()
    dispatcher = getattr(ip, "strdispatchers", {}).get("complete_command")
    if dispatcher is not None:
        dispatcher.strs.pop(_COMPLETER_KEY, None)
        dispatcher.regexs.pop(re.compile(_COMPLETER_RE), None)
    ip.magics_manager.magics["line"].pop("heros", None)
    ip.configurables = [c for c in ip.configurables if c is not magics]
