"""A waiting get() serves the client's socket itself; other threads are never held up by it
(runtime/client_leader.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import zmq

from celeriac import App
from celeriac.runtime import client_leader, client_waits
from celeriac.runtime.client import Client
from celeriac.transport import protocol as p
from celeriac.transport.hubserver import HubServer

from ..waiting import wait_until

JSON = "application/json"


@pytest.fixture
def app(hub_server: HubServer) -> Iterator[App]:
    app = App("leader", broker=hub_server.endpoint, environ={})
    app.conf.worker_embedded_hub = "never"
    yield app
    app.close()


class BareWorker(threading.Thread):
    """Takes deliveries; once it holds ``batch`` of them (or no more come for 0.1 s) and
    ``after`` is set, it answers them in reverse order (each result: the task's id), until it
    answered ``count``."""

    def __init__(
        self, url: str, count: int, batch: int = 1, *, after: threading.Event | None = None
    ) -> None:
        super().__init__(daemon=True)
        self.url, self.count, self.batch, self.after = url, count, batch, after
        #: Set at the first delivery.
        self.received = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        ctx: zmq.Context[Any] = zmq.Context()
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(self.url)
        try:
            hello = p.Hello("worker", "w", queues=("celery",), credit=self.count)
            sock.send_multipart(p.encode(hello))
            held: list[str] = []
            done = 0
            while done < self.count:
                if held and not sock.poll(100):  # fewer than a batch came: answer those
                    self.batch = len(held)
                else:
                    assert sock.poll(10_000), "no delivery within 10 s"
                    message = p.decode(sock.recv_multipart())
                    if isinstance(message, p.Deliver):
                        held += [delivery.task.id for delivery in message.deliveries]
                        self.received.set()
                if held and len(held) >= self.batch and self.after is not None:
                    assert self.after.wait(10.0), "the other worker got nothing within 10 s"
                while held and len(held) >= self.batch:
                    tid = held.pop()
                    result = p.ResultMessage(tid, "SUCCESS", f'"{tid}"'.encode(), JSON, credit=1)
                    sock.send_multipart(p.encode(p.Done((result,))))
                    done += 1
        except BaseException as exc:
            self.error = exc
        finally:
            # Linger: closed at once after the last DONE, the socket could drop it (the hub
            # then requeues that task at peer_lost, with no worker left to run it).
            sock.close(linger=2_000)
            ctx.term()


def _resolved_in(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The threads that resolve results, in order."""
    threads: list[int] = []
    inner = Client._resolve

    def spy(self: Client, task_id: str, outcome: Any) -> None:
        threads.append(threading.get_ident())
        inner(self, task_id, outcome)

    monkeypatch.setattr(Client, "_resolve", spy)
    return threads


def test_a_sequential_get_receives_its_result_in_its_own_thread(
    app: App, hub_server: HubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No hand-off from the client's I/O thread: the waiting thread reads the result."""
    resolved = _resolved_in(monkeypatch)
    worker = BareWorker(hub_server.endpoint, 20)
    worker.start()
    for i in range(20):
        result = app.send_task("t", [i])
        assert result.get(timeout=10.0) == result.id
    worker.join(10)
    assert worker.error is None
    # Some race the I/O thread's turn (more on a loaded machine: 9 of 20 were seen with the
    # whole suite beside other work); with no hand-off saved at all none would be ours.
    assert resolved.count(threading.get_ident()) >= 5


def test_threads_waiting_at_once_all_get_their_results(app: App, hub_server: HubServer) -> None:
    """One thread leads, the others follow; the results come back in reverse order."""
    results = [app.send_task("t", [i]) for i in range(8)]
    worker = BareWorker(hub_server.endpoint, 8, batch=8)
    got: dict[int, Any] = {}

    def wait(i: int) -> None:
        got[i] = results[i].get(timeout=10.0)

    threads = [threading.Thread(target=wait, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    worker.start()
    for thread in threads:
        thread.join(15)
    worker.join(10)
    assert worker.error is None
    assert got == {i: r.id for i, r in enumerate(results)}


def test_a_publish_from_another_thread_is_not_held_up_by_a_leader(
    app: App, hub_server: HubServer
) -> None:
    """The first task's worker answers only once a second worker has the second task: the
    second's publish, made by another thread while the first thread's get() leads, must leave
    at once (not at the leader's next tick: a heartbeat of 60 s puts that 30 s away)."""
    app.conf.broker_heartbeat = 60.0
    client = app._client()
    second_worker = BareWorker(hub_server.endpoint, 1)
    first_worker = BareWorker(hub_server.endpoint, 1, after=second_worker.received)
    first_worker.start()
    first = app.send_task("t", [1])
    assert first_worker.received.wait(10.0)
    second_worker.start()
    waiter = threading.Thread(target=lambda: first.get(timeout=10.0))
    waiter.start()
    wait_until(lambda: client._leading or not waiter.is_alive(), 10.0, "the get() to lead")
    second = app.send_task("t", [2])
    waiter.join(15)  # no get() of the second meanwhile: a follower would wake the I/O thread
    assert not waiter.is_alive()
    assert first.get(timeout=1.0) == first.id
    assert second.get(timeout=10.0) == second.id
    for worker in (first_worker, second_worker):
        worker.join(10)
        assert worker.error is None


def test_a_get_without_timeout_says_why_it_waits_while_it_leads(
    app: App,
    hub_server: HubServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No wait is silent: the leading thread leaves every STILL_WAITING_EVERY to log why."""
    monkeypatch.setattr(client_waits, "STILL_WAITING_EVERY", 0.2)
    said = threading.Event()
    result = app.send_task("t", [1])
    worker = BareWorker(hub_server.endpoint, 1, after=said)
    worker.start()
    waiter = threading.Thread(target=result.get)
    waiter.start()
    try:
        wait_until(lambda: "still_waiting_for_result" in caplog.text, 10.0, "the leader's log")
    finally:
        said.set()  # the worker answers: the waiter ends, whatever the wait found
    waiter.join(10)
    assert not waiter.is_alive()
    assert "still_waiting_for_result" in caplog.text
    assert result.get(timeout=1.0) == result.id


def test_a_sequential_get_looks_at_the_socket_at_most_three_times_a_call(
    app: App, hub_server: HubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each look (``ZMQ_EVENTS``) costs libzmq a ``getpid`` and a ``poll``: the caller's send
    looks once, the leader only after the socket signalled (its result: one look that finds it,
    one that finds the socket empty); it was six a call before ``_armed`` (issue 18, s25)."""
    looks: list[int] = []
    inner = client_leader.readable

    def counted(sock: Any) -> bool:
        looks.append(threading.get_ident())
        return inner(sock)

    worker = BareWorker(hub_server.endpoint, 40)
    worker.start()
    app.send_task("t", [0]).get(timeout=10.0)  # connected, the first turns over
    monkeypatch.setattr(client_leader, "readable", counted)
    for i in range(1, 40):
        result = app.send_task("t", [i])
        assert result.get(timeout=10.0) == result.id
    worker.join(10)
    assert worker.error is None
    mine = looks.count(threading.get_ident())
    assert 39 <= mine <= 39 * 3.5  # a few more when the I/O thread's turn raced a call


def test_a_result_nobody_waits_for_yet_is_read_after_the_leader_left(
    app: App, hub_server: HubServer
) -> None:
    """The second result comes after the first ``get()`` returned, with nobody waiting: the
    I/O thread reads it (its rest is bounded by REST_MS and ends with a look), though its
    heartbeat would let it sleep 30 s on a descriptor the leader left armed."""
    app.conf.broker_heartbeat = 60.0
    client = app._client()
    second_worker = BareWorker(hub_server.endpoint, 1)
    first_worker = BareWorker(hub_server.endpoint, 1)
    first_worker.start()
    first = app.send_task("t", [1])
    assert first.get(timeout=10.0) == first.id
    second = app.send_task("t", [2])
    second_worker.start()
    wait_until(lambda: client.peek(second.id) is not None, 10.0, "the result, read unasked")
    outcome = client.peek(second.id)
    assert outcome is not None
    assert outcome.value == second.id
    for worker in (first_worker, second_worker):
        worker.join(10)
        assert worker.error is None
