"""result_chord_join_timeout bounds how long a chord's unlock waits for its header results."""

from __future__ import annotations

from typing import Any

import pytest

from celeriac import App, states
from celeriac._builtins import unlock
from celeriac.exceptions import TimeoutError as CeleriacTimeout


class _Result:
    """A header result whose get() records the timeout it was given."""

    state = states.SUCCESS

    def __init__(self, waits: list[float], fail: bool) -> None:
        self.waits, self.fail = waits, fail

    def get(self, timeout: float, **_: Any) -> int:
        self.waits.append(timeout)
        if self.fail:
            raise CeleriacTimeout("did not arrive")
        return 1


def _app(monkeypatch: pytest.MonkeyPatch, waits: list[float], fail: bool) -> App:
    app = App("t", environ={}, result_chord_join_timeout=5)
    monkeypatch.setattr(app, "AsyncResult", lambda task_id: _Result(waits, fail))
    return app


def test_the_wait_is_the_setting_in_all(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each header result gets what is left of result_chord_join_timeout, never more."""
    waits: list[float] = []
    app = _app(monkeypatch, waits, fail=False)
    sent: list[Any] = []
    monkeypatch.setattr(
        "celeriac._signature.Signature.apply_async", lambda s, a, **_: sent.append(a)
    )
    monkeypatch.setattr(app, "flush", lambda timeout: None)
    unlock(app, ["a", "b", "c"], {"task": "body", "args": [], "kwargs": {}, "options": {}})
    assert sent == [([1, 1, 1],)]
    assert len(waits) == 3
    assert all(0 < w <= 5.0 for w in waits)
    assert waits == sorted(waits, reverse=True)
    app.close()


def test_a_header_result_not_read_in_time_fails_the_unlock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past the timeout the unlock raises: the chord's body is not sent."""
    waits: list[float] = []
    app = _app(monkeypatch, waits, fail=True)
    with pytest.raises(CeleriacTimeout):
        unlock(app, ["a"], {"task": "body", "args": [], "kwargs": {}, "options": {}})
    assert len(waits) == 1
    assert 4.0 < waits[0] <= 5.0
    app.close()
