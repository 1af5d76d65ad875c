"""``App``: configuration, the task registry, and the door to the runtime (reached lazily)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Concatenate, Literal, ParamSpec, TypeVar, Unpack, overload

from . import (
    _hub_settings,  # noqa: F401 - declares the hub's limit and security settings
    signals,
)
from ._app_compat import AppCompat, function_task_class
from ._app_keyed import AppKeyed
from ._backend import HubBackend
from ._call_options import SendOptions
from ._clock import SYSTEM_CLOCK, Clock
from ._compose import compose
from ._conf import Settings
from ._control import Control
from ._control import sent_event as task_sent_event
from ._current import SharedTask, apps_created
from ._protocol import TaskMessage
from ._request import current_request
from ._task import FunctionTask, Task
from ._task_options import check_send_options, check_task_options
from ._wire import task_fields, task_from_fields
from .exceptions import AlreadyRegistered, NotRegistered
from .result import AsyncResult
from .routing import declare_queues, queue_for

if TYPE_CHECKING:
    from celeriac.runtime.client import Client
    from celeriac.runtime.events import Events

__all__ = ["App", "shared_task"]

P = ParamSpec("P")
R = TypeVar("R")

#: The most child ids a task's result keeps (``AsyncResult.children``); more are not listed.
MAX_CHILDREN = 10_000

_shared: list[Callable[[App], Task[Any, Any]]] = []
_registry_lock = threading.Lock()


class App(AppCompat, AppKeyed):
    """A celeriac application: settings, tasks, and sending (``Celery`` is an alias).

    ``App("proj", broker="tcp://127.0.0.1:5555", task_serializer="json")``: keyword arguments
    are settings (Celery's names; an unknown name is an error with a "did you mean").
    """

    def __init__(
        self,
        main: str | None = None,
        broker: str | Sequence[str] | None = None,  # several: failover (see broker_url)
        *,
        backend: str | None = None,
        include: Sequence[str] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        environ: Mapping[str, str] | None = None,
        **settings: Any,
    ) -> None:
        self.main = main
        self.clock = clock
        self.conf = Settings(environ=os.environ if environ is None else environ)
        if broker is not None:
            settings["broker_url"] = broker
        if backend is not None:
            settings["result_backend"] = backend
        if include is not None:
            settings["include"] = list(include)
        self.conf.update(settings)
        self.tasks: dict[str, Task[Any, Any]] = {}
        #: Keyed actor classes by name (``@app.actor``).
        self.actors: dict[str, type] = {}
        # One base class per app, so `class Thumbnail(app.Task)` knows its app.
        self.Task: type[Task[Any, Any]] = type(
            "Task", (Task,), {"app": self, "abstract": True, "__module__": __name__}
        )
        self._client_obj: Client | None = None
        self._client_fork = -1
        self._client_lock = threading.Lock()
        self._finalized = False
        self._init_compat()
        with _registry_lock:
            apps_created.append(self)

    def __repr__(self) -> str:
        return f"<App {self.main or '__main__'}>"

    # -- configuration ---------------------------------------------------------------------------

    def config_from_object(
        self, obj: object | str, *, namespace: str | None = None, silent: bool = False
    ) -> None:
        """Load settings from a module, class, mapping or dotted path (Celery's semantics)."""
        self.conf.config_from_object(obj, namespace=namespace, silent=silent)

    # -- tasks -----------------------------------------------------------------------------------

    def gen_task_name(self, name: str, module: str) -> str:
        """The default name of a task: ``module.function`` (``main`` stands for ``__main__``)."""
        if module == "__main__" and self.main:
            module = self.main
        return f"{module}.{name}"

    def register_task(self, task: Task[P, R]) -> Task[P, R]:
        """Add a task object to the registry (decorators and subclassing call this)."""
        existing = self.tasks.get(task.name)
        if (
            existing is not None
            and type(existing) is not type(task)
            and not (isinstance(existing, FunctionTask) and isinstance(task, FunctionTask))
        ):
            raise AlreadyRegistered(f"a different task is already registered as {task.name!r}")
        self.tasks[task.name] = task
        return task

    @overload
    def task(self, fn: Callable[P, R], /) -> Task[P, R]: ...

    @overload
    def task(
        self, *, bind: Literal[True], name: str | None = None, **options: Any
    ) -> Callable[[Callable[Concatenate[Any, P], R]], Task[P, R]]: ...

    @overload
    def task(
        self, *, bind: Literal[False] = False, name: str | None = None, **options: Any
    ) -> Callable[[Callable[P, R]], Task[P, R]]: ...

    def task(  # type: ignore[misc]  # mypy cannot match ParamSpec overloads to **options
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        bind: bool = False,
        name: str | None = None,
        **options: Any,
    ) -> Any:
        """Make a task of a function: ``@app.task`` or ``@app.task(name=..., bind=True, ...)``.

        Options: ``name``, ``bind`` (pass the task as ``self``: ``self.request``,
        ``self.log``), ``ignore_result``, ``queue``, ``serializer``, ``max_retries``,
        ``priority``, ``time_limit`` and ``soft_time_limit`` (seconds: the hard and soft time
        limits; a call's ``apply_async(time_limit=...)`` wins, then these, then the settings),
        ``rate_limit`` (``"10/s"``, ``"100/m"``, ``"1000/h"``, per worker node) and
        ``max_concurrency`` (at most that many at once per worker node, a celeriac extension),
        ``base`` (a subclass of ``app.Task`` whose hooks and attributes the task gets).
        """
        check_task_options(options)

        def decorate(func: Callable[..., Any]) -> Task[Any, Any]:
            task_name = name or self.gen_task_name(func.__qualname__, func.__module__)
            cls = function_task_class(options.get("base"))
            rest = {k: v for k, v in options.items() if k != "base"}
            task: FunctionTask[Any, Any] = cls(self, func, name=task_name, bind=bind, options=rest)
            return self.register_task(task)

        return decorate(fn) if fn is not None else decorate

    def finalize(self) -> None:
        """Bind every ``@shared_task`` declared so far to this app (idempotent).

        The first time, ``on_after_configure`` is sent before and ``on_after_finalize`` after.
        """
        first = not self._finalized
        if first:
            self.on_after_configure.send(sender=self, source=self.conf)
        with _registry_lock:
            pending = list(_shared)
        for declare in pending:
            declare(self)
        self._finalized = True
        if first:
            self.on_after_finalize.send(sender=self)

    def get_task(self, name: str) -> Task[Any, Any]:
        """The registered task of that name, or :class:`NotRegistered`."""
        if not self._finalized:
            self.finalize()
        try:
            return self.tasks[name]
        except KeyError:
            raise NotRegistered.for_task(name, self.tasks, f"with {self!r}") from None

    # -- sending ---------------------------------------------------------------------------------

    def send_task(
        self,
        name: str,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **options: Unpack[SendOptions],
    ) -> AsyncResult[Any]:
        """Send a task by name (it need not be registered here); returns its AsyncResult.

        The options are ``apply_async``'s (:class:`~celeriac._call_options.SendOptions`). Routing
        follows Celery: call options > ``task_routes`` > the task's options > defaults. A
        message no queue is bound to is refused by the hub: ``get()`` and ``flush()`` raise
        :class:`~celeriac.exceptions.PublishError` (or, with ``task_unroutable='dead_letter'``,
        it is kept in the ``celeriac.unroutable`` queue).
        """
        check_send_options(options)
        parent = current_request()
        if parent is not None and parent.called_directly:
            parent = None
        now = self.clock.time()
        task = self.tasks.get(name)
        message = compose(self.conf, name, args, kwargs, options, now, task=task, parent=parent)
        client = self._client()
        if message.queue and message.queue not in client.declared_queues:
            # A queue met for the first time (task_create_missing_queues): declare it first.
            client.declare(*declare_queues(self.conf, [queue_for(self.conf, message.queue)]))
        _publish(client, message, sent_event=bool(self.conf["task_send_sent_event"]))
        if parent is not None and len(parent.children) < MAX_CHILDREN:
            parent.children.append(message.id)  # AsyncResult.children of the running task
        result: AsyncResult[Any] = AsyncResult(message.id, self)
        if message.ignore_result or (
            message.ignore_result is None and self.conf["task_ignore_result"]
        ):
            result.ignored = True  # Celery's flag: no result will be stored
        return result

    @property
    def events(self) -> Events:
        """Events (``app.events.Receiver(handlers=...)``, ``app.events.State()``): see
        :mod:`celeriac.runtime.events` (reached lazily: the core opens no socket)."""
        from celeriac.runtime.events import Events  # noqa: PLC0415 - the core stays socket-free

        return Events(self)

    @property
    def backend(self) -> HubBackend:
        """The hub's result store through Celery's backend methods (see celeriac._backend)."""
        return HubBackend(self)

    @property
    def control(self) -> Control:
        """Remote control (``app.control.revoke(id)``); see :mod:`celeriac._control`."""
        return Control(self)

    def AsyncResult(self, task_id: str) -> AsyncResult[Any]:  # noqa: N802 - Celery's name
        """A handle on a task by id."""
        return AsyncResult(task_id, self)

    def flush(self, timeout: float | None = None) -> None:
        """Block until the hub confirmed every publish so far (durable); raise if refused."""
        if self._client_obj is not None:
            self._client_obj.flush(timeout)

    def close(self) -> None:
        """Flush briefly, then close the connection to the hub."""
        with self._client_lock:
            client, self._client_obj = self._client_obj, None
        if client is not None:
            client.close()

    def _client(self) -> Client:
        """The connection to the hub, made on first use (and again in a forked child)."""
        client = self._client_obj
        if client is not None and self._client_fork == _forks[0]:
            return client
        with self._client_lock:
            if self._client_obj is None or self._client_fork != _forks[0]:
                from celeriac.runtime.client import Client  # noqa: PLC0415 - the core stays socket-free

                self._client_obj = Client(self.conf.freeze(), clock=self.clock)
                self._client_fork = _forks[0]
            return self._client_obj


Celery = App

#: Forks so far, counted in each child: a client made before a fork is the parent's (its I/O
#: thread did not survive the fork). Compared on every send and get() instead of os.getpid(),
#: a system call that showed in the producer's profile (issue 18).
_forks = [0]


def _count_fork() -> None:
    _forks[0] += 1


os.register_at_fork(after_in_child=_count_fork)


def _publish(client: Client, message: TaskMessage, *, sent_event: bool = False) -> None:
    """Publish with Celery's signals; ``before_task_publish`` receivers may edit the headers."""
    headers: dict[str, Any] | None = None
    if signals.before_task_publish.receivers:
        headers = task_fields(message)
        signals.before_task_publish.send(
            sender=message.task,
            body=message.body,
            exchange=message.exchange,
            routing_key=message.routing_key,
            headers=headers,
            properties={},
            declare=[],
            retry_policy=None,
        )
        message = task_from_fields(headers, message.body)
    client.publish(message)
    if sent_event:  # task_send_sent_event
        client.send_events([task_sent_event(message)])
    if signals.after_task_publish.receivers:
        signals.after_task_publish.send(
            sender=message.task,
            body=message.body,
            exchange=message.exchange,
            routing_key=message.routing_key,
            headers=headers if headers is not None else task_fields(message),
        )


@overload
def shared_task(fn: Callable[P, R], /) -> Task[P, R]: ...


@overload
def shared_task(**options: Any) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def shared_task(fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Declare a task without an app; it is bound to every App when it finalizes.

    The returned object is the task as registered with the most recently created App; with no
    App yet, a :class:`~celeriac._current.SharedTask` that resolves to the current app's task
    when used (importing never fails). A declaration refused for bad options is not recorded,
    so later Apps still finalize.
    """
    check_task_options({k: v for k, v in options.items() if k not in ("bind", "name")})

    def declare(func: Callable[..., Any]) -> Task[Any, Any]:
        def bind(app: App) -> Task[Any, Any]:
            decorator: Callable[[Callable[..., Any]], Task[Any, Any]] = app.task(**options)
            return decorator(func)

        with _registry_lock:
            apps = list(apps_created)
            _shared.append(bind)
        if not apps:
            return SharedTask(func, options)  # bound when an App finalizes; resolved at use
        task = None
        for app in apps:
            task = bind(app)
        assert task is not None
        return task

    return declare(fn) if fn is not None else declare
