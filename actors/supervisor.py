"""Supervision trees for pykka actors: Erlang/OTP semantics, which pykka itself does not have.

How it works
============

What pykka does when an actor dies (pykka 4, ``pykka/_actor.py``):

* an exception in a *tell* handler logs, unregisters and stops the actor, then calls
  ``on_failure``; the tells queued behind it are dropped without a word;
* an exception in ``on_start`` logs, unregisters and stops the actor; neither ``on_failure`` nor
  ``on_stop`` runs;
* an exception in an *ask* handler goes back to the caller; the actor lives on;
* a ``SystemExit``/``KeyboardInterrupt`` in a handler stops the actor and then
  ``ActorRegistry.stop_all()``: every actor of the process. Raised by ``on_start`` it escapes the
  thread, and the actor is never marked stopped.

Nobody is told about any of it. This module adds the missing half.

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


A plain pykka actor can be supervised too (its factory ignores the link), but it never reports.
The supervisor therefore also runs a *liveness check* every ``check_interval`` seconds of its
clock: a child whose ``ActorRef.is_alive()`` is false is handled as a crash ("died without
reporting"). A :class:`Supervised` child found dead gets one more interval for its report, which
is usually already on its way.

Strategies
----------
When a child must be restarted, the strategy picks the *affected* children:

* ``one_for_one``: the child alone;
* ``one_for_all``: every child;
* ``rest_for_one``: the child and every child started after it.

The affected children still running are stopped in reverse start order (``ActorRef.stop`` with
the spec's ``shutdown_timeout``), then all of them are started again in start order once the
backoff has passed. Restart types, as in OTP: ``permanent`` children are always restarted,
``transient`` ones only after an abnormal exit, ``temporary`` ones never (not even when a
sibling's failure stopped them). An exit that needs no restart affects no sibling.

Restart intensity
-----------------
Every restart decision goes through the supervisor's :class:`~celeriac.actors.restart.
RestartTracker` (the one restart policy of celeriac, shared with the worker's connection loop
and the prefork parent): if more than ``intensity`` of them fall within the last ``period``
seconds, the supervisor gives up: it stops all its children in reverse order
and escalates with a sentence that names the child, the count, the window and the last error. A
nested supervisor escalates by stopping itself with that sentence as its exit reason, so its own
supervisor sees a crash and applies *its* strategy and intensity. At the root, ``on_escalate``
is called with the sentence (the worker node logs it and exits non-zero).

Backoff and timers
------------------
A restart waits ``backoff_delay(attempt)`` (see :mod:`celeriac.actors.restart`): ``base =
min(max, min * 2**attempt)`` and a delay drawn uniformly from ``[base / 2, base]`` ("equal
jitter", so delays still spread out once they reach the cap), where ``attempt`` counts the
child's restarts within the last ``period``. The
supervisor never sleeps: a restart is recorded as *due at* a clock reading. A small daemon
*ticker* thread per supervisor tells it ``_Tick`` every ``tick_interval`` real seconds (never
more than one tick queued); on each tick the supervisor reads the injected clock and runs what
is due: start timeouts, the restarts whose time has come and, every ``check_interval`` clock
seconds, the liveness check. The ticker only wakes the supervisor; the clock decides, so with a
``FakeClock`` a test moves time forward and waits on events instead of sleeping.

Stopping
--------
Children start in order (as above) and stop in reverse in ``on_stop``, each given its
``shutdown_timeout`` (real seconds: a thread cannot be killed, so one that does not stop in time
is logged as ``child_shutdown_timeout`` and abandoned). Stop a tree through
its root: ``ActorRegistry.stop_all()`` stops the youngest actors first, so a supervisor still
running sees its children stop and may restart the permanent ones.
"""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import pykka

from celeriac._clock import SYSTEM_CLOCK, Clock
from celeriac._log import get_logger
from celeriac.exceptions import CeleriacError, ImproperlyConfigured

from .restart import Escalate, RestartPolicy, RestartTracker, backoff_delay

if TYPE_CHECKING:
    from types import TracebackType

__all__ = [
    "ActorExitError",
    "ChildExited",
    "ChildSpec",
    "ChildStarted",
    "RestartType",
    "Strategy",
    "Supervised",
    "Supervisor",
    "SupervisorLink",
    "backoff_delay",
]

Strategy = Literal["one_for_one", "one_for_all", "rest_for_one"]
RestartType = Literal["permanent", "transient", "temporary"]

