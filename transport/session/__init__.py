"""Sans-IO peer sessions: the client's and the worker's side of the protocol, no sockets.

:class:`ClientSession` (:mod:`.client`) and :class:`WorkerSession` (:mod:`.worker`) are driven
as ``session.handle(message, now) -> effects``, ``session.tick(now) -> effects`` and one method
per local event; the effects (:mod:`.effects`) say what the I/O loop around them must do. The
loops (``runtime/client.py``, the worker's connection) own the sockets and threads.
"""

from __future__ import annotations

from .client import ClientSession
from .effects import (
    Answer,
    Command,
    Confirmed,
    Dial,
    Effect,
    Finished,
    Heartbeat,
    Keyed,
    Log,
    Ready,
    Recall,
    Received,
    Resolve,
    Run,
    Send,
    SendEncoded,
    Settled,
    Starting,
    Stop,
    Withdraw,
)
from .failover import HubRotation
from .hubwatch import HubWatch
from .worker import WorkerConfig, WorkerSession

__all__ = [
    "Answer",
    "ClientSession",
    "Command",
    "Confirmed",
    "Dial",
    "Effect",
    "Finished",
    "Heartbeat",
    "HubRotation",
    "HubWatch",
    "Keyed",
    "Log",
    "Ready",
    "Recall",
    "Received",
    "Resolve",
    "Run",
    "Send",
    "SendEncoded",
    "Settled",
    "Starting",
    "Stop",
    "Withdraw",
    "WorkerConfig",
    "WorkerSession",
]
