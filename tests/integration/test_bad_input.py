"""Malformed frames and random bytes sent to the hub's port (or from a hub to a worker): the
receiver logs, counts, keeps serving."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import sys
import time
from pathlib import Path

import msgpack
import pytest
import zmq

from celeriac import App
from celeriac.transport.frames import MAX_HEADER_BYTES, TAG

from .conftest import (
    RESULT_TIMEOUT,
    START_TIMEOUT,
    Spawner,
    TaskModule,
    clean_env,
    count_events,
    wait_for_event,
)

pytestmark = pytest.mark.integration

#: One malformed message per case; each is sent by its own DEALER, since the hub ignores a
#: peer after its first bad frame (so every case is logged exactly once).
MALFORMED: dict[str, list[bytes]] = {
    "wrong tag": [b"XXX9", b"PUB", msgpack.packb({"id": "x"}), b""],
    "unknown command": [TAG, b"NOPE", msgpack.packb({}), b""],
    "non-map header": [TAG, b"PUB", msgpack.packb([1, 2, 3]), b""],
    "non-msgpack header": [TAG, b"PUB", b"\xc1\xff\x00", b""],
    "one frame": [b"hello"],
    "empty frame": [b""],
    "three frames": [TAG, b"PUB", msgpack.packb({})],
    "huge header": [TAG, b"PUB", msgpack.packb({"x": "a" * (MAX_HEADER_BYTES + 1)}), b""],
    "publish without fields": [TAG, b"PUB", msgpack.packb({"nonsense": 1}), b"body"],
    "int keys": [TAG, b"HELLO", msgpack.packb({1: 2}), b""],
}


def _round_trip(url: str) -> int:
    app = App("probe", broker=url, environ={})
    try:
        return app.send_task("itasks.add", [2, 3]).get(timeout=RESULT_TIMEOUT)  # type: ignore[no-any-return]
    finally:
        app.close()


def _send_raw(port: int, data: bytes) -> None:
    """Send bytes over a plain TCP connection; the hub may hang up on us mid-send."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as s,
        contextlib.suppress(OSError),
    ):
        s.sendall(data)


def test_random_bytes_over_tcp(
    procs: Spawner, broker_url: str, free_port: int, tmp_path: Path, tasks_module: TaskModule
) -> None:
    """Random bytes on a raw TCP connection do not disturb the hub or its connected workers."""
    hub = procs.hub(broker_url, tmp_path / "hub-data")
    procs.worker(broker_url, cwd=tasks_module.dir)
    assert _round_trip(broker_url) == 5
    rng = random.Random(1234)
    for size in (1, 10, 64, 4096, 1 << 20):
        _send_raw(free_port, rng.randbytes(size))
    # A ZMTP-looking greeting followed by garbage.
    _send_raw(free_port, b"\xff" + b"\x00" * 8 + b"\x7f\x03\x00" + os.urandom(2000))
    assert _round_trip(broker_url) == 5
    assert hub.popen.poll() is None


def test_malformed_messages_from_a_dealer(
    procs: Spawner, broker_url: str, tmp_path: Path, tasks_module: TaskModule
) -> None:
    """Each malformed multipart message is logged as bad_frame_dropped; the hub keeps serving."""
    hub = procs.hub(broker_url, tmp_path / "hub-data")
    procs.worker(broker_url, cwd=tasks_module.dir)
    ctx = zmq.Context()
    try:
        for frames in MALFORMED.values():
            sock = ctx.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 2000)
            sock.connect(broker_url)
            sock.send_multipart(frames)
            # A follow-up from a distrusted peer is dropped without another log line.
            sock.send_multipart([b"still bad"])
            sock.close()
        wait_for_event(hub.log, "bad_frame_dropped", count=len(MALFORMED), proc=hub)
    finally:
        ctx.destroy(linger=2000)
    assert _round_trip(broker_url) == 5
    assert count_events(hub.log, "bad_frame_dropped") == len(MALFORMED)
    assert hub.popen.poll() is None
    # The counters are not on the wire yet, but the hub logs them when it stops.
    hub.popen.send_signal(signal.SIGTERM)
    stopped = wait_for_event(hub.log, "hub_stopped")
    assert stopped["bad_frames"] == len(MALFORMED)
    assert hub.wait(RESULT_TIMEOUT) == 0


def test_worker_drops_malformed_messages_from_the_hub_and_keeps_going(
    procs: Spawner, broker_url: str, tasks_module: TaskModule
) -> None:
    """A worker logs each malformed message from its hub, drops it, and still joins that hub."""
    from celeriac.transport import protocol as p  # noqa: PLC0415 - this test plays the hub

    ctx = zmq.Context()
    hub = ctx.socket(zmq.ROUTER)
    hub.setsockopt(zmq.LINGER, 0)
    try:
        hub.bind(broker_url)
        argv = [sys.executable, "-m", "celeriac", "-A", "itasks", "worker", "--broker", broker_url]
        argv += ["--embedded-hub", "never", "--log-format", "json", "-l", "INFO"]
        worker = procs.spawn("worker", argv, cwd=tasks_module.dir, env=clean_env())
        hello = None
        deadline = time.monotonic() + START_TIMEOUT
        while hello is None and time.monotonic() < deadline:
            if not hub.poll(100):
                assert worker.popen.poll() is None, "the worker exited before saying HELLO"
                continue
            identity, *frames = hub.recv_multipart()
            if isinstance(p.decode(frames), p.Hello):
                hello = identity
        assert hello is not None, "the worker never said HELLO"
        bad = [
            [b"garbage"],
            [TAG, b"NOPE", msgpack.packb({}), b""],
            [TAG, b"TASK", b"\xc1\xff\x00", b""],
        ]
        for frames in bad:
            hub.send_multipart([hello, *frames])
        hub.send_multipart([hello, *p.encode(p.Welcome("fake-hub", 2.0))])
        wait_for_event(worker.log, "worker_ready", proc=worker)
        wait_for_event(worker.log, "bad_message_from_hub", count=len(bad), proc=worker)
        assert count_events(worker.log, "bad_message_from_hub") == len(bad)
        assert worker.popen.poll() is None
    finally:
        hub.close(0)
        ctx.term()
