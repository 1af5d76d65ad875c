"""A peer started before its hub joins soon after the hub is up (runtime/link.py,
``RECONNECT_MAX_MS``): libzmq's reconnect backoff is capped at 250 ms, not 1 s."""

from __future__ import annotations

import time
from typing import Any

import zmq

from celeriac.runtime.link import dealer

#: When the "hub" binds, after the peer began to connect: with a backoff up to 1 s the peer's
#: tries come at 0.05, 0.15, 0.35, 0.75 and 1.55 s, so it would join 0.75 s after the bind.
LATE = 0.8


def test_a_peer_started_before_its_hub_joins_within_the_capped_backoff(free_port: int) -> None:
    ctx: zmq.Context[Any] = zmq.Context()
    url = f"tcp://127.0.0.1:{free_port}"
    peer = dealer(ctx, url, b"early-peer")
    router = ctx.socket(zmq.ROUTER)
    try:
        peer.send_multipart([b"hello"])  # queued: nobody listens yet
        time.sleep(LATE)  # the hub is late: the scenario, not a synchronisation
        router.bind(url)
        bound = time.monotonic()
        assert router.poll(5_000), "the peer never joined"
        joined = time.monotonic() - bound
        assert router.recv_multipart() == [b"early-peer", b"hello"]
        # The cap plus a margin for a loaded machine; a 1 s cap would take ~0.75 s here.
        assert joined < 0.6, f"joined {joined:.3f} s after the bind"
    finally:
        peer.close(0)
        router.close(0)
        ctx.term()
