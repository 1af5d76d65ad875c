"""Two live workers never share a node name at the hub: the second is made unique, loudly."""

from __future__ import annotations

from structlog.testing import capture_logs

from celeriac._clock import FakeClock
from celeriac.transport import protocol as p
from celeriac.transport.hubstate import HubState
from celeriac.transport.store_memory import MemoryStore


def _welcome_for(hub: HubState, identity: bytes, node: str, role: str = "worker") -> p.Welcome:
    hub.outbox.clear()
    hub.handle(identity, p.encode(p.Hello(role=role, node=node, credit=1)))  # type: ignore[arg-type]
    welcomes = [p.decode(f[1:]) for f in hub.outbox if f[0] == identity]
    [welcome] = [m for m in welcomes if isinstance(m, p.Welcome)]
    return welcome


def test_a_second_live_worker_with_the_same_name_is_made_unique_with_a_warning() -> None:
    """w@a twice: the second is known as w@a#2, told so in WELCOME, and the hub warns."""
    hub = HubState(MemoryStore(), FakeClock(), hub_id="hub-a")
    assert _welcome_for(hub, b"w@a:1:x", "w@a").node == "w@a"
    with capture_logs() as logs:
        assert _welcome_for(hub, b"w@a:2:y", "w@a").node == "w@a#2"
        assert _welcome_for(hub, b"w@a:3:z", "w@a").node == "w@a#3"
    warnings = [e for e in logs if e["event"] == "duplicate_node_name"]
    assert [e["known_as"] for e in warnings] == ["w@a#2", "w@a#3"]


def test_a_name_is_free_again_once_its_worker_left() -> None:
    """After the first worker says BYE, a new one gets the plain name back."""
    hub = HubState(MemoryStore(), FakeClock(), hub_id="hub-a")
    _welcome_for(hub, b"w@a:1:x", "w@a")
    hub.handle(b"w@a:1:x", p.encode(p.Bye()))
    assert _welcome_for(hub, b"w@a:2:y", "w@a").node == "w@a"


def test_clients_may_share_a_name() -> None:
    """Only workers are addressed by name (events, control): clients are not renamed."""
    hub = HubState(MemoryStore(), FakeClock(), hub_id="hub-a")
    _welcome_for(hub, b"c:1:x", "client@a", role="client")
    assert _welcome_for(hub, b"c:2:y", "client@a", role="client").node == "client@a"
