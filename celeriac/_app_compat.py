"""The rest of Celery's ``Celery`` app surface, as a mixin of :class:`~celeriac.App`.

Each method keeps Celery's name and meaning where celeriac can honour it: ``autodiscover_tasks``
(Django apps too), ``config_from_envvar``, ``on_after_configure``/``on_after_finalize``,
``add_periodic_task``, ``now``/``timezone``, ``set_current``/``set_default``,
``worker_main``/``start``, and ``signature``/``GroupResult``/``ResultSet`` bound to the app.
Where celeriac has no equivalent, the attribute raises :class:`NotImplementedError` naming
what to use instead (:data:`REFUSED_APP_ATTRIBUTES`); nothing is silently accepted and
ignored.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import platform
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from . import signals
from ._clock import Clock
from ._current import get_current_task, set_current_app
from ._resultset import GroupResult, ResultSet
from ._signature import Signature
from ._task import FunctionTask, Task
from ._zones import zone
from .exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from ._app import App
    from ._conf import Settings

__all__ = ["REFUSED_APP_ATTRIBUTES", "AppCompat"]

REFUSED_APP_ATTRIBUTES: dict[str, str] = {
    "amqp": "celeriac has no AMQP layer; messages go to its own hub (app.send_task)",
    "broker_connection": "the app keeps one ZeroMQ connection to the hub, made on first send",
    "connection_for_read": "the app keeps one ZeroMQ connection to the hub, made on first send",
    "connection_for_write": "the app keeps one ZeroMQ connection to the hub, made on first send",
    "connection": "the app keeps one ZeroMQ connection to the hub, made on first send",
    "pool": "the app keeps one ZeroMQ connection to the hub; there is no connection pool",
    "producer_or_acquire": "use app.send_task; the hub confirms each publish",
    "producer_pool": "use app.send_task; the hub confirms each publish",
    "select_queues": "name queues with `celeriac worker -Q`",
    "setup_security": "use the hub's CURVE keys (DESIGN.md section 9), not message signing",
    "loader": "settings load with app.config_from_object; modules with imports/include",
    "log": "logging is set up by the worker (--loglevel, --log-format) with structlog",
    "Beat": "run `celeriac -A proj beat` or `celeriac -A proj worker -B`",
    "WorkController": "use app.Worker or `celeriac worker`",
    "bugreport": "run `celeriac report`",
    **dict.fromkeys(
        [
            "amqp_cls",
            "backend_cls",
            "control_cls",
            "events_cls",
            "loader_cls",
            "log_cls",
            "registry_cls",
        ],
        "celeriac's components are not pluggable by class path",
    ),
    "builtin_fixups": "the Django integration is built in (autodiscover_tasks, delay_on_commit)",
    "steps": "celeriac has no bootsteps: the worker's parts are supervised actors",
    "user_options": "celeriac's command line takes no user preload options",
    "add_defaults": "settings are declared with celeriac._conf.declare, with checks and docs",
    "config_from_cmdline": "pass settings as CELERIAC_<NAME> environment variables",
    "prepare_config": "use app.config_from_object or app.conf.update",
    "connection_or_acquire": "the app keeps one ZeroMQ connection to the hub",
    "default_connection": "the app keeps one ZeroMQ connection to the hub",
    "default_producer": "use app.send_task; the hub confirms each publish",
    "Pickler": "the pickle serializer is chosen with task_serializer='pickle'",
    "create_task_cls": "subclass app.Task",
    "subclass_with_self": "subclass app.Task (it knows its app)",
    "type_checker": "argument checking is Task.typing (on by default)",
    "on_after_fork": "connect to the worker_process_init signal",
    "on_init": "put code after App(...) instead",
    "annotations": "use the task_annotations setting",
    "oid": "node names are given with `celeriac worker -n`",
    "thread_oid": "node names are given with `celeriac worker -n`",
}
"""App attributes of Celery's that celeriac refuses, with what to use instead."""


