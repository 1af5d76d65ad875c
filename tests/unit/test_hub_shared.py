"""Two shared hub states on one PostgreSQL schema, without sockets: what one hub takes in,
the other's worker runs; a worker lost at one hub gives its task to a worker of the other; a
revoke through one hub ends a task queued through the other. Real PostgreSQL (skipped, saying
why, where none answers); ``tick`` and ``commit`` stand for each hub's loop turn."""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import Callable, Iterator

import pytest

from celeriac import App, states
from celeriac._clock import SYSTEM_CLOCK
from celeriac._compose import compose
from celeriac.routing import declarations
from celeriac.transport import protocol as p
from celeriac.transport.hub.shared import SharedHubState
from celeriac.transport.hub.shared_rows import terminate_note, terminated
from celeriac.transport.store_pg_shared import SharedPostgresStore

from ..waiting import wait_until
from .test_store_pg_shared import sql

CONF = App("shared_hub_test", broker="tcp://127.0.0.1:1").conf
DECLARE = p.declaration(*declarations(CONF))


class Hub:
    """One shared hub state and its store, turned by hand."""

    def __init__(self, url: str, name: str) -> None:
        self.store = SharedPostgresStore(url)
        self.state = SharedHubState(self.store, SYSTEM_CLOCK, hub_id=name)
        self.state.restore()
        self.store.commit()
        self.state.start_listening()
        self.out: list[tuple[bytes, p.Message]] = []

    def turn(self, *messages: tuple[bytes, p.Message]) -> list[tuple[bytes, p.Message]]:
        for identity, msg in messages:
            self.state.handle(identity, p.encode(msg))
        self.state.tick()
        self.store.commit()
        sent = [(f[0], p.decode(f[1:])) for f in self.state.outbox]
        self.state.outbox.clear()
        self.out += sent
        return sent

    def until(self, found: Callable[[], bool], what: str) -> None:
        wait_until(lambda: (bool(self.turn()) and found()) or found(), 30.0, what=what)

    def delivered(self, identity: bytes) -> list[p.Delivery]:
        return [
            d
            for who, m in self.out
            if who == identity and isinstance(m, p.Deliver)
            for d in m.deliveries
        ]

    def results(self, identity: bytes) -> dict[str, str]:
        return {
            r.id: r.state
            for who, m in self.out
            if who == identity and isinstance(m, p.Result)
            for r in m.results
        }

    def close(self) -> None:
        self.state.close()
        self.store.abandon()


@pytest.fixture
def two(pg_url: str) -> Iterator[tuple[Hub, Hub]]:
    a, b = Hub(pg_url, "a"), Hub(pg_url, "b")
    yield a, b
    a.close()
    b.close()


def client(hub: Hub, name: bytes) -> None:
    hub.turn((name, p.Hello("client", name.decode(), declare=DECLARE)))


def worker(hub: Hub, name: bytes, credit: int) -> None:
    hello = p.Hello(
        "worker", name.decode(), pid=1, queues=("celery",), declare=DECLARE, credit=credit
    )
    hub.turn((name, hello))


def tasks(n: int, **options: object) -> tuple[p.TaskMessage, ...]:
    return tuple(compose(CONF, "t.add", (1, 2), None, dict(options), time.time()) for _ in range(n))


def test_published_through_one_hub_run_by_the_others_worker_result_pushed_back(
    two: tuple[Hub, Hub],
) -> None:
    a, b = two
    client(a, b"c")
    worker(b, b"w", credit=10)
    sent = tasks(5)
    a.turn((b"c", p.Publish(sent)))
    b.until(lambda: len(b.delivered(b"w")) == 5, "B's worker to get all five")
    assert not a.delivered(b"w")
    done = tuple(
        p.ResultMessage(d.task.id, states.SUCCESS, body=b"3", tag=d.tag, credit=1)
        for d in b.delivered(b"w")
    )
    b.turn((b"w", p.Done(done)))
    a.until(lambda: len(a.results(b"c")) == 5, "A to push the five results")
    assert a.results(b"c") == {t.id: states.SUCCESS for t in sent}


def test_a_worker_lost_at_one_hub_hands_its_task_to_a_worker_of_the_other(
    two: tuple[Hub, Hub],
) -> None:
    a, b = two
    worker(a, b"wa", credit=1)
    (task,) = tasks(1)
    a.turn((b"c", p.Publish((task,))))
    a.until(lambda: len(a.delivered(b"wa")) == 1, "A's worker to get it")
    worker(b, b"wb", credit=1)
    a.state.peer_unreachable(b"wa")  # its connection is gone: the task goes back to the table
    a.turn()
    b.until(lambda: len(b.delivered(b"wb")) == 1, "B's worker to get it")
    (again,) = b.delivered(b"wb")
    assert again.task.id == task.id
    assert again.deliveries == 2  # its count followed it across hubs


