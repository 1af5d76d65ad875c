"""Sans-IO peer sessions: the client's and the worker's side of the protocol, no sockets.

:class:`ClientSession` (:mod:`.client`) and :class:`WorkerSession` (:mod:`.worker`) are driven
as ``session.handle(message, now) -> effects``, ``session.tick(now) -> effects`` and one method
per local event; the effects (:mod:`.effects`) say what the I/O loop around them must do. The
loops (``runtime/client.py``, the worker's connection) own the sockets and threads.
"""

from __future__ import annotations

from .client import ClientSession
from .effects import Answer, Dial, Effect, Log, Ready, Resolve, Run, Send, Settled, Stop
from .failover import HubRotation
from .worker import HubWatch, WorkerSession

__all__ = [
    "Answer",
    "ClientSession",
    "Dial",
    "Effect",
    "HubRotation",
    "HubWatch",
    "Log",
    "Ready",
    "Resolve",
    "Run",
    "Send",
    "Settled",
    "Stop",
    "WorkerSession",
]
