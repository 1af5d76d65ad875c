"""Task type limits for a whole prefork node: the parent holds the gates, the children ask.

How it works
------------
Each child of a prefork node is its own consumer at the hub, so a limit kept in a child would
hold per child (``max_concurrency=1`` with ``-c 4`` would let four run). Instead the parent
runs the task type actors (:mod:`celeriac.actors.tasktype`) for the node, and a child's
connection offers its deliveries of limited types to them over the child's pipe::

    child connection --("offer", tag, task)--> pipe --> parent: NodeGates --tell--> type actor
    type actor --release--> outbox --> parent loop --("release", tag)--> pipe --> child main
        thread --inproc RUN--> child connection, which runs it
    child connection --("type_done", tag)--> pipe --> parent --tell Finished--> type actor

A child that gives deliveries back (warm shutdown, recycling, autoscaling) says so with
``("withdraw", tags)``; a child that dies is :meth:`NodeGates.child_gone`. Either way its
waiting deliveries leave the actors' queues and its released ones stop counting against the
caps. The hub redelivers what a dead child held, as always.

The parent sends on a child's pipe only from its own loop (the actors put releases in an
outbox and wake the loop through a pipe), so a pipe never has two writers.
"""

from __future__ import annotations

import contextlib
import os
import queue
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from celeriac._limits import type_limits
from celeriac._protocol import TaskMessage
from celeriac.actors.task_actor import Delivery
from celeriac.actors.tasktype import TaskTypes

__all__ = ["ChildGates", "NodeGates", "gated_names"]

#: The pipe messages a child sends about its gated deliveries.
GATE_MESSAGES = frozenset({"offer", "type_done", "withdraw"})


def gated_names(tasks: Mapping[str, Any], conf: Any) -> frozenset[str]:
    """The names of the task types that have a rate limit or a cap."""
    return frozenset(name for name, task in tasks.items() if type_limits(task, conf).limited)


def _tag(delivery: Delivery) -> str:
    return delivery.delivery_tag


def _stand_in(tag: str, name: str) -> Delivery:
    """What the parent's type actors hold for a child's delivery: its tag and task name."""
    return Delivery(TaskMessage(tag, name), "", tag=tag)


class ChildGates:
    """A child's view of its parent's gates (what its connection calls, see ``TypeGates``)."""

    def __init__(self, names: Collection[str], tell: Callable[..., None]) -> None:
        self.names = frozenset(names)
        self._tell = tell

    def offer(self, delivery: Delivery) -> bool:
        """Send a limited type's delivery to the parent's gate; False for other types."""
        name = delivery.task.task
        if name not in self.names:
            return False
        self._tell("offer", _tag(delivery), name)
        return True

    def finished(self, delivery: Delivery) -> None:
        """A released delivery has finished."""
        if delivery.task.task in self.names:
            self._tell("type_done", _tag(delivery))

    def drain(self, unstarted: Sequence[Delivery]) -> None:
        """These gated deliveries go back to the hub: the parent forgets them."""
        if unstarted:
            self._tell("withdraw", [_tag(d) for d in unstarted])

    def stop(self) -> None:
        """Nothing to stop here: the gates live in the parent."""

    def retune(self, name: str, limits: Any) -> None:
        """Remote control (``rate_limit``): a type that becomes limited asks the parent from
        now on (the parent's gate holds the new limits)."""
        if limits.limited:
            self.names = self.names | {name}


class NodeGates:
    """The parent's side: the type actors for the node, and who asked for what."""

    def __init__(self) -> None:
        self._outbox: queue.SimpleQueue[Delivery] = queue.SimpleQueue()
        self._wake_r = self._wake_w = -1  # the wake-up pipe, made by start()
        self.types = TaskTypes({})
        #: Per child: tag -> task name, for deliveries offered and not released yet...
        self.waiting: dict[int, dict[str, str]] = {}
        #: ...and for those released and not finished yet.
        self.released: dict[int, dict[str, str]] = {}
        #: Which child offered each waiting tag.
        self.offered_by: dict[str, int] = {}

    def start(self, tasks: Mapping[str, Any], conf: Any) -> None:
        """Start the actors of the limited types among ``tasks``."""
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self.types = TaskTypes.start(tasks, conf, self._released)

    def waitable(self) -> int:
        """A file descriptor that becomes readable when releases are waiting for :meth:`flush`."""
        return self._wake_r

    def _released(self, delivery: Delivery) -> None:
        """Called in an actor thread: queue the release for the parent loop and wake it."""
        self._outbox.put(delivery)
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"!")

    def on_child(self, child: int, message: Sequence[Any]) -> None:
        """A gate message from child ``child`` (see :data:`GATE_MESSAGES`)."""
        kind = message[0]
        if kind == "offer":
            _, tag, name = message
            self.waiting.setdefault(child, {})[tag] = name
            self.offered_by[tag] = child
            self.types.offer(_stand_in(tag, name))
        elif kind == "type_done":
            self._finish(child, [message[1]])
        elif kind == "withdraw":
            self._forget(child, list(message[1]))

    def child_gone(self, child: int) -> None:
        """Child ``child`` died or left: forget everything it had asked for."""
        tags = [*self.waiting.get(child, {}), *self.released.get(child, {})]
        self._forget(child, tags)

    def flush(self, send: Callable[[int, tuple[str, str]], bool]) -> None:
        """In the parent loop: tell each child what was released for it.

        ``send(child, message)`` returns False if that child cannot be told (gone): the
        release then counts as finished at once.
        """
        with contextlib.suppress(OSError):
            while os.read(self._wake_r, 4096):
                pass
        while True:
            try:
                delivery = self._outbox.get_nowait()
            except queue.Empty:
                return
            tag = _tag(delivery)
            child = self.offered_by.pop(tag, -1)
            name = self.waiting.get(child, {}).pop(tag, None)
            if name is None:  # withdrawn meanwhile: it frees its place at once
                self.types.finished(delivery)
                continue
            self.released.setdefault(child, {})[tag] = name
            if not send(child, ("release", tag)):
                self._finish(child, [tag])

    def _finish(self, child: int, tags: Sequence[str]) -> None:
        for tag in tags:
            name = self.released.get(child, {}).pop(tag, None)
            if name is not None:
                self.types.finished(_stand_in(tag, name))

    def _forget(self, child: int, tags: Sequence[str]) -> None:
        """Released ones stop counting; waiting ones leave the actors' queues."""
        self._finish(child, tags)
        waiting = self.waiting.get(child, {})
        gone = frozenset(tag for tag in tags if waiting.pop(tag, None) is not None)
        for tag in gone:
            self.offered_by.pop(tag, None)
        if gone:
            self.types.withdraw(gone)

    def statistics(self) -> dict[str, dict[str, Any]]:
        """Each limited type's counters, for the whole node."""
        return self.types.statistics()

    def stop(self) -> None:
        """Stop the actors and close the wake-up pipe."""
        self.types.stop()
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._wake_r = self._wake_w = -1
