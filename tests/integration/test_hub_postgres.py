"""A hub on PostgreSQL: kill -9 under load loses nothing confirmed; PostgreSQL going away is
"hub store unavailable" to publishers, then the hub recovers by itself; the CLI's --migrate.

PostgreSQL "going away" is real but ours alone: the hub reaches the shared server through a
TCP relay this test runs on loopback; stopping the relay cuts the hub's connection (and
refuses new ones) exactly as a stopped server would, without touching anyone else's server.
Skipped, saying why, where no PostgreSQL server answers (see ``pg_url`` in tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import zmq

from celeriac import App
from celeriac.transport import protocol as p
from celeriac.transport.hubserver import HubServer
from celeriac.transport.pg_schema import SCHEMA_VERSION

from .conftest import RESULT_TIMEOUT, Spawner, TaskModule, clean_env, wait_until

pytestmark = pytest.mark.integration

TASKS = 300


def test_a_hub_killed_mid_run_on_postgres_loses_no_confirmed_task(
    procs: Spawner, broker_url: str, tmp_path: Path, tasks_module: TaskModule, pg_url: str
) -> None:
    """Hub on PostgreSQL, a worker running tasks with results: kill -9 of the hub midway and
    a restart on the same schema; every confirmed task ends with its result (those the worker
    held at the kill may run twice: at-least-once)."""
    hub = procs.hub(broker_url, tmp_path / "hub-data", store=pg_url)
    procs.worker(broker_url, cwd=tasks_module.dir, concurrency=4, env=clean_env())
    client = App("client", broker=broker_url, environ={})
    try:
        results = [client.send_task("itasks.record", args=(0.005,)) for _ in range(TASKS)]
        client.flush(RESULT_TIMEOUT)  # every publish confirmed: on PostgreSQL
        wait_until(
            lambda: len(tasks_module.ended()) >= TASKS // 4,
            timeout=RESULT_TIMEOUT,
            what="a quarter of the tasks to run",
        )
        hub.kill9()
        assert len(tasks_module.ended()) < TASKS, "the kill came too late to prove anything"
        procs.hub(broker_url, tmp_path / "hub-data", store=pg_url, name="hub2")
        for r in results:
            assert isinstance(r.get(timeout=RESULT_TIMEOUT * 2), int)
    finally:
        client.close()
    runs = Counter(tasks_module.ended())
    assert set(runs) == {r.id for r in results}


class Relay:
    """A TCP relay on loopback to PostgreSQL: :meth:`stop` cuts every connection and refuses
    new ones (a server gone), :meth:`start` serves again on the same port (it is back)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):  # wakes the accepting thread (Linux)
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                near, _ = listener.accept()
            except OSError:
                return
            far = socket.create_connection(self.target)
            with self._lock:
                self._open += [near, far]
            for a, b in ((near, far), (far, near)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := src.recv(65536):
            dst.sendall(data)
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


def _through(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")
    host = f"{netloc[0]}@127.0.0.1:{port}" if netloc[0] else f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=host))


class Peer:
    """A DEALER that speaks the protocol, with polled receives."""

    def __init__(self, ctx: zmq.Context[Any], url: str, hello: p.Hello) -> None:
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(url)
        self.send(hello)
        assert isinstance(self.recv(p.Welcome), p.Welcome)

    def send(self, message: Any) -> None:
        self.sock.send_multipart(p.encode(message))

    def recv(self, kind: Any, timeout: float = 15.0) -> Any:
        """The next message of ``kind`` (others are skipped) within ``timeout`` seconds."""
        while self.sock.poll(int(timeout * 1000)):
            message = p.decode(self.sock.recv_multipart())
            if isinstance(message, kind):
                return message
        raise AssertionError(f"no {kind} within {timeout}s")


def hub_behind_relay(
    pg_url: str, tmp_path: Path, *, shared: bool = False
) -> tuple[Relay, zmq.Context[Any], HubServer]:
    """A started hub whose PostgreSQL connection goes through a started :class:`Relay` (stop
    the relay to cut it), in its own ZeroMQ context; the caller stops all three."""
    target = urlsplit(pg_url)
    relay = Relay((target.hostname or "127.0.0.1", target.port or 5432))
    relay.start()
    ctx: zmq.Context[Any] = zmq.Context()
    hub = HubServer(
        "tcp://127.0.0.1:*",
        tmp_path / "data",
        context=ctx,
        events=None,
        store_url=_through(pg_url, relay.port),
        shared=shared,
    )
    hub.start()
    return relay, ctx, hub