class AppCompat:
    """Celery's app methods that have a celeriac meaning (mixed into :class:`App`)."""

    main: str | None
    conf: Settings
    clock: Clock
    tasks: dict[str, Task[Any, Any]]
    _pending_autodiscover: list[tuple[Sequence[str] | Callable[[], Iterable[str]], str]]

    def _init_compat(self) -> None:
        self._pending_autodiscover = []
        #: Sent (sender=app) once settings have been read: in ``finalize`` (Celery's meaning).
        self.on_after_configure = signals.Signal("on_after_configure", ("source",))
        #: Sent (sender=app) after the app has finalized (shared tasks bound).
        self.on_after_finalize = signals.Signal("on_after_finalize")
        #: Sent (sender=app) when the app is finalizing (before tasks are bound).
        self.on_configure = signals.Signal("on_configure")

    if not TYPE_CHECKING:  # hidden from type checkers: a typo stays a type error

        def __getattr__(self, name: str) -> Any:
            reason = REFUSED_APP_ATTRIBUTES.get(name)
            if reason is None:
                raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
            raise NotImplementedError(f"celeriac has no app.{name}: {reason}")

    # -- configuration ----------------------------------------------------------------------------

    def config_from_envvar(self, variable_name: str, silent: bool = False) -> bool:
        """Load settings from the module named by an environment variable (Celery's meaning)."""
        module = os.environ.get(variable_name)
        if not module:
            if silent:
                return False
            raise ImproperlyConfigured(
                f"the environment variable {variable_name!r} is not set: it should name the "
                "module holding the settings (e.g. proj.celeryconfig)"
            )
        self.conf.config_from_object(module, silent=silent)
        return True

    def now(self) -> dt.datetime:
        """The current time, aware, in the ``timezone`` setting (UTC by default)."""
        return dt.datetime.fromtimestamp(self.clock.time(), tz=self.timezone)

    @property
    def timezone(self) -> dt.tzinfo:
        """The ``timezone`` setting as a tzinfo."""
        return zone(self.conf.timezone)

    #: Celery's platform flags.
    IS_WINDOWS: bool = sys.platform == "win32"
    IS_macOS: bool = sys.platform == "darwin"
    SYSTEM: str = platform.system()

    @property
    def current_task(self) -> Task[Any, Any] | None:
        """The task running in this thread or asyncio task, or None."""
        return get_current_task()

    current_worker_task = current_task

    @property
    def task_cls(self) -> type[Task[Any, Any]]:
        """The base class of this app's tasks (``app.Task``)."""
        task_base: type[Task[Any, Any]] = self.__dict__["Task"]
        return task_base

    def uses_utc_timezone(self) -> bool:
        """True if the ``timezone`` setting is UTC."""
        return str(self.conf.timezone).upper() in ("UTC", "ETC/UTC")

    def either(self, default_key: str, *defaults: Any) -> Any:
        """The first of ``defaults`` that is not None, else the setting ``default_key``."""
        for value in defaults:
            if value is not None:
                return value
        return self.conf[default_key]

    def set_current(self) -> None:
        """Make this app the current app (``celeriac.current_app``)."""
        set_current_app(cast("App", self))

    def set_default(self) -> None:
        """Make this app the default app (the current one, as in celeriac they are the same)."""
        set_current_app(cast("App", self))

    # -- canvas and results, bound to this app ---------------------------------------------------

    def signature(self, *args: Any, **kwargs: Any) -> Signature:
        """A signature sent through this app: ``app.signature("tasks.add", (2, 2))``."""
        kwargs.setdefault("app", self)
        return Signature(*args, **kwargs)

    def GroupResult(  # noqa: N802 - Celery's name
        self, id: str, results: Sequence[Any], parent: Any = None
    ) -> GroupResult:
        """A group's results read through this app (``app.GroupResult(id, results)``)."""
        return GroupResult(id, results, cast("App", self), parent)

    def ResultSet(self, results: Sequence[Any]) -> ResultSet:  # noqa: N802 - Celery's name
        """Several results read through this app (``app.ResultSet(results)``)."""
        return ResultSet(results, cast("App", self))

    # -- task modules -----------------------------------------------------------------------------

    def autodiscover_tasks(
        self,
        packages: Sequence[str] | Callable[[], Iterable[str]] | None = None,
        related_name: str = "tasks",
        force: bool = False,
    ) -> None:
        """Import ``<package>.<related_name>`` for each package when the worker starts.

        ``packages`` defaults to Django's ``INSTALLED_APPS`` (when Django is configured); a
        callable is called at that time. A package without such a module is skipped (as in
        Celery); an error raised inside one is not. ``force=True`` imports now.
        """
        self._pending_autodiscover.append((packages or _django_apps, related_name))
        if force:
            self.import_default_modules()

    def import_default_modules(self) -> list[str]:
        """Import the ``imports`` and ``include`` settings' modules and the autodiscovered ones.

        The worker (and each prefork child) calls this before it binds tasks. Sends the
        ``import_modules`` signal first. Returns the names imported.
        """
        _django_setup()
        signals.import_modules.send(sender=self)
        names = [*self.conf.imports, *self.conf.include]
        for module in names:
            importlib.import_module(module)
        pending, self._pending_autodiscover = self._pending_autodiscover, []
        for packages, related_name in pending:
            names.extend(_discover(packages, related_name))
        return names

    # -- periodic tasks ---------------------------------------------------------------------------

    def add_periodic_task(
        self,
        schedule: Any,
        sig: Any,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        name: str | None = None,
        **options: Any,
    ) -> str:
        """Add a ``beat_schedule`` entry firing ``sig`` (a signature, a task or a task name).

        ``schedule`` is seconds, a timedelta or a schedule (crontab...). Returns the entry's name
        (``name``, else the signature's repr, as in Celery).
        """
        entry: dict[str, Any] = {"task": _task_name(sig), "schedule": schedule}
        entry["args"] = tuple(getattr(sig, "args", None) or args)
        entry["kwargs"] = dict(getattr(sig, "kwargs", None) or kwargs or {})
        entry["options"] = {**(getattr(sig, "options", None) or {}), **options}
        key = name or f"{entry['task']}{entry['args']!r}{entry['kwargs']!r}"
        self.conf.beat_schedule = {**self.conf.beat_schedule, key: entry}
        return key

    # -- running a worker from Python ------------------------------------------------------------

    def worker_main(self, argv: Sequence[str] | None = None) -> None:
        """Run ``celeriac worker`` with these arguments for this app (Celery's meaning)."""
        argv = list(argv) if argv is not None else ["worker"]
        if not argv or argv[0] != "worker":
            argv = ["worker", *argv]
        self.start(argv)

    def start(self, argv: Sequence[str] | None = None) -> None:
        """Run the ``celeriac`` command line for this app: ``app.start(["worker", "-c", "2"])``."""
        from celeriac.runtime.cli import run_for_app  # noqa: PLC0415 - the core stays socket-free

        run_for_app(cast("App", self), list(argv) if argv is not None else [])

    def Worker(self, **options: Any) -> Any:  # noqa: N802 - Celery's name
        """A worker node for this app (``celeriac.runtime.worker.WorkerNode``); ``.run()`` it."""
        from celeriac.runtime.worker import WorkerNode  # noqa: PLC0415 - the core stays socket-free

        return WorkerNode(self, **options)  # type: ignore[arg-type]


