"""The worker's side of remote control: built-in inspect and control commands, and the
custom ones (:mod:`celeriac._panel`), run against a :class:`NodeView`.

How it works
------------
A node that answers control commands (a thread worker's connection, a prefork parent) gets a
``CTLCMD`` from the hub, asks :meth:`Panel.handle` for the answer (a msgpack-able value, in
Celery's shapes: ``{"ok": "pong"}``, a list of task requests...) and sends it back as
``CTLREP``. What differs between pools (where running tasks are, how the pool grows, how a queue
is added) is the node's :class:`NodeView`; everything else is here, once. A command that raises
answers ``{"error": "..."}``: a bad argument never kills the connection.
"""

from __future__ import annotations

import os
import platform
import resource
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any, Final, Protocol

from celeriac import __version__
from celeriac._app import App
from celeriac._conf import Settings
from celeriac._log import get_logger
from celeriac._panel import COMMANDS
from celeriac.exceptions import ImproperlyConfigured
from celeriac.routing import queue_for

__all__ = ["BUILTIN_COMMANDS", "NodeView", "Panel", "purge_queues"]

_log = get_logger("celeriac.worker")

#: Task attributes ``registered`` may show (Celery's ``taskinfoitems``).
TASK_INFO: Final = ("rate_limit", "time_limit", "soft_time_limit", "max_retries", "queue", "name")


class NodeView(Protocol):
    """What the panel needs of a node; each pool's node provides it."""

    hostname: str
    app: App

    def active(self) -> list[dict[str, Any]]:
        """The requests running now (Celery's request dicts)."""

    def reserved(self) -> list[dict[str, Any]]:
        """The requests received and waiting here for a slot."""

    def stats(self) -> dict[str, Any]:
        """Pool and connection counters (merged into ``stats``)."""

    def queues(self) -> list[str]:
        """The queues consumed now."""

    def add_consumer(self, queue: str) -> None:
        """Consume ``queue`` from now on, without reconnecting."""

    def cancel_consumer(self, queue: str) -> None:
        """Stop consuming ``queue``."""

    def rate_limit(self, task: str, rate: str | None) -> None:
        """Set the rate limit of task type ``task`` now (None: no limit)."""

    def time_limit(self, task: str, soft: float | None, hard: float | None) -> None:
        """Set the time limits of task type ``task`` for the next runs."""

    def shutdown(self) -> None:
        """Begin a warm shutdown of this node."""

    def resize(self, grow: int) -> int:
        """Grow (or shrink, negative) the pool; the new number of slots."""

    def autoscale(self, high: int, low: int) -> tuple[int, int]:
        """Set the autoscaler's bounds; the bounds now."""

    def set_events(self, enabled: bool) -> None:
        """Switch task events on or off."""

    def heartbeat(self) -> None:
        """Send a ``worker-heartbeat`` event now."""


Command = Callable[["Panel", NodeView, dict[str, Any]], Any]
BUILTIN_COMMANDS: dict[str, Command] = {}


def _builtin(name: str) -> Callable[[Command], Command]:
    def register(fun: Command) -> Command:
        BUILTIN_COMMANDS[name] = fun
        return fun

    return register


class _State:
    """What a custom command's handler receives (Celery's ``state``)."""

    def __init__(self, view: NodeView) -> None:
        self.node = self.consumer = view
        self.app = view.app
        self.hostname = view.hostname


