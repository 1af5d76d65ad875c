"""The child side of supervision: the tell-back protocol, and the actor that speaks it.

What pykka does when an actor dies (pykka 4, ``pykka/_actor.py``):

* an exception in a *tell* handler logs, unregisters and stops the actor, then calls
  ``on_failure``; the tells queued behind it are dropped without a word;
* an exception in ``on_start`` logs, unregisters and stops the actor; neither ``on_failure`` nor
  ``on_stop`` runs;
* an exception in an *ask* handler goes back to the caller; the actor lives on;
* a ``SystemExit``/``KeyboardInterrupt`` in a handler stops the actor and then
  ``ActorRegistry.stop_all()``: every actor of the process. Raised by ``on_start`` it escapes the
  thread, and the actor is never marked stopped.

Nobody is told about any of it. This module and the supervisor
(:mod:`celeriac.actors.supervisor`) add the missing half.

The tell-back protocol
----------------------
A supervisor starts a child by calling its :class:`ChildSpec`'s factory with a
:class:`SupervisorLink` (the supervisor's ref, the child id, and an incarnation number that is new
at every start)::

    ChildSpec("conn", lambda link: Connection.start(port, link=link))
    ChildSpec("pool", lambda link: Supervisor.start(pool_specs, link=link, name="pool"))

A :class:`Supervised` actor takes that link as its ``link=`` keyword (which *claims* it) and
then *tells* its supervisor two things:

* ``ChildStarted(child_id, incarnation)`` once its ``on_start`` has returned. pykka's
  ``Actor.start()`` returns before ``on_start`` has even begun, so "children start in order"
  needs this: the supervisor starts the next child only when the previous one has confirmed
  (OTP's synchronous ``start_link``, made of tells). A nested supervisor confirms once its own
  first pass over its children is done, so a tree starts depth-first. A child that has not
  confirmed within its spec's ``start_timeout`` counts as failed. A plain actor (link not
  claimed) counts as started when its factory returns.
* ``ChildExited(child_id, incarnation, reason)`` as the very last thing its thread does:
  ``reason`` is ``None`` after a normal stop and a sentence after a crash (``"ValueError:
  boom"``, ``"on_start failed: OSError: ..."``).

Always tells, never asks: a child never waits for its supervisor, so the two cannot deadlock,
and a report to a supervisor that is already gone is dropped. The supervisor ignores a report
whose incarnation it no longer runs (a child it stopped itself, or one whose death it already
handled), so every start and every death is handled exactly once. A factory that raises, or
returns something that is not an ``ActorRef``, is a failed start like any other.

:class:`Supervised` hooks four private pykka methods (pykka 4; the tests pin the behaviour):
``_handle_failure`` (every failure passes there: it records the reason), ``_actor_loop_setup``
(a ``SystemExit`` escaping ``on_start`` becomes an ordinary start failure; ``ChildStarted`` is
sent from there), ``_handle_receive`` (a ``SystemExit``/``KeyboardInterrupt`` in a handler
becomes an :class:`ActorExitError` that kills this actor only) and ``_actor_loop`` (the exit
report is sent in a ``finally`` when the thread ends).
User classes keep ``on_start``/``on_stop``/``on_failure`` and need not call ``super()`` in them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import pykka

from celeriac.exceptions import CeleriacError

if TYPE_CHECKING:
    from types import TracebackType

__all__ = [
    "RESTART_TYPES",
    "ActorExitError",
    "ChildExited",
    "ChildSpec",
    "ChildStarted",
    "RestartType",
    "Supervised",
    "SupervisorLink",
    "describe",
]

RestartType = Literal["permanent", "transient", "temporary"]
#: The restart types a :class:`ChildSpec` accepts (OTP's).
RESTART_TYPES = ("permanent", "transient", "temporary")


class ActorExitError(CeleriacError):
    """A supervised actor raised ``SystemExit`` or ``KeyboardInterrupt``; only that actor dies.

    Left alone, pykka would stop every actor of the process.
    """


def describe(exc: BaseException) -> str:
    """``"ValueError: boom"``: the one-line form used in exit reasons and statistics."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# -- the protocol ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChildStarted:
    """Told by a child to its supervisor once its ``on_start`` has returned."""

    child_id: str
    incarnation: int


