"""Supervisor: strategies, restart types, intensity and escalation, backoff, stop order."""

from __future__ import annotations

import queue
import random
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pykka
import pytest
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from celeriac._clock import FakeClock
from celeriac.actors.restart import backoff_delay
from celeriac.actors.supervised import ChildSpec, RestartType, Supervised, SupervisorLink
from celeriac.actors.supervisor import Supervisor
from celeriac.exceptions import ImproperlyConfigured

from ..waiting import wait_until

WAIT = 2.0
LOOK = 0.002  # a poll this short catches a state the supervisor leaves quickly
STEP = 1.0  # >= the test backoff's maximum and the liveness check interval

Event = tuple[str, str]


class Team:
    """What the test children share with the test: a journal of lifecycle events, their refs."""

    def __init__(self) -> None:
        self.journal: queue.Queue[Event] = queue.Queue()
        self.refs: dict[str, pykka.ActorRef[Any]] = {}
        self.gates: dict[str, threading.Event] = {}
        self._start_errors: dict[str, list[BaseException]] = {}
        self._lock = threading.Lock()

    def spec(
        self,
        name: str,
        restart: RestartType = "permanent",
        start_errors: Sequence[BaseException] = (),
        start_timeout: float = 30.0,
    ) -> ChildSpec:
        """A ChildSpec for a Worker called ``name``; its first starts raise ``start_errors``."""
        self._start_errors[name] = list(start_errors)

        def start(link: SupervisorLink) -> pykka.ActorRef[Any]:
            return Worker.start(name, self, link=link)

        return ChildSpec(name, start, restart=restart, start_timeout=start_timeout)

    def gate(self, name: str) -> threading.Event:
        """Make the on_start of ``name`` wait until the returned event is set."""
        return self.gates.setdefault(name, threading.Event())

    def next_start_error(self, name: str) -> BaseException | None:
        """The error the next start of ``name`` raises in on_start, if any."""
        with self._lock:
            errors = self._start_errors.get(name, [])
            return errors.pop(0) if errors else None

    def tell(self, name: str, message: str) -> None:
        """Send ``message`` to the current incarnation of ``name``."""
        self.refs[name].tell(message)

    def expect(self, *events: Event) -> None:
        """The next journal entries are exactly ``events``, in order."""
        got = []
        for _ in events:
            try:
                got.append(self.journal.get(timeout=WAIT))
            except queue.Empty:
                pytest.fail(f"journal stopped after {got}, expected {list(events)}")
        assert got == list(events)

    def quiet(self) -> None:
        """Nothing more has happened."""
        assert self.journal.empty(), list(self.journal.queue)


class Worker(Supervised):
    """A child that journals its lifecycle and crashes on request."""

    def __init__(self, name: str, team: Team, *, link: SupervisorLink | None = None) -> None:
        super().__init__(link=link)
        self.name = name
        self.team = team

    def on_start(self) -> None:
        gate = self.team.gates.get(self.name)
        if gate is not None:
            assert gate.wait(WAIT)
        error = self.team.next_start_error(self.name)
        if error is not None:
            self.team.journal.put(("start_failed", self.name))
            raise error
        self.team.refs[self.name] = self.actor_ref
        self.team.journal.put(("start", self.name))

    def on_stop(self) -> None:
        self.team.journal.put(("stop", self.name))

    def on_failure(self, *exc_info: Any) -> None:
        self.team.journal.put(("fail", self.name))

    def on_receive(self, message: Any) -> Any:
        if message == "crash":
            raise ValueError(f"{self.name} crashed")
        if message == "exit":
            raise SystemExit(3)
        if message == "quit":
            self.stop()
        return None


class Plain(pykka.ThreadingActor):
    """A plain pykka actor: it never reports to a supervisor."""

    def __init__(self, team: Team) -> None:
        super().__init__()
        self.team = team

    def on_start(self) -> None:
        self.team.refs["plain"] = self.actor_ref
        self.team.journal.put(("start", "plain"))

    def on_receive(self, message: Any) -> Any:
        raise ValueError("plain crashed")


