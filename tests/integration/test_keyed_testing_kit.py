"""Keyed actors and locks in the in-process test kit (celeriac.testing.start_worker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from celeriac import App
from celeriac.exceptions import LockNotOwnedError
from celeriac.testing import start_worker

pytestmark = pytest.mark.integration

TIMEOUT = 20.0


def test_an_actor_and_a_lock_in_the_test_kit(tmp_path: Path) -> None:
    """Declare the actor before start_worker: the kit's worker hosts it; locks work too, with
    names longer than a wire name (hashed) and release only by the holder."""
    app = App("kit", environ={})

    @app.actor
    class Tally:
        def __init__(self, key: str) -> None:
            self.seen: list[str] = []

        def add(self, item: str) -> list[str]:
            self.seen.append(item)
            return self.seen

    with start_worker(app, data_dir=tmp_path):
        tally = app.proxy(Tally, key="t")
        for item in "abc":
            tally.add.tell(item)
        assert tally.add("d").get(timeout=TIMEOUT) == ["a", "b", "c", "d"]
        with pytest.raises(AttributeError, match="private"):
            tally._secret  # noqa: B018 - the attribute access is what is tested
        name = "feed:https://example.com/" + "x" * 400
        first, second = app.lock(name, expire=30), app.lock(name, expire=30)
        with first as acquired:
            assert acquired
            assert not second.acquire(blocking=False)
            assert second.locked()
            with pytest.raises(LockNotOwnedError):
                second.release()
        assert not first.locked()
        assert second.acquire(blocking=True, timeout=TIMEOUT)
        second.release()
    app.close()
