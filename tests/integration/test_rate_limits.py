"""Rate limits and per-type concurrency caps on a real worker process (task types as actors)."""

from __future__ import annotations

import asyncio
import signal
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from celeriac import App
from celeriac.testing import start_worker

from .conftest import (
    RESULT_TIMEOUT,
    Spawner,
    clean_env,
    count_events,
    embed_if_free,
    wait_for_event,
    wait_until,
)

pytestmark = pytest.mark.integration

SOURCE = '''
"""Tasks whose types are limited: every call returns when and where it ran."""

import os
import time

from celeriac import App

app = App("rtasks")
app.conf.task_annotations = {{"rtasks.annotated": {{"max_concurrency": 1}}}}
RUN_LOG = {run_log!r}


@app.task(name="rtasks.limited", rate_limit="5/s")
def limited():
    return time.time()


@app.task(name="rtasks.slow_limited", rate_limit="2/s", bind=True)
def slow_limited(self, seconds):
    fd = os.open(RUN_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, (self.request.id + "\\n").encode())
    os.close(fd)
    start = time.time()
    time.sleep(seconds)
    return [start, time.time(), os.getpid()]


@app.task(name="rtasks.single", max_concurrency=1)
def single(seconds):
    start = time.time()
    time.sleep(seconds)
    return [start, time.time(), os.getpid()]


@app.task(name="rtasks.annotated")
def annotated(seconds):
    start = time.time()
    time.sleep(seconds)
    return [start, time.time()]


@app.task(name="rtasks.other")
def other(seconds):
    start = time.time()
    time.sleep(seconds)
    return [start, time.time()]
'''

#: Celery's rate-limit bucket holds one token: a burst is one task.
BURST = 1


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    """A directory holding ``rtasks.py`` (the worker's cwd)."""
    directory = tmp_path / "rapp"
    directory.mkdir()
    source = SOURCE.format(run_log=str(tmp_path / "runs.log"))
    (directory / "rtasks.py").write_text(textwrap.dedent(source))
    return directory


