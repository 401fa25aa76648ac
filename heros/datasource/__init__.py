"""Datasource HEROs, at upstream HEROS's import paths: ``heros.datasource.datasource``, ``.types``, ``.observables``.

A datasource publishes readings (value, unit, time, calibration, boundary level) on its event
``observable_data``; ``DatasourceObserver`` collects them from every datasource of a realm. The
names are also importable from ``heros`` itself.
"""

from __future__ import annotations

from .datasource import DatasourceObserver, LocalDatasourceHERO, PolledLocalDatasourceHERO
from .types import DatasourceReturnSet, DatasourceReturnValue

__all__ = [
    "DatasourceObserver",
    "DatasourceReturnSet",
    "DatasourceReturnValue",
    "LocalDatasourceHERO",
    "PolledLocalDatasourceHERO",
]