class Panel:
    """Answers control commands for one node; see the module docstring."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.clock = 0

    def handle(self, view: NodeView, command: str, arguments: dict[str, Any]) -> Any:
        """The answer to ``command`` (``{"error": ...}`` if it failed or is unknown)."""
        self.clock += 1
        builtin = BUILTIN_COMMANDS.get(command)
        try:
            if builtin is not None:
                return builtin(self, view, arguments)
            custom = COMMANDS.get(command)
            if custom is not None:
                return custom.handler(_State(view), **arguments)
        except Exception as exc:
            _log.warning("control_command_failed", command=command, error=repr(exc)[:300])
            return {"error": f"{type(exc).__name__}: {exc}"}
        return {"error": f"unknown command {command!r}"}


# -- inspect ---------------------------------------------------------------------------------------


@_builtin("ping")
def _ping(panel: Panel, view: NodeView, args: dict[str, Any]) -> Any:
    return {"ok": "pong"}


@_builtin("clock")
def _clock(panel: Panel, view: NodeView, args: dict[str, Any]) -> Any:
    return {"clock": panel.clock}


@_builtin("active")
def _active(panel: Panel, view: NodeView, args: dict[str, Any]) -> Any:
    return view.active()


@_builtin("reserved")
def _reserved(panel: Panel, view: NodeView, args: dict[str, Any]) -> Any:
    return view.reserved()


@_builtin("registered")
def _registered(panel: Panel, view: NodeView, args: dict[str, Any]) -> Any:
    items = args.get("taskinfoitems") or ()
    if isinstance(items, str):
        items = [items]
    out = []
    for name, task in sorted(view.app.tasks.items()):
        if name.startswith(("celery.", "celeriac.")):
            continue
        shown = [
            f"{attr}={getattr(task, attr, None)}"
            for attr in items
            if attr in TASK_INFO and getattr(task, attr, None) is not None
        ]
        out.append(f"{name} [{' '.join(shown)}]" if shown else name)
    return out


@_builtin("active_queues")
def _active_queues(panel: Panel, view: NodeView, args: dict[str, Any]) -> Any:
    return [_queue_info(view.app, q) for q in view.queues()]


def _queue_info(app: App, name: str) -> dict[str, Any]:
    """A queue in Celery's ``active_queues`` shape (kombu's fields; the AMQP arguments
    celeriac has not are None/False: its queues are always durable)."""
    exchange, kind, routing_key, max_priority = name, "direct", name, None
    try:
        queue = queue_for(app.conf, name)
    except ImproperlyConfigured:
        queue = None
    if queue is not None:
        if queue.exchange is not None:
            exchange, kind = queue.exchange.name, queue.exchange.type
        routing_key = name if queue.routing_key is None else queue.routing_key
        max_priority = queue.max_priority
    return {
        "alias": None,
        "auto_delete": False,
        "binding_arguments": None,
        "bindings": [],
        "consumer_arguments": None,
        "durable": True,
        "exchange": {
            "arguments": None,
            "auto_delete": False,
            "delivery_mode": None,
            "durable": True,
            "name": exchange,
            "no_declare": False,
            "passive": False,
            "type": kind,
        },
        "exclusive": False,
        "expires": None,
        "max_length": None,
        "max_length_bytes": None,
        "max_priority": max_priority,
        "message_ttl": None,
        "name": name,
        "no_ack": False,
        "no_declare": None,
        "queue_arguments": None,
        "routing_key": routing_key,
    }


@_builtin("query_task")
def _query_task(panel: Panel, view: NodeView, args: dict[str, Any]) -> Any:
    ids = args.get("ids") or args.get("id") or ()
    wanted = {ids} if isinstance(ids, str) else set(ids)
    found: dict[str, Any] = {}
    for kind, requests in (("active", view.active()), ("reserved", view.reserved())):
        for request in requests:
            if request.get("id") in wanted:
                found[request["id"]] = [kind, request]
    return found


@_builtin("stats")
def _stats(panel: Panel, view: NodeView, args: dict[str, Any]) -> Any:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "hostname": view.hostname,
        "pid": os.getpid(),
        "uptime": round(time.monotonic() - panel.started, 3),
        "clock": panel.clock,
        "broker": {"url": view.app.conf.broker_url, "transport": "celeriac"},
        "rusage": {"utime": usage.ru_utime, "stime": usage.ru_stime, "maxrss": usage.ru_maxrss},
        **view.stats(),
    }


@_builtin("conf")
def _conf(panel: Panel, view: NodeView, args: dict[str, Any]) -> Any:
    conf = view.app.conf
    values = conf.as_dict() if args.get("with_defaults", True) else conf.changes()
    return {name: _plain(value) for name, value in sorted(values.items())}


def _plain(value: Any) -> Any:
    """A setting as msgpack can carry it (objects as their repr)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return repr(value)


@_builtin("report")
def _report(panel: Panel, view: NodeView, args: dict[str, Any]) -> Any:
    lines = [
        f"celeriac:{__version__} python:{platform.python_version()} "
        f"({sys.implementation.name}) platform:{platform.platform()}",
        f"node: {view.hostname}  pid: {os.getpid()}",
        f"app: {view.app.main}  broker: {view.app.conf.broker_url}",
        f"queues: {', '.join(view.queues())}",
        f"tasks: {len(view.app.tasks)}",
    ]
    return {"ok": "\n".join(lines)}