@pytest.fixture(autouse=True)
def _stop_actors() -> Iterator[None]:
    yield
    # Roots first (registration order): a supervisor stopped before its children restarts none.
    for ref in pykka.ActorRegistry.get_by_class(Supervisor):
        ref.stop(block=True, timeout=WAIT)
    pykka.ActorRegistry.stop_all(block=True, timeout=WAIT)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def team() -> Team:
    return Team()


def start_supervisor(
    specs: Sequence[ChildSpec], clock: FakeClock, **options: Any
) -> pykka.ActorRef[Supervisor]:
    """A supervisor on the fake clock, with a fast ticker and a seeded rng."""
    options.setdefault("backoff", (0.1, STEP))
    options.setdefault("check_interval", STEP)
    options.setdefault("intensity", 10)
    return Supervisor.start(
        specs, clock=clock, rng=random.Random(7), tick_interval=0.002, **options
    )


def stats(sup: pykka.ActorRef[Supervisor]) -> dict[str, Any]:
    result: dict[str, Any] = sup.proxy().statistics().get(timeout=WAIT)
    return result


def wait_state(sup: pykka.ActorRef[Supervisor], child: str, state: str) -> None:
    """Wait until the supervisor has put ``child`` in ``state``."""
    wait_until(
        lambda: stats(sup)["children"][child]["state"] == state, WAIT, f"{child} {state}", poll=LOOK
    )


def crash_and_restart(team: Team, sup: pykka.ActorRef[Supervisor], clock: FakeClock) -> None:
    """Crash worker a, let its backoff pass, see it start again."""
    team.tell("a", "crash")
    team.expect(("fail", "a"))
    wait_state(sup, "a", "restarting")
    clock.advance(STEP)
    team.expect(("start", "a"))


# -- backoff (pure) ----------------------------------------------------------------------------


def test_backoff_delays_grow_with_jitter_and_are_capped() -> None:
    """Delays lie in [base/2, base], base doubling up to the cap; they grow until the cap."""
    rng = random.Random(1234)
    delays = [backoff_delay(attempt, 0.05, 2.0, rng) for attempt in range(12)]
    for attempt, delay in enumerate(delays):
        base = min(2.0, 0.05 * 2**attempt)
        assert base / 2 <= delay <= base
    below_cap = delays[:6]  # bases 0.05 .. 1.6
    assert below_cap == sorted(below_cap)
    assert delays[0] <= 0.05
    assert all(1.0 <= delay <= 2.0 for delay in delays[6:])
    assert len(set(delays[6:])) == 6  # still jittered at the cap
    again = random.Random(1234)
    assert delays == [backoff_delay(attempt, 0.05, 2.0, again) for attempt in range(12)]


@pytest.mark.property
@given(
    attempt=st.integers(min_value=0, max_value=10_000),
    minimum=st.floats(min_value=0.0, max_value=10.0),
    extra=st.floats(min_value=0.0, max_value=100.0),
    seed=st.integers(),
)
def test_backoff_delay_never_exceeds_the_maximum(
    attempt: int, minimum: float, extra: float, seed: int
) -> None:
    """Whatever the attempt number, the delay is between zero and the maximum."""
    maximum = minimum + extra
    delay = backoff_delay(attempt, minimum, maximum, random.Random(seed))
    assert 0.0 <= delay <= maximum


# -- start and stop ----------------------------------------------------------------------------


def test_children_start_in_order_and_stop_in_reverse(team: Team, clock: FakeClock) -> None:
    """Children start in spec order and stop in reverse order when the supervisor stops."""
    sup = start_supervisor([team.spec("a"), team.spec("b"), team.spec("c")], clock)
    team.expect(("start", "a"), ("start", "b"), ("start", "c"))
    sup.stop(block=True, timeout=WAIT)
    team.expect(("stop", "c"), ("stop", "b"), ("stop", "a"))
    team.quiet()


def test_a_tree_stops_depth_first_in_reverse(team: Team, clock: FakeClock) -> None:
    """A nested supervisor stops its own children, in reverse, at its place in the order."""
    inner = [team.spec("w1"), team.spec("w2")]

    def start_inner(link: SupervisorLink) -> pykka.ActorRef[Any]:
        return start_supervisor(inner, clock, link=link, name="inner")

    sup = start_supervisor([team.spec("x"), ChildSpec("inner", start_inner), team.spec("y")], clock)
    team.expect(("start", "x"), ("start", "w1"), ("start", "w2"), ("start", "y"))
    sup.stop(block=True, timeout=WAIT)
    team.expect(("stop", "y"), ("stop", "w2"), ("stop", "w1"), ("stop", "x"))


