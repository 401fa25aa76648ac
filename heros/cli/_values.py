"""What the ``heros`` command reads from the command line and how it prints values back.

Values are Python literals (``ast.literal_eval``: ``3``, ``1e-3``, ``True``, ``[1, 2]``,
``'text'``); anything that is not a literal stays the plain string, so ``heros set dev.label
hello`` needs no quotes.
"""

from __future__ import annotations

import ast
import pprint
import re
from typing import Any

import numpy as np

__all__ = ["UsageError", "format_value", "one_line", "parse_arguments", "parse_value", "split_target"]

_KEYWORD = re.compile(r"^([A-Za-z_]\w*)=(.*)$", re.DOTALL)


class UsageError(Exception):
    """A mistake of the user: reported as one line on stderr, exit code 2."""


def one_line(text: str) -> str:
    """``text`` squeezed onto one line (messages from zenoh or remote code may span several)."""
    return " ".join(str(text).split())


def parse_value(text: str) -> Any:
    """A Python literal, or ``text`` itself when it is not one."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def parse_arguments(items: list[str]) -> tuple[list[Any], dict[str, Any]]:
    """Positional values and ``key=value`` keywords of a method call."""
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for item in items:
        match = _KEYWORD.match(item)
        if match:
            key, value = match.groups()
            if key in kwargs:
                raise UsageError(f"keyword argument {key!r} is given twice")
            kwargs[key] = parse_value(value)
        elif kwargs:
            raise UsageError(f"positional argument {item!r} follows keyword arguments")
        else:
            args.append(parse_value(item))
    return args, kwargs


def split_target(target: str) -> tuple[str, str]:
    """``"NAME.member"`` -> ``("NAME", "member")`` (HERO names may contain dots; members do not)."""
    name, dot, member = target.rpartition(".")
    if not dot or not name or not member:
        raise UsageError(f"expected NAME.member (like laser.power), got {target!r}")
    if not member.isidentifier():
        raise UsageError(f"{member!r} in {target!r} is not a member name")
    return name, member


def format_value(value: Any) -> str:
    """A readable text for a value: strings as they are, arrays summarised, containers pretty-printed."""
    if isinstance(value, str):
        return value
    if isinstance(value, np.ndarray):
        return _format_array(value)
    if isinstance(value, (dict, list, tuple, set)):
        return pprint.pformat(value, width=100, sort_dicts=False)
    return repr(value)


def _format_array(arr: np.ndarray) -> str:
    head = f"array shape {arr.shape} {arr.dtype}"
    if arr.size == 0:
        return head + " (empty)"
    if arr.size <= 20:
        return f"{head}: {np.array2string(arr, separator=', ')}"
    if np.issubdtype(arr.dtype, np.number) and not np.issubdtype(arr.dtype, np.complexfloating):
        return f"{head}: min {arr.min():.6g}, max {arr.max():.6g}, mean {arr.mean():.6g}"
    return head