@dataclass(frozen=True, slots=True)
class ChildExited:
    """Told by a child to its supervisor when its thread ends; ``reason`` None = normal stop."""

    child_id: str
    incarnation: int
    reason: str | None


@dataclass(eq=False, slots=True)
class SupervisorLink:
    """What a child needs to report to its supervisor; a child factory receives one per start.

    ``claimed`` is set when a :class:`Supervised` actor takes the link in its constructor: the
    supervisor then waits for that child's :class:`ChildStarted` before starting the next one.
    """

    supervisor: pykka.ActorRef[Any]
    child_id: str
    incarnation: int
    claimed: bool = field(default=False, init=False)

    def claim(self) -> None:
        """Mark the link as taken by a child that will report (called by ``Supervised``)."""
        self.claimed = True

    def report_started(self) -> None:
        """Tell the supervisor this incarnation is up; dropped if the supervisor is gone."""
        with contextlib.suppress(pykka.ActorDeadError):
            self.supervisor.tell(ChildStarted(self.child_id, self.incarnation))

    def report_exit(self, reason: str | None) -> None:
        """Tell the supervisor this incarnation has ended; dropped if the supervisor is gone."""
        with contextlib.suppress(pykka.ActorDeadError):
            self.supervisor.tell(ChildExited(self.child_id, self.incarnation, reason))


@dataclass(frozen=True)
class ChildSpec:
    """How to start one child, and when to start it again.

    ``start`` receives the :class:`SupervisorLink` and returns the started child's ref; a
    :class:`Supervised` child passes the link on as its ``link=`` keyword. A child that has not
    confirmed its start within ``start_timeout`` seconds (of the supervisor's clock) counts as
    failed; one that does not stop within ``shutdown_timeout`` real seconds is abandoned.
    """

    id: str
    start: Callable[[SupervisorLink], pykka.ActorRef[Any]]
    restart: RestartType = "permanent"
    shutdown_timeout: float = 5.0
    start_timeout: float = 30.0


# -- the child side ----------------------------------------------------------------------------


class Supervised(pykka.ThreadingActor):
    """A pykka actor that reports its start and every way it ends to its supervisor.

    Subclasses take ``link`` as a keyword and pass it on: ``super().__init__(link=link)``.
    Without a link (started outside a supervisor) nothing is reported, but ``SystemExit`` is
    still contained. See the module docs for the protocol.
    """

    _celeriac_confirms_start: ClassVar[bool] = True
    """Report ChildStarted when on_start returns; a Supervisor reports it later, by itself."""

    def __init__(self, *, link: SupervisorLink | None = None) -> None:
        super().__init__()
        if link is not None:
            link.claim()
        self._celeriac_link = link
        self._celeriac_started = False
        self._celeriac_exit_reason: str | None = None

    def _celeriac_record_exit(self, reason: str) -> None:
        """Keep the first reason this actor ends for (later failures are its consequences)."""
        if self._celeriac_exit_reason is None:
            self._celeriac_exit_reason = reason

    def _actor_loop(self) -> None:
        try:
            super()._actor_loop()
        finally:
            if self._celeriac_link is not None:
                self._celeriac_link.report_exit(self._celeriac_exit_reason)

    def _actor_loop_setup(self) -> None:
        try:
            super()._actor_loop_setup()  # pykka catches Exception, not SystemExit
        except BaseException as exc:  # contain it to this actor
            error = ActorExitError(f"{describe(exc)} raised in on_start")
            self._handle_failure(ActorExitError, error, exc.__traceback__)
        self._celeriac_started = not self.actor_stopped.is_set()
        if self._celeriac_started and self._celeriac_confirms_start and self._celeriac_link:
            self._celeriac_link.report_started()

    def _handle_receive(self, message: Any) -> Any:
        try:
            return super()._handle_receive(message)
        except Exception:
            raise
        except BaseException as exc:
            # pykka would stop every actor in the process; make it this actor's own crash.
            raise ActorExitError(f"{describe(exc)} raised in {self}") from exc

    def _handle_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        what = describe(exception_value) if exception_value is not None else "unknown error"
        self._celeriac_record_exit(what if self._celeriac_started else f"on_start failed: {what}")
        super()._handle_failure(exception_type, exception_value, traceback)