def test_next_child_starts_only_after_the_previous_on_start_returned(
    team: Team, clock: FakeClock
) -> None:
    """pykka's start() returns before on_start runs; the supervisor waits for ChildStarted."""
    gate = team.gate("slow")
    sup = start_supervisor([team.spec("slow"), team.spec("b")], clock)
    wait_state(sup, "slow", "starting")
    assert stats(sup)["children"]["b"]["state"] == "new"
    team.quiet()
    gate.set()
    team.expect(("start", "slow"), ("start", "b"))
    wait_state(sup, "b", "running")


def test_a_child_that_never_confirms_its_start_times_out(team: Team, clock: FakeClock) -> None:
    """A child stuck in on_start past start_timeout counts as failed; the next child starts."""
    gate = team.gate("slow")
    sup = start_supervisor([team.spec("slow", start_timeout=5.0), team.spec("b")], clock)
    wait_state(sup, "slow", "starting")
    clock.advance(5.0)
    team.expect(("start", "b"))
    info = stats(sup)["children"]["slow"]
    assert (info["state"], info["last_failure"]) == (
        "restarting",
        "on_start did not finish within 5 s",
    )
    gate.set()  # the stale incarnation finishes on_start, then stops: both reports are ignored
    team.expect(("start", "slow"), ("stop", "slow"))
    assert stats(sup)["children"]["slow"]["state"] == "restarting"
    clock.advance(STEP)
    team.expect(("start", "slow"))
    wait_state(sup, "slow", "running")
    assert stats(sup)["children"]["slow"]["restarts"] == 1


def test_pykka_still_has_the_hooks_supervised_overrides() -> None:
    """Supervised overrides four private pykka methods; a pykka upgrade must keep them."""
    for name in ("_actor_loop", "_actor_loop_setup", "_handle_receive", "_handle_failure"):
        assert callable(getattr(pykka.ThreadingActor, name, None)), name


def test_bad_configuration_is_refused_in_the_caller(team: Team, clock: FakeClock) -> None:
    """Duplicate child ids or an unknown strategy raise ImproperlyConfigured from start()."""
    with pytest.raises(ImproperlyConfigured, match="unique"):
        start_supervisor([team.spec("a"), team.spec("a")], clock)
    with pytest.raises(ImproperlyConfigured, match="strategy"):
        start_supervisor([team.spec("a")], clock, strategy="all_for_none")
    assert pykka.ActorRegistry.get_all() == []


# -- strategies --------------------------------------------------------------------------------


def test_one_for_one_restarts_only_the_failed_child_after_backoff(
    team: Team, clock: FakeClock
) -> None:
    """one_for_one: only the crashed child restarts, and only once the backoff has passed."""
    sup = start_supervisor([team.spec("a"), team.spec("b"), team.spec("c")], clock)
    team.expect(("start", "a"), ("start", "b"), ("start", "c"))
    team.tell("b", "crash")
    team.expect(("fail", "b"))
    wait_state(sup, "b", "restarting")
    team.quiet()  # the backoff has not passed on the fake clock
    clock.advance(STEP)
    team.expect(("start", "b"))
    wait_state(sup, "b", "running")
    children = stats(sup)["children"]
    assert [children[name]["restarts"] for name in "abc"] == [0, 1, 0]
    team.quiet()


def test_one_for_all_restarts_every_child_in_order(team: Team, clock: FakeClock) -> None:
    """one_for_all: the others stop in reverse order, then all start again in order."""
    sup = start_supervisor(
        [team.spec("a"), team.spec("b"), team.spec("c")], clock, strategy="one_for_all"
    )
    team.expect(("start", "a"), ("start", "b"), ("start", "c"))
    team.tell("b", "crash")
    team.expect(("fail", "b"), ("stop", "c"), ("stop", "a"))
    wait_state(sup, "a", "restarting")
    team.quiet()
    clock.advance(STEP)
    team.expect(("start", "a"), ("start", "b"), ("start", "c"))
    wait_state(sup, "c", "running")
    children = stats(sup)["children"]
    assert [children[name]["restarts"] for name in "abc"] == [1, 1, 1]
    team.quiet()  # the stopped siblings' exit reports were not taken for new failures


