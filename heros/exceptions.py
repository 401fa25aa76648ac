"""Error classes, and rebuilding exceptions raised inside a remote HERO.

Transport failures (nobody answered, timeout, session closed) are ``RemoteTransportError``;
errors the remote code raised are ``RemoteHEROError``. A remote built-in exception comes back
as a class that is both: ``except ValueError`` and ``except RemoteHEROError`` both catch it.
A process started with ``HEROS_REDACT_TRACEBACKS=1`` sends the type and message of its errors
but not their traceback text.
"""

from __future__ import annotations

import builtins
import logging
import os
import sys
import traceback
from typing import Any

__all__ = [
    "ERROR_MARKER",
    "REDACT_TRACEBACKS_ENV",
    "CodecError",
    "ConfigError",
    "HEROSError",
    "NameTakenError",
    "ReferenceExpiredError",
    "RemoteHEROError",
    "RemoteTimeoutError",
    "RemoteTransportError",
    "error_payload",
    "exception_from_payload",
]

#: Marker key of an error payload, as upstream HEROS sends it.
ERROR_MARKER = "__heros_error__"
#: Environment variable: ``1``/``true`` keeps traceback text out of the error replies this process sends.
REDACT_TRACEBACKS_ENV = "HEROS_REDACT_TRACEBACKS"

log = logging.getLogger("heros.exceptions")


class HEROSError(Exception):
    """Base class of all HEROS errors."""


class RemoteTransportError(HEROSError):
    """A remote HERO could not be reached, or did not answer in time."""


class RemoteTimeoutError(RemoteTransportError, TimeoutError):
    """A remote HERO did not answer in time (the call may still be running there)."""


class ConfigError(HEROSError, ValueError):
    """The zenoh configuration given to HEROS is not valid."""


class ReferenceExpiredError(HEROSError, LookupError):
    """An object reference sent back to its issuer is unknown there or has expired."""


class CodecError(HEROSError, ValueError):
    """A value cannot be encoded, or a payload cannot be decoded."""


class NameTakenError(HEROSError, ValueError):
    """A HERO of that name is already alive in the realm (pass ``replace=True`` to serve anyway)."""


class RemoteHEROError(HEROSError):
    """An exception raised inside a remote HERO while it served a request.

    Parameters
    ----------
    message
        ``str()`` of the remote exception.
    remote_type, remote_module
        Class name and module of the remote exception.
    remote_traceback
        The formatted traceback text from the remote process.
    endpoint
        The key that was queried.
    """

    def __init__(
        self,
        message: str,
        remote_type: str | None = None,
        remote_module: str | None = None,
        remote_traceback: str | None = None,
        endpoint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.remote_type = remote_type
        self.remote_module = remote_module
        self.remote_traceback = remote_traceback
        self.endpoint = endpoint
        self.remote_base: str | None = None  # the nearest built-in class of a user-defined exception

    @classmethod
    def from_exception(cls, exc: BaseException, endpoint: str | None = None) -> RemoteHEROError:
        """Describe a local exception so that it can be sent."""
        if isinstance(exc, RemoteHEROError):
            return exc
        error = RemoteHEROError(
            message=str(exc),
            remote_type=type(exc).__name__,
            remote_module=type(exc).__module__,
            remote_traceback="".join(traceback.format_exception(exc)),
            endpoint=endpoint,
        )
        error.remote_base = next((c.__name__ for c in type(exc).__mro__ if c.__module__ == "builtins"), None)
        return error

    @classmethod
    def from_payload(cls, payload: Any, endpoint: str | None = None) -> RemoteHEROError:
        """Rebuild from an error payload; anything without the marker becomes a plain RemoteHEROError."""
        return exception_from_payload(payload, endpoint)

    def serialize(self) -> dict[str, Any]:
        """The error payload for the wire (``base`` is ours: upstream peers ignore it)."""
        payload = {
            ERROR_MARKER: True,
            "type": self.remote_type,
            "module": self.remote_module,
            "message": self.message,
            "traceback": self.remote_traceback,
        }
        if self.remote_base and self.remote_base != self.remote_type:
            payload["base"] = self.remote_base
        return payload

    def __str__(self) -> str:
        if self.remote_type and self.remote_module not in (None, "builtins"):
            head = f"{self.remote_module}.{self.remote_type}: {self.message}"
        elif self.remote_type:
            head = f"{self.remote_type}: {self.message}"
        else:
            head = self.message
        if self.endpoint:
            head = f"{head} (raised in HERO at '{self.endpoint}')"
        if self.remote_traceback:
            head = f"{head}\n\n--- remote traceback ---\n{self.remote_traceback.rstrip()}\n--- end of remote traceback ---"
        return head

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            exception_from_payload,
            ({**self.serialize(), ERROR_MARKER: True}, self.endpoint),
        )