def test_a_revoke_through_one_hub_ends_a_task_queued_through_the_other(
    two: tuple[Hub, Hub],
) -> None:
    a, b = two
    client(a, b"c")
    client(b, b"p")
    (task,) = tasks(1, countdown=3600)
    b.turn((b"p", p.Publish((task,))))
    a.turn((b"c", p.Wait((task.id,))))
    a.turn((b"c", p.Revoke((task.id,))))
    a.until(lambda: task.id in a.results(b"c"), "the REVOKED result")
    assert a.results(b"c")[task.id] == states.REVOKED
    b.until(lambda: b.state._is_revoked(task.id), "B to hear of the revoke")


def test_one_schedule_one_beat_whichever_hub_each_beat_asks(two: tuple[Hub, Hub]) -> None:
    """Beats asking through different hubs: the lease is granted once, the other beat is told
    who holds it (hub B had seen the lease free: it reads the row again, not its memory)."""
    a, b = two
    client(a, b"beat-1")
    client(b, b"beat-2")

    def ask(hub: Hub, beat: bytes, holder: str, ttl: float = 30.0) -> p.BeatGrant:
        (grant,) = [m for _, m in hub.turn((beat, p.BeatLease("app", holder, ttl)))]
        assert isinstance(grant, p.BeatGrant)
        return grant

    assert ask(b, b"beat-2", "two").granted
    assert not ask(b, b"beat-2", "two", ttl=0.0).granted  # released: B saw it free
    assert ask(a, b"beat-1", "one").granted
    refused = ask(b, b"beat-2", "two")
    assert not refused.granted
    assert refused.holder == "one"
    ask(a, b"beat-1", "one", ttl=0.0)
    assert ask(b, b"beat-2", "two").granted


def test_hub_queues_and_purge_see_the_whole_table(two: tuple[Hub, Hub]) -> None:
    """Queue lengths asked of one hub count what was published through the other; a purge
    through one hub removes the rows no hub holds."""
    a, b = two
    client(a, b"c")
    a.turn((b"c", p.Publish(tasks(2) + tasks(1, countdown=3600))))
    lengths = b.state._queue_lengths()["celery"]
    assert (lengths["ready"], lengths["delayed"], lengths["unacked"]) == (2, 1, 0)
    assert b.state._purge(None) == {"purged": 3, "queues": {"celery": 3}}
    b.turn()
    assert a.state._queue_lengths()["celery"]["ready"] == 0


def test_a_hub_stopped_cleanly_gives_its_claimed_tasks_back_at_once(
    two: tuple[Hub, Hub],
) -> None:
    """What a stopping hub had claimed for its worker is free for the others at once, not
    after the lease of a dead hub runs out."""
    a, b = two
    client(a, b"c")
    worker(a, b"wa", credit=3)
    sent = tasks(3)
    a.turn((b"c", p.Publish(sent)))
    a.until(lambda: len(a.delivered(b"wa")) == 3, "A's worker to get all three")
    a.state.close()
    assert b.store.lengths()["celery"] == (3, 0, 0)  # ready, delayed, claimed
    b.store.commit()
    worker(b, b"wb", credit=3)
    b.until(lambda: len(b.delivered(b"wb")) == 3, "B's worker to get them")
    assert {d.task.id for d in b.delivered(b"wb")} == {t.id for t in sent}


def test_a_task_done_without_a_result_is_a_duplicate_through_any_hub(
    two: tuple[Hub, Hub],
) -> None:
    """An ``ignore_result`` task that ran through B, published again through A (a client's
    resend after a reconnect), is confirmed and dropped: it does not run twice."""
    a, b = two
    client(a, b"c")
    worker(b, b"w", credit=5)
    (task,) = tasks(1, ignore_result=True)
    a.turn((b"c", p.Publish((task,))))
    b.until(lambda: len(b.delivered(b"w")) == 1, "B's worker to get it")
    (first,) = b.delivered(b"w")
    b.turn((b"w", p.Done((p.ResultMessage(task.id, "SUCCESS", b"", tag=first.tag, store=False),))))
    a.turn((b"c", p.Publish((task,))))
    assert a.state.counters["duplicates"] == 1
    assert any(isinstance(m, p.Confirm) and task.id in m.ids for _, m in a.out[-3:])