def test_rest_for_one_restarts_the_failed_child_and_those_after_it(
    team: Team, clock: FakeClock
) -> None:
    """rest_for_one: children started after the failed one stop (in reverse) and restart."""
    sup = start_supervisor(
        [team.spec("a"), team.spec("b"), team.spec("c"), team.spec("d")],
        clock,
        strategy="rest_for_one",
    )
    team.expect(("start", "a"), ("start", "b"), ("start", "c"), ("start", "d"))
    team.tell("b", "crash")
    team.expect(("fail", "b"), ("stop", "d"), ("stop", "c"))
    wait_state(sup, "d", "restarting")
    clock.advance(STEP)
    team.expect(("start", "b"), ("start", "c"), ("start", "d"))
    wait_state(sup, "d", "running")
    children = stats(sup)["children"]
    assert [children[name]["restarts"] for name in "abcd"] == [0, 1, 1, 1]
    assert children["a"]["alive"]
    team.quiet()


# -- restart types -----------------------------------------------------------------------------


def test_permanent_child_is_restarted_even_after_a_normal_exit(
    team: Team, clock: FakeClock
) -> None:
    """A permanent child that stops normally is started again."""
    sup = start_supervisor([team.spec("a")], clock)
    team.expect(("start", "a"))
    team.tell("a", "quit")
    team.expect(("stop", "a"))
    wait_state(sup, "a", "restarting")
    clock.advance(STEP)
    team.expect(("start", "a"))
    assert stats(sup)["children"]["a"]["last_failure"] is None


def test_transient_child_is_restarted_only_after_a_crash(team: Team, clock: FakeClock) -> None:
    """A transient child stays down after a normal exit and comes back after a crash."""
    sup = start_supervisor(
        [team.spec("t", restart="transient"), team.spec("u", restart="transient")], clock
    )
    team.expect(("start", "t"), ("start", "u"))
    team.tell("t", "quit")
    team.expect(("stop", "t"))
    wait_state(sup, "t", "stopped")
    team.tell("u", "crash")
    team.expect(("fail", "u"))
    wait_state(sup, "u", "restarting")
    clock.advance(STEP)
    team.expect(("start", "u"))
    children = stats(sup)["children"]
    assert (children["t"]["state"], children["t"]["alive"], children["t"]["restarts"]) == (
        "stopped",
        False,
        0,
    )
    assert children["u"]["restarts"] == 1


def test_temporary_child_is_never_restarted(team: Team, clock: FakeClock) -> None:
    """A temporary child that crashes stays down, and its crash restarts no sibling."""
    sup = start_supervisor(
        [team.spec("tmp", restart="temporary"), team.spec("a")], clock, strategy="one_for_all"
    )
    team.expect(("start", "tmp"), ("start", "a"))
    team.tell("tmp", "crash")
    team.expect(("fail", "tmp"))
    wait_state(sup, "tmp", "stopped")
    crash_and_restart(team, sup, clock)  # one_for_all restarts a, but not tmp
    children = stats(sup)["children"]
    assert (children["tmp"]["state"], children["tmp"]["restarts"]) == ("stopped", 0)
    assert children["tmp"]["last_failure"] == "ValueError: tmp crashed"
    team.quiet()


# -- intensity and escalation ------------------------------------------------------------------


def test_intensity_exceeded_escalates_at_the_root(team: Team, clock: FakeClock) -> None:
    """More than `intensity` restarts in `period` stop the children and call on_escalate."""
    reasons: queue.Queue[str] = queue.Queue()
    sup = start_supervisor(
        [team.spec("a"), team.spec("b")], clock, intensity=2, period=5.0, on_escalate=reasons.put
    )
    team.expect(("start", "a"), ("start", "b"))
    crash_and_restart(team, sup, clock)
    crash_and_restart(team, sup, clock)
    team.tell("a", "crash")
    team.expect(("fail", "a"), ("stop", "b"))
    reason = reasons.get(timeout=WAIT)
    assert reason == (
        "supervisor 'root' gave up: 3 restarts within 5 s exceed its intensity of 2; "
        "the last was for child 'a', which failed with ValueError: a crashed"
    )
    wait_until(lambda: not sup.is_alive(), WAIT, "the supervisor to stop", poll=LOOK)
    team.quiet()


