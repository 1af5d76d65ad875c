"""Supervision trees for pykka actors: Erlang/OTP semantics, which pykka itself does not have.

How it works
============

pykka tells nobody when an actor dies. Its children report to a supervisor by the tell-back
protocol of :mod:`celeriac.actors.supervised` (``ChildStarted`` once up, ``ChildExited`` as
the last thing its thread does); this module is the supervisor that acts on those reports.

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
*ticker* thread per supervisor tells it a tick every ``tick_interval`` real seconds (never
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

import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import pykka

from celeriac._clock import SYSTEM_CLOCK, Clock
from celeriac._log import get_logger

from .restart import Escalate, RestartPolicy, RestartTracker
from .supervised import (
    ChildExited,
    ChildSpec,
    ChildStarted,
    Supervised,
    SupervisorLink,
    describe,
)
from .supervisor_records import UNREPORTED, ChildRecord, Strategy, check_arguments
from .ticker import Tick, Ticker

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["Strategy", "Supervisor"]

_log = get_logger("celeriac.supervisor")


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
        check_arguments(
            children, strategy=strategy, policy=policy, intervals=(tick_interval, check_interval)
        )
        super().__init__(link=link)
        self._children = [ChildRecord(spec) for spec in children]
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
        self._starting: ChildRecord | None = None
        self._announced = False
        self._stopping = False
        self._escalated = False
        self._ticker: Ticker | None = None

    # -- lifecycle (pykka hooks) --

    def on_start(self) -> None:
        """Start the ticker, then begin starting the children in order."""
        try:
            now = self._clock.monotonic()
            self._next_check = now + self._check_interval
            self._ticker = Ticker(self.actor_ref, self._tick_interval)
            for child in self._children:
                child.due = now
            self._advance()
        except Exception as exc:
            self._abandon(f"supervisor {self._name!r} failed to start: {describe(exc)}")
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
        elif isinstance(message, Tick):
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

    def _current(self, child_id: str, incarnation: int) -> ChildRecord | None:
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
            self._child_down(child, UNREPORTED)

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

    def _start_child(self, child: ChildRecord, now: float) -> None:
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
            self._child_down(child, f"start failed: {describe(exc)}")
            return
        child.ref = ref
        if link.claimed:  # a Supervised child: wait for its ChildStarted
            child.state = "starting"
            child.start_deadline = now + child.spec.start_timeout
            self._starting = child
        else:  # a plain actor cannot tell us; take it as started
            self._child_up(child)

    def _child_up(self, child: ChildRecord) -> None:
        child.state = "running"
        if child.restarts:
            self._event("info", "child_restarted", child, restarts=child.restarts)
        else:
            self._event("info", "child_started", child)

    def _child_down(self, child: ChildRecord, reason: str | None) -> None:
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

    def _affected(self, child: ChildRecord) -> list[ChildRecord]:
        if self._strategy == "one_for_all":
            return list(self._children)
        if self._strategy == "rest_for_one":
            return self._children[self._children.index(child) :]
        return [child]

    def _escalate(self, child: ChildRecord, reason: str | None, decision: Escalate) -> None:
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

    def _stop_child(self, child: ChildRecord) -> None:
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

    def _event(self, level: str, event: str, child: ChildRecord, **fields: Any) -> None:
        getattr(_log, level)(
            event,
            supervisor=self._name,
            child=child.spec.id,
            incarnation=child.incarnation,
            **fields,
        )
