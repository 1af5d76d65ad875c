"""Custom remote-control commands: ``@inspect_command`` and ``@control_command``, as in Celery.

A decorated function becomes a command every worker of this process's apps answers::

    from celeriac import inspect_command

    @inspect_command()
    def num_tasks(state):
        return {"ok": len(state.app.tasks)}

    @control_command(args=[("n", int)], signature="[N=1]")
    def increase(state, n=1):
        ...

``app.control.inspect().num_tasks()`` (an unknown method of ``Inspect`` sends a command of that
name) or ``app.control.broadcast("increase", arguments={"n": 2}, reply=True)`` run it;
``celeriac inspect num_tasks`` and ``celeriac control increase 2`` from the command line
(``args`` converts the positional words). The handler runs in the node's connection thread:
keep it short. ``state`` has ``app``, ``hostname`` and ``node`` (the worker; Celery's
``state.consumer`` is the same object).

The registry is pure (no sockets): the worker (:mod:`celeriac.runtime.control`) looks commands
up here after its built-in ones, so a custom command cannot shadow a built-in one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["COMMANDS", "CommandSpec", "control_command", "inspect_command"]

Handler = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """One registered command: its name, kind, handler and how to read its CLI arguments."""

    name: str
    kind: Literal["inspect", "control"]
    handler: Handler
    args: tuple[tuple[str, Callable[[str], Any]], ...] = ()
    signature: str | None = None
    help: str = ""


#: Every custom command, by name (built-in commands live in the runtime).
COMMANDS: dict[str, CommandSpec] = {}


def _register(
    kind: Literal["inspect", "control"],
    name: str | None,
    args: Sequence[tuple[str, Callable[[str], Any]]] | None,
    signature: str | None,
) -> Callable[[Handler], Handler]:
    def decorate(fun: Handler) -> Handler:
        command = name or fun.__name__
        doc = (fun.__doc__ or "").strip().splitlines()
        COMMANDS[command] = CommandSpec(
            command, kind, fun, tuple(args or ()), signature, doc[0] if doc else ""
        )
        return fun

    return decorate


def inspect_command(
    name: str | None = None,
    *,
    args: Sequence[tuple[str, Callable[[str], Any]]] | None = None,
    signature: str | None = None,
    **_: Any,
) -> Callable[[Handler], Handler]:
    """Register a read-only remote command (``celeriac inspect NAME``); Celery's other
    options (``alias``, ``variadic``, ``default_timeout``) are accepted and ignored."""
    return _register("inspect", name, args, signature)


def control_command(
    name: str | None = None,
    *,
    args: Sequence[tuple[str, Callable[[str], Any]]] | None = None,
    signature: str | None = None,
    **_: Any,
) -> Callable[[Handler], Handler]:
    """Register a remote command that changes something (``celeriac control NAME``)."""
    return _register("control", name, args, signature)
