"""The worker's link to its keyed actors: hub messages in, ``KEYED_SAVE``/``DONE`` out.

The connection thread (``runtime/worker.py``) passes every keyed delivery and keyed command
here; :class:`~celeriac.actors.keyed.KeyedHost` runs the calls in their keys' actors. A call's
outcome comes back from the key's thread through the worker's inbox (``runtime/inbox.py``, tagged
``KEYED``), and the connection thread forwards the frames as they are: the saved state first,
then the ``DONE`` (no credit: keyed calls do not use task slots), so the hub has stored the
state before it acknowledges the call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from celeriac._log import get_logger
from celeriac._serialization import normalize_accept
from celeriac.actors.keyed import KeyedHost
from celeriac.actors.outcome import TaskOutcome
from celeriac.transport import protocol as p

from .outcomes import outcome_message

if TYPE_CHECKING:
    from .worker import WorkerNode

__all__ = ["KEYED_TAG", "KeyedLink", "host_queues"]

_log = get_logger("celeriac.worker")

#: The second frame of an outcome-socket message carrying a key's frames.
KEYED_TAG = b"KEYED"

Send = Callable[[p.Message], None]


def host_queues(actors: dict[str, type]) -> list[str]:
    """The queues a worker consumes to host these actor classes."""
    return [p.host_queue(name) for name in sorted(actors)]


class KeyedLink:
    """The keyed actors of one worker node; see the module docstring."""

    def __init__(self, node: WorkerNode) -> None:
        self.node = node
        conf = node.conf
        self.host = KeyedHost(
            dict(node.app.actors),
            self._report,
            accept=normalize_accept(conf.accept_content),
            serializer=conf.result_serializer,
            idle_timeout=float(conf.actor_idle_timeout),
            clock=node.app.clock,
            max_instances=int(conf.actor_max_instances),
        )

    def _report(self, queue: str, outcome: TaskOutcome, state: bytes | None) -> None:
        """From a key's thread: push the saved state and the outcome to the connection."""
        inbox = self.node.inbox
        if state is not None:
            inbox.put([b"", KEYED_TAG, *p.encode(p.KeyedSave(queue, state))])
        inbox.put([b"", KEYED_TAG, *p.encode(outcome_message(outcome, credit=0))])

    def deliver(self, delivery: p.Delivery, send: Send) -> None:
        """A call for a key placed here (over ``actor_max_instances``: an idle key is offered
        back to the hub to make room, or the call refused if every instance is busy)."""
        admitted, evict = self.host.admit(delivery.queue)
        cap = self.host.max_instances
        if evict is not None:
            _log.info("actor_evicting", key=evict, reason=f"actor_max_instances={cap} reached")
            send(p.KeyedIdle(evict))
        if not admitted:
            reason = (
                f"this worker runs actor_max_instances={cap} keyed actor instances, each busy "
                "with a call: none can be stopped to make room (raise actor_max_instances, or "
                "add workers hosting the class)"
            )
            _log.warning("actor_refused", key=delivery.queue, reason=reason)
            send(p.Reject((p.Rejection(delivery.task.id, delivery.tag, False, reason),)))
        elif not self.host.deliver(delivery):  # a class this worker does not know: not ours
            reason = f"this worker does not host actor class {delivery.queue!r}"
            send(p.Reject((p.Rejection(delivery.task.id, delivery.tag, False, reason),)))

    def handle(self, msg: p.Message) -> bool:
        """A keyed command from the hub; False if ``msg`` is something else."""
        if isinstance(msg, p.KeyedActivate):
            self.host.activate(msg.queue, msg.state)
        elif isinstance(msg, p.KeyedStop):
            self.host.stop(msg.queue)
        else:
            return False
        return True

    def tick(self, send: Send) -> None:
        """Tell the hub which keys have been idle long enough to stop."""
        for queue in self.host.idle():
            send(p.KeyedIdle(queue))

    def running(self) -> int:
        """Keyed calls running now (a warm shutdown waits for them)."""
        return self.host.running()

    def stop(self) -> None:
        """Stop every instance."""
        self.host.stop_all()
