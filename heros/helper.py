"""Small helpers kept at upstream's import path: multicast groups per realm, logging.

Importing HEROS installs no logging handler and sets no level, unless ``HEROS_LOG`` is set:
then the ``heros`` logger gets that level and, if it has no handler yet, one stream handler.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os

__all__ = ["SPAM", "generate_multicast_address", "get_logger", "log"]

#: An extra level below DEBUG, as upstream has it.
SPAM = 5
logging.addLevelName(SPAM, "SPAM")


def generate_multicast_address(realm: str) -> str:
    """A deterministic IPv4 multicast group for ``realm`` (224.0.1.0 to 238.255.255.255).

    Same formula as upstream HEROS: the first 4 bytes of the SHAKE-128 digest of the realm,
    big-endian, modulo the size of the range. Different realms may collide.
    """
    digest = int.from_bytes(hashlib.shake_128(realm.encode()).digest(4), "big")
    start, end = 0xE0000100, 0xEEFFFFFF
    return str(ipaddress.ip_address(start + digest % (end - start + 1)))


def _level(text: str) -> int:
    text = text.strip().upper()
    if text.lstrip("-").isdigit():
        return int(text)
    level = logging.getLevelName(text)
    if not isinstance(level, int):
        raise ValueError(f"HEROS_LOG={text!r} is not a log level (use DEBUG, INFO, WARNING, ERROR or a number)")
    return level


def get_logger(name: str = "heros") -> logging.Logger:
    """The logger ``name``; no global side effects."""
    return logging.getLogger(name)


def _configure_from_env() -> None:
    value = os.environ.get("HEROS_LOG")
    if not value:
        return
    logger = logging.getLogger("heros")
    logger.setLevel(_level(value))
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s [%(levelname)s] %(name)s: %(message)s"))
        logger.addHandler(handler)


log = get_logger("heros")
_configure_from_env()
