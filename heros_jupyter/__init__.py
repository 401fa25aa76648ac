"""Jupyter layer for HEROS: ``%load_ext heros_jupyter``, then ``%heros discover`` and ``%heros connect NAME``."""

from __future__ import annotations

from typing import Any

__all__ = ["load_ipython_extension", "unload_ipython_extension"]


def load_ipython_extension(ip: Any) -> None:
    """Register the ``%heros`` magic (called by ``%load_ext heros_jupyter``)."""
    raise NotImplementedError("heros_jupyter is being built")


def unload_ipython_extension(ip: Any) -> None:
    """Close everything the extension opened."""