def test_restarts_outside_the_period_do_not_count(team: Team, clock: FakeClock) -> None:
    """The intensity window slides: old restarts age out and do not escalate."""
    reasons: queue.Queue[str] = queue.Queue()
    sup = start_supervisor(
        [team.spec("a")], clock, intensity=1, period=5.0, on_escalate=reasons.put
    )
    team.expect(("start", "a"))
    for _ in range(3):
        crash_and_restart(team, sup, clock)
        clock.advance(5.0)
    assert stats(sup)["children"]["a"]["restarts"] == 3
    assert reasons.empty()


def test_nested_supervisor_escalates_to_its_parent(team: Team, clock: FakeClock) -> None:
    """A child supervisor that gives up dies with its reason; the parent restarts the subtree."""
    reasons: queue.Queue[str] = queue.Queue()

    def start_inner(link: SupervisorLink) -> pykka.ActorRef[Any]:
        return start_supervisor([team.spec("w")], clock, link=link, name="inner", intensity=0)

    sup = start_supervisor(
        [ChildSpec("inner", start_inner), team.spec("x")], clock, on_escalate=reasons.put
    )
    team.expect(("start", "w"), ("start", "x"))
    team.tell("w", "crash")
    team.expect(("fail", "w"))
    wait_state(sup, "inner", "restarting")
    failure = stats(sup)["children"]["inner"]["last_failure"]
    assert failure.startswith("supervisor 'inner' gave up: 1 restarts within 5 s")
    assert "child 'w', which failed with ValueError: w crashed" in failure
    clock.advance(STEP)
    team.expect(("start", "w"))
    wait_state(sup, "inner", "running")
    assert stats(sup)["children"]["x"]["restarts"] == 0
    assert reasons.empty()


# -- every way an actor dies -------------------------------------------------------------------


def test_failing_on_start_is_restarted(team: Team, clock: FakeClock) -> None:
    """An on_start that raises (pykka skips on_failure) is reported and restarted."""
    sup = start_supervisor([team.spec("a", start_errors=[OSError("port busy")] * 2)], clock)
    for _ in range(2):
        team.expect(("start_failed", "a"))
        wait_state(sup, "a", "restarting")
        clock.advance(STEP)
    team.expect(("start", "a"))
    wait_state(sup, "a", "running")
    child = stats(sup)["children"]["a"]
    assert child["restarts"] == 2
    assert child["last_failure"] == "on_start failed: OSError: port busy"


def test_failing_on_start_counts_against_intensity(team: Team, clock: FakeClock) -> None:
    """A child whose on_start always fails makes the supervisor escalate."""
    reasons: queue.Queue[str] = queue.Queue()
    errors = [OSError("port busy")] * 10
    sup = start_supervisor(
        [team.spec("a", start_errors=errors)], clock, intensity=1, on_escalate=reasons.put
    )
    team.expect(("start_failed", "a"))
    wait_state(sup, "a", "restarting")
    clock.advance(STEP)
    team.expect(("start_failed", "a"))
    assert reasons.get(timeout=WAIT).endswith(
        "which failed with on_start failed: OSError: port busy"
    )


def test_failing_factory_counts_as_a_failed_start(team: Team, clock: FakeClock) -> None:
    """A factory that raises is a failed start: recorded, then retried after the backoff."""
    calls: list[SupervisorLink] = []

    def flaky(link: SupervisorLink) -> pykka.ActorRef[Any]:
        calls.append(link)
        if len(calls) == 1:
            raise RuntimeError("no port")
        return Worker.start("a", team, link=link)

    sup = start_supervisor([ChildSpec("a", flaky)], clock)
    wait_state(sup, "a", "restarting")
    assert stats(sup)["children"]["a"]["last_failure"] == "start failed: RuntimeError: no port"
    clock.advance(STEP)
    team.expect(("start", "a"))
    assert [link.incarnation for link in calls] == [1, 2]


