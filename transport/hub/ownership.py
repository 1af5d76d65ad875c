"""Who may touch what: the hub's ownership rules, in one place.

The rules
---------
* **Introduce yourself first.** A peer the hub does not know (no ``HELLO`` on this hub
  incarnation) may say ``HELLO``, ``PING``, ``BYE``, and publish (``PUB``, ``DECLARE``: a
  publish touches nobody else's data, and is confirmed to whoever sent it). Anything else
  (reading or forgetting results, acknowledging, consuming, credit) is dropped, counted as
  ``refused``, and answered with ``ERR hello``; a client that knew an earlier hub then says
  ``HELLO`` and resends what was not confirmed, so nothing honest is lost. Without CURVE a
  ``HELLO`` proves nothing, so gating publishes on it would add a round trip and no safety.
* **Only the holder ends a delivery.** ``DONE``, ``REJ`` and ``START`` for a delivery are
  accepted only from the peer the hub gave it to, or from a peer of the same node (the part of
  the node name before ``/``: a prefork parent reports for a child it had to kill). An
  outcome for a message that is not out for delivery (queued, already acknowledged, unknown) is
  refused: a stranger cannot complete, reject or mark as started what it was never given.
  Refusals are counted (``refused``) and logged as ``not_yours``, once per message.
* **Results are read by id, after a HELLO.** ``WAIT``, ``STAT`` and ``FORGET`` are open to any
  introduced peer that knows the task id. That is what Celery users rely on
  (``AsyncResult(id)`` in another process, a web request polling a task started elsewhere);
  ids are random UUIDs, so knowing one is the capability. To keep strangers off the port
  entirely, turn on CURVE authentication: only peers holding an allowed key can say HELLO.
* **Bounded.** A peer's credit is capped at ``hub_max_credit_per_peer`` (default
  :data:`~.limits.MAX_CREDIT`: the hub never sends more than that many deliveries
  unacknowledged to one peer, well below the socket's high-water mark); what it asks above
  that is dropped and logged (``credit_capped``) once per peer.

Without CURVE, a node name is a claim, not a proof: these rules stop accidents and strangers
who do not pretend to be a given worker, not an attacker who watches the events socket and
names himself after a node. CURVE is the answer to that one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from celeriac._log import get_logger

from .. import protocol as p
from .model import Peer

__all__ = ["node_family", "owned"]

_log = get_logger("celeriac.hub")

_Item = TypeVar("_Item", p.ResultMessage, p.Rejection, p.TaskRef)


def node_family(node: str) -> str:
    """The node a peer belongs to: ``host`` for ``host``, ``host/3`` and ``host/parent``."""
    return node.partition("/")[0]


def owned(
    peers: dict[bytes, Peer],
    holder_of: Callable[[str], bytes | None],
    sender: Peer | None,
    items: Iterable[_Item],
    command: str,
) -> tuple[list[_Item], int]:
    """The items of a DONE/REJ/START that ``sender`` may act on, and how many were refused.

    ``holder_of(tag)`` is the identity holding a delivery (None: not out for delivery).
    """
    accepted: list[_Item] = []
    refused = 0
    for item in items:
        tag = item.delivery_tag
        holder = holder_of(tag)
        if sender is not None and _may_act(peers, sender, holder):
            accepted.append(item)
            continue
        refused += 1
        _log.warning(
            "not_yours",
            command=command,
            id=tag,
            peer=sender.node if sender is not None else None,
            reason="not out for delivery" if holder is None else "delivered to another peer",
        )
    return accepted, refused


def _may_act(peers: dict[bytes, Peer], sender: Peer, holder: bytes | None) -> bool:
    if holder is None:
        return False
    if holder == sender.identity:
        return True
    peer = peers.get(holder)
    return peer is not None and node_family(peer.node) == node_family(sender.node)