# -- control ---------------------------------------------------------------------------------------


def _task_name(view: NodeView, args: dict[str, Any]) -> str:
    name = str(args.get("task_name") or args.get("task") or "")
    if name not in view.app.tasks:
        raise ValueError(f"unknown task {name!r}")
    return name


@_builtin("rate_limit")
def _rate_limit(panel: Panel, view: NodeView, args: dict[str, Any]) -> Any:
    name = _task_name(view, args)
    rate = args.get("rate_limit")
    view.rate_limit(name, None if rate in (None, "", 0, "0") else str(rate))
    return {"ok": "new rate limit set successfully"}


@_builtin("time_limit")
def _time_limit(panel: Panel, view: NodeView, args: dict[str, Any]) -> Any:
    name = _task_name(view, args)
    soft, hard = args.get("soft"), args.get("hard")
    view.time_limit(
        name, None if soft is None else float(soft), None if hard is None else float(hard)
    )
    return {"ok": "time limits set successfully"}


@_builtin("shutdown")
def _shutdown(panel: Panel, view: NodeView, args: dict[str, Any]) -> Any:
    _log.warning("remote_shutdown", node=view.hostname)
    view.shutdown()
    return {"ok": "shutdown signal sent"}


@_builtin("pool_grow")
def _pool_grow(panel: Panel, view: NodeView, args: dict[str, Any]) -> Any:
    return {"ok": f"pool will grow to {view.resize(int(args.get('n', 1)))}"}


@_builtin("pool_shrink")
def _pool_shrink(panel: Panel, view: NodeView, args: dict[str, Any]) -> Any:
    return {"ok": f"pool will shrink to {view.resize(-int(args.get('n', 1)))}"}


@_builtin("autoscale")
def _autoscale(panel: Panel, view: NodeView, args: dict[str, Any]) -> Any:
    high, low = view.autoscale(int(args["max"]), int(args.get("min", 1)))
    return {"ok": f"autoscale now max={high} min={low}"}


@_builtin("add_consumer")
def _add_consumer(panel: Panel, view: NodeView, args: dict[str, Any]) -> Any:
    queue = str(args["queue"])
    if queue in view.queues():
        return {"ok": f"already consuming from {queue!r}"}
    view.add_consumer(queue)
    return {"ok": f"add consumer {queue}"}


@_builtin("cancel_consumer")
def _cancel_consumer(panel: Panel, view: NodeView, args: dict[str, Any]) -> Any:
    queue = str(args["queue"])
    view.cancel_consumer(queue)
    return {"ok": f"no longer consuming from {queue}"}


@_builtin("enable_events")
def _enable_events(panel: Panel, view: NodeView, args: dict[str, Any]) -> Any:
    view.set_events(True)
    return {"ok": "task events enabled"}


@_builtin("disable_events")
def _disable_events(panel: Panel, view: NodeView, args: dict[str, Any]) -> Any:
    view.set_events(False)
    return {"ok": "task events disabled"}


@_builtin("heartbeat")
def _heartbeat(panel: Panel, view: NodeView, args: dict[str, Any]) -> Any:
    view.heartbeat()
    return {"ok": "heartbeat sent"}


def purge_queues(conf: Settings, queues: list[str], timeout: float = 10.0) -> int:
    """``worker --purge``: remove the messages waiting in ``queues`` at the hub before the
    node consumes (a short-lived client; the embedded hub, if any, is already up)."""
    from celeriac.transport import protocol as p  # noqa: PLC0415 - only for --purge

    from .client import Client  # noqa: PLC0415

    client = Client(conf)
    try:
        request = p.ControlRequest(uuid.uuid4().hex, "purge", {"queues": list(queues)})
        answer = client.control(request, timeout).replies.get("hub")
    finally:
        client.close()
    if not isinstance(answer, dict):
        _log.error("purge_failed", queues=queues, hint=f"the hub did not answer in {timeout}s")
        return 0
    count = int(answer.get("purged", 0))
    _log.warning("queues_purged_at_start", count=count, queues=queues)
    return count
