"""celeriac: a distributed task framework on actors and ZeroMQ.

The public API is re-exported here; every other module name starting with ``_`` is internal.
Public submodules keep Celery's import paths: ``celeriac.signals``, ``celeriac.states``,
``celeriac.exceptions``, ``celeriac.result``, ``celeriac.testing``, ``celeriac.utils.log``.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

from . import (
    _settings_table,  # noqa: F401 - accepts or explains each other Celery setting
    exceptions,
    states,
)
from ._version import VERSION

# Run from the repository's root (``python -m celeriac``, ``python -c``), Python finds this
# source directory before the installed package, and the subpackages pyproject maps into it
# (``transport``, ``actors``, ``runtime``) lie beside it, not inside: look for them there too.
_HERE = os.path.dirname(__file__)
if not os.path.isdir(os.path.join(_HERE, "runtime")) and os.path.isfile(
    os.path.join(_HERE, os.pardir, "runtime", "__init__.py")
):
    __path__.append(os.path.dirname(_HERE))

if TYPE_CHECKING:
    from . import signals
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

#: Where each public name lives, imported at first use (module ``__getattr__``, PEP 562):
#: a process that needs only part of celeriac (the embedded hub's child, the command line's
#: help) does not pay for the rest at start-up (issue 18).
_LAZY: dict[str, str] = {
    "signals": "",
    **dict.fromkeys(("App", "Celery", "shared_task"), "._app"),
    **dict.fromkeys(("bugreport", "current_app", "current_task", "uuid"), "._current"),
    **dict.fromkeys(("ActorProxyMethod", "Proxy"), "._keyed"),
    "Lock": "._lock",
    **dict.fromkeys(("control_command", "inspect_command"), "._panel"),
    "Request": "._request",
    "Task": "._task",
    **dict.fromkeys(
        (
            "Signature",
            "chain",
            "chord",
            "chunks",
            "group",
            "maybe_signature",
            "signature",
            "subtask",
            "xmap",
            "xstarmap",
        ),
        ".canvas",
    ),
    "CeleriacError": ".exceptions",
    **dict.fromkeys(("AsyncResult", "GroupResult", "ResultSet"), ".result"),
    **dict.fromkeys(("Broadcast", "Exchange", "Queue"), ".routing"),
}


def __getattr__(name: str) -> Any:
    """Import a public name's module at first use, and keep the name here."""
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if where:
        value = getattr(importlib.import_module(where, __name__), name)
    else:
        value = importlib.import_module(f".{name}", __name__)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__version__ = VERSION

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
