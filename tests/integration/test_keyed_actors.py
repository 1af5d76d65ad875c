"""Keyed actors with real processes: per-key order across clients, spread, kill -9 recovery."""

from __future__ import annotations

import os
import textwrap
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from celeriac import App

from .conftest import RESULT_TIMEOUT, Spawner, wait_until

pytestmark = pytest.mark.integration

ACTORS_SOURCE = '''
"""Keyed actors for one integration test."""

import os

from celeriac import App

app = App("kactors")


@app.actor(name="kactors.Journal")
class Journal:
    """Appends what it is sent; its state survives through the save/load hooks."""

    def __init__(self, key):
        self.key = key
        self.entries = []

    def append(self, client, seq):
        self.entries.append([client, seq])
        return [len(self.entries), os.getpid()]

    def entries_of(self):
        return self.entries

    def where(self):
        return os.getpid()

    def boom(self):
        raise ValueError("boom")

    def save_state(self):
        return {"entries": self.entries}

    def load_state(self, state):
        self.entries = state["entries"]
'''


class Journal:
    """The client's view of the class: only its name and method names matter here."""

    def __init__(self, key: str) -> None:
        self.key = key

    def append(self, client: str, seq: int) -> list[int]: ...

    def entries_of(self) -> list[list[Any]]: ...

    def where(self) -> int: ...

    def boom(self) -> None: ...


@pytest.fixture
def actors_dir(tmp_path: Path) -> Path:
    """``kactors.py`` in its own folder (the workers' cwd)."""
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "kactors.py").write_text(textwrap.dedent(ACTORS_SOURCE))
    return folder


@pytest.fixture
def clients(broker_url: str) -> Iterator[list[App]]:
    """Two client Apps (two connections to the hub), each knowing the Journal actor."""
    apps = [App(f"client{i}", broker=broker_url, environ={}) for i in range(2)]
    for app in apps:
        app.actor(name="kactors.Journal")(Journal)
    yield apps
    for app in apps:
        app.close()


def _pid_of(app: App, key: str) -> int:
    pid: int = app.proxy(Journal, key=key).where().get(timeout=RESULT_TIMEOUT)
    return pid


def test_two_clients_two_keys_two_workers_keep_order_and_count(
    procs: Spawner, broker_url: str, tmp_path: Path, actors_dir: Path, clients: list[App]
) -> None:
    """Interleaved calls from two clients to two keys: each key ran every call exactly once,
    each client's calls in the order sent, and the two keys live on different workers."""
    procs.hub(broker_url, tmp_path / "hub-data")
    workers = [
        procs.worker(broker_url, cwd=actors_dir, app="kactors", name=f"w{i}") for i in (1, 2)
    ]
    keys = ["alpha", "beta"]
    n = 30
    handles = []
    for seq in range(n):
        for c, app in enumerate(clients):
            for key in keys:
                handles.append((key, app.proxy(Journal, key=key).append(f"c{c}", seq)))
    results = [(key, h.get(timeout=RESULT_TIMEOUT)) for key, h in handles]
    for key in keys:
        counts = sorted(r[0] for k, r in results if k == key)
        assert counts == list(range(1, 2 * n + 1)), f"{key}: each call ran exactly once"
        entries = clients[0].proxy(Journal, key=key).entries_of().get(timeout=RESULT_TIMEOUT)
        assert len(entries) == 2 * n
        for c in ("c0", "c1"):
            assert [s for who, s in entries if who == c] == list(range(n)), f"{key}/{c} order"
    pids = {key: {r[1] for k, r in results if k == key} for key in keys}
    assert all(len(p) == 1 for p in pids.values()), "one live instance per key"
    assert pids["alpha"] != pids["beta"], "the two keys were spread over the two workers"
    assert {next(iter(p)) for p in pids.values()} == {w.pid for w in workers}


def test_a_raising_method_fails_the_call_and_the_instance_lives(
    procs: Spawner, broker_url: str, tmp_path: Path, actors_dir: Path, clients: list[App]
) -> None:
    """A method that raises comes back as a failure; the instance keeps its state."""
    procs.hub(broker_url, tmp_path / "hub-data")
    procs.worker(broker_url, cwd=actors_dir, app="kactors")
    proxy = clients[0].proxy(Journal, key="k")
    assert proxy.append("c", 1).get(timeout=RESULT_TIMEOUT)[0] == 1
    with pytest.raises(ValueError, match="boom"):
        proxy.boom().get(timeout=RESULT_TIMEOUT)
    proxy.append.tell("c", 2)
    assert proxy.entries_of().get(timeout=RESULT_TIMEOUT) == [["c", 1], ["c", 2]]