_STRATEGIES = ("one_for_one", "one_for_all", "rest_for_one")
_RESTART_TYPES = ("permanent", "transient", "temporary")
_UNREPORTED = "died without reporting (found dead by the liveness check)"

_log = get_logger("celeriac.supervisor")


class ActorExitError(CeleriacError):
    """A supervised actor raised ``SystemExit`` or ``KeyboardInterrupt``; only that actor dies.

    Left alone, pykka would stop every actor of the process.
    """


def _describe(exc: BaseException) -> str:
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


class _Tick:
    """Wakes a supervisor to run what its clock says is due."""


_TICK = _Tick()


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
            error = ActorExitError(f"{_describe(exc)} raised in on_start")
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
            raise ActorExitError(f"{_describe(exc)} raised in {self}") from exc

    def _handle_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        what = _describe(exception_value) if exception_value is not None else "unknown error"
        self._celeriac_record_exit(what if self._celeriac_started else f"on_start failed: {what}")
        super()._handle_failure(exception_type, exception_value, traceback)


# -- the supervisor ----------------------------------------------------------------------------

_State = Literal["new", "starting", "running", "restarting", "stopped"]


@dataclass(eq=False)
class _Child:
    """The supervisor's record of one child."""

    spec: ChildSpec
    ref: pykka.ActorRef[Any] | None = None
    incarnation: int = 0
    state: _State = "new"
    restarts: int = 0
    last_failure: str | None = None
    due: float | None = None
    start_deadline: float = 0.0
    suspect: bool = False


class _Ticker:
    """A daemon thread that tells ``_Tick`` to an actor every ``interval`` s, one at a time."""

    def __init__(self, ref: pykka.ActorRef[Any], interval: float) -> None:
        self._ref = ref
        self._interval = interval
        self._done = threading.Event()
        self.pending = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"ticker-{ref}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(self._interval):
            if self.pending.is_set():
                continue
            self.pending.set()
            try:
                self._ref.tell(_TICK)
            except pykka.ActorDeadError:
                return

    def close(self) -> None:
        """Stop the thread and wait for it."""
        self._done.set()
        if self._thread is not threading.current_thread():
            self._thread.join()


