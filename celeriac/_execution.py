"""Running one delivered task: decode, look up, run under a guard, encode the outcome (pure).

Whatever the task does, :meth:`TaskExecutor.execute` returns a ``DONE`` header and body and
never raises: a task exception is a FAILURE outcome, an unknown task name or a refused content
type is reported (signal, log, stored state) and the slot goes on serving. This matters because
an exception escaping a pykka ``tell`` handler kills the actor and silently drops the messages
queued behind it (DESIGN.md section 7).
"""

from __future__ import annotations

import asyncio
import inspect
import traceback as tb_module
from typing import TYPE_CHECKING, Any

import structlog

from . import signals, states
from ._messages import exception_info
from ._serialization import dumps, loads
from ._task import FunctionTask, Request, Task, _current
from .exceptions import (
    ContentDisallowed,
    DecodeError,
    EncodeError,
    Ignore,
    NotRegistered,
    Reject,
    SerializationError,
)

if TYPE_CHECKING:
    from ._app import App

__all__ = ["Outcome", "TaskExecutor"]

_log = structlog.get_logger("celeriac.worker")

#: (DONE header, body): what an execution produces for the hub.
Outcome = tuple[dict[str, Any], bytes]


class TaskExecutor:
    """Runs deliveries for one execution slot; holds that slot's class-based task instances."""

    def __init__(
        self,
        app: App,
        *,
        hostname: str,
        accept: frozenset[str],
        result_serializer: str,
        ignore_result_default: bool = False,
    ) -> None:
        self.app = app
        self.hostname = hostname
        self.accept = accept
        self.result_serializer = result_serializer
        self.ignore_result_default = ignore_result_default
        self._instances: dict[str, Task[Any, Any]] = {}

    def execute(self, header: dict[str, Any], body: bytes, meta: dict[str, Any]) -> Outcome:
        """Run one delivery and return its outcome; never raises."""
        try:
            return self._execute(header, body, meta)
        except Exception as exc:
            _log.exception("task_internal_error", task_id=header.get("id"))
            signals.task_internal_error.send(
                sender=None,
                task_id=header.get("id"),
                args=None,
                kwargs=None,
                request=None,
                exception=exc,
                traceback=tb_module.format_exc(),
                einfo=None,
            )
            return self._failure(header, meta, exc, tb_module.format_exc())

    def _execute(self, header: dict[str, Any], body: bytes, meta: dict[str, Any]) -> Outcome:
        name = header["task"]
        task = self._lookup(name)
        if task is None:
            exc = NotRegistered(f"task {name!r} is not registered on {self.hostname}")
            _log.error("task_unknown", task=name, task_id=header["id"])
            signals.task_unknown.send(
                sender=None, name=name, id=header["id"], message=header, exc=exc
            )
            return self._failure(header, meta, exc, None)
        try:
            args, kwargs, _embed = loads(body, header["ct"], self.accept)
        except ContentDisallowed as exc:
            _log.error("task_rejected", task=name, task_id=header["id"], reason=str(exc))
            signals.task_rejected.send(sender=None, message=header, exc=exc)
            return self._failure(header, meta, exc, None, state=states.REJECTED)
        except (DecodeError, SerializationError, ValueError, TypeError) as exc:
            _log.error("task_undecodable", task=name, task_id=header["id"], reason=str(exc))
            return self._failure(header, meta, exc, None)
        return self._run(task, header, meta, args, kwargs)

    def _lookup(self, name: str) -> Task[Any, Any] | None:
        instance = self._instances.get(name)
        if instance is not None:
            return instance
        task = self.app.tasks.get(name)
        if task is None:
            self.app.finalize()
            task = self.app.tasks.get(name)
            if task is None:
                return None
        if not isinstance(task, FunctionTask):
            # Class-based task: this slot's own instance, started once, keeps its state.
            task = type(task)()
            task.on_start()
        self._instances[name] = task
        return task

    def _request(
        self, header: dict[str, Any], meta: dict[str, Any], args: list[Any], kwargs: dict[str, Any]
    ) -> Request:
        tl = header.get("timelimit") or (None, None)
        return Request(
            id=header["id"],
            task=header["task"],
            args=tuple(args),
            kwargs=kwargs,
            retries=header.get("retries", 0),
            hostname=self.hostname,
            root_id=header.get("root_id"),
            parent_id=header.get("parent_id"),
            group=header.get("group"),
            eta=header.get("eta"),
            expires=header.get("expires"),
            origin=header.get("origin"),
            delivery_info={
                "queue": meta.get("queue"),
                "routing_key": header.get("routing_key", meta.get("queue")),
                "exchange": header.get("exchange", ""),
                "priority": header.get("priority"),
                "redelivered": meta.get("deliveries", 1) > 1,
            },
            headers=header.get("headers") or {},
            timelimit=(tl[0], tl[1]),
        )

    def _run(
        self,
        task: Task[Any, Any],
        header: dict[str, Any],
        meta: dict[str, Any],
        args: list[Any],
        kwargs: dict[str, Any],
    ) -> Outcome:
        request = self._request(header, meta, args, kwargs)
        tid = request.id
        if signals.task_received.receivers:
            signals.task_received.send(sender=None, request=request)
        if signals.task_prerun.receivers:
            signals.task_prerun.send(sender=task, task_id=tid, task=task, args=args, kwargs=kwargs)
        token = _current.set(request)
        state = states.SUCCESS
        retval: Any = None
        try:
            retval = task.run(*args, **kwargs)
            if inspect.iscoroutine(retval):
                retval = asyncio.run(retval)
        except Ignore:
            state = "IGNORED"
        except Reject as exc:
            state = states.REJECTED
            return self._failure(header, meta, exc, None, state=state)
        except BaseException as exc:
            state = states.FAILURE
            trace = tb_module.format_exc()
            _log.warning(
                "task_failed", task=task.name, task_id=tid, error=f"{type(exc).__name__}: {exc}"
            )
            signals.task_failure.send(
                sender=task,
                task_id=tid,
                exception=exc,
                args=args,
                kwargs=kwargs,
                traceback=trace,
                einfo=trace,
            )
            return self._failure(header, meta, exc, trace)
        finally:
            _current.reset(token)
            if signals.task_postrun.receivers:
                signals.task_postrun.send(
                    sender=task,
                    task_id=tid,
                    task=task,
                    args=args,
                    kwargs=kwargs,
                    retval=retval,
                    state=state,
                )
        if state == "IGNORED":
            return self._done(header, meta, states.SUCCESS, "application/json", b"null", False)
        if signals.task_success.receivers:
            signals.task_success.send(sender=task, result=retval)
        store = not header.get("ignore_result", self.ignore_result_default)
        try:
            ct, body = dumps(retval, self.result_serializer)
        except (EncodeError, SerializationError) as exc:
            return self._failure(header, meta, exc, None)
        return self._done(header, meta, states.SUCCESS, ct, body, store)

    def _done(
        self,
        header: dict[str, Any],
        meta: dict[str, Any],
        state: str,
        content_type: str,
        body: bytes,
        store: bool,
    ) -> Outcome:
        done: dict[str, Any] = {"id": header["id"], "state": state, "ct": content_type}
        if not store:
            done["store"] = False
        tag = meta.get("tag")
        if tag is not None:
            done["tag"] = tag
        return done, body

    def _failure(
        self,
        header: dict[str, Any],
        meta: dict[str, Any],
        exc: BaseException,
        trace: str | None,
        *,
        state: str = states.FAILURE,
    ) -> Outcome:
        info = exception_info(exc, trace)
        try:
            ct, body = dumps(info, self.result_serializer)
        except SerializationError:
            info["exc_message"] = [repr(a) for a in exc.args]
            ct, body = dumps(info, self.result_serializer)
        store = not header.get("ignore_result", self.ignore_result_default)
        return self._done(header, meta, state, ct, body, store)