def test_kill_9_of_the_holding_worker_moves_the_key_with_its_state(
    procs: Spawner, broker_url: str, tmp_path: Path, actors_dir: Path, clients: list[App]
) -> None:
    """The worker holding a key is SIGKILLed: calls sent meanwhile are not lost, the key is
    activated on the other worker, and the saved state comes with it."""
    procs.hub(broker_url, tmp_path / "hub-data")
    first = procs.worker(broker_url, cwd=actors_dir, app="kactors", name="w1")
    second = procs.worker(broker_url, cwd=actors_dir, app="kactors", name="w2")
    app = clients[0]
    proxy = app.proxy(Journal, key="survivor")
    for seq in range(5):
        proxy.append("c", seq).get(timeout=RESULT_TIMEOUT)
    holder = _pid_of(app, "survivor")
    victim, other = (first, second) if holder == first.pid else (second, first)
    victim.kill9()
    later = [proxy.append("c", seq) for seq in range(5, 10)]
    answers = [h.get(timeout=RESULT_TIMEOUT) for h in later]
    assert [a[0] for a in answers] == [6, 7, 8, 9, 10], "state survived, nothing lost or doubled"
    assert {a[1] for a in answers} == {other.pid}
    entries = proxy.entries_of().get(timeout=RESULT_TIMEOUT)
    assert [s for _, s in entries] == list(range(10))


def test_idle_instances_stop_and_come_back_with_their_state(
    procs: Spawner, broker_url: str, tmp_path: Path, actors_dir: Path, clients: list[App]
) -> None:
    """After actor_idle_timeout the instance stops; the next call activates it again."""
    procs.hub(broker_url, tmp_path / "hub-data")
    env = dict(os.environ)
    env = {k: v for k, v in env.items() if not k.startswith("CELERIAC_")}
    env.update(CELERIAC_ACTOR_IDLE_TIMEOUT="0.5", CELERIAC_BROKER_HEARTBEAT="0.5")
    worker = procs.worker(broker_url, cwd=actors_dir, app="kactors", env=env)
    proxy = clients[0].proxy(Journal, key="sleepy")
    proxy.append("c", 1).get(timeout=RESULT_TIMEOUT)
    wait_until(lambda: '"actor_stopped"' in worker.log.read_text(), RESULT_TIMEOUT, "the idle stop")
    assert proxy.append("c", 2).get(timeout=RESULT_TIMEOUT)[0] == 2
    started = Counter(line.count('"actor_started"') for line in worker.log.read_text().splitlines())
    assert started[1] == 2, "activated twice: once at first, once after the idle stop"


def test_over_actor_max_instances_idle_keys_are_evicted_with_their_state(
    procs: Spawner, broker_url: str, tmp_path: Path, actors_dir: Path, clients: list[App]
) -> None:
    """Issue 16: a worker keeps at most actor_max_instances (2) keys live: each new key stops
    the least recently used idle one (the hub agreeing); a key called again comes back with
    its saved state."""
    procs.hub(broker_url, tmp_path / "hub-data")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERIAC_")}
    env.update(CELERIAC_ACTOR_MAX_INSTANCES="2")
    worker = procs.worker(broker_url, cwd=actors_dir, app="kactors", env=env)
    keys = [f"k{i}" for i in range(6)]
    for key in keys:
        assert clients[0].proxy(Journal, key=key).append("c", 1).get(timeout=RESULT_TIMEOUT)[0] == 1
    wait_until(
        lambda: worker.log.read_text().count('"evicted"') >= len(keys) - 2,
        RESULT_TIMEOUT,
        "the least recently used keys to be stopped",
        worker,
    )
    for key in keys:  # every key again: each comes back with its one entry
        assert clients[0].proxy(Journal, key=key).append("c", 2).get(timeout=RESULT_TIMEOUT)[0] == 2
    started = worker.log.read_text().count('"actor_started"')
    assert started >= len(keys) + 4, "evicted keys were built again from their saved state"


def test_prefork_children_host_keys(
    procs: Spawner, broker_url: str, tmp_path: Path, actors_dir: Path, clients: list[App]
) -> None:
    """With -P prefork each child hosts keys: calls run exactly once and in order."""
    procs.hub(broker_url, tmp_path / "hub-data")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERIAC_")}
    env["CELERIAC_WORKER_POOL"] = "prefork"
    worker = procs.worker(broker_url, cwd=actors_dir, app="kactors", env=env)
    app = clients[0]
    handles = [app.proxy(Journal, key=f"k{i % 4}").append("c", i // 4) for i in range(40)]
    answers = [h.get(timeout=RESULT_TIMEOUT) for h in handles]
    for k in range(4):
        assert [a[0] for a in answers[k::4]] == list(range(1, 11))
    assert worker.pid not in {a[1] for a in answers}, "run in the children, not the parent"