_combined: dict[type, type] = {}


def function_task_class(base: type | None) -> Any:
    """``FunctionTask`` itself, or (``@app.task(base=MyTask)``) one class combining it with
    ``base``, made once per base class (not per function) so the base's hooks apply."""
    if base is None or base is FunctionTask:
        return FunctionTask
    if not (isinstance(base, type) and issubclass(base, Task)):
        raise TypeError(f"base= must be a subclass of app.Task, got {base!r}")
    if base not in _combined:
        name = f"{base.__name__}Function"
        _combined[base] = type(  # once per base class, not per decorated function
            name, (FunctionTask, base), {"abstract": True, "__module__": base.__module__}
        )
    return _combined[base]


def _task_name(sig: Any) -> str:
    if isinstance(sig, str):
        return sig
    task = getattr(sig, "task", None)
    if isinstance(task, str):
        return task
    name = getattr(sig, "name", None)
    if isinstance(name, str) and name:
        return name
    raise ImproperlyConfigured(f"add_periodic_task needs a signature, task or name; got {sig!r}")


def _django_apps() -> list[str]:
    """The packages of Django's installed apps (Django set up first if needed)."""
    try:
        apps = importlib.import_module("django.apps").apps
    except ImportError:
        raise ImproperlyConfigured(
            "autodiscover_tasks() with no packages reads Django's INSTALLED_APPS, but Django is "
            "not installed: pass the packages, e.g. app.autodiscover_tasks(['proj.orders'])"
        ) from None
    _django_setup()
    return [str(config.name) for config in apps.get_app_configs()]


def _django_setup() -> None:
    """``django.setup()`` when DJANGO_SETTINGS_MODULE is set and Django is not set up yet."""
    if not os.environ.get("DJANGO_SETTINGS_MODULE"):
        return
    try:
        django = importlib.import_module("django")
        apps = importlib.import_module("django.apps").apps
    except ImportError:
        return
    if not apps.ready:
        django.setup()


def _discover(packages: Sequence[str] | Callable[[], Iterable[str]], related: str) -> list[str]:
    found = []
    for package in packages() if callable(packages) else packages:
        module = f"{package}.{related}"
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if not exc.name or not f"{module}.".startswith(f"{exc.name}."):
                raise  # a missing import inside the module: not "no such module"
            continue
        found.append(module)
    return found
