"""Every Celery signal, with Celery's names and arguments, on blinker.

Connect a receiver the way Celery documents it::

    from celeriac.signals import task_prerun, after_task_publish

    @task_prerun.connect
    def on_prerun(sender=None, task_id=None, task=None, args=None, kwargs=None, **kw): ...

    @after_task_publish.connect(sender="tasks.add")     # only for that task
    def on_sent(sender=None, headers=None, body=None, **kw): ...

Receivers are called with keyword arguments only: ``sender``, ``signal`` and the signal's
arguments (``providing_args``); accept ``**kwargs`` so that new arguments never break them.
Task signals are sent with the task object as sender, publish signals with the task name,
worker signals with the node name (or the worker object). A ``sender`` given as a string
matches when ``getattr(sender, "name", sender)`` equals it; any other sender matches by
identity.

Differences from Celery, on purpose:

* receivers are held strongly by default (``weak=False``): a receiver defined inside a function
  must not vanish when the function returns. Pass ``weak=True`` for Celery's behaviour.
* an exception in a receiver is logged (structlog event ``signal_receiver_failed``) and the
  other receivers still run; :meth:`Signal.send` returns the exception in place of a result.

Receivers run in the order they were connected.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Final, TypeVar, overload

import blinker
import structlog
from blinker._utilities import make_id
from blinker.base import ANY_ID

__all__ = [
    "ANY",
    "Signal",
    "actor_failed",
    "actor_started",
    "actor_stopped",
    "after_setup_logger",
    "after_setup_task_logger",
    "after_task_publish",
    "beat_embedded_init",
    "beat_init",
    "before_task_publish",
    "celeryd_after_setup",
    "celeryd_init",
    "eventlet_pool_apply",
    "eventlet_pool_postshutdown",
    "eventlet_pool_preshutdown",
    "eventlet_pool_started",
    "heartbeat_sent",
    "import_modules",
    "setup_logging",
    "task_failure",
    "task_internal_error",
    "task_postrun",
    "task_prerun",
    "task_received",
    "task_rejected",
    "task_retry",
    "task_revoked",
    "task_sent",
    "task_success",
    "task_unknown",
    "user_preload_options",
    "worker_before_create_process",
    "worker_init",
    "worker_process_init",
    "worker_process_shutdown",
    "worker_ready",
    "worker_shutdown",
    "worker_shutting_down",
]

ANY: Final = blinker.ANY
"""The "any sender" symbol: a receiver connected with it gets every send."""

F = TypeVar("F", bound=Callable[..., Any])

_NO_IDS: Final[frozenset[Hashable]] = frozenset()


class _Dispatcher(blinker.Signal):
    """blinker's bookkeeping (weak references, per-sender buckets), matched our way."""

    def matching(self, sender: Any) -> list[Callable[..., Any]]:
        """Live receivers for ``sender``, ``ANY`` or the sender's ``name``, in connect order."""
        ids = self._ids_for(sender)
        found: list[Callable[..., Any]] = []
        for receiver_id, held in list(self.receivers.items()):
            if receiver_id not in ids:
                continue
            receiver = held() if isinstance(held, weakref.ref) else held
            if receiver is not None:
                found.append(receiver)
        return found

    def _ids_for(self, sender: Any) -> set[Hashable] | frozenset[Hashable]:
        buckets = self._by_sender
        ids: set[Hashable] | frozenset[Hashable] = buckets.get(ANY_ID, _NO_IDS)
        if sender is ANY:
            return ids
        for key in _sender_keys(sender):
            extra = buckets.get(key)
            if extra:
                ids = ids | extra
        return ids

    def forget_if_unused(self, receiver_id: Hashable) -> None:
        """Drop a receiver that no sender bucket refers to any more."""
        if not self._by_receiver.get(receiver_id):
            self._disconnect(receiver_id, ANY_ID)


def _sender_keys(sender: Any) -> tuple[Hashable, ...]:
    """The bucket keys a sender matches: itself and, when it has a str ``name``, that name."""
    name = getattr(sender, "name", None)
    if isinstance(name, str) and name is not sender:
        return (make_id(sender), name)
    return (make_id(sender),)