def test_system_exit_in_a_child_kills_only_that_child(team: Team, clock: FakeClock) -> None:
    """SystemExit in a handler is that actor's crash, not pykka's stop-every-actor."""
    sup = start_supervisor([team.spec("a"), team.spec("b")], clock)
    team.expect(("start", "a"), ("start", "b"))
    team.tell("a", "exit")
    team.expect(("fail", "a"))
    wait_state(sup, "a", "restarting")
    info = stats(sup)
    assert info["children"]["b"]["alive"]
    assert info["children"]["a"]["last_failure"].startswith("ActorExitError: SystemExit: 3")
    clock.advance(STEP)
    team.expect(("start", "a"))


def test_system_exit_in_on_start_is_a_failed_start(team: Team, clock: FakeClock) -> None:
    """SystemExit escaping on_start is contained, reported and restarted like any start error."""
    sup = start_supervisor([team.spec("a", start_errors=[SystemExit(2)]), team.spec("b")], clock)
    team.expect(("start_failed", "a"), ("start", "b"))
    wait_state(sup, "a", "restarting")
    assert stats(sup)["children"]["a"]["last_failure"] == (
        "on_start failed: ActorExitError: SystemExit: 2 raised in on_start"
    )
    clock.advance(STEP)
    team.expect(("start", "a"))


def test_unreported_death_is_found_by_the_liveness_check(team: Team, clock: FakeClock) -> None:
    """A child that dies without reporting is noticed at the next liveness check."""
    sup = start_supervisor([ChildSpec("plain", lambda _link: Plain.start(team))], clock)
    team.expect(("start", "plain"))
    team.tell("plain", "crash")
    wait_until(lambda: not team.refs["plain"].is_alive(), WAIT, "plain to die", poll=LOOK)
    assert stats(sup)["children"]["plain"]["state"] == "running"  # nobody told it yet
    clock.advance(STEP)
    wait_state(sup, "plain", "restarting")
    failure = stats(sup)["children"]["plain"]["last_failure"]
    assert failure == "died without reporting (found dead by the liveness check)"
    clock.advance(STEP)
    team.expect(("start", "plain"))


# -- observability -----------------------------------------------------------------------------


def test_statistics_report_counts_and_last_failure(team: Team, clock: FakeClock) -> None:
    """statistics() gives totals and, per child, restarts, alive and the last failure."""
    sup = start_supervisor([team.spec("a"), team.spec("b")], clock, name="node")
    team.expect(("start", "a"), ("start", "b"))
    crash_and_restart(team, sup, clock)
    wait_state(sup, "a", "running")
    assert stats(sup) == {
        "name": "node",
        "strategy": "one_for_one",
        "count": 2,
        "active": 2,
        "restarts": 1,
        "intensity": 10,
        "period": 5.0,
        "escalated": False,
        "children": {
            "a": {
                "restart": "permanent",
                "state": "running",
                "alive": True,
                "restarts": 1,
                "last_failure": "ValueError: a crashed",
            },
            "b": {
                "restart": "permanent",
                "state": "running",
                "alive": True,
                "restarts": 0,
                "last_failure": None,
            },
        },
    }


def test_lifecycle_is_logged(team: Team, clock: FakeClock) -> None:
    """child_started, child_failed, child_restarted and supervisor_escalated are logged."""
    reasons: queue.Queue[str] = queue.Queue()
    with capture_logs() as logs:
        sup = start_supervisor([team.spec("a")], clock, intensity=1, on_escalate=reasons.put)
        team.expect(("start", "a"))
        crash_and_restart(team, sup, clock)
        wait_state(sup, "a", "running")
        team.tell("a", "crash")
        reason = reasons.get(timeout=WAIT)
    events = [(entry["event"], entry.get("child")) for entry in logs]
    assert events == [
        ("child_started", "a"),
        ("child_failed", "a"),
        ("child_restarted", "a"),
        ("child_failed", "a"),
        ("supervisor_escalated", None),
    ]
    assert logs[1]["reason"] == "ValueError: a crashed"
    assert logs[1]["log_level"] == "warning"
    assert logs[2]["restarts"] == 1
    assert logs[4] == {
        "event": "supervisor_escalated",
        "log_level": "error",
        "supervisor": "root",
        "reason": reason,
    }