def test_a_worker_moving_to_the_other_hub_with_a_task_finishes_it_there(
    two: tuple[Hub, Hub],
) -> None:
    """A worker that held a task from A says HELLO at B with it (failover): B takes its row
    over and accepts its outcome; the task is not run again."""
    a, b = two
    client(a, b"c")
    worker(a, b"w", credit=1)
    (task,) = tasks(1)
    a.turn((b"c", p.Publish((task,))))
    a.until(lambda: len(a.delivered(b"w")) == 1, "A's worker to get it")
    (held,) = a.delivered(b"w")
    hello = p.Hello(
        "worker", "w", pid=1, queues=("celery",), declare=DECLARE, credit=0, inflight=(task.id,)
    )
    b.turn((b"w2", hello))
    result = p.ResultMessage(task.id, states.SUCCESS, body=b"3", tag=held.tag, credit=1)
    b.turn((b"w2", p.Done((result,))))
    assert b.state.counters["acked"] == 1
    assert b.state.counters["refused"] == 0
    assert b.store.lengths() == {}
    b.store.commit()
    a.until(lambda: task.id in a.results(b"c"), "A to push the result")


def test_a_revoke_with_terminate_through_one_hub_stops_the_task_at_the_others_worker(
    two: tuple[Hub, Hub],
) -> None:
    """A worker of B runs a task; a client revokes it through A with ``terminate`` and a
    signal: B tells its worker to stop it, with that signal; a plain revoke does not stop."""
    a, b = two
    client(a, b"c")
    worker(b, b"w", credit=2)
    first, second = tasks(2)
    a.turn((b"c", p.Publish((first, second))))
    b.until(lambda: len(b.delivered(b"w")) == 2, "B's worker to get both")
    a.turn((b"c", p.Revoke((first.id,), terminate=True, signal="SIGKILL")))
    a.turn((b"c", p.Revoke((second.id,))))

    def told() -> dict[str, p.RevokeHeld]:
        return {
            i: m for who, m in b.out if who == b"w" and isinstance(m, p.RevokeHeld) for i in m.ids
        }

    b.until(lambda: len(told()) == 2, "B to tell its worker of both revokes")
    assert (told()[first.id].terminate, told()[first.id].signal) == (True, "SIGKILL")
    assert told()[second.id].terminate is False


def test_terminate_notes_read_back_whatever_the_id() -> None:
    names = [terminate_note("SIGTERM", "a:b"), terminate_note("", "x"), "junk", "SIGKILL:"]
    assert terminated(names) == {"a:b": "SIGTERM", "x": None}


ORDERS = p.Declare(
    (p.ExchangeDecl("ev", "topic"),),
    (p.QueueDecl("orders", None, (p.Binding("ev", "order.*"),)),),
)


def publish_to_orders(hub: Hub, n: int) -> list[p.TaskMessage]:
    """``n`` pairs: one to the queue ``orders`` by name, one through the topic exchange."""
    sent = []
    for plain, topic in zip(tasks(n), tasks(n), strict=True):
        sent.append(dataclasses.replace(plain, queue="orders", exchange=None, routing_key=None))
        sent.append(dataclasses.replace(topic, queue="", exchange="ev", routing_key="order.new"))
    out = hub.turn((b"c", p.Publish(tuple(sent))))
    assert not [m for _, m in out if isinstance(m, p.Nack)]
    assert hub.state.counters["unroutable"] == 0
    return sent


def test_queues_declared_at_one_hub_route_publishes_through_the_other(
    two: tuple[Hub, Hub],
) -> None:
    """A worker of A declares its queue and a topic binding; B hears of it; a client of B
    that declared nothing publishes to both, and A's worker gets every task."""
    a, b = two
    b.turn((b"c", p.Hello("client", "c")))
    hello = p.Hello("worker", "w", pid=1, queues=("orders",), declare=ORDERS, credit=10)
    a.turn((b"w", hello))
    b.until(lambda: ("ev", "order.*", "orders") in b.state.table.bindings(), "B to hear")
    sent = publish_to_orders(b, 2)
    a.until(lambda: len(a.delivered(b"w")) == 4, "A's worker to get all four")
    assert {d.task.id for d in a.delivered(b"w")} == {t.id for t in sent}