def _describe(receiver: Callable[..., Any]) -> str:
    module = getattr(receiver, "__module__", None)
    qualname = getattr(receiver, "__qualname__", None)
    return f"{module}.{qualname}" if module and qualname else repr(receiver)


class Signal:
    """A Celery-style signal: ``connect`` (also as a decorator), ``send``, ``disconnect``.

    ``providing_args`` lists the keyword arguments the signal is sent with (documentation;
    not enforced). Receivers are held strongly unless connected with ``weak=True``, unlike
    Celery, so that a receiver defined in a function does not silently vanish.
    """

    def __init__(self, name: str, providing_args: Sequence[str] = (), doc: str = "") -> None:
        self.name = name
        self.providing_args: tuple[str, ...] = tuple(providing_args)
        self.__doc__ = doc or f"The {name} signal."
        self._dispatcher = _Dispatcher(doc or None)
        self._uids: dict[tuple[Hashable, Hashable], Hashable] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Signal: {self.name} providing_args={list(self.providing_args)}>"

    # -- connecting

    @overload
    def connect(
        self,
        receiver: F,
        *,
        sender: Any = ...,
        weak: bool = ...,
        dispatch_uid: Hashable | None = ...,
    ) -> F: ...

    @overload
    def connect(
        self,
        receiver: None = None,
        *,
        sender: Any = ...,
        weak: bool = ...,
        dispatch_uid: Hashable | None = ...,
    ) -> Callable[[F], F]: ...

    def connect(
        self,
        receiver: F | None = None,
        *,
        sender: Any = ANY,
        weak: bool = False,
        dispatch_uid: Hashable | None = None,
    ) -> F | Callable[[F], F]:
        """Connect ``receiver``; without one, return a decorator that connects.

        ``sender`` limits the receiver to sends from that sender (a string matches a sender's
        ``name``). A second connect with the same ``dispatch_uid`` (and sender) is ignored.
        Returns the receiver, so ``@signal.connect`` leaves the function usable.
        """
        if receiver is None:

            def decorator(fn: F) -> F:
                return self.connect(fn, sender=sender, weak=weak, dispatch_uid=dispatch_uid)

            return decorator
        if not callable(receiver):
            raise TypeError(f"signal receivers must be callable, got {receiver!r}")
        with self._lock:
            if dispatch_uid is None or self._claim_uid(dispatch_uid, sender, receiver):
                self._dispatcher.connect(receiver, sender=sender, weak=weak)
        return receiver

    def _claim_uid(self, uid: Hashable, sender: Any, receiver: Callable[..., Any]) -> bool:
        key = (uid, ANY_ID if sender is ANY else make_id(sender))
        holder = self._uids.get(key)
        if holder is not None and holder in self._dispatcher.receivers:
            return False
        self._uids[key] = make_id(receiver)
        return True

    def disconnect(
        self,
        receiver: Callable[..., Any] | None = None,
        sender: Any = ANY,
        *,
        dispatch_uid: Hashable | None = None,
    ) -> bool:
        """Disconnect ``receiver`` (or the one connected with ``dispatch_uid``).

        With a ``sender``, only that connection goes. Returns whether anything was connected.
        """
        with self._lock:
            receiver_id = self._receiver_id(receiver, sender, dispatch_uid)
            if receiver_id is None or receiver_id not in self._dispatcher.receivers:
                return False
            sender_id = ANY_ID if sender is ANY else make_id(sender)
            self._dispatcher._disconnect(receiver_id, sender_id)
            self._dispatcher.forget_if_unused(receiver_id)
            self._uids = {k: v for k, v in self._uids.items() if v in self._dispatcher.receivers}
            return True

    def _receiver_id(
        self, receiver: Callable[..., Any] | None, sender: Any, uid: Hashable | None
    ) -> Hashable | None:
        if uid is not None:
            return self._uids.get((uid, ANY_ID if sender is ANY else make_id(sender)))
        return None if receiver is None else make_id(receiver)

    @contextmanager
    def connected_to(self, receiver: F, *, sender: Any = ANY) -> Iterator[F]:
        """Connect ``receiver`` for the duration of a ``with`` block (handy in tests)."""
        self.connect(receiver, sender=sender)
        try:
            yield receiver
        finally:
            self.disconnect(receiver, sender)

    # -- sending

    @property
    def receivers(self) -> Mapping[Hashable, Any]:
        """The connected receivers (read only); ``if signal.receivers:`` is the cheapest test."""
        return self._dispatcher.receivers

    @property
    def has_receivers(self) -> bool:
        """Whether anything is connected: hot paths test this before building arguments."""
        return bool(self._dispatcher.receivers)

    def has_receivers_for(self, sender: Any) -> bool:
        """Whether a send from ``sender`` would reach at least one receiver."""
        return bool(self._dispatcher.receivers) and bool(self._dispatcher.matching(sender))

    def receivers_for(self, sender: Any = ANY) -> list[Callable[..., Any]]:
        """The receivers a send from ``sender`` would call, in call order."""
        if not self._dispatcher.receivers:
            return []
        return self._dispatcher.matching(sender)

    def send(self, sender: Any = None, **named: Any) -> list[tuple[Callable[..., Any], Any]]:
        """Call each matching receiver as ``receiver(sender=sender, signal=self, **named)``.

        Returns ``(receiver, result)`` pairs; a receiver that raised is logged and paired with
        its exception, and the others still run.
        """
        if not self._dispatcher.receivers:
            return []
        results: list[tuple[Callable[..., Any], Any]] = []
        for receiver in self._dispatcher.matching(sender):
            try:
                result = receiver(sender=sender, signal=self, **named)
            except Exception as exc:
                structlog.get_logger("celeriac.signals").exception(
                    "signal_receiver_failed", signal=self.name, receiver=_describe(receiver)
                )
                result = exc
            results.append((receiver, result))
        return results


