"""What a peer knows and says about its hub: whether it answers, and why a result waits.

Operators read these lines first when something is stuck, so each is said once per change
(never a flood) and says what the peer does about it.
"""

from __future__ import annotations

from celeriac import states
from celeriac._log import get_logger
from celeriac.transport import protocol as p
from celeriac.transport.endpoints import parse_tcp

__all__ = ["HubWatch", "explain_reply"]

_log = get_logger("celeriac.worker")


class HubWatch:
    """Whether the hub answers, in the log: ``waiting_for_hub`` until it first does (after
    :attr:`FIRST` seconds, then every :attr:`EVERY`), then ``hub_lost`` once when it falls silent
    for three heartbeats and ``hub_back`` once when it answers again. Never a flood."""

    FIRST = 2.0
    EVERY = 30.0

    def __init__(self, endpoint: str, started: float, heartbeat: float) -> None:
        self.endpoint = endpoint
        self.started = started
        self.silence = 3 * heartbeat
        self.next_log = started + self.FIRST
        self.last_heard: float | None = None
        self.lost_since: float | None = None

    def heard(self, now: float) -> None:
        """The hub sent something."""
        if self.lost_since is not None:
            _log.warning(
                "hub_back", endpoint=self.endpoint, silent_for=round(now - self.lost_since, 1)
            )
            self.lost_since = None
        self.last_heard = now

    def tick(self, now: float, running: int) -> None:
        """Log what there is to say about the hub at ``now``."""
        if self.last_heard is None:
            self._waiting(now)
        elif self.lost_since is None and now - self.last_heard > self.silence:
            self.lost_since = self.last_heard
            _log.warning(
                "hub_lost",
                endpoint=self.endpoint,
                silent_for=round(now - self.last_heard, 1),
                running=running,
                hint="tasks running here finish and their results wait here until the hub is "
                "back; reconnecting by itself (every second at most); nothing is lost",
            )

    def _waiting(self, now: float) -> None:
        if now < self.next_log:
            return
        self.next_log = now + self.EVERY
        address = parse_tcp(self.endpoint)
        _log.warning(
            "waiting_for_hub",
            endpoint=self.endpoint,
            waited=round(now - self.started, 1),
            hint=(
                f"is a hub running at {self.endpoint} (celeriac hub --bind ...), and is its port "
                f"{address.port if address else ''} open from this machine? the worker connects "
                "by itself when it answers"
            ),
        )


def explain_reply(reply: p.Reply) -> str:
    """A hub's STAT reply as the reason a result has not come."""
    if reply.worker is not None and reply.state == states.STARTED:
        return f"it is running on worker {reply.worker}"
    if reply.worker is not None:
        return (
            f"worker {reply.worker} has it (it may be running: set task_track_started to tell "
            "running from waiting there)"
        )
    if reply.queue is not None and not reply.consumers:
        return f"it is queued in {reply.queue!r}, and no worker consumes {reply.queue!r}"
    if reply.queue is not None:
        return (
            f"it is queued in {reply.queue!r} ({reply.consumers} consumer(s)), waiting its turn "
            "or its eta"
        )
    if reply.state != states.PENDING:
        return f"its result is stored at the hub (state {reply.state})"
    return (
        "the hub does not know it: an id nobody published, or a result that expired "
        "(result_expires) or was forgotten"
    )
