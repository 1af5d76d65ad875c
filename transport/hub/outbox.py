"""The hub loop's messages of a turn, merged per peer before they are sent."""

from __future__ import annotations

from collections import deque

from ..protocol import next_batch

__all__ = ["coalesced"]


def coalesced(outbox: list[list[bytes]]) -> list[list[bytes]]:
    """The turn's messages, with each peer's consecutive ones of one item command (``TASK``,
    ``RES``, ``NACK``) merged as :func:`~celeriac._wire.next_batch` merges a client's: a turn
    that delivers a hundred tasks to a worker sends it one ``TASK`` of a hundred deliveries (one
    send, one receive, one decode), not a hundred. Each peer's messages keep their order."""
    if len(outbox) < 2 or len({frames[0] for frames in outbox}) == len(outbox):
        return list(outbox)  # one message per peer (most turns under load): nothing to merge
    per_peer: dict[bytes, deque[list[bytes]]] = {}
    for frames in outbox:
        queue = per_peer.get(frames[0])
        if queue is None:
            queue = per_peer[frames[0]] = deque()
        queue.append(frames[1:])
    merged: list[list[bytes]] = []
    for identity, queue in per_peer.items():
        while queue:
            merged.append([identity, *next_batch(queue)])
    return merged
