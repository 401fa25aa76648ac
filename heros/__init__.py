"""HEROS: lab objects served on the zenoh network, and proxies to drive them from anywhere.

A class that inherits ``LocalHERO`` is served when instantiated; ``RemoteHERO("name")`` drives it
from any process of the same realm; ``HEROObserver`` tracks who is alive; ``@event`` methods
publish their return values; datasource HEROs publish readings that ``DatasourceObserver`` collects.
Code written for upstream HEROS runs unchanged.
"""

from __future__ import annotations

from importlib import metadata as _metadata

from . import (
    helper,  # noqa: F401 - upstream documents ``heros.helper.generate_multicast_address``
    tools,  # noqa: F401 - the surface for tools (Jupyter, CLI, GUIs): ``heros.tools``
)
from .datasource import (
    DatasourceObserver,
    DatasourceReturnSet,
    DatasourceReturnValue,
    LocalDatasourceHERO,
    PolledLocalDatasourceHERO,
)
from .event import event
from .exceptions import HEROSError, RemoteHEROError, RemoteTimeoutError, RemoteTransportError
from .local import LocalHERO
from .observer import EventObserver, HEROObserver
from .peer import HEROPeer
from .remote import RemoteHERO

try:
    __version__ = _metadata.version("heros-jupyter")
except _metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0+unknown"

__proto_version__ = 1.0

__all__ = [
    "DatasourceObserver",
    "DatasourceReturnSet",
    "DatasourceReturnValue",
    "EventObserver",
    "HEROObserver",
    "HEROPeer",
    "HEROSError",
    "LocalDatasourceHERO",
    "LocalHERO",
    "PolledLocalDatasourceHERO",
    "RemoteHERO",
    "RemoteHEROError",
    "RemoteTimeoutError",
    "RemoteTransportError",
    "__proto_version__",
    "__version__",
    "event",
]
