"""The worker session without sockets: hello and credit, slots and prefetch, give-back, heartbeats,
one HELLO per burst of stale PONGs, hub liveness lines and the drain on shutdown."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from celeriac.transport import protocol as p
from celeriac.transport.session import (
    Command,
    Confirmed,
    Effect,
    Finished,
    Keyed,
    Log,
    Ready,
    Run,
    Send,
    SendEncoded,
    Stop,
    Withdraw,
    WorkerConfig,
    WorkerSession,
)

T0 = 1000.0


def session(
    *,
    slots: int = 2,
    prefetch: int = 4,
    track_started: bool = False,
    gated: frozenset[str] = frozenset(),
    **options: Any,
) -> WorkerSession:
    """A session whose gate holds the deliveries of the task names in ``gated``."""
    config = WorkerConfig(
        node="w@host",
        endpoint="tcp://hub:5555",
        queues=("celery",),
        slots=slots,
        prefetch=prefetch,
        heartbeat=1.0,
        giveback=2.0,
        pid=42,
        track_started=track_started,
        **options,
    )
    return WorkerSession(config, T0, gate=lambda d: d.task.task in gated)


def delivery(tid: str, name: str = "t") -> p.Delivery:
    return p.Delivery(p.TaskMessage(tid, name, b"[]", queue="celery"), "celery")


def done(tid: str) -> p.Done:
    return p.Done((p.ResultMessage(tid, "SUCCESS", b"1", credit=1),))


def sent(effects: list[Effect]) -> list[p.Message]:
    return [e.message for e in effects if isinstance(e, Send)]


def runs(effects: list[Effect]) -> list[tuple[int, str]]:
    return [(e.slot, e.delivery.task.id) for e in effects if isinstance(e, Run)]


def logged(effects: list[Effect]) -> list[str]:
    return [e.event for e in effects if isinstance(e, Log)]


def test_hello_announces_the_prefetch_as_credit() -> None:
    """HELLO says worker, the queues, the pid and the whole prefetch as credit."""
    (hello,) = sent(session(prefetch=4).connect(T0))
    assert isinstance(hello, p.Hello)
    assert (hello.role, hello.queues, hello.pid, hello.credit) == ("worker", ("celery",), 42, 4)


def test_the_first_welcome_makes_the_worker_ready_once() -> None:
    """WELCOME: hub_connected and Ready the first time, hub_reconnected for a new hub."""
    s = session()
    first = s.handle(p.Welcome("hub-a", 1.0), T0)
    assert logged(first) == ["hub_connected"]
    assert Ready("hub-a", True) in first
    assert logged(s.handle(p.Welcome("hub-b", 1.0), T0)) == ["hub_reconnected"]
    assert s.handle(p.Welcome("hub-b", 1.0), T0) == []


@given(st.integers(1, 12))
def test_deliveries_fill_the_slots_then_the_buffer(count: int) -> None:
    """Deliveries run in free slots; the rest wait in the buffer; a DONE runs the next one."""
    s = session(slots=2)
    deliveries = tuple(delivery(f"t{i}") for i in range(count))
    effects = s.handle(p.Deliver(deliveries), T0)
    assert len(runs(effects)) == min(count, 2)
    assert len(s.buffer) == max(0, count - 2)
    slot = next(iter(s.busy))
    finished = s.busy[slot].task.id
    after = s.outcome(slot, done(finished), T0)
    assert sent(after)[0] == done(finished)
    assert runs(after) == ([(slot, "t2")] if count > 2 else [])
    assert sorted([*s.busy, *s.free]) == [0, 1]
    assert len(s.busy) + len(s.buffer) == count - 1


def test_the_hello_lists_what_is_held_and_counts_it_against_the_credit() -> None:
    """A re-HELLO lists running and buffered tags and announces only the credit left."""
    s = session(slots=1, prefetch=3)
    s.handle(p.Deliver((delivery("a"), delivery("b"))), T0)
    (hello,) = sent(s.connect(T0))
    assert isinstance(hello, p.Hello)
    assert hello.inflight == ("a", "b")
    assert hello.credit == 1


def test_a_stalled_buffer_is_given_back_and_its_credit_returned_later() -> None:
    """Buffered deliveries stuck behind a busy slot past giveback go back (REJ); the credit
    they held comes back (CRED) when the slot frees."""
    s = session(slots=1)
    s.handle(p.Deliver((delivery("a"), delivery("b"), delivery("c"))), T0)
    assert not [m for m in sent(s.tick(T0 + 1.0)) if isinstance(m, p.Reject)]
    effects = s.tick(T0 + 2.5)
    rejects = [m for m in sent(effects) if isinstance(m, p.Reject)]
    assert [r.id for r in rejects[0].rejections] == ["b", "c"]
    assert s.withheld == 2
    freed = s.outcome(0, done("a"), T0 + 3)
    assert sent(freed) == [done("a"), p.Credit(2)]


def test_heartbeats_carry_the_number_running() -> None:
    """A PING every heartbeat with the count of running tasks."""
    s = session(slots=2)
    s.handle(p.Deliver((delivery("a"),)), T0)
    assert p.Ping(inflight=1) in sent(s.tick(T0 + 1.0))
    assert not sent(s.tick(T0 + 1.5))


def test_one_hello_answers_a_burst_of_stale_pongs() -> None:
    """PONGs from a hub that forgot us: one HELLO for the burst, another a heartbeat later."""
    s = session()
    s.handle(p.Welcome("hub-a", 1.0), T0)
    burst = [e for _ in range(5) for e in s.handle(p.Pong("hub-b", known=False), T0 + 3)]
    assert [type(m) for m in sent(burst)] == [p.Hello]
    assert [type(m) for m in sent(s.handle(p.Error("hello"), T0 + 4.5))] == [p.Hello]


def test_a_hub_that_goes_silent_is_said_lost_once_and_back_once() -> None:
    """hub_lost once past three silent heartbeats, hub_back once when it answers."""
    s = session()
    s.handle(p.Welcome("hub-a", 1.0), T0)
    lines = [e for t in (1, 2, 3.5, 5, 9) for e in logged(s.tick(T0 + t))]
    assert lines == ["hub_lost"]
    assert logged(s.handle(p.Pong("hub-a", known=True), T0 + 10)) == ["hub_back"]


def test_a_lost_slot_hands_its_task_back_with_its_credit() -> None:
    """A slot that died: slot_lost_task, the delivery requeued returning one credit."""
    s = session(slots=1)
    s.handle(p.Deliver((delivery("a"),)), T0)
    effects = s.lost(0, T0)
    assert logged(effects) == ["slot_lost_task"]
    assert sent(effects) == [p.Reject((p.Rejection("a", credit=1),))]
    assert s.free == [0]


def test_a_warm_shutdown_drains_then_says_bye() -> None:
    """Shutdown: CONSUME [], the buffer given back, running tasks finish, then BYE and Stop."""
    s = session(slots=1)
    s.handle(p.Deliver((delivery("a"), delivery("b"))), T0)
    effects = s.shutdown(T0, timeout=10.0)
    assert sent(effects)[:2] == [p.Consume(()), p.Reject((p.Rejection("b"),))]
    assert Stop() not in s.tick(T0 + 1)
    assert sent(s.handle(p.Deliver((delivery("c"),)), T0 + 1)) == [p.Reject((p.Rejection("c"),))]
    s.outcome(0, done("a"), T0 + 2)
    end = s.tick(T0 + 2)
    assert end[-2:] == [Send(p.Bye()), Stop(cold=False)]


def test_a_drain_past_its_timeout_turns_cold() -> None:
    """Running tasks past the shutdown timeout: shutdown_timeout, BYE and a cold Stop."""
    s = session(slots=1)
    s.handle(p.Deliver((delivery("a"),)), T0)
    s.shutdown(T0, timeout=5.0)
    end = s.tick(T0 + 6)
    assert "shutdown_timeout" in logged(end)
    assert end[-2:] == [Send(p.Bye()), Stop(cold=True)]


def test_track_started_sends_start_before_running() -> None:
    """task_track_started: a START for the delivery before it runs."""
    s = session(track_started=True)
    effects = s.handle(p.Deliver((delivery("a"),)), T0)
    assert sent(effects) == [p.Start((p.TaskRef("a"),))]
    assert runs(effects) == [(1, "a")]


def test_a_task_option_overrides_track_started_and_extended_sends_the_request() -> None:
    """The task's own track_started wins over the worker's; result_extended sends TASKSTATE."""
    s = session(track_started=True, tracked={"quiet": False}.get, extended=True)
    effects = s.handle(p.Deliver((delivery("a", "quiet"), delivery("b"))), T0)
    assert sent(effects) == [
        p.TaskState("a", None, extended=True),
        p.Start((p.TaskRef("b"),)),
        p.TaskState("b", None, extended=True),
    ]


def test_a_gated_delivery_waits_returns_its_credit_and_runs_when_released() -> None:
    """A limited type's delivery waits for its gate (credit back once the messages are read),
    is named in a HELLO, runs in a free slot when released, and its outcome repays the debt."""
    s = session(slots=1, gated=frozenset({"slow"}))
    effects = s.handle(p.Deliver((delivery("g", "slow"),)), T0)
    assert runs(effects) == []
    assert sent(effects) == []
    assert sent(s.received_all()) == [p.Credit(1)]
    assert s.received_all() == []
    (hello,) = sent(s.connect(T0))
    assert isinstance(hello, p.Hello)
    assert hello.inflight == ("g",)
    assert hello.credit == 4
    assert runs(s.released("g", T0)) == [(0, "g")]
    assert s.released("g", T0) == []  # released once
    s.outcome_frames(0, p.encode(done("g")), T0)
    (batch,) = s.take_outcomes()
    assert isinstance(batch, SendEncoded)
    (result,) = p.decode(batch.frames).results  # type: ignore[attr-defined]
    assert result.credit == 0  # the debt of the released delivery is paid


def test_a_released_delivery_goes_before_the_prefetch_buffer() -> None:
    """A delivery its type released while every slot was busy runs before buffered ones."""
    s = session(slots=1, gated=frozenset({"slow"}))
    s.handle(p.Deliver((delivery("a"), delivery("b"), delivery("g", "slow"))), T0)
    assert s.released("g", T0) == []
    effects = s.outcome_frames(0, p.encode(done("a")), T0)
    assert next(type(e) for e in effects) is Finished
    assert runs(effects) == [(0, "g")]


def test_outcomes_drained_together_leave_as_one_done_before_any_later_message() -> None:
    """Outcomes wait to be merged into one DONE; a message sent after them goes after them."""
    s = session(slots=2)
    s.handle(p.Deliver((delivery("a"), delivery("b"))), T0)
    s.outcome_frames(1, p.encode(done("a")), T0)
    s.outcome_frames(0, p.encode(done("b")), T0)
    effects = s.send(p.Pong())
    assert len(effects) == 2
    assert effects[1] == Send(p.Pong())
    assert isinstance(effects[0], SendEncoded)
    merged = p.decode(effects[0].frames)
    assert isinstance(merged, p.Done)
    assert [r.id for r in merged.results] == ["a", "b"]
    assert s.take_outcomes() == []
    assert not s.busy


def test_keyed_calls_and_node_commands_are_handed_to_the_node() -> None:
    """A keyed actor's call, a control command and a revoke are effects for the node."""
    s = session()
    keyed = p.Delivery(p.TaskMessage("k", "t", b"[]"), p.keyed_queue("Counter", "1"))
    assert s.handle(p.Deliver((keyed,)), T0) == [Keyed(keyed)]
    command = p.ControlCommand("r1", "ping")
    assert s.handle(command, T0) == [Command(command)]
    (reply,) = sent(s.control_reply("r1", "w@host", {"ok": "pong"}))
    assert isinstance(reply, p.ControlReply)
    assert reply.rid == "r1"


