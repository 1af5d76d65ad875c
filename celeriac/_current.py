"""Celery's "current" names: ``current_app``, ``current_task``, ``uuid`` and the shared task.

celeriac passes the App explicitly everywhere it can (DESIGN.md); these exist so that code
migrated from Celery keeps working. The current app is the one made current with
:meth:`App.set_current`, else the most recently created App. There is no hidden default App:
with none created yet, using ``current_app`` raises :class:`ImproperlyConfigured` saying so
(Celery would silently build a default app that talks to ``amqp://localhost``).

A ``@shared_task`` declared before any App exists is a :class:`SharedTask`: a declaration that
resolves, when used, to the task bound to the current app (every App binds the declarations
when it finalizes). Importing the module that declares it never fails.
"""

from __future__ import annotations

import platform
import sys
import uuid as _uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from ._request import Request, current_request
from ._task import Task
from ._version import VERSION
from .exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from ._app import App
    from .result import AsyncResult

__all__ = [
    "SharedTask",
    "apps_created",
    "bugreport",
    "current_app",
    "current_task",
    "get_current_app",
    "get_current_task",
    "set_current_app",
    "uuid",
]

P = ParamSpec("P")
R_co = TypeVar("R_co", covariant=True)

_chosen: list[App] = []

apps_created: list[App] = []
"""Every App created in this process, oldest first (the App constructor appends itself)."""


def uuid() -> str:
    """A new random task id as a string (Celery's ``celery.uuid``)."""
    return str(_uuid.uuid4())


def bugreport(app: App | None = None) -> str:
    """Versions and the changed settings of ``app`` (the current app), for bug reports."""
    lines = [f"celeriac {VERSION} python {platform.python_version()} {sys.platform}"]
    chosen = app if app is not None else (apps_created[-1] if apps_created else None)
    if chosen is not None:
        lines += [f"{name} = {value!r}" for name, value in sorted(chosen.conf.changes().items())]
    return "\n".join(lines)


def set_current_app(app: App) -> None:
    """Make ``app`` the current app (``App.set_current`` calls this)."""
    _chosen[:] = [app]


def get_current_app() -> App:
    """The app made current with ``set_current``, else the most recently created App."""
    if _chosen:
        return _chosen[0]
    if not apps_created:
        raise ImproperlyConfigured(
            "no celeriac App exists yet: create one (e.g. app = Celery('proj') in proj/celery.py)"
            " before using current_app or a shared task"
        )
    return apps_created[-1]


def get_current_task() -> Task[Any, Any] | None:
    """The task being executed in this thread or asyncio task, or None."""
    req: Request | None = current_request()
    if req is None or req.called_directly or not req.task:
        return None
    return get_current_app().tasks.get(req.task)


class _Proxy:
    """Forwards every attribute to what ``resolve()`` returns at the time of use."""

    __slots__ = ("_resolve",)

    def __init__(self, resolve: Callable[[], Any]) -> None:
        object.__setattr__(self, "_resolve", resolve)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._resolve(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._resolve(), name, value)

    def __bool__(self) -> bool:
        return bool(self._resolve())

    def __eq__(self, other: object) -> bool:
        return bool(self._resolve() == other)

    def __hash__(self) -> int:
        return hash(self._resolve())

    def __repr__(self) -> str:
        return repr(self._resolve())

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._resolve()(*args, **kwargs)


current_app: App = cast("App", _Proxy(get_current_app))
"""The current App, resolved at each use (Celery's ``celery.current_app``)."""

current_task: Task[Any, Any] | None = cast("Task[Any, Any] | None", _Proxy(get_current_task))
"""The task being executed here, resolved at each use (false outside a task)."""


class SharedTask(Task[P, R_co]):
    """A ``@shared_task`` declared before any App existed: resolves to the current app's task."""

    abstract = True

    def __init__(self, fn: Callable[..., R_co], options: dict[str, Any]) -> None:
        self.__dict__.update({k: v for k, v in options.items() if k != "bind"})
        self.__dict__.setdefault("name", f"{fn.__module__}.{fn.__qualname__}")
        self.__dict__["fn"] = fn
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def bound(self) -> Task[P, R_co]:
        """The task this declaration became in the current app."""
        app = get_current_app()
        task = _find(app, self.__dict__["fn"])
        if task is None:
            app.finalize()
            task = _find(app, self.__dict__["fn"])
        if task is None:  # pragma: no cover - finalize binds every declaration
            raise ImproperlyConfigured(f"shared task {self.name!r} is not bound to {app!r}")
        return task

    def __getattr__(self, name: str) -> Any:
        return getattr(self.bound(), name)

    def run(self, *args: P.args, **kwargs: P.kwargs) -> R_co:
        """Run the bound task's body."""
        return self.bound().run(*args, **kwargs)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co:
        """Call the bound task here, like a plain function."""
        return self.bound()(*args, **kwargs)

    def apply_async(self, *args: Any, **options: Any) -> AsyncResult[R_co]:
        """Send through the current app (see :meth:`Task.apply_async`)."""
        return self.bound().apply_async(*args, **options)

    def __repr__(self) -> str:
        return f"<shared task {self.name}>"


def _find(app: App, fn: Callable[..., Any]) -> Task[Any, Any] | None:
    for task in app.tasks.values():
        if task.__dict__.get("fn") is fn:
            return task
    return None
