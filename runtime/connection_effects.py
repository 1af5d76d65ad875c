"""What a worker connection does for the session's effects that are not socket I/O.

:class:`~celeriac.runtime.connection.HubConnection` sends frames itself; every other effect of
the :class:`~celeriac.transport.session.WorkerSession` is handled here, one method per effect
type (:meth:`ConnectionEffects.effect_handlers`, looked up by type on each effect): events,
slot submissions and recalls, task types' ledgers, keyed actors, remote control, ready and stop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from celeriac import signals
from celeriac._log import get_logger
from celeriac.transport import protocol as p
from celeriac.transport import session as s

if TYPE_CHECKING:
    from .worker import WorkerNode
    from .worker_control import WorkerView

__all__ = ["EXIT_ABANDONED", "ConnectionEffects", "abandoned"]

_log = get_logger("celeriac.worker")

#: The exit code of a node that stopped with tasks still running (a cold shutdown, or the
#: shutdown timeout): the hub gets them back and delivers them again.
EXIT_ABANDONED = 1


def abandoned(node: Any, tags: list[str]) -> None:
    """Say that a stopping node leaves ``tags`` unfinished (the hub redelivers them: its BYE
    hands them back), and make its exit code :data:`EXIT_ABANDONED`."""
    _log.warning(
        "tasks_abandoned",
        count=len(tags),
        ids=tags[:20],
        hint="the hub delivers them again (at-least-once)",
    )
    node.exit_code = node.exit_code or EXIT_ABANDONED


class ConnectionEffects:
    """The effect handlers of a worker connection (its node, session and control view)."""

    node: WorkerNode
    session: s.WorkerSession
    view: WorkerView
    stopped: bool
    #: The deliveries of this turn's Run effects, by slot, until :meth:`hand_over`.
    runs: dict[int, list[p.Delivery]]

    def send(self, message: p.Message) -> None:
        raise NotImplementedError  # the connection's: sends on its socket

    def perform(self, effects: Iterable[s.Effect]) -> None:
        raise NotImplementedError  # the connection's: its table of handlers, in order

    def effect_handlers(self) -> dict[type, Callable[[Any], None]]:
        """The handler of each effect type this module performs."""
        return {
            s.Received: self._do_received,
            s.Starting: self._do_starting,
            s.Run: self._do_run,
            s.Recall: self._do_recall,
            s.Finished: self._do_finished,
            s.Withdraw: self._do_withdraw,
            s.Keyed: self._do_keyed,
            s.Command: self._do_command,
            s.Confirmed: self._do_confirmed,
            s.Heartbeat: self._do_heartbeat,
            s.Ready: self._do_ready,
            s.Log: self._do_log,
            s.Stop: self._do_stop,
        }

    def _do_received(self, effect: s.Received) -> None:
        if self.node.send_events:
            self.view.received(effect.delivery)

    def _do_starting(self, effect: s.Starting) -> None:
        self.node.started_at[effect.slot] = time.time()
        if self.node.send_events:
            self.view.started(effect.delivery)

    def _do_run(self, effect: s.Run) -> None:
        node = self.node
        if node.on_task_start is not None:
            node.on_task_start(effect.delivery)
        runs = self.runs.get(effect.slot)
        if runs is None:
            self.runs[effect.slot] = [effect.delivery]
        else:
            runs.append(effect.delivery)

    def hand_over(self, *, wake: bool = True) -> bool:
        """Hand each slot what this turn's :class:`~s.Run` effects gave it, in one put (a
        threads pool's ``hand``): the connection calls it before it waits, and before it
        recalls from a slot or reads that a slot was replaced, so the pool's claims are set.
        ``wake=False``: the slots asleep wait for the pool's ``wake_handed`` (the loop's, once
        it has let go of its turn); True if it handed anything."""
        if not self.runs:
            return False
        runs, self.runs = self.runs, {}
        pool = self.node.pool
        assert pool is not None
        for slot, deliveries in runs.items():
            pool.hand(slot, deliveries, wake=wake)
        return True

    def _do_recall(self, effect: s.Recall) -> None:
        # Withdrawn here, on the connection thread, so the session hears of each at once.
        self.hand_over()
        pool = self.node.pool
        assert pool is not None
        taken = [(slot, d) for slot, d in effect.waiting if pool.recall(slot, d.delivery_tag)]
        self.perform(self.session.recalled(taken))

    def _do_finished(self, effect: s.Finished) -> None:
        node = self.node
        node.processed[effect.delivery.task.task] += 1
        if node.on_task_end is not None:
            node.on_task_end(effect.delivery)
        node.types.finished(effect.delivery)

    def _do_withdraw(self, effect: s.Withdraw) -> None:
        self.node.types.drain(list(effect.deliveries))

    def _do_keyed(self, effect: s.Keyed) -> None:
        self.node.keyed.deliver(effect.delivery, self.send)

    def _do_command(self, effect: s.Command) -> None:
        message, node = effect.message, self.node
        if isinstance(message, p.ControlCommand):
            reply = node.panel.handle(self.view, message.command, dict(message.arguments))
            if message.reply:
                self.perform(self.session.control_reply(message.rid, node.hostname, reply))
        elif isinstance(message, p.RevokeHeld):
            node.revoke_held(message)
        else:
            node.keyed.handle(message)

    def _do_confirmed(self, effect: s.Confirmed) -> None:
        if self.node.on_settled is not None:
            self.node.on_settled(effect.task_id)

    def _do_heartbeat(self, _effect: s.Heartbeat) -> None:
        node = self.node
        node.keyed.tick(self.send)
        signals.heartbeat_sent.send(sender=node)
        if node.prefork_child is None:  # a prefork node's parent speaks for it
            self.view.heartbeat()

    def _do_ready(self, effect: s.Ready) -> None:
        node = self.node
        _log.info(
            "worker_ready" if node.prefork_child is None else "child_ready",
            node=node.peer_name,
            queues=node.queues,
            concurrency=node.concurrency,
            pool=node.pool_name,
        )
        node.ready.set()
        node._signal(signals.worker_ready, sender=node)

    def _do_log(self, effect: s.Log) -> None:
        getattr(_log, effect.level)(effect.event, **effect.fields)

    def _do_stop(self, effect: s.Stop) -> None:
        self.stopped = True
        if self.session.cold:
            self.node._cold.set()  # the pool does not wait for the tasks handed back
        if effect.cold:
            abandoned(self.node, [d.delivery_tag for d in self.session.handed()])
