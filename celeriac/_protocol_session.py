"""The commands of a peer's session with the hub: hello and welcome, declarations, heartbeats,
leaving, and the hub's refusal.

Pure values like every command (:mod:`celeriac._protocol` re-exports them; the wire spelling is
:mod:`celeriac._wire`'s). A peer opens with :class:`Hello` (which may carry its
:class:`Declare`), the hub answers :class:`Welcome` or :class:`Error`; :class:`Ping` and
:class:`Pong` go either way; :class:`Bye` ends the session.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from celeriac._protocol_parts import ExchangeDecl, QueueDecl

__all__ = ["Bye", "Declare", "Error", "Hello", "OnLost", "Ping", "Pong", "Role", "Welcome"]

Role = Literal["client", "worker"]
OnLost = Literal["requeue", "fail"]


@dataclass(frozen=True, slots=True)
class Declare:
    """peer -> hub: exchanges and queues (with bindings) to declare."""

    COMMAND: ClassVar[bytes] = b"DECLARE"
    exchanges: tuple[ExchangeDecl, ...] = ()
    queues: tuple[QueueDecl, ...] = ()


@dataclass(frozen=True, slots=True)
class Hello:
    """peer -> hub: who I am, what I consume, my credit and the deliveries I still hold."""

    COMMAND: ClassVar[bytes] = b"HELLO"
    role: Role = "client"
    node: str = "?"
    pid: int | None = None
    on_lost: OnLost | None = None
    queues: tuple[str, ...] = ()
    declare: Declare | None = None
    credit: int = 0
    inflight: tuple[str, ...] = ()
    #: A client that takes a ``RES`` for a publish it holds unconfirmed as its confirmation
    #: (the hub may then hold that ``CONF`` for the ``RES``: transport/hub/confirmhold.py).
    results_confirm: bool = False


@dataclass(frozen=True, slots=True)
class Welcome:
    """hub -> peer: the hub's incarnation id and heartbeat interval."""

    COMMAND: ClassVar[bytes] = b"WELCOME"
    hub: str
    heartbeat: float
    #: The name the hub knows this peer by: its own, or made unique (``name#2``) when another
    #: live worker already has it.
    node: str | None = None


@dataclass(frozen=True, slots=True)
class Ping:
    """either way: heartbeat (a worker's carries how many tasks it runs)."""

    COMMAND: ClassVar[bytes] = b"PING"
    hub: str | None = None
    inflight: int | None = None


@dataclass(frozen=True, slots=True)
class Pong:
    """either way: heartbeat answer; ``known`` False: the hub does not know the peer."""

    COMMAND: ClassVar[bytes] = b"PONG"
    hub: str | None = None
    known: bool | None = None


@dataclass(frozen=True, slots=True)
class Bye:
    """peer -> hub: leaving; requeue anything I still hold."""

    COMMAND: ClassVar[bytes] = b"BYE"


@dataclass(frozen=True, slots=True)
class Error:
    """hub -> peer: refused (``code``: ``hello``, ``distrusted``, ``declaration``...)."""

    COMMAND: ClassVar[bytes] = b"ERR"
    code: str
    reason: str | None = None
    hub: str | None = None
