"""What the worker's connection loop relies on to skip a look before it sleeps
(runtime/connection.py, ``serve``): once ``readable`` (ZMQ_EVENTS) has said that nothing
waits, and nothing was sent since, the socket's descriptor signals the next message."""

from __future__ import annotations

import select

import zmq

from celeriac.transport.multipart import readable, recv_frames, send_frames


def test_the_descriptor_signals_a_message_after_readable_said_none_waits() -> None:
    ctx = zmq.Context()
    router, dealer = ctx.socket(zmq.ROUTER), ctx.socket(zmq.DEALER)
    try:
        port = router.bind_to_random_port("tcp://127.0.0.1")
        dealer.setsockopt(zmq.IDENTITY, b"w")
        dealer.connect(f"tcp://127.0.0.1:{port}")
        send_frames(dealer, [b"hello"])
        assert recv_frames(router) == [b"w", b"hello"]
        # Our own send may have taken the descriptor's signal: one look re-arms it (what
        # the loop does after a turn that sent; this test checks the turn that did not).
        assert not readable(dealer)
        poll = select.poll()
        poll.register(dealer.getsockopt(zmq.FD), select.POLLIN)
        for i in range(20):
            send_frames(router, [b"w", str(i).encode()])
            assert poll.poll(5000), f"message {i}: no signal"
            frames = []
            while readable(dealer):
                frames.append(recv_frames(dealer, zmq.NOBLOCK))
            if not frames:  # the signal came before the message was readable: wait again
                assert poll.poll(5000), f"message {i}: no second signal"
                while readable(dealer):
                    frames.append(recv_frames(dealer, zmq.NOBLOCK))
            assert frames == [[str(i).encode()]]
            # readable() said nothing waits and nothing was sent since: the descriptor is armed
    finally:
        router.close(0)
        dealer.close(0)
        ctx.term()
