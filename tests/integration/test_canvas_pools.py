"""Chains, chords and retries on the prefork and asyncio pools (real worker processes)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from celeriac import App, chain, chord, signature

from .conftest import RESULT_TIMEOUT, Spawner, TaskModule, clean_env, embed_if_free, wait_for_event

pytestmark = pytest.mark.integration

EXTRA_TASKS = """

@app.task(name="itasks.tsum")
def tsum(values):
    return sum(values)


@app.task(name="itasks.retry_once", bind=True)
def retry_once(self):
    if not self.request.retries:
        raise self.retry(countdown=0)
    return self.request.retries
"""


@pytest.mark.parametrize("pool", ["prefork", "asyncio"])
def test_canvas_on_a_pool(
    pool: str,
    procs: Spawner,
    broker_url: str,
    tmp_path: Path,
    tasks_module: TaskModule,
    client: App,
) -> None:
    """A chain, a chord and a retry complete when the worker runs the given pool."""
    with (tasks_module.dir / "itasks.py").open("a") as f:
        f.write(EXTRA_TASKS)
    argv = [sys.executable, "-m", "celeriac", "-A", "itasks", "worker", "-P", pool, "-c", "2"]
    argv += ["--broker", broker_url, "--log-format", "json", "-l", "INFO"]
    argv += embed_if_free(broker_url)  # given --broker, auto would wait for a hub
    env = clean_env(CELERIAC_HUB_DATA_DIR=str(tmp_path / "hub"))
    worker = procs.spawn("worker", argv, cwd=tasks_module.dir, env=env)
    wait_for_event(worker.log, "worker_ready", proc=worker)

    def add(*args: int) -> object:
        return signature("itasks.add", args, app=client)

    assert chain(add(1, 2), add(3), add(4)).delay().get(timeout=RESULT_TIMEOUT) == 10
    body = signature("itasks.tsum", app=client)
    assert chord([add(i, i) for i in range(10)])(body).get(timeout=RESULT_TIMEOUT) == 90
    retried = signature("itasks.retry_once", app=client).delay()
    assert retried.get(timeout=RESULT_TIMEOUT) == 1
