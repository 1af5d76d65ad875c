"""celeriac: a distributed task framework on actors and ZeroMQ.

The public API is re-exported here; every other module name starting with ``_`` is internal.
Public submodules keep Celery's import paths: ``celeriac.signals``, ``celeriac.states``,
``celeriac.exceptions``, ``celeriac.result``, ``celeriac.testing``, ``celeriac.utils.log``.
"""

from __future__ import annotations

from . import (
    _settings_table,  # noqa: F401 - accepts or explains each other Celery setting
    exceptions,
    signals,
    states,
)
from ._app import App, Celery, shared_task
from ._current import bugreport, current_app, current_task, uuid
from ._keyed import ActorProxyMethod, Proxy
from ._lock import Lock
from ._panel import control_command, inspect_command
from ._request import Request
from ._task import Task
from .canvas import (
    Signature,
    chain,
    chord,
    chunks,
    group,
    maybe_signature,
    signature,
    subtask,
    xmap,
    xstarmap,
)
from .exceptions import CeleriacError
from .result import AsyncResult, GroupResult, ResultSet
from .routing import Broadcast, Exchange, Queue

__version__ = "0.1.0"

__all__ = [
    "ActorProxyMethod",
    "App",
    "AsyncResult",
    "Broadcast",
    "CeleriacError",
    "Celery",
    "Exchange",
    "GroupResult",
    "Lock",
    "Proxy",
    "Queue",
    "Request",
    "ResultSet",
    "Signature",
    "Task",
    "__version__",
    "bugreport",
    "chain",
    "chord",
    "chunks",
    "control_command",
    "current_app",
    "current_task",
    "exceptions",
    "group",
    "inspect_command",
    "maybe_signature",
    "shared_task",
    "signals",
    "signature",
    "states",
    "subtask",
    "uuid",
    "xmap",
    "xstarmap",
]
