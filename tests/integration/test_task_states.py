"""update_state progress, Ignore, extended results and stored errors on a real hub and worker."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest

from celeriac import App, AsyncResult, Task, states
from celeriac.exceptions import Ignore
from celeriac.testing import TestWorker

from .conftest import wait_until

pytestmark = pytest.mark.integration

TIMEOUT = 30.0


@pytest.fixture
def celeriac_config() -> dict[str, Any]:
    """The apps of these tests keep extended results."""
    return {"result_extended": True}


def test_progress_is_seen_by_another_client_while_the_task_runs(
    celeriac_app: App, celeriac_worker: TestWorker
) -> None:
    """update_state(PROGRESS, meta) is seen through AsyncResult.state/.info by another client
    (its own connection to the hub) while the task runs; the result replaces it at the end."""
    go_on = threading.Event()

    @celeriac_app.task(bind=True, name="ts.slow")
    def slow(self: Task[Any, Any], n: int) -> int:
        self.update_state(state="PROGRESS", meta={"done": 1, "total": n})
        assert go_on.wait(TIMEOUT)
        return n

    sent = slow.delay(3)
    other = App("observer", broker=celeriac_app.conf.broker_url, environ={})
    try:
        seen = AsyncResult(sent.id, other)
        wait_until(lambda: seen.state == "PROGRESS", TIMEOUT, "the PROGRESS state")
        assert seen.info == {"done": 1, "total": 3}
        assert seen.result == {"done": 1, "total": 3}
        assert not seen.ready()
        assert seen.name == "ts.slow"
        assert seen.args == (3,)
        assert seen.kwargs == {}
        assert seen.queue == "celery"
        assert seen.worker is not None
        assert seen.date_done is None
        go_on.set()
        assert sent.get(timeout=TIMEOUT) == 3
        fresh = AsyncResult(sent.id, other)
        wait_until(lambda: fresh.state == states.SUCCESS, TIMEOUT, "SUCCESS")
        assert fresh.info == 3
        assert fresh.date_done is not None
        assert abs(fresh.date_done - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)
        assert (fresh.name, fresh.args, fresh.retries) == ("ts.slow", (3,), 0)
    finally:
        go_on.set()
        other.close()


def test_ignore_ends_ignored_or_in_the_last_custom_state(
    celeriac_app: App, celeriac_worker: TestWorker
) -> None:
    """raise Ignore() ends the task IGNORED (not SUCCESS); after update_state, that state and
    meta are the final ones (Celery's pattern for a custom final state)."""

    @celeriac_app.task
    def skipped() -> None:
        raise Ignore()

    @celeriac_app.task(bind=True)
    def custom(self: Task[Any, Any]) -> None:
        self.update_state(state="REFUSED_BY_POLICY", meta={"why": "quota"})
        raise Ignore()

    first = skipped.delay()
    assert first.get(timeout=TIMEOUT) is None
    assert first.state == states.IGNORED
    assert first.ready()
    assert not first.successful()
    second = custom.delay()
    assert second.get(timeout=TIMEOUT) == {"why": "quota"}
    assert AsyncResult(second.id, celeriac_app).state == "REFUSED_BY_POLICY"
    celeriac_worker.join(TIMEOUT)


def test_update_state_refuses_another_id_and_a_large_meta(
    celeriac_app: App, celeriac_worker: TestWorker
) -> None:
    """Only the running task's own state can be set, with a meta of at most 32 KiB; outside
    a worker (a plain call) update_state does nothing."""
    errors: list[str] = []

    @celeriac_app.task(bind=True)
    def meddler(self: Task[Any, Any]) -> None:
        for kwargs in ({"task_id": "someone-else"}, {"meta": "x" * 40_000}):
            try:
                self.update_state(state="PROGRESS", **kwargs)
            except ValueError as exc:
                errors.append(str(exc))

    meddler.delay().get(timeout=TIMEOUT)
    assert len(errors) == 2
    assert "someone-else" in errors[0]
    assert "at most 32768" in errors[1]
    meddler()  # a plain call: no worker, nothing to update, no error
    with pytest.raises(TypeError, match="needs a state"):
        meddler.update_state(meta={})


def test_store_errors_even_if_ignored(celeriac_app: App, celeriac_worker: TestWorker) -> None:
    """ignore_result tasks store nothing, except their failure with store_errors_even_if_ignored."""

    @celeriac_app.task(ignore_result=True, store_errors_even_if_ignored=True)
    def kept() -> None:
        raise KeyError("kept")

    @celeriac_app.task(ignore_result=True)
    def dropped() -> None:
        raise KeyError("dropped")

    failing, quiet = kept.delay(), dropped.delay()
    assert quiet.ignored  # Celery's flag on a result sent with ignore_result
    assert quiet.get(timeout=TIMEOUT) is None  # at once: no result will come (Celery's)
    celeriac_worker.join(TIMEOUT, reraise=False)
    assert AsyncResult(failing.id, celeriac_app).state == states.FAILURE
    assert isinstance(AsyncResult(failing.id, celeriac_app).result, KeyError)
    assert AsyncResult(quiet.id, celeriac_app).state == states.PENDING


def test_on_retry_hook_fires_once_per_retry_in_order(
    celeriac_app: App, celeriac_worker: TestWorker
) -> None:
    """A retried task calls before_start, on_retry, after_return(RETRY), then on the next run
    before_start, on_success, after_return(SUCCESS): each once, in that order."""
    calls: list[tuple[str, Any]] = []

    class Hooked(celeriac_app.Task):  # type: ignore[misc,name-defined]
        abstract = True

        def before_start(self, task_id: str, args: Any, kwargs: Any) -> None:
            calls.append(("before_start", None))

        def on_retry(self, exc: BaseException, task_id: str, *rest: Any) -> None:
            calls.append(("on_retry", type(exc).__name__))

        def on_success(self, retval: Any, *rest: Any) -> None:
            calls.append(("on_success", retval))

        def after_return(self, status: str, *rest: Any) -> None:
            calls.append(("after_return", status))

    @celeriac_app.task(bind=True, base=Hooked)
    def flaky(self: Task[Any, Any]) -> int:
        if not self.request.retries:
            raise self.retry(exc=ConnectionError("later"), countdown=0)
        return 7

    assert flaky.delay().get(timeout=TIMEOUT) == 7
    assert calls == [
        ("before_start", None),
        ("on_retry", "ConnectionError"),
        ("after_return", states.RETRY),
        ("before_start", None),
        ("on_success", 7),
        ("after_return", states.SUCCESS),
    ]


PROGRESS_TASKS = """
import os, time
from celeriac import App

app = App("progtasks", broker=os.environ["PROGRESS_BROKER"], result_extended=True)


@app.task(bind=True)
def crunch(self, steps, gate):
    for step in range(1, steps + 1):
        self.update_state(state="PROGRESS", meta={"step": step, "of": steps})
    deadline = time.monotonic() + 60
    while not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.02)
    return steps
"""


@pytest.mark.parametrize("pool", ["threads", "prefork"])
def test_progress_from_a_worker_process(
    tmp_path: Any, broker_url: str, procs: Any, client: App, pool: str
) -> None:
    """A worker subprocess (threads, or a prefork child) reports PROGRESS; this process sees the
    state and the last meta while the task runs, then the result and the extended request."""
    from .conftest import clean_env  # noqa: PLC0415

    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "progtasks.py").write_text(PROGRESS_TASKS)
    env = clean_env(
        PROGRESS_BROKER=broker_url,
        CELERIAC_HUB_DATA_DIR=str(tmp_path / "hub"),
        CELERIAC_WORKER_POOL=pool,
    )
    procs.worker(broker_url, cwd=app_dir, app="progtasks", env=env, concurrency=1)
    gate = tmp_path / "gate"
    sent = client.send_task("progtasks.crunch", args=(3, str(gate)))
    wait_until(lambda: sent.state == "PROGRESS", TIMEOUT, "PROGRESS from the worker process")
    wait_until(lambda: sent.info == {"step": 3, "of": 3}, TIMEOUT, "the last progress meta")
    assert sent.name == "progtasks.crunch"
    assert sent.worker is not None
    assert sent.worker.startswith("celeriac@")
    gate.touch()
    assert sent.get(timeout=TIMEOUT) == 3
    done = AsyncResult(sent.id, client)
    assert (done.state, done.info, done.args) == (states.SUCCESS, 3, (3, str(gate)))
    assert done.date_done is not None


def test_request_has_celerys_fields(celeriac_app: App, celeriac_worker: TestWorker) -> None:
    """self.request carries Celery's fields: limits, callbacks, correlation id, reply_to..."""
    seen: dict[str, Any] = {}

    @celeriac_app.task(name="ts.after")
    def after(value: Any) -> Any:
        return value

    @celeriac_app.task(bind=True, name="ts.look", time_limit=20, soft_time_limit=10)
    def look(self: Task[Any, Any]) -> str:
        r = self.request
        seen.update(
            limits=(r.soft_time_limit, r.time_limit),
            links=[cb["task"] for cb in r.callbacks or ()],
            ids=(r.correlation_id, r.taskset, r.reply_to is not None),
            flags=(r.ignore_result, r.utc, r.chain, r.errbacks),
        )
        return str(r.id)

    sent = look.apply_async(link=after.s())
    assert sent.get(timeout=TIMEOUT) == sent.id
    assert seen["limits"] == (10, 20)
    assert seen["links"] == ["ts.after"]
    assert seen["ids"] == (sent.id, None, True)
    assert seen["flags"] == (None, True, None, None)
    celeriac_worker.join(TIMEOUT)