# -- task signals ----------------------------------------------------------------------------

before_task_publish = Signal(
    "before_task_publish",
    ("body", "exchange", "routing_key", "headers", "properties", "declare", "retry_policy"),
    "Sent before a task message is published, in the sending process; sender: the task name.",
)
after_task_publish = Signal(
    "after_task_publish",
    ("headers", "body", "exchange", "routing_key"),
    "Sent after the hub confirmed a task message, in the sending process; sender: the task name.",
)
task_received = Signal(
    "task_received",
    ("request",),
    "Sent when a worker receives a task, before it runs; sender: the worker's consumer.",
)
task_prerun = Signal(
    "task_prerun",
    ("task_id", "task", "args", "kwargs"),
    "Sent just before a task runs; sender: the task object.",
)
task_postrun = Signal(
    "task_postrun",
    ("task_id", "task", "args", "kwargs", "retval", "state"),
    "Sent after a task ran, whatever its outcome; sender: the task object.",
)
task_success = Signal(
    "task_success",
    ("result", "runtime"),
    "Sent when a task succeeded; sender: the task object.",
)
task_failure = Signal(
    "task_failure",
    ("task_id", "exception", "args", "kwargs", "traceback", "einfo"),
    "Sent when a task failed; sender: the task object.",
)
task_retry = Signal(
    "task_retry",
    ("request", "reason", "einfo"),
    "Sent when a task will be retried; sender: the task object.",
)
task_revoked = Signal(
    "task_revoked",
    ("request", "terminated", "signum", "expired"),
    "Sent when a task is revoked, terminated or expired; sender: the task object.",
)
task_rejected = Signal(
    "task_rejected",
    ("message", "exc"),
    "Sent when a worker receives a message it cannot handle; sender: the worker's consumer.",
)
task_unknown = Signal(
    "task_unknown",
    ("message", "exc", "name", "id"),
    "Sent when a worker receives a task that is not registered; sender: the worker's consumer.",
)
task_internal_error = Signal(
    "task_internal_error",
    ("task_id", "args", "kwargs", "request", "exception", "traceback", "einfo"),
    "Sent when celeriac itself failed while running a task; sender: the task object.",
)
task_sent = Signal(
    "task_sent",
    ("task_id", "task", "args", "kwargs", "eta", "taskset"),
    "Deprecated (as in Celery): use after_task_publish. Kept so old receivers still import.",
)

# -- worker signals --------------------------------------------------------------------------