def error_payload(exc: BaseException) -> dict[str, Any]:
    """The wire form of any exception (type, module, message, traceback text).

    With ``HEROS_REDACT_TRACEBACKS=1`` (read at each error, so it can be set after import) the
    traceback text is an empty string: a deployment that does not want its file paths and source
    lines shown to every caller still sends the type and message, and keeps the traceback in its
    own log (``HEROS_LOG=debug``).
    """
    payload = RemoteHEROError.from_exception(exc).serialize()
    if os.environ.get(REDACT_TRACEBACKS_ENV, "").strip().lower() in ("1", "true", "yes", "on"):
        # upstream peers expect a text here, so the field stays, empty
        payload["traceback"] = ""
        log.debug("traceback withheld from an error reply (%s is set)", REDACT_TRACEBACKS_ENV, exc_info=exc)
    return payload


_error_classes: dict[str, type[RemoteHEROError]] = {}
_NOT_MAPPED = (RemoteHEROError, KeyboardInterrupt, SystemExit, GeneratorExit)


def _error_class(remote_type: str | None, remote_module: str | None, remote_base: str | None = None) -> type[RemoteHEROError]:
    """A class that is both RemoteHEROError and, for built-in and HEROS exceptions, that class.

    A user-defined exception (``class InterlockError(RuntimeError)``) gets a class of its own
    name deriving from its nearest built-in base, so ``except RuntimeError`` catches it too.
    """
    if not remote_type:
        return RemoteHEROError
    cls = _error_classes.get(f"{remote_module}.{remote_type}")
    if cls is None and remote_module not in (None, "builtins", __name__):
        base = getattr(builtins, remote_base or "", None)
        cls = RemoteHEROError
        if isinstance(base, type) and issubclass(base, Exception) and base is not Exception and not issubclass(base, _NOT_MAPPED):
            try:
                cls = type(remote_type, (RemoteHEROError, base), {"__module__": __name__, "__qualname__": f"Remote.{remote_type}"})
            except TypeError:
                cls = RemoteHEROError
        if len(_error_classes) < 512:  # a peer sending endless new type names cannot grow it without bound
            _error_classes[f"{remote_module}.{remote_type}"] = cls
    if cls is None:
        base = getattr(builtins if remote_module in (None, "builtins") else sys.modules[__name__], remote_type, None)
        cls = RemoteHEROError
        if isinstance(base, type) and issubclass(base, BaseException) and not issubclass(base, _NOT_MAPPED):
            try:
                cls = type(f"Remote{remote_type}", (RemoteHEROError, base), {"__module__": __name__})
            except TypeError:  # incompatible instance layout
                cls = RemoteHEROError
        _error_classes[f"{remote_module}.{remote_type}"] = cls
    return cls


def exception_from_payload(payload: Any, endpoint: str | None = None) -> RemoteHEROError:
    """Rebuild the exception an error payload describes."""
    if isinstance(payload, RemoteHEROError):
        if endpoint and not payload.endpoint:
            payload.endpoint = endpoint
        return payload
    if isinstance(payload, dict) and payload.get(ERROR_MARKER):
        remote_type = payload.get("type")
        remote_module = payload.get("module")
        base = payload.get("base")
        cls = _error_class(remote_type, remote_module, base if isinstance(base, str) else None)
        exc = cls.__new__(cls, str(payload.get("message", "")))
        RemoteHEROError.__init__(
            exc,
            str(payload.get("message", "")),
            remote_type=remote_type,
            remote_module=remote_module,
            remote_traceback=payload.get("traceback"),
            endpoint=endpoint,
        )
        exc.remote_base = base if isinstance(base, str) else None
        return exc
    return RemoteHEROError(str(payload), endpoint=endpoint)
