"""The prefetch window on a real worker: quick tasks widen it (the hub's credit follows, and
`inspect stats` shows it), slow ones bring it back to worker_prefetch_multiplier's floor."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from celeriac import App
from celeriac.testing import start_worker
from celeriac.transport.session.window import MOST_PER_SLOT

from .conftest import RESULT_TIMEOUT, wait_until
from .test_rate_limits import hub_credit

pytestmark = pytest.mark.integration


def test_quick_tasks_widen_the_window_and_slow_ones_narrow_it(tmp_path: Path) -> None:
    app = App("pw", environ={})

    @app.task(name="pw.quick")
    def quick(i: int) -> int:
        return i

    @app.task(name="pw.slow")
    def slow() -> None:
        time.sleep(0.05)

    with start_worker(app, pool="threads", concurrency=2, data_dir=tmp_path) as worker:
        node, session = worker.node, worker.node.session
        assert session is not None
        floor = node.prefetch
        assert floor == 2 * int(app.conf.worker_prefetch_multiplier)

        def settled() -> bool:  # nothing held: the hub's credit is the whole window (+ debt)
            assert session is not None
            expected = session.window.size + session.gated.debt
            return hub_credit(worker.statistics(), node.peer_name) == expected

        deadline = time.monotonic() + RESULT_TIMEOUT
        while session.window.size <= floor and time.monotonic() < deadline:
            results = [quick.delay(i) for i in range(200)]  # bounded: 200 a round
            assert [r.get(timeout=RESULT_TIMEOUT) for r in results] == list(range(200))
        assert floor < session.window.size <= 2 * MOST_PER_SLOT
        wait_until(settled, RESULT_TIMEOUT, "the hub's credit at the wider window")
        stats = app.control.inspect(timeout=5.0).stats() or {}
        assert [s["prefetch_count"] for s in stats.values()] == [session.window.size]

        for r in [slow.delay() for _ in range(8)]:
            r.get(timeout=RESULT_TIMEOUT)
        wait_until(
            lambda: session.window.size == floor, RESULT_TIMEOUT, "the window back at its floor"
        )
        quick.delay(0).get(timeout=RESULT_TIMEOUT)  # an outcome or more pays the debt
        wait_until(settled, RESULT_TIMEOUT, "the hub's credit back at the floor (+ debt)")
