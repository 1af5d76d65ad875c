"""Fuzzing the hub's port with real sockets while a normal client keeps its round trips going.

Random frames, and typed msgpack headers for every command with wrong types in any field
(the codec's own field names), sometimes packed in one frame as merged item messages are,
from DEALER, ROUTER and REQ peers; every so many messages a
fresh socket (a distrusted peer's later messages are dropped unread, so new peers keep the
codec and the handlers busy). A few thousand messages in CI, 100k in the slow suite.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq

from celeriac import App, _wire, _wire_parts
from celeriac.transport.frames import TAG

from .conftest import RESULT_TIMEOUT, Spawner, TaskModule, count_events, wait_for_event

pytestmark = pytest.mark.integration

#: Every command's wire keys, from the codec's tables.
FIELDS: dict[bytes, list[str]] = {
    **{cmd: list(t.by_key) for cmd, t in _wire._CONTROL.items()},
    b"PUB": list(_wire_parts.TASK.by_key),
    b"TASK": list(_wire_parts.TASK.by_key),
    b"DONE": list(_wire_parts.RESULT.by_key),
    b"RES": list(_wire_parts.RESULT.by_key),
    b"START": ["id", "tag"],
    b"REJ": ["id", "tag", "requeue", "reason", "credit"],
    b"NACK": ["id", "reason"],
}
COMMANDS = sorted(FIELDS)
#: Fresh socket after this many messages.
PER_SOCKET = 40
#: How long a replaced socket may still send what it queued (ms).
LINGER_MS = 2000


def wild(rng: random.Random) -> Any:
    """A value of any type msgpack can carry, often one a field does not expect."""
    pick = rng.randrange(12)
    values: list[Any] = [
        None,
        rng.random() < 0.5,
        rng.randint(-(2**63), 2**64 - 1),
        rng.choice([math.nan, math.inf, -math.inf, 1e300, -0.0]),
        rng.choice(["", "x" * 300, "celery", "SUCCESS", "worker", "a"]),
        rng.randbytes(rng.randrange(8)),
        [rng.randint(0, 2**64 - 1) for _ in range(rng.randrange(3))],
        {"k": rng.randint(-5, 5)},
        rng.randint(0, 3),
        "a",
        ["celery"],
        {"queues": [{"name": rng.choice(["celery", 5, None])}]},
    ]
    return values[pick]


def fuzz_message(rng: random.Random) -> list[bytes]:
    """Random frames (a quarter of the time) or a typed header with wild field values."""
    if rng.random() < 0.25:
        return [rng.randbytes(rng.randrange(40)) for _ in range(rng.randrange(1, 7))]
    command = rng.choice(COMMANDS)
    keys = FIELDS[command] or ["x"]
    header = {rng.choice(keys): wild(rng) for _ in range(rng.randrange(1, len(keys) + 2))}
    body = rng.choice([b"", b"[[],{},{}]", rng.randbytes(16)])
    frames = [TAG, command, msgpack.packb(header), body]
    if rng.random() < 0.1:
        frames.append(rng.randbytes(8))
    if rng.random() < 0.15:  # packed, as merged item messages leave (celeriac._wire_items)
        parts = frames[2:] * rng.randrange(1, 4)
        return [TAG, command, rng.choice([msgpack.packb(parts), rng.randbytes(12)])]
    return frames


class Attackers:
    """DEALER, ROUTER and REQ peers in turn, each replaced after :data:`PER_SOCKET` messages."""

    def __init__(self, url: str, ctx: zmq.Context[Any]) -> None:
        self.url, self.ctx = url, ctx
        self.sock: zmq.Socket[Any] | None = None
        self.kind = zmq.DEALER
        self.sent = 0

    def _fresh(self) -> zmq.Socket[Any]:
        if self.sock is not None:
            # Not 0: on a loaded machine the I/O thread may not have sent them yet (the
            # context's term at the end waits up to this long for them).
            self.sock.close(linger=LINGER_MS)
        self.kind = [zmq.DEALER, zmq.ROUTER, zmq.REQ][(self.sent // PER_SOCKET) % 3]
        sock = self.ctx.socket(self.kind)
        sock.setsockopt(zmq.LINGER, 0)
        if self.kind == zmq.ROUTER:
            sock.setsockopt(zmq.CONNECT_ROUTING_ID, b"hub")  # so we can address the hub
        if self.kind == zmq.REQ:
            sock.setsockopt(zmq.REQ_RELAXED, 1)  # send again without waiting for a reply
        sock.connect(self.url)
        self.sock = sock
        return sock

    def send(self, frames: list[bytes]) -> None:
        sock = self.sock if self.sent % PER_SOCKET else self._fresh()
        assert sock is not None
        if self.kind == zmq.ROUTER:
            frames = [b"hub", *frames]
        # Never block: a REQ not yet connected, or a ROUTER whose hub is not yet known, skips.
        with contextlib.suppress(zmq.ZMQError):
            sock.send_multipart(frames, zmq.NOBLOCK)
        self.sent += 1

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close(linger=LINGER_MS)


def run_fuzz(
    procs: Spawner,
    broker_url: str,
    tmp_path: Path,
    tasks_module: TaskModule,
    total: int,
    seconds: float,
) -> tuple[int, list[float]]:
    """Send up to ``total`` fuzz messages (within ``seconds``), a round trip every 200."""
    hub = procs.hub(broker_url, tmp_path / "hub-data")
    procs.worker(broker_url, cwd=tasks_module.dir)
    app = App("probe", broker=broker_url, environ={})
    ctx: zmq.Context[Any] = zmq.Context()
    attackers = Attackers(broker_url, ctx)
    rng = random.Random(16)
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    try:
        assert app.send_task("itasks.add", [1, 1]).get(timeout=RESULT_TIMEOUT) == 2
        n = 0
        while n < total and time.monotonic() < deadline:
            attackers.send(fuzz_message(rng))
            n += 1
            if n % 200 == 0:
                start = time.monotonic()
                assert app.send_task("itasks.add", [n, 1]).get(timeout=RESULT_TIMEOUT) == n + 1
                latencies.append(time.monotonic() - start)
                assert hub.popen.poll() is None
    finally:
        attackers.close()
        ctx.term()  # after every socket is closed: waits for their queued messages
        app.close()
    assert hub.popen.poll() is None
    # Fuzz reached the handlers: most fresh sockets were refused for a bad frame.
    wait_for_event(hub.log, "bad_frame_dropped", count=n // PER_SOCKET // 2, proc=hub)
    assert count_events(hub.log, "hub_internal_error") == 0
    return n, latencies


def p99(values: list[float]) -> float:
    return sorted(values)[max(0, math.ceil(len(values) * 0.99) - 1)]


def test_fuzz_at_the_port_a_few_thousand(
    procs: Spawner, broker_url: str, tmp_path: Path, tasks_module: TaskModule
) -> None:
    """2,000 fuzz messages from DEALER/ROUTER/REQ peers: the hub lives, round trips work."""
    sent, latencies = run_fuzz(procs, broker_url, tmp_path, tasks_module, 2_000, 60.0)
    assert sent >= 1_000
    assert len(latencies) >= 5
    print(
        f"fuzz: {sent} messages, {len(latencies)} round trips, p99 {p99(latencies) * 1000:.1f} ms"
    )


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_fuzz_at_the_port_100k(
    procs: Spawner, broker_url: str, tmp_path: Path, tasks_module: TaskModule
) -> None:
    """100,000 fuzz messages: the hub lives and a client's round trips keep working."""
    sent, latencies = run_fuzz(procs, broker_url, tmp_path, tasks_module, 100_000, 800.0)
    assert sent >= 50_000
    print(
        f"fuzz: {sent} messages, {len(latencies)} round trips, p99 {p99(latencies) * 1000:.1f} ms"
    )
