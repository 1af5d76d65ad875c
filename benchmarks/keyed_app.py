"""The app the keyed benchmark's worker loads (``-A keyed_app``): a task and an actor doing
the same trivial work, so the two round trips differ only in how they travel."""

from __future__ import annotations

from celeriac import App

app = App("keyed_bench")


@app.task(name="keyed_bench.incr")
def incr(by: int = 1) -> int:
    """The plain-task side: returns its argument."""
    return by


@app.actor(name="keyed_bench.Counter")
class Counter:
    """The actor side: one instance per key, adds to its count."""

    def __init__(self, key: str) -> None:
        self.n = 0

    def incr(self, by: int = 1) -> int:
        """Add ``by``; the new count."""
        self.n += by
        return self.n


@app.actor(name="keyed_bench.SavedCounter")
class SavedCounter(Counter):
    """The same with save_state/load_state: the hub stores the state after every call."""

    def save_state(self) -> int:
        """The count."""
        return self.n

    def load_state(self, state: int) -> None:
        """Back from the hub."""
        self.n = state