celeryd_init = Signal(
    "celeryd_init",
    ("instance", "conf", "options"),
    "The first signal a starting worker sends; sender: the node name.",
)
celeryd_after_setup = Signal(
    "celeryd_after_setup",
    ("instance", "conf"),
    "Sent once the worker is set up (queues, logging), before it runs; sender: the node name.",
)
worker_init = Signal("worker_init", (), "Sent before the worker starts.")
worker_before_create_process = Signal(
    "worker_before_create_process",
    (),
    "Sent in the parent just before a pool child process is created.",
)
worker_ready = Signal("worker_ready", (), "Sent when the worker is ready to accept work.")
heartbeat_sent = Signal("heartbeat_sent", (), "Sent when the worker sends a heartbeat.")
worker_shutting_down = Signal(
    "worker_shutting_down",
    ("sig", "how", "exitcode"),
    "Sent when the worker begins to shut down (how: warm or cold).",
)
worker_process_init = Signal(
    "worker_process_init", (), "Sent in each pool child process when it starts."
)
worker_process_shutdown = Signal(
    "worker_process_shutdown",
    ("pid", "exitcode"),
    "Sent in each pool child process just before it exits (not guaranteed).",
)
worker_shutdown = Signal("worker_shutdown", (), "Sent when the worker is about to shut down.")

# -- keyed actor signals (celeriac's own: Celery has no keyed actors) ----------------------------

actor_started = Signal(
    "actor_started",
    ("key", "instance"),
    "Sent in the worker when a keyed actor instance was built (and its state loaded); "
    "sender: the actor class.",
)
actor_stopped = Signal(
    "actor_stopped",
    ("key", "instance", "reason"),
    "Sent in the worker when a keyed actor instance stops (reason: idle, replaced, shutdown, "
    "restart); sender: the actor class.",
)
actor_failed = Signal(
    "actor_failed",
    ("key", "exception", "hook", "restarts"),
    "Sent in the worker when a keyed actor's constructor or state hook raised (hook: "
    "__init__, load_state or save_state); its supervisor restarts it; sender: the actor class.",
)

# -- beat signals ----------------------------------------------------------------------------

beat_init = Signal("beat_init", (), "Sent when beat starts, standalone or embedded.")
beat_embedded_init = Signal(
    "beat_embedded_init", (), "Sent as well as beat_init when beat runs inside a worker."
)

# -- pool signals (Celery's eventlet names, sent by the green/async pool) --------------------
# celeriac's green pool is the asyncio pool (``-P asyncio``, celeriac.runtime.asyncpool): these
# four fire for it, with the pool as sender; the threads, solo and prefork pools never send them.

eventlet_pool_started = Signal(
    "eventlet_pool_started",
    (),
    "Sent by the asyncio pool (-P asyncio) once its event loop runs; sender: the pool.",
)
eventlet_pool_preshutdown = Signal(
    "eventlet_pool_preshutdown",
    (),
    "Sent by the asyncio pool at shutdown, before it waits for (or, on a cold shutdown, "
    "cancels) its remaining tasks; sender: the pool.",
)
eventlet_pool_postshutdown = Signal(
    "eventlet_pool_postshutdown",
    (),
    "Sent when the asyncio pool's loop and threads are gone and the worker is ready to shut "
    "down; sender: the pool.",
)
eventlet_pool_apply = Signal(
    "eventlet_pool_apply",
    ("target", "args", "kwargs"),
    "Sent on the asyncio pool's loop just before each task runs; sender: the pool, target: "
    "the Task, args/kwargs: its decoded arguments (not sent for an unknown or undecodable "
    "message).",
)

# -- logging signals -------------------------------------------------------------------------

setup_logging = Signal(
    "setup_logging",
    ("loglevel", "logfile", "format", "colorize"),
    "If anything is connected, celeriac leaves logging configuration to the receivers.",
)
after_setup_logger = Signal(
    "after_setup_logger",
    ("logger", "loglevel", "logfile", "format", "colorize"),
    "Sent after the global logger is set up, to augment its configuration.",
)
after_setup_task_logger = Signal(
    "after_setup_task_logger",
    ("logger", "loglevel", "logfile", "format", "colorize"),
    "Sent after the task logger is set up, to augment its configuration.",
)

# -- app and command signals -----------------------------------------------------------------

import_modules = Signal(
    "import_modules",
    (),
    "Sent when a program imports the modules of the imports and include settings.",
)
user_preload_options = Signal(
    "user_preload_options",
    ("app", "options"),
    "Sent after the command line parsed the user's preload options.",
)
