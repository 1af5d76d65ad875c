"""result_failure_expires: the hub keeps FAILURE results for their own time (fake clock)."""

from __future__ import annotations

from typing import Any

import pytest

from celeriac import App
from celeriac.transport.frames import encode

from .test_hubstate import W1, hello, make_hub, publish, sent


def _end(hub: Any, tid: str, state: str) -> None:
    hub.handle(W1, encode(b"DONE", {"id": tid, "state": state, "ct": "x", "credit": 1}, b"1"))


@pytest.mark.parametrize(
    ("failure_expires", "kept_at_200"), [(None, {"ok", "bad"}), (100.0, {"ok"}), (500.0, None)]
)
def test_failures_expire_on_their_own_clock(
    failure_expires: float | None, kept_at_200: set[str] | None
) -> None:
    """FAILURE follows result_failure_expires when set (shorter or longer); SUCCESS and unset
    ones follow result_expires."""
    hub, store, clock = make_hub(result_expires=300.0)
    hub.result_failure_expires = failure_expires
    hello(hub, W1, credit=2)
    publish(hub, "ok")
    publish(hub, "bad")
    sent(hub)
    _end(hub, "ok", "SUCCESS")
    _end(hub, "bad", "FAILURE")
    clock.advance(200.0)
    store.purge_results(clock.time())
    kept = {t for t in ("ok", "bad") if store.get_result(t) is not None}
    assert kept == (kept_at_200 if kept_at_200 is not None else {"ok", "bad"})
    clock.advance(200.0)  # 400 s: past result_expires, before a 500 s failure expiry
    store.purge_results(clock.time())
    kept = {t for t in ("ok", "bad") if store.get_result(t) is not None}
    assert kept == ({"bad"} if failure_expires == 500.0 else set())


def test_the_setting_reaches_the_hub(tmp_path: Any) -> None:
    """HubServer.from_settings hands result_failure_expires (a timedelta too) to the hub."""
    import datetime as dt  # noqa: PLC0415

    from celeriac.transport.hubserver import HubServer  # noqa: PLC0415

    app = App("t", broker="inproc://failure-expires", environ={})
    app.conf.result_failure_expires = dt.timedelta(minutes=2)
    server = HubServer.from_settings(app.conf, data_dir=tmp_path)
    server.start()
    try:
        assert server.state.result_failure_expires == 120.0
    finally:
        server.stop()
