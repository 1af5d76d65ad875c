"""What a client waits for and asks the hub: results, task states, the reason a result waits.

The user-thread side of :class:`~celeriac.runtime.client.Client` that is not publishing: a
waiter blocks on a :class:`Slot` (an event, never a polling loop) that the I/O thread fills when
the session resolves a result or answers a request; :func:`outcome_of` turns a result message
into what the user sees (pure).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Final

import msgpack

from celeriac import states
from celeriac._clock import Clock
from celeriac._log import get_logger
from celeriac._serialization import loads
from celeriac.exceptions import DecodeError, SerializationError, TimeoutError
from celeriac.result import Outcome
from celeriac.transport import protocol as p
from celeriac.transport import session as s

from .liveness import explain_reply

__all__ = [
    "ARRIVED_LIMIT",
    "STATE_TIMEOUT",
    "STILL_WAITING_EVERY",
    "ClientWaits",
    "Slot",
    "outcome_of",
]

_log = get_logger("celeriac.client")

#: Longest wait of ``AsyncResult.state`` for the hub's answer (then PENDING).
STATE_TIMEOUT: Final = 1.0
#: ``get()`` without a timeout says why it still waits this often.
STILL_WAITING_EVERY: Final = 30.0
#: Results that arrived and were waited for, kept in the client for another ``get()`` or
#: ``peek``; beyond this many (the oldest go first) a later ``get()`` asks the hub again, which
#: keeps stored results until ``result_expires``. Without a bound a long-running publisher
#: (a web app calling ``get()``) would keep every result it ever fetched.
ARRIVED_LIMIT = 20_000


class Slot:
    """Where one waiter blocks: an event, and the outcome it wakes to (given: already here)."""

    __slots__ = ("event", "outcome")

    def __init__(self, outcome: Outcome | None = None) -> None:
        self.event = _ARRIVED if outcome is not None else threading.Event()
        self.outcome = outcome


#: The event of every slot made with its outcome: set once, shared (an Event costs ~3 µs).
_ARRIVED: Final = threading.Event()
_ARRIVED.set()


def outcome_of(result: p.ResultMessage | p.Refusal, accept: frozenset[str]) -> Outcome:
    """A result as the user sees it (a refused publish ends REJECTED with PublishError)."""
    if isinstance(result, p.Refusal):
        info = p.FailureInfo(
            "PublishError",
            "celeriac.exceptions",
            (f"the hub refused task {result.id}: {result.reason}",),
        )
        return Outcome(states.REJECTED, p.failure_map(info))
    if result.hub:
        return Outcome(result.state, msgpack.unpackb(result.body, raw=False))
    try:
        value = loads(result.body, result.content_type, accept)
    except (SerializationError, DecodeError) as exc:
        info = p.FailureInfo(
            type(exc).__name__, "celeriac.exceptions", (f"cannot decode the result: {exc}",)
        )
        return Outcome(states.FAILURE, p.failure_map(info))
    if result.state in states.EXCEPTION_STATES and isinstance(value, dict):
        return Outcome(result.state, value, value.get("traceback"), result.children)
    return Outcome(result.state, value, None, result.children)


class ClientWaits:
    """Results and questions to the hub, for :class:`~celeriac.runtime.client.Client`."""

    clock: Clock
    _lock: threading.Lock
    _accept: frozenset[str]
    _session: s.ClientSession
    _slots: dict[str, Slot]
    #: The ids of the filled slots, oldest first (at most :data:`ARRIVED_LIMIT`).
    _arrived: OrderedDict[str, None]
    _requests: dict[int, Slot]

    @property
    def endpoint(self) -> str:
        """The address of the hub this client talks to now (one of ``broker_url``'s)."""
        return self._session.endpoint

    def _submit(self, effects: list[s.Effect]) -> None:
        raise NotImplementedError  # the client's: hands the effects to its I/O thread

    def _lead(self, event: threading.Event, deadline: float) -> bool:
        raise NotImplementedError  # the client's: serve the socket from this thread

    def _following(self) -> AbstractContextManager[None]:
        raise NotImplementedError  # the client's: a wait the I/O thread serves

    def wait(self, task_id: str, timeout: float | None) -> Outcome:
        """Block until the task's result arrives; TimeoutError after ``timeout`` seconds, saying
        why (never confirmed, queued with no consumer, running on a worker...). Waiting without
        a timeout logs ``still_waiting_for_result`` with the same diagnosis every
        :data:`STILL_WAITING_EVERY` seconds, so no wait is silent."""
        slot = self._slot_for(task_id)
        event = slot.event
        if not event.is_set():
            clock = self.clock
            deadline = None if timeout is None else clock.monotonic() + timeout
            while True:  # periods: to the deadline, or of STILL_WAITING_EVERY without one
                until = clock.monotonic() + STILL_WAITING_EVERY if deadline is None else deadline
                # Served from this thread if the socket is free (.client_leader), else followed.
                if not self._lead(event, until) and not event.is_set():
                    with self._following():
                        event.wait(max(0.0, until - clock.monotonic()))
                if event.is_set():
                    break
                if deadline is not None:
                    raise TimeoutError(
                        f"the result of task {task_id} did not arrive in {timeout}s: "
                        f"{self.diagnose(task_id)}"
                    )
                _log.warning("still_waiting_for_result", id=task_id, why=self.diagnose(task_id))
        assert slot.outcome is not None
        return slot.outcome

    def peek(self, task_id: str) -> Outcome | None:
        """The result if it is already here (no waiting)."""
        with self._lock:
            slot = self._slots.get(task_id)
            if slot is not None and slot.outcome is not None:
                return slot.outcome
            early = self._session.unclaimed.get(task_id)
        return None if early is None else outcome_of(early, self._accept)

    def hub_answering(self) -> bool:
        """Whether the hub has answered this client lately (within three heartbeats)."""
        return self._session.answering(self.clock.monotonic())

    def state(self, task_id: str, timeout: float | None = None) -> str:
        """The task's state as the hub knows it; PENDING at once when the hub is not answering
        (a state is a question, not a wait: it never blocks for more than ``timeout``, by
        default :data:`STATE_TIMEOUT`)."""
        reply = self._stat(task_id, STATE_TIMEOUT if timeout is None else timeout)
        return states.PENDING if reply is None else reply.state

    def diagnose(self, task_id: str) -> str:
        """Why the result of ``task_id`` has not come, in words (asks the hub)."""
        with self._lock:
            unconfirmed = task_id in self._session.unconfirmed
        if unconfirmed:
            return (
                f"the hub at {self.endpoint} never confirmed it: it is held in this process's "
                "memory, not yet durable (is a hub running there?)"
            )
        reply = self._stat(task_id, STATE_TIMEOUT)
        if reply is None:
            return f"the hub at {self.endpoint} is not answering"
        return explain_reply(reply)

    def _stat(self, task_id: str, timeout: float) -> p.Reply | None:
        """One STAT round trip; None if the hub is not answering or does not reply in time."""
        if not self.hub_answering():
            return None
        reply = self.request(lambda rid: p.Stat(task_id, rid), timeout)
        return reply if isinstance(reply, p.Reply) else None

    def info(self, task_id: str, timeout: float | None = None) -> p.TaskInfo | None:
        """What the hub knows of a task: state, progress meta, request (``COMPAT.INFO``);
        None if the hub is not answering within ``timeout`` (:data:`STATE_TIMEOUT`)."""
        if not self.hub_answering():
            return None
        wait = STATE_TIMEOUT if timeout is None else timeout
        reply = self.request(lambda rid: p.InfoQuery(task_id, rid), wait)
        return reply if isinstance(reply, p.TaskInfo) else None

    def request(self, make: Callable[[int], p.Message], timeout: float) -> p.Message | None:
        """Send ``make(rid)`` and wait for the hub's answer carrying that rid (``STAT`` ->
        ``REPLY``, ``BEAT_LEASE`` -> ``BEAT_GRANT``...); None when the hub does not answer in
        time."""
        slot = Slot()
        with self._lock:
            rid, effects = self._session.request(make)
            self._requests[rid] = slot
        self._submit(effects)
        with self._following():
            answered = slot.event.wait(timeout)
        if not answered:
            with self._lock:
                self._requests.pop(rid, None)
                self._session.cancel(rid)
            return None
        assert slot.outcome is not None
        answer: p.Message = slot.outcome.value
        return answer

    def _slot_for(self, task_id: str) -> Slot:
        """Where to wait for ``task_id``: a slot already filled if the result is here (the
        common ``get()`` after a burst of sends: no event of its own, nothing for the I/O
        thread to do, issue 18)."""
        with self._lock:
            slot = self._slots.get(task_id)
            if slot is not None:
                return slot
            early = self._session.claim(task_id)
            if early is not None:  # decoded here, as the I/O thread would have (no hand-off)
                slot = self._slots[task_id] = Slot(outcome_of(early, self._accept))
                self._keep(task_id)
                return slot
            slot = self._slots[task_id] = Slot()
            effects = self._session.await_result(task_id)
        self._submit(effects)
        return slot

    def _resolve(self, task_id: str, outcome: Outcome) -> None:
        with self._lock:
            slot = self._slots.get(task_id)
            if slot is not None:
                slot.outcome = outcome
                self._keep(task_id)
        if slot is not None:
            self._wake_waiter(slot.event)

    def _keep(self, task_id: str) -> None:
        """Count a filled slot; drop the oldest filled one past :data:`ARRIVED_LIMIT` (a waiter
        holding it keeps its own reference). Under ``_lock``."""
        arrived = self._arrived
        arrived[task_id] = None
        if len(arrived) > ARRIVED_LIMIT:
            old, _ = arrived.popitem(last=False)
            slot = self._slots.get(old)
            if slot is not None and slot.outcome is not None:
                del self._slots[old]

    def _answer(self, answer: s.Answer) -> None:
        with self._lock:
            slot = self._requests.pop(answer.rid, None)
        if slot is not None:
            slot.outcome = Outcome(states.PENDING, answer.reply)
            self._wake_waiter(slot.event)

    def _wake_waiter(self, event: threading.Event) -> None:
        event.set()  # the client's I/O thread sets its events once its turn is over
