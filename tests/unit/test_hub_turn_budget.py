"""A hub turn takes about ``HubServer.turn_frames`` frames, however many messages wait: what it
dispatches leaves after its commit, so a producer's burst must not hold the workers' deliveries
for the whole burst (issue 18)."""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

import pytest
import zmq

from celeriac.transport import protocol as p
from celeriac.transport.hubserver import HubServer


def _pub(start: int, count: int, *, packed: bool = False) -> list[bytes]:
    ids = range(start, start + count)
    tasks = tuple(p.TaskMessage(f"t{i}", "noop", queue="celery") for i in ids)
    if packed:  # as a client's queued publishes leave, merged (celeriac._wire_items)
        frames = p.next_batch(deque(p.encode(p.Publish((task,))) for task in tasks))
        assert len(frames) == 3
        return frames
    return p.encode(p.Publish(tasks))


@pytest.mark.parametrize("packed", [False, True], ids=["frames", "packed"])
def test_a_turn_stops_at_its_frame_budget_and_the_next_takes_the_rest(
    tmp_path: Path, packed: bool
) -> None:
    """HELLO, a declaration and ten queued PUBs of 50 publishes (~100 frames each, or one frame
    that packs them, counted as the frames it holds): with a budget of 256 frames a turn takes
    three PUBs (the one that crosses the budget included), the rest wait for the next turns,
    in order; nothing is lost or taken twice."""
    ctx: zmq.Context[Any] = zmq.Context()
    server = HubServer("inproc://turn-budget", tmp_path / "data", context=ctx, events=None)
    server.turn_frames = 256
    dealer = ctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    try:
        dealer.connect(server.endpoint)
        dealer.send_multipart(p.encode(p.Hello("client", "c1")))
        dealer.send_multipart(p.encode(p.Declare(queues=(p.QueueDecl("celery"),))))
        for n in range(10):
            # inproc: in the hub's pipe on return
            dealer.send_multipart(_pub(50 * n, 50, packed=packed))
        counters = server.state.counters
        taken = []
        for _ in range(10):
            before = counters["published"]
            server._receive()
            taken.append(counters["published"] - before)
            if counters["published"] == 500:
                break
        # HELLO, DECLARE and 2 PUBs stay under 256 frames, the third crosses it: 150; then 3 a turn.
        assert taken == [150, 150, 150, 50]
        server.store.commit()
        stored = [m.id for m in server.store.messages(bodies=False)]
        assert stored == [f"t{i}" for i in range(500)]
    finally:
        dealer.close()
        server.stop()
        server._close()
        ctx.destroy(linger=0)


def test_the_default_budget_is_a_few_hundred_publishes() -> None:
    """Large enough that a turn's commit is shared by hundreds of publishes, small enough that
    a worker's window of quick tasks (128 a slot) is refilled every few milliseconds."""
    assert 256 <= HubServer.turn_frames <= 2048
