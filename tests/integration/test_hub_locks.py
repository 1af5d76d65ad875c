"""Hub locks with real processes: one holder at a time, a killed holder frees at expiry, and
the task option ``lock`` skipping or deferring a second run."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest

from celeriac import App

from .conftest import RESULT_TIMEOUT, Spawner, complete_lines, wait_until

pytestmark = pytest.mark.integration

LOCKS_SOURCE = '''
"""Tasks that take hub locks, logging every entry and exit of their critical section."""

import os
import time

from celeriac import App

app = App("ltasks")
LOG = {log!r}
FLAG = {flag!r}


def _append(line):
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\\n").encode())
    finally:
        os.close(fd)


@app.task(name="ltasks.critical")
def critical(n):
    with app.lock("resource", expire=30, blocking=True, timeout=60) as acquired:
        assert acquired
        _append(f"enter {{n}} {{os.getpid()}}")
        time.sleep(0.2)
        _append(f"exit {{n}} {{os.getpid()}}")
    return n


@app.task(name="ltasks.hold")
def hold(expire):
    lock = app.lock("resource", expire=expire)
    assert lock.acquire(blocking=False)
    _append(f"holding {{os.getpid()}}")
    time.sleep(120)


@app.task(name="ltasks.import_once", lock="feed:{{url}}", lock_expire=30)
def import_once(url):
    _append(f"import {{url}}")
    deadline = time.monotonic() + 30
    while not os.path.exists(FLAG) and time.monotonic() < deadline:
        time.sleep(0.02)
    return "imported " + url


@app.task(name="ltasks.import_later", lock="feed:{{url}}", lock_busy="defer", lock_expire=30)
def import_later(url):
    _append(f"later {{url}}")
    return "later " + url
'''


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    """``ltasks.py`` in its own folder (the workers' cwd)."""
    folder = tmp_path / "app"
    folder.mkdir()
    source = LOCKS_SOURCE.format(log=str(tmp_path / "locks.log"), flag=str(tmp_path / "flag"))
    (folder / "ltasks.py").write_text(textwrap.dedent(source))
    return folder


def _lines(tmp_path: Path) -> list[str]:
    return complete_lines(tmp_path / "locks.log")


def test_four_concurrent_tasks_enter_the_critical_section_one_at_a_time(
    procs: Spawner, broker_url: str, tmp_path: Path, app_dir: Path, client: App
) -> None:
    """Four tasks on four slots of two workers, one lock: entries and exits alternate."""
    procs.hub(broker_url, tmp_path / "hub-data")
    for name in ("w1", "w2"):
        procs.worker(broker_url, cwd=app_dir, app="ltasks", name=name, concurrency=2)
    results = [client.send_task("ltasks.critical", [n]) for n in range(4)]
    assert sorted(r.get(timeout=RESULT_TIMEOUT) for r in results) == [0, 1, 2, 3]
    events = [line.split()[:2] for line in _lines(tmp_path)]
    assert len(events) == 8
    for i in range(0, 8, 2):
        assert events[i][0] == "enter"
        assert events[i + 1] == ["exit", events[i][1]], f"overlap in {events}"
    assert {n for _, n in events} == {"0", "1", "2", "3"}


def test_a_killed_holder_frees_the_lock_at_expiry(
    procs: Spawner, broker_url: str, tmp_path: Path, app_dir: Path, client: App
) -> None:
    """The worker holding the lock is SIGKILLed: the lock stays held until it expires, then
    another holder gets it."""
    procs.hub(broker_url, tmp_path / "hub-data")
    worker = procs.worker(broker_url, cwd=app_dir, app="ltasks")
    expire = 3.0
    client.send_task("ltasks.hold", [expire])
    wait_until(
        lambda: any(x.startswith("holding") for x in _lines(tmp_path)), RESULT_TIMEOUT, "the holder"
    )
    taken = time.monotonic()
    worker.kill9()
    lock = client.lock("resource", expire=10)
    assert lock.locked(), "a dead holder's lock is held until it expires"
    assert not lock.acquire(blocking=False)
    assert lock.acquire(blocking=True, timeout=RESULT_TIMEOUT)
    assert time.monotonic() - taken >= expire * 0.5  # it did wait for the expiry
    assert lock.locked()
    lock.release()
    assert not lock.locked()


def test_task_option_lock_skips_or_defers_while_another_run_holds_it(
    procs: Spawner, broker_url: str, tmp_path: Path, app_dir: Path, client: App
) -> None:
    """lock="feed:{url}": a second run of the same url is skipped (None) by default, or
    deferred until the first has finished with lock_busy="defer"; another url runs at once."""
    procs.hub(broker_url, tmp_path / "hub-data")
    procs.worker(broker_url, cwd=app_dir, app="ltasks", concurrency=4)
    first = client.send_task("ltasks.import_once", ["a"])
    wait_until(lambda: "import a" in _lines(tmp_path), RESULT_TIMEOUT, "the first import")
    assert client.send_task("ltasks.import_once", ["a"]).get(timeout=RESULT_TIMEOUT) is None
    later = client.send_task("ltasks.import_later", ["a"])
    other = client.send_task("ltasks.import_once", ["b"])
    wait_until(lambda: "import b" in _lines(tmp_path), RESULT_TIMEOUT, "the other url")
    assert "later a" not in _lines(tmp_path), "deferred while the first holds the lock"
    (tmp_path / "flag").write_text("go")
    assert first.get(timeout=RESULT_TIMEOUT) == "imported a"
    assert other.get(timeout=RESULT_TIMEOUT) == "imported b"
    assert later.get(timeout=RESULT_TIMEOUT) == "later a"
    assert _lines(tmp_path).count("import a") == 1
