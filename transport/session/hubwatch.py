"""Whether the hub answers, as log effects: the liveness lines a worker says about its hub."""

from __future__ import annotations

from ..endpoints import parse_tcp
from .effects import Effect, Log
from .failover import SILENT_HEARTBEATS

__all__ = ["HubWatch"]


class HubWatch:
    """Whether the hub answers, as log effects: ``waiting_for_hub`` until it first does (after
    :attr:`FIRST` seconds, then at intervals doubling up to :attr:`EVERY`), ``hub_lost`` once
    when it falls silent for three heartbeats and ``hub_back`` once when it answers again."""

    FIRST = 2.0
    EVERY = 30.0

    def __init__(self, endpoint: str, started: float, heartbeat: float) -> None:
        self.endpoint = endpoint
        self.started = started
        self.silence = SILENT_HEARTBEATS * heartbeat
        self.next_log = started + self.FIRST
        self.interval = self.FIRST
        self.last_heard: float | None = None
        self.lost_since: float | None = None

    def heard(self, now: float) -> list[Effect]:
        """The hub sent something."""
        effects: list[Effect] = []
        if self.lost_since is not None:
            silent = round(now - self.lost_since, 1)
            effects.append(
                Log("warning", "hub_back", {"endpoint": self.endpoint, "silent_for": silent})
            )
            self.lost_since = None
        self.last_heard = now
        return effects

    def tick(self, now: float, running: int) -> list[Effect]:
        """What there is to say about the hub at ``now``."""
        if self.last_heard is None:
            return self._waiting(now)
        if self.lost_since is not None or now - self.last_heard <= self.silence:
            return []
        self.lost_since = self.last_heard
        fields = {
            "endpoint": self.endpoint,
            "silent_for": round(now - self.last_heard, 1),
            "running": running,
            "hint": "tasks running here finish and their results wait here until the hub is "
            "back; reconnecting by itself (every second at most); nothing is lost",
        }
        return [Log("warning", "hub_lost", fields)]

    def _waiting(self, now: float) -> list[Effect]:
        if now < self.next_log:
            return []
        self.interval = min(2 * self.interval, self.EVERY)
        self.next_log = now + self.interval
        address = parse_tcp(self.endpoint)
        hint = (
            f"is a hub running at {self.endpoint} (celeriac hub --bind ...), and is its port "
            f"{address.port if address else ''} open from this machine? the worker connects "
            "by itself when it answers"
        )
        fields = {"endpoint": self.endpoint, "waited": round(now - self.started, 1), "hint": hint}
        return [Log("warning", "waiting_for_hub", fields)]
