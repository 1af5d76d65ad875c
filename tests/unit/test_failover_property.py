"""Failover loses no publish: a hypothesis state machine drives one client session listing two
sans-IO hubs (each its own store) through publishes, hub deaths, hub restarts and silences.

The client talks to the hub its session names; a :class:`Dial` drops what was on the wire to
and from the old hub (its socket is closed with linger 0). A dead hub receives and sends
nothing. Checked throughout: a publish the client no longer holds was confirmed by a hub whose
store has it; and once the hubs are back and time passes, every publish is confirmed.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from structlog.testing import capture_logs

from celeriac._clock import FakeClock
from celeriac.transport import protocol as p
from celeriac.transport.hubstate import HubState
from celeriac.transport.session import ClientSession, Dial, Effect, Send
from celeriac.transport.store_memory import MemoryStore

pytestmark = pytest.mark.property

HB = 1.0
CLIENT = b"client"
ADDRESSES = ("tcp://a:5555", "tcp://b:5555")
QUEUE = p.QueueDecl("celery")


@pytest.fixture(autouse=True)
def _quiet_logs() -> Iterator[None]:
    """The hubs log every join and loss; keep those lines out of the output."""
    with capture_logs():
        yield


class FailoverLosesNothing(RuleBasedStateMachine):
    """Two hubs, one client listing both, a lossy network and a fake clock."""

    #: Failovers over all the examples run (the search must reach them to mean anything).
    failovers = 0

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.stores = {a: MemoryStore() for a in ADDRESSES}
        self.incarnation = itertools.count(1)
        self.hubs = {a: self.new_hub(a) for a in ADDRESSES}
        self.alive = dict.fromkeys(ADDRESSES, True)
        self.to_hub: deque[tuple[str, list[bytes]]] = deque()
        self.inbox: deque[tuple[str, p.Message]] = deque()
        self.ids = itertools.count(1)
        self.published: set[str] = set()
        #: Which hub confirmed each id (its store must hold it).
        self.confirmed_by: dict[str, str] = {}
        self.client = ClientSession(
            endpoint=";".join(ADDRESSES),
            declare=p.Declare(queues=(QUEUE,)),
            heartbeat=HB,
            connect_timeout=5.0,
            now=self.clock.monotonic(),
        )
        self.apply(self.client.connect())

    def new_hub(self, address: str) -> HubState:
        hub = HubState(
            self.stores[address],
            self.clock,
            hub_id=f"{address[6]}-{next(self.incarnation)}",
            heartbeat=HB,
        )
        hub.restore()
        # The queue is known to every hub incarnation (declared by its workers in real life):
        # a publish that reaches a restarted hub before our HELLO is routed, not refused.
        declarer = b"declarer"
        hub.handle(declarer, p.encode(p.Hello("client", declare=p.Declare(queues=(QUEUE,)))))
        hub.handle(declarer, p.encode(p.Bye()))
        hub.outbox.clear()
        return hub

    def apply(self, effects: list[Effect]) -> None:
        """The client's effects: sends go to the hub it names now; a Dial drops the wire."""
        for effect in effects:
            if isinstance(effect, Dial):
                FailoverLosesNothing.failovers += 1
                self.to_hub.clear()
                self.inbox.clear()
            elif isinstance(effect, Send):
                self.to_hub.append((self.client.endpoint, p.encode(effect.message)))

    # -- rules -------------------------------------------------------------------------------------

    @rule(count=st.integers(1, 3))
    def publish(self, count: int) -> None:
        """The client publishes tasks."""
        for _ in range(count):
            tid = f"t{next(self.ids)}"
            self.published.add(tid)
            task = p.TaskMessage(tid, "t", b"[]", queue="celery", reply=True)
            self.apply(self.client.publish(task))

    @rule()
    def hubs_step(self) -> None:
        """Each live hub handles what reached it, ends its turn (tick: the turn's confirms) and
        commits; its answers go out after the commit, as the hub's loop does (with the
        confirmations it held for a result, once due: transport/hub/confirmhold.py)."""
        now = self.clock.monotonic()
        while self.to_hub:
            address, frames = self.to_hub.popleft()
            if not self.alive[address]:
                continue
            hub = self.hubs[address]
            hub.handle(CLIENT, frames)
            hub.tick()
            self.stores[address].commit()
            hub.confirm_hold.committed(now)
            self.answers(address, hub, now)
        for address, hub in self.hubs.items():
            if self.alive[address]:
                self.answers(address, hub, now)

    def answers(self, address: str, hub: HubState, now: float) -> None:
        """What ``hub`` sends after its commit, on the wire to the client."""
        hub.release_confirms(now)
        for out in hub.outbox:
            message = p.decode(out[1:])
            if isinstance(message, p.Confirm):
                for tid in message.ids:
                    self.confirmed_by.setdefault(tid, address)
            self.inbox.append((address, message))
        hub.outbox.clear()

    @rule()
    def client_step(self) -> None:
        """The client handles what its hub sent it (nothing from a hub it left)."""
        while self.inbox:
            address, message = self.inbox.popleft()
            if address == self.client.endpoint:
                self.apply(self.client.handle(message, self.clock.monotonic()))

    @rule(seconds=st.sampled_from([0.3, 1.0, 2.5]))
    def time_passes(self, seconds: float) -> None:
        """Time passes: the client pings, and may give up on a silent hub."""
        self.clock.advance(seconds)
        self.apply(self.client.tick(self.clock.monotonic()))

    @rule(which=st.sampled_from(ADDRESSES))
    def kill_hub(self, which: str) -> None:
        """A hub dies (kill -9): what was on the wire to and from it is gone."""
        self.alive[which] = False
        self.to_hub = deque(m for m in self.to_hub if m[0] != which)
        self.inbox = deque(m for m in self.inbox if m[0] != which)

    @rule(which=st.sampled_from(ADDRESSES))
    def restart_hub(self, which: str) -> None:
        """A hub starts again from its store."""
        self.alive[which] = True
        self.hubs[which] = self.new_hub(which)

    # -- checks ------------------------------------------------------------------------------------

    @invariant()
    def nothing_dropped(self) -> None:
        """Each publish is held by the client or confirmed by a hub whose store has it."""
        for tid in self.published - set(self.client.unconfirmed):
            address = self.confirmed_by.get(tid)
            assert address is not None, f"{tid} left the client unconfirmed"
            stored = {m.id for m in self.stores[address].messages(bodies=False)}
            assert tid in stored, f"{tid} confirmed by {address} but not in its store"

    def teardown(self) -> None:
        """Both hubs back and time passing: the client gets every publish confirmed."""
        for address in ADDRESSES:
            if not self.alive[address]:
                self.restart_hub(address)
        for _ in range(20):
            self.hubs_step()
            self.client_step()
            self.time_passes(1.0)
            if not self.client.unconfirmed:
                break
        assert not self.client.unconfirmed, f"never confirmed: {sorted(self.client.unconfirmed)}"
        self.nothing_dropped()


def test_failover_loses_no_publish() -> None:
    """Hub deaths, restarts and silences never drop a publish (hypothesis state machine)."""
    FailoverLosesNothing.failovers = 0
    run_state_machine_as_test(
        FailoverLosesNothing,
        settings=settings(
            max_examples=60,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
    assert FailoverLosesNothing.failovers > 0