class Supervisor(Supervised):
    """Starts, watches and restarts children with Erlang/OTP semantics (see the module docs).

    Read its counters with ``ref.proxy().statistics().get()``. As a child of another
    supervisor it is started with ``link=`` and confirms its own start once its first pass over
    its children is done; at the root, ``on_escalate(reason)`` is called (in the supervisor's
    thread: keep it short, e.g. set an event the main thread waits on) when it gives up.
    """

    _celeriac_confirms_start: ClassVar[bool] = False

    def __init__(
        self,
        children: Sequence[ChildSpec],
        *,
        strategy: Strategy = "one_for_one",
        intensity: int = 3,
        period: float = 5.0,
        backoff: tuple[float, float] = (0.05, 2.0),
        clock: Clock = SYSTEM_CLOCK,
        name: str = "root",
        on_escalate: Callable[[str], None] | None = None,
        rng: random.Random | None = None,
        link: SupervisorLink | None = None,
        tick_interval: float = 0.05,
        check_interval: float = 1.0,
    ) -> None:
        policy = RestartPolicy(intensity, period, backoff)
        _validate(
            children, strategy=strategy, policy=policy, intervals=(tick_interval, check_interval)
        )
        super().__init__(link=link)
        self._children = [_Child(spec) for spec in children]
        self._by_id = {child.spec.id: child for child in self._children}
        self._strategy: Strategy = strategy
        self._intensity = intensity
        self._period = period
        self._restarts = RestartTracker(policy, clock=clock, rng=rng)
        self._clock = clock
        self._name = name
        self._on_escalate = on_escalate
        self._tick_interval = tick_interval
        self._check_interval = check_interval
        self._next_check = 0.0
        self._starting: _Child | None = None
        self._announced = False
        self._stopping = False
        self._escalated = False
        self._ticker: _Ticker | None = None

    # -- lifecycle (pykka hooks) --

    def on_start(self) -> None:
        """Start the ticker, then begin starting the children in order."""
        try:
            now = self._clock.monotonic()
            self._next_check = now + self._check_interval
            self._ticker = _Ticker(self.actor_ref, self._tick_interval)
            for child in self._children:
                child.due = now
            self._advance()
        except Exception as exc:
            self._abandon(f"supervisor {self._name!r} failed to start: {_describe(exc)}")
            raise

    def on_stop(self) -> None:
        """Stop the children in reverse order, then the ticker."""
        self._stopping = True
        self._stop_children()
        self._close_ticker()

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """A bug in the supervisor itself: leave no orphans, and escalate at the root."""
        self._abandon(f"supervisor {self._name!r} crashed: {self._celeriac_exit_reason}")

    def on_receive(self, message: Any) -> Any:
        """Handle child reports and ticks; anything else is pykka's 'unexpected message'."""
        if isinstance(message, ChildExited):
            self._on_child_exited(message)
        elif isinstance(message, ChildStarted):
            self._on_child_started(message)
        elif isinstance(message, _Tick):
            self._on_tick()
        else:
            return super().on_receive(message)
        return None

    # -- public, through a proxy --

    def statistics(self) -> dict[str, Any]:
        """Counters for ``inspect stats``: per child restarts, alive, last failure; totals."""
        per_child = {
            child.spec.id: {
                "restart": child.spec.restart,
                "state": child.state,
                "alive": child.ref is not None and child.ref.is_alive(),
                "restarts": child.restarts,
                "last_failure": child.last_failure,
            }
            for child in self._children
        }
        return {
            "name": self._name,
            "strategy": self._strategy,
            "count": len(self._children),
            "active": sum(1 for info in per_child.values() if info["alive"]),
            "restarts": sum(child.restarts for child in self._children),
            "intensity": self._intensity,
            "period": self._period,
            "escalated": self._escalated,
            "children": per_child,
        }

    # -- events --

    def _current(self, child_id: str, incarnation: int) -> _Child | None:
        """The child a report is about, unless the report is stale or we are stopping."""
        child = self._by_id.get(child_id)
        if not self._running() or child is None or child.ref is None:
            return None
        return child if child.incarnation == incarnation else None

    def _on_child_started(self, message: ChildStarted) -> None:
        child = self._current(message.child_id, message.incarnation)
        if child is not None and child is self._starting:
            self._starting = None
            self._child_up(child)
            self._advance()

    def _on_child_exited(self, message: ChildExited) -> None:
        child = self._current(message.child_id, message.incarnation)
        if child is not None:
            self._child_down(child, message.reason)
            self._advance()

    def _on_tick(self) -> None:
        if self._ticker is not None:
            self._ticker.pending.clear()
        now = self._clock.monotonic()
        starting = self._starting
        if starting is not None and now >= starting.start_deadline and self._running():
            ref = starting.ref
            timeout = starting.spec.start_timeout
            self._child_down(starting, f"on_start did not finish within {timeout:g} s")
            if ref is not None:
                ref.stop(block=False)  # it stops (unseen) once its on_start returns, if ever
        if now >= self._next_check and self._running():
            self._next_check = now + self._check_interval
            self._check_liveness()
        self._advance()

    def _running(self) -> bool:
        """False once the supervisor stops or gives up (handlers may change it mid-loop)."""
        return not self._stopping

    def _check_liveness(self) -> None:
        for child in self._children:
            ref = child.ref
            if not self._running() or ref is None or ref.is_alive():
                child.suspect = False
                continue
            if issubclass(ref.actor_class, Supervised) and not child.suspect:
                child.suspect = True  # its report is probably on its way: one more interval
                continue
            self._child_down(child, _UNREPORTED)

    # -- the machine --

    def _advance(self) -> None:
        """Start what is due, in order, one at a time: the next once the last has confirmed."""
        now = self._clock.monotonic()
        for child in self._children:
            if self._starting is not None or not self._running():
                return
            if child.due is not None and child.due <= now:
                self._start_child(child, now)
        if self._starting is None and self._running() and not self._announced:
            self._announced = True  # the first pass is done: tell our own supervisor
            if self._celeriac_link is not None:
                self._celeriac_link.report_started()

    def _start_child(self, child: _Child, now: float) -> None:
        child.due = None
        child.suspect = False
        if child.incarnation > 0:
            child.restarts += 1
        child.incarnation += 1
        link = SupervisorLink(self.actor_ref, child.spec.id, child.incarnation)
        try:
            ref: object = child.spec.start(link)
            if not isinstance(ref, pykka.ActorRef):
                msg = f"the factory returned {ref!r}, not an ActorRef"
                raise TypeError(msg)
        except Exception as exc:  # a failed start is a child failure
            self._child_down(child, f"start failed: {_describe(exc)}")
            return
        child.ref = ref
        if link.claimed:  # a Supervised child: wait for its ChildStarted
            child.state = "starting"
            child.start_deadline = now + child.spec.start_timeout
            self._starting = child
        else:  # a plain actor cannot tell us; take it as started
            self._child_up(child)

    def _child_up(self, child: _Child) -> None:
        child.state = "running"
        if child.restarts:
            self._event("info", "child_restarted", child, restarts=child.restarts)
        else:
            self._event("info", "child_started", child)

    def _child_down(self, child: _Child, reason: str | None) -> None:
        """One incarnation of ``child`` has ended: decide what happens next."""
        if child is self._starting:
            self._starting = None
        child.ref = None
        child.suspect = False
        if reason is None:
            self._event("info", "child_exited", child)
        else:
            child.last_failure = reason
            self._event("warning", "child_failed", child, reason=reason)
        spec = child.spec
        if spec.restart == "temporary" or (spec.restart == "transient" and reason is None):
            child.state = "stopped"
            return
        decision = self._restarts.failed(spec.id)
        if isinstance(decision, Escalate):
            self._escalate(child, reason, decision)
            return
        affected = self._affected(child)
        for other in reversed(affected):
            if other is not child and other.ref is not None:
                self._stop_child(other)
        for other in affected:
            if other is child or other.spec.restart != "temporary":
                other.state, other.due = "restarting", decision.due
            else:
                other.state, other.due = "stopped", None

    def _affected(self, child: _Child) -> list[_Child]:
        if self._strategy == "one_for_all":
            return list(self._children)
        if self._strategy == "rest_for_one":
            return self._children[self._children.index(child) :]
        return [child]

    def _escalate(self, child: _Child, reason: str | None, decision: Escalate) -> None:
        last = f"failed with {reason}" if reason is not None else "exited normally"
        text = (
            f"supervisor {self._name!r} gave up: {decision.restarts} restarts within "
            f"{decision.period:g} s exceed its intensity of {decision.intensity}; the last was for "
            f"child {child.spec.id!r}, which {last}"
        )
        self._escalated = True
        self._abandon(text)
        self.stop()

    def _abandon(self, reason: str) -> None:
        """Stop every child, log why, and pass the reason up: to the parent, or on_escalate."""
        self._stopping = True
        self._celeriac_record_exit(reason)
        self._stop_children()
        self._close_ticker()
        _log.error("supervisor_escalated", supervisor=self._name, reason=reason)
        if self._celeriac_link is None and self._on_escalate is not None:
            try:
                self._on_escalate(reason)
            except Exception:  # the reason is already logged
                _log.exception("on_escalate_failed", supervisor=self._name)

    def _stop_children(self) -> None:
        for child in reversed(self._children):
            child.due = None
            if child.ref is not None or child.state == "restarting":
                self._stop_child(child)

    def _stop_child(self, child: _Child) -> None:
        if child is self._starting:
            self._starting = None
        ref, child.ref = child.ref, None
        child.state = "stopped"
        if ref is None:
            return
        try:
            ref.stop(block=True, timeout=child.spec.shutdown_timeout)
        except pykka.Timeout:
            self._event("error", "child_shutdown_timeout", child)

    def _close_ticker(self) -> None:
        if self._ticker is not None:
            self._ticker.close()
            self._ticker = None

    def _event(self, level: str, event: str, child: _Child, **fields: Any) -> None:
        getattr(_log, level)(
            event,
            supervisor=self._name,
            child=child.spec.id,
            incarnation=child.incarnation,
            **fields,
        )


def _validate(
    children: Sequence[ChildSpec],
    *,
    strategy: str,
    policy: RestartPolicy,
    intervals: tuple[float, float],
) -> None:
    problems = []
    ids = [spec.id for spec in children]
    if len(set(ids)) != len(ids):
        problems.append(f"child ids must be unique, got {ids}")
    problems += [
        f"child {spec.id!r}: restart must be one of {_RESTART_TYPES}, got {spec.restart!r}"
        for spec in children
        if spec.restart not in _RESTART_TYPES
    ]
    if strategy not in _STRATEGIES:
        problems.append(f"strategy must be one of {_STRATEGIES}, got {strategy!r}")
    problems += policy.problems()
    if min(intervals) <= 0:
        problems.append("tick_interval and check_interval must be positive")
    if problems:
        raise ImproperlyConfigured("; ".join(problems))