def test_a_warm_shutdown_withdraws_and_gives_back_the_gated_deliveries() -> None:
    """Shutdown: the gates drop their waiting deliveries and the hub gets them back."""
    s = session(slots=1, gated=frozenset({"slow"}))
    s.handle(p.Deliver((delivery("a"), delivery("g", "slow"))), T0)
    effects = s.shutdown(T0, timeout=10.0)
    (withdraw,) = [e for e in effects if isinstance(e, Withdraw)]
    assert [d.task.id for d in withdraw.deliveries] == ["g"]
    rejects = [m for m in sent(effects) if isinstance(m, p.Reject)]
    assert [r.id for r in rejects[0].rejections] == ["g"]
    assert Stop() not in s.tick(T0 + 1, others=1)  # a keyed call still running
    s.outcome(0, done("a"), T0 + 2)
    assert s.tick(T0 + 2, others=1)[-1:] != [Stop()]
    assert s.tick(T0 + 2)[-2:] == [Send(p.Bye()), Stop()]


def test_a_task_cut_short_is_settled_once_and_its_late_outcome_dropped() -> None:
    """settle: a STAT after the outcome, Confirmed on its REPLY (once); an outcome from a slot
    whose task was already settled is not sent again."""
    s = session(slots=1)
    s.handle(p.Deliver((delivery("a"),)), T0)
    s.outcome_frames(0, p.encode(done("a")), T0)
    effects = s.settle("a")
    assert isinstance(effects[0], SendEncoded)
    (stat,) = sent(effects)
    assert isinstance(stat, p.Stat)
    assert stat.id == "a"
    assert s.handle(p.Reply("a", "FAILURE", rid=stat.rid), T0) == [Confirmed("a")]
    assert s.handle(p.Reply("a", "FAILURE", rid=stat.rid), T0) == []
    assert logged(s.outcome_frames(0, p.encode(done("a")), T0)) == ["outcome_dropped"]
    assert s.take_outcomes() == []