def most_in_a_window(times: list[float], window: float) -> int:
    """The largest number of ``times`` inside any half-open window of ``window`` seconds."""
    ordered = sorted(times)
    return max(sum(1 for u in ordered if t <= u < t + window) for t in ordered)


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The largest number of ``(start, end)`` intervals running at the same instant."""
    edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    running = best = 0
    for _, step in edges:
        running += step
        best = max(best, running)
    return best


def test_rate_limit_of_5_per_second_holds_across_25_tasks(
    procs: Spawner, broker_url: str, app_dir: Path, client: App
) -> None:
    """25 tasks of a 5/s type: no 1 s window holds more than 5 + burst starts, and they spread
    over ~5 s (24 intervals of 0.2 s; at least 3.6 s even if a first window's worth started
    at once), although 4 slots were free."""
    worker = procs.worker(broker_url, cwd=app_dir, app="rtasks", concurrency=4)
    results = [client.send_task("rtasks.limited") for _ in range(25)]
    starts = [r.get(timeout=RESULT_TIMEOUT * 2) for r in results]
    assert most_in_a_window(starts, 1.0) <= 5 + BURST
    assert max(starts) - min(starts) >= (25 - 1 - 5 - BURST) * 0.2
    assert count_events(worker.log, "task_type_limited") >= 1


def test_type_capped_at_one_runs_alone_while_other_types_use_the_other_slots(
    procs: Spawner, broker_url: str, app_dir: Path, client: App
) -> None:
    """max_concurrency=1 (option and annotation): one at a time; others fill the 3 slots."""
    procs.worker(broker_url, cwd=app_dir, app="rtasks", concurrency=3)
    single = [client.send_task("rtasks.single", [0.4]) for _ in range(4)]
    annotated = [client.send_task("rtasks.annotated", [0.4]) for _ in range(3)]
    others = [client.send_task("rtasks.other", [0.4]) for _ in range(6)]
    runs = {
        name: [tuple(r.get(timeout=RESULT_TIMEOUT)[:2]) for r in results]
        for name, results in (("single", single), ("annotated", annotated), ("other", others))
    }
    assert most_at_once(runs["single"]) == 1
    assert most_at_once(runs["annotated"]) == 1
    assert most_at_once(runs["other"]) >= 2, "other types did not use the free slots"
    everything = [run for group in runs.values() for run in group]
    assert most_at_once(everything) == 3  # every slot busy at once: capped types held none


def test_prefork_limits_hold_for_the_whole_node(
    procs: Spawner, broker_url: str, tmp_path: Path, app_dir: Path, client: App
) -> None:
    """-P prefork -c 2: a type capped at 1 runs one at a time across both children, and a
    5/s type starts at most 5 + burst per second across them (the parent holds the gates)."""
    argv = [sys.executable, "-m", "celeriac", "-A", "rtasks", "worker", "-P", "prefork"]
    argv += ["-c", "2", "--broker", broker_url, "--log-format", "json", "-l", "INFO"]
    argv += embed_if_free(broker_url)  # given --broker, auto would wait for a hub
    env = clean_env(CELERIAC_HUB_DATA_DIR=str(tmp_path / "hub"))
    node = procs.spawn("prefork", argv, cwd=app_dir, env=env)
    wait_for_event(node.log, "worker_ready", proc=node)
    singles = [client.send_task("rtasks.single", [0.3]) for _ in range(6)]
    runs = [r.get(timeout=RESULT_TIMEOUT) for r in singles]
    assert len({pid for _, _, pid in runs}) == 2, "both children took singles"
    assert most_at_once([(start, end) for start, end, _ in runs]) == 1
    starts = [
        r.get(timeout=RESULT_TIMEOUT)
        for r in [client.send_task("rtasks.limited") for _ in range(15)]
    ]
    assert most_in_a_window(starts, 1.0) <= 5 + BURST
    assert max(starts) - min(starts) >= 2.4  # 14 intervals of 0.2 s, minus jitter


def test_warm_shutdown_gives_deliveries_waiting_for_their_rate_back(
    procs: Spawner, broker_url: str, tmp_path: Path, app_dir: Path, client: App
) -> None:
    """Deliveries held by a rate-limited type go back to the hub at SIGTERM; none is lost and
    none runs twice."""
    procs.hub(broker_url, tmp_path / "hub-data")
    first = procs.worker(broker_url, cwd=app_dir, app="rtasks", concurrency=2, name="first")
    results = [client.send_task("rtasks.slow_limited", [0.2]) for _ in range(8)]
    wait_until(
        lambda: count_events(first.log, "task_type_limited") and results[0].ready(),
        RESULT_TIMEOUT,
        "the first limited task to finish",
        first,
    )
    first.popen.send_signal(signal.SIGTERM)
    assert first.wait(RESULT_TIMEOUT) == 0
    ran_first = [r for r in results if r.ready()]
    assert len(ran_first) < len(results), "the rate limit let everything run at once"
    second = procs.worker(broker_url, cwd=app_dir, app="rtasks", concurrency=2, name="second")
    pids = Counter(r.get(timeout=RESULT_TIMEOUT)[2] for r in results)
    assert set(pids) == {first.pid, second.pid}
    runs = Counter((tmp_path / "runs.log").read_text().split())
    assert runs == Counter({r.id: 1 for r in results})  # each ran exactly once


@pytest.mark.parametrize("pool", ["asyncio", "solo"])
def test_limits_hold_on_the_asyncio_and_solo_pools(pool: str, tmp_path: Path) -> None:
    """The asyncio pool honours a cap (others still run), both a rate limit; afterwards the
    hub's credit for the node is its whole prefetch window again (no credit lost or made up;
    the window may have changed with the tasks' run times: a narrower one is repaid by later
    outcomes, its debt is still the hub's credit meanwhile)."""
    app = App("aio_limits", environ={})

    @app.task(name="al.single", max_concurrency=1)
    async def single() -> list[float]:
        start = time.time()
        await asyncio.sleep(0.2)
        return [start, time.time()]

    @app.task(name="al.other")
    async def other() -> list[float]:
        start = time.time()
        await asyncio.sleep(0.2)
        return [start, time.time()]

    @app.task(name="al.rated", rate_limit="10/s")
    def rated() -> float:
        return time.time()

    with start_worker(app, pool=pool, concurrency=3, data_dir=tmp_path) as worker:
        if pool == "asyncio":
            singles = [single.delay() for _ in range(3)]
            others = [other.delay() for _ in range(4)]
            single_runs = [tuple(r.get(timeout=RESULT_TIMEOUT)) for r in singles]
            other_runs = [tuple(r.get(timeout=RESULT_TIMEOUT)) for r in others]
            assert most_at_once(single_runs) == 1
            assert most_at_once(other_runs) >= 2
        starts = [r.get(timeout=RESULT_TIMEOUT) for r in [rated.delay() for _ in range(12)]]
        assert most_in_a_window(starts, 1.0) <= 10 + BURST
        assert max(starts) - min(starts) >= 0.9  # 11 intervals of 0.1 s, minus jitter
        node = worker.node
        assert node.session is not None

        def window() -> int:
            assert node.session is not None
            return node.session.window.size + node.session.gated.debt

        wait_until(
            lambda: hub_credit(worker.statistics(), node.peer_name) == window(),
            RESULT_TIMEOUT,
            "the hub's credit for the node back at its prefetch window",
        )


def hub_credit(stats: dict[str, Any], node: str) -> int | None:
    """The credit the hub holds for worker ``node``."""
    peer = stats["peers"].get(node)
    return None if peer is None else int(peer["credit"])