def publish(client: Peer) -> Any:
    """Publish one task; the hub's CONF or NACK for it."""
    client.send(p.Publish((p.TaskMessage(uuid.uuid4().hex, "t", b"[]", queue="q"),)))
    return client.recv(p.Confirm | p.Nack)


def test_postgres_going_away_is_store_unavailable_then_recovers(
    pg_url: str, tmp_path: Path
) -> None:
    """The relay stops: publishes are NACKed 'hub store unavailable', the hub keeps serving
    what needs no write; the relay returns: publishes are confirmed again, nothing crashed."""
    relay, ctx, hub = hub_behind_relay(pg_url, tmp_path)
    try:
        decl = p.Declare(queues=(p.QueueDecl("q"),))
        client = Peer(ctx, hub.endpoint, p.Hello("client", "c", declare=decl))
        assert isinstance(publish(client), p.Confirm)
        relay.stop()
        answer = publish(client)
        assert isinstance(answer, p.Nack)
        assert answer.refusals[0].reason.startswith("hub store unavailable")
        assert "password" not in answer.refusals[0].reason
        client.send(p.Stat("unknown-id", 7))  # answered from RAM meanwhile: the hub serves
        relay.start()
        wait_until(lambda: isinstance(publish(client), p.Confirm), 30.0, "publishes accepted again")
        assert hub.state.storage_error is None
        assert hub.state.counters["internal_errors"] == 0
    finally:
        hub.stop()
        relay.stop()
        ctx.destroy(linger=0)


def test_cli_migrate_is_idempotent_and_the_hub_logs_where_it_stores(
    pg_url: str, tmp_path: Path, free_port: int
) -> None:
    """--migrate creates the tables then has nothing to do; the hub's start line names the
    server, the database and the schema, never a password."""
    env = clean_env()
    argv = [sys.executable, "-m", "celeriac", "hub", "--store", pg_url, "--migrate"]
    first = subprocess.run(argv, check=True, capture_output=True, text=True, cwd=tmp_path, env=env)
    assert f"migrated from version 0 to {SCHEMA_VERSION}" in first.stdout
    again = subprocess.run(argv, check=True, capture_output=True, text=True, cwd=tmp_path, env=env)
    assert "nothing to do" in again.stdout
    secret = _with_password(pg_url)
    serve = ["hub", "--bind", f"tcp://127.0.0.1:{free_port}", "--store", secret]
    hub = subprocess.Popen(
        [sys.executable, "-m", "celeriac", *serve, "--log-format", "json"],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines: list[dict[str, Any]] = []
        assert hub.stderr is not None
        for line in hub.stderr:
            with contextlib.suppress(ValueError):
                lines.append(json.loads(line))
            if lines and lines[-1].get("event") == "hub_started":
                break
        connected = next(e for e in lines if e["event"] == "hub_store_connected")
        assert connected["schema"] == pg_url.rpartition("schema=")[2]
        assert connected["database"] == "test"
        assert "s3cret" not in json.dumps(lines)
    finally:
        hub.terminate()
        hub.communicate(timeout=30)  # drains and closes its stderr


def test_an_unreachable_postgres_at_start_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    """Nothing answers at the URL: `celeriac hub` exits 2 with one 'Error:' line."""
    nowhere = ["--store", "postgresql://127.0.0.1:1/test?connect_timeout=2"]
    done = subprocess.run(
        [sys.executable, "-m", "celeriac", "hub", "--bind", "tcp://127.0.0.1:*", *nowhere],
        check=False,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=clean_env(),
        timeout=60,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1
    assert "cannot use the PostgreSQL store" in errors[0]


def _with_password(url: str) -> str:
    """``url`` with a password (trust auth ignores it): it must never reach a log."""
    parts = urlsplit(url)
    user = os.environ.get("PGUSER") or parts.username or getpass.getuser()
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:s3cret@{host}"))
