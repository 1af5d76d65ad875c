"""The hub loop's wait on its sockets' descriptors (:mod:`celeriac.transport.hubwait`)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
import zmq

from celeriac.transport.hubwait import EVENTS, MONITOR, ROUTER, TurnWait
from celeriac.transport.multipart import NOBLOCK, readable, recv_frames, send_frames

DEADLINE = 5.0


@pytest.fixture
def sockets() -> Iterator[tuple[zmq.Socket[Any], zmq.Socket[Any], zmq.Socket[Any]]]:
    ctx: zmq.Context[Any] = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    monitor = router.get_monitor_socket(zmq.EVENT_DISCONNECTED)
    peer = ctx.socket(zmq.DEALER)
    peer.connect(f"tcp://127.0.0.1:{port}")
    yield router, monitor, peer
    router.disable_monitor()
    for sock in (peer, monitor, router):
        sock.close(0)
    ctx.term()


def _drain(monitor: zmq.Socket[Any]) -> int:
    """Read the monitor to EAGAIN, as the hub does when its descriptor fires; how many."""
    n = 0
    while True:
        try:
            monitor.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return n
        n += 1


def _until(wait: TurnWait, bit: int) -> int:
    """Wait until ``bit`` fires (a bounded number of waits); the bits of the last wait."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        fired = wait.wait(100)
        if fired & bit:
            return fired
    raise AssertionError(f"bit {bit} never fired")


def test_the_first_wait_reports_every_socket(sockets: Any) -> None:
    router, monitor, _ = sockets
    wait = TurnWait(router, monitor, None)
    assert wait.wait(0) == ROUTER | MONITOR | EVENTS
    assert not wait.wait(0) & EVENTS  # from then on only what fired (no events socket here)


def test_a_message_after_the_readiness_check_wakes_the_wait(sockets: Any) -> None:
    """The loop's rule: ask ZMQ_EVENTS after the turn's last use of the socket, then sleep on
    the descriptor; a message sent afterwards wakes the wait (edge-triggered, not lost)."""
    router, monitor, peer = sockets
    wait = TurnWait(router, monitor, None)
    wait.wait(0)
    for n in range(20):
        send_frames(peer, [b"m%d" % n])
        _until(wait, ROUTER)
        deadline = time.monotonic() + DEADLINE
        while not readable(router):  # the descriptor fired: the message follows
            assert time.monotonic() < deadline
            wait.wait(10)
        identity, body = recv_frames(router, NOBLOCK)
        assert body == b"m%d" % n
        send_frames(router, [identity, b"ack"], NOBLOCK)  # a send, then the check, as a turn
        assert not readable(router)
        assert recv_frames(peer) == [b"ack"]


def test_a_closed_connection_fires_the_monitor(sockets: Any) -> None:
    router, monitor, peer = sockets
    send_frames(peer, [b"hello"])
    assert router.poll(int(DEADLINE * 1000), zmq.POLLIN), "the message never came"
    recv_frames(router)
    wait = TurnWait(router, monitor, None)
    wait.wait(0)
    _drain(monitor)  # the first turn reads every socket: from then on its descriptor tells
    assert not readable(router)
    peer.close(0)
    deadline = time.monotonic() + DEADLINE
    closed = 0
    while not closed:  # the descriptor may fire for a command first: drained, nothing read
        assert time.monotonic() < deadline, "the monitor never told the closed connection"
        _until(wait, MONITOR)
        closed = _drain(monitor)


def _turn(
    wait: TurnWait, router: zmq.Socket[Any], monitor: zmq.Socket[Any], ms: int
) -> tuple[int, float]:
    """One wait and what a hub turn does with the sockets that fired; the bits and the
    seconds the wait took."""
    start = time.monotonic()
    fired = wait.wait(ms)
    took = time.monotonic() - start
    if fired & MONITOR:
        _drain(monitor)
    readable(router)  # a late command of the connection's may fire it: taken, as a turn does
    return fired, took


def test_a_watched_descriptor_wakes_the_wait_and_can_be_dropped(sockets: Any) -> None:
    router, monitor, _ = sockets
    wait = TurnWait(router, monitor, None)
    _turn(wait, router, monitor, 0)
    r, w = os.pipe()
    try:
        wait.watch(r)
        os.write(w, b"x")  # never read: readable until closed
        woken = False
        for _ in range(10):
            fired, took = _turn(wait, router, monitor, 2000)
            woken = fired == 0 and took < 1.0  # none of the sockets: the pipe
            if woken:
                break
        assert woken, "the watched descriptor did not wake the wait"
        wait.watch(None)
        slept = False
        for _ in range(20):
            _, took = _turn(wait, router, monitor, 100)
            slept = took >= 0.08
            if slept:
                break
        assert slept, "a dropped descriptor still woke the wait"
    finally:
        os.close(r)
        os.close(w)