def test_a_hub_that_missed_the_notification_reads_the_table_before_refusing(
    two: tuple[Hub, Hub],
) -> None:
    """B is deaf (its LISTEN connection is gone): a publish nothing routes in its copy is
    routed with the table read afresh, not refused."""
    a, b = two
    assert b.state.listener is not None
    b.state.listener.close()
    b.state.listener = None
    b.turn((b"c", p.Hello("client", "c")))
    hello = p.Hello("worker", "w", pid=1, queues=("orders",), declare=ORDERS, credit=10)
    a.turn((b"w", hello))
    assert "orders" not in b.state.table.queues()
    sent = publish_to_orders(b, 1)
    a.until(lambda: len(a.delivered(b"w")) == 2, "A's worker to get both")
    assert {d.task.id for d in a.delivered(b"w")} == {t.id for t in sent}


def test_a_declaration_conflicting_with_another_hubs_is_refused_and_redeclaring_is_free(
    two: tuple[Hub, Hub],
) -> None:
    """``ev`` declared topic through A cannot be declared direct through B (refused, saying
    why); declaring what is already there writes nothing and tells no hub."""
    a, b = two
    a.turn((b"w", p.Hello("worker", "w", pid=1, queues=("orders",), declare=ORDERS)))
    direct = p.Declare((p.ExchangeDecl("ev", "direct"),), ())
    refused = [m for _, m in b.turn((b"c", p.Hello("client", "c", declare=direct)))]
    assert any(isinstance(m, p.Error) and "ev" in (m.reason or "") for m in refused)
    assert b.state.table.exchanges()["ev"] == "topic"
    b.turn((b"c2", p.Hello("client", "c2", declare=ORDERS)))
    assert not b.store._notes["b"]  # nothing new: no write, no notification
    assert not b.store._meta


KEY = p.keyed_queue("Counter", "k1")


def keyed(n: int) -> tuple[p.TaskMessage, ...]:
    return tuple(
        dataclasses.replace(t, queue=KEY, exchange=None, routing_key=None) for t in tasks(n)
    )


def host(hub: Hub, name: bytes) -> None:
    hello = p.Hello("worker", name.decode(), pid=1, queues=(p.host_queue("Counter"),), credit=5)
    hub.turn((name, hello))


def test_a_key_is_served_through_one_hub_the_other_refuses_it_saying_which(
    two: tuple[Hub, Hub], pg_url: str
) -> None:
    """A key published through A is A's: through B it is refused (NACK naming A), so no two
    workers ever run one key at once; A's beat keeps it; once A stops, B takes it."""
    a, b = two
    client(a, b"c")
    client(b, b"c")
    host(a, b"wa")
    (first,) = keyed(1)
    a.turn((b"c", p.Publish((first,))))
    a.until(lambda: len(a.delivered(b"wa")) == 1, "A's worker to get the key's call")
    (second,) = keyed(1)
    refused = [m for _, m in b.turn((b"c", p.Publish((second,))))]
    (nack,) = [m for m in refused if isinstance(m, p.Nack)]
    assert "served through hub 'a'" in str(nack)
    assert b.store.lengths()[KEY] == (1, 0, 0)  # A's row only: nothing stored through B
    b.store.commit()
    sql(pg_url, "UPDATE {s}.locks SET expires = 0")  # A's beat comes just in time:
    a.state._extend_keys()
    a.store.commit()
    assert b.store.lock_owner("~actor:" + KEY) == "a"
    b.store.commit()
    a.state.close()  # a clean stop lets its keys go at once
    accepted = b.turn((b"c", p.Publish((second,))))
    assert not [m for _, m in accepted if isinstance(m, p.Nack)]


def test_a_key_of_a_dead_hub_is_taken_over_with_its_calls_in_order(
    two: tuple[Hub, Hub], pg_url: str
) -> None:
    """A took two calls of a key and died (no worker hosted the class there); once its row
    expires, a call through B takes the key over: B's worker gets A's calls first, in order."""
    a, b = two
    client(a, b"c")
    early = keyed(2)
    a.turn((b"c", p.Publish(early)))
    assert a.state._keys[KEY].pending == deque(t.id for t in early)
    if a.state.listener is not None:
        a.state.listener.close()
        a.state.listener = None
    a.store.abandon()  # killed: no goodbye
    sql(pg_url, "UPDATE {s}.locks SET expires = 0")  # ... and its lease ran out
    client(b, b"c")
    host(b, b"wb")
    (late,) = keyed(1)
    sent = b.turn((b"c", p.Publish((late,))))
    assert not [m for _, m in sent if isinstance(m, p.Nack)]
    b.until(lambda: len(b.delivered(b"wb")) == 1, "B's worker to get the first call")
    assert [d.task.id for d in b.delivered(b"wb")] == [early[0].id]
    assert list(b.state._keys[KEY].pending) == [early[1].id, late.id]
