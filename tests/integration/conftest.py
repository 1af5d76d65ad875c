"""Fixtures for the integration tests: real hub and worker processes on loopback.

Every process is started through :class:`Spawner` (the ``procs`` fixture), which writes its
stderr (the JSON log) to a file under ``tmp_path`` and kills whatever is still running at
teardown. Synchronisation is always a poll with a deadline (:func:`wait_for_event`,
:func:`wait_until`), never a fixed sleep.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

from celeriac import App
from celeriac.transport.endpoints import parse_tcp

from ..waiting import wait_until  # (the integration tests import it from here too)

#: Generous on purpose: a loaded 2-core machine can be slow to start a Python process.
START_TIMEOUT = 30.0
RESULT_TIMEOUT = 30.0

#: The task module each test writes into its own tmp_path (formatted with the log paths).
TASKS_SOURCE = '''
"""Tasks for one integration test: every execution is written to an append-only log."""

import os
import time

from celeriac import App, signals

app = App("itasks")
EXEC_LOG = {exec_log!r}
SIGNAL_LOG = {signal_log!r}


def _append(path, line):
    # One os.write on an O_APPEND fd: lines from concurrent threads/processes never interleave.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\\n").encode())
    finally:
        os.close(fd)


@app.task(name="itasks.add")
def add(x, y):
    return x + y


@app.task(name="itasks.record", bind=True)
def record(self, seconds=0.0):
    """Log start and end of the execution (task id + pid), sleeping in between."""
    _append(EXEC_LOG, f"start {{self.request.id}} {{os.getpid()}}")
    if seconds:
        time.sleep(seconds)
    _append(EXEC_LOG, f"end {{self.request.id}} {{os.getpid()}}")
    return os.getpid()


@app.task(name="itasks.fail")
def fail(message):
    raise ValueError(message)


@signals.task_unknown.connect
def _on_unknown(sender=None, name=None, id=None, **kwargs):
    _append(SIGNAL_LOG, f"task_unknown {{name}} {{id}}")


@signals.task_rejected.connect
def _on_rejected(sender=None, message=None, exc=None, **kwargs):
    _append(SIGNAL_LOG, f"task_rejected {{message['id']}} {{type(exc).__name__}}")
'''


# -- helpers -------------------------------------------------------------------------------------


def read_events(logfile: Path) -> list[dict[str, Any]]:
    """The JSON log records of a process so far (non-JSON lines are skipped)."""
    try:
        text = logfile.read_text(errors="replace")
    except FileNotFoundError:
        return []
    records = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line.startswith("{"):
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line still being written
    return records


def count_events(logfile: Path, event: str) -> int:
    """How many log records of this event the process wrote."""
    return sum(1 for r in read_events(logfile) if r.get("event") == event)


def wait_for_event(
    logfile: Path,
    event: str,
    timeout: float = START_TIMEOUT,
    *,
    count: int = 1,
    proc: Proc | None = None,
) -> dict[str, Any]:
    """Wait until ``logfile`` holds ``count`` JSON records with this ``event``; the last one."""

    def found() -> dict[str, Any] | None:
        matches = [r for r in read_events(logfile) if r.get("event") == event]
        return matches[count - 1] if len(matches) >= count else None

    try:
        return wait_until(found, timeout, f"{count} x {event!r} in {logfile.name}", proc)  # type: ignore[no-any-return]
    except pytest.fail.Exception:
        tail = logfile.read_text(errors="replace")[-3000:] if logfile.exists() else "(no log)"
        print(f"--- {logfile} (tail) ---\n{tail}")  # shown by pytest on failure
        raise


def complete_lines(path: Path) -> list[str]:
    """The lines of a log other processes append to, each whole: a line still being written
    (a write crossing a page boundary can be seen half done) is left for the next read."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    return data[: data.rfind(b"\n") + 1].decode(errors="replace").splitlines()


def read_exec_log(path: Path) -> list[tuple[str, str, int]]:
    """The execution log as (phase, task id, pid) tuples, phase being start or end."""
    entries = []
    for line in complete_lines(path):
        phase, task_id, pid = line.split()
        entries.append((phase, task_id, int(pid)))
    return entries


def run_example(folder: Path, script: str, env: dict[str, str]) -> list[str]:
    """Run an example's client script (``python SCRIPT`` in ``folder``) to its end; its stdout
    lines (the test fails with its stderr if it exits non-zero)."""
    done = subprocess.run(
        [sys.executable, script],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=RESULT_TIMEOUT * 3,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def clean_env(**extra: str) -> dict[str, str]:
    """The outer environment without any CELERIAC_* variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERIAC_")}
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONFAULTHANDLER"] = "1"  # a process aborted by Proc.wait logs its threads' stacks
    env.update(extra)
    return env


def listening(url: str) -> bool:
    """Whether something accepts TCP connections at ``tcp://host:port`` (only a refusal says no)."""
    address = parse_tcp(url)
    if address is None:
        return False
    try:
        with socket.create_connection((address.host, int(address.port)), timeout=2.0):
            return True
    except ConnectionRefusedError:
        return False
    except OSError:
        return True


def embed_if_free(url: str) -> list[str]:
    """``--embedded-hub always`` when nothing listens at ``url``, else nothing: a test's worker
    that is to be its own hub says so (given ``--broker``, ``auto`` never embeds)."""
    return [] if listening(url) else ["--embedded-hub", "always"]


# -- processes -----------------------------------------------------------------------------------


@dataclass
class Proc:
    """A process started by :class:`Spawner`, with the file its stderr goes to."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    _files: list[IO[bytes]] = field(default_factory=list)

    @property
    def pid(self) -> int:
        """The process id."""
        return self.popen.pid

    def kill9(self) -> None:
        """SIGKILL the process and reap it."""
        os.kill(self.popen.pid, signal.SIGKILL)
        self.popen.wait(10)

    def wait(self, timeout: float) -> int:
        """The exit code, once the process has exited. Past ``timeout`` it and its children are
        aborted (SIGABRT: ``faulthandler``, on in every process started here, writes each
        thread's stack to the log) and the log's tail is printed, shown by pytest with the
        failure: a hang says where it hung."""
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            children = children_of(self.pid)  # first, so that the stacks do not interleave
            for pid in children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGABRT)
            with contextlib.suppress(pytest.fail.Exception):
                wait_until(lambda: not any(map(running, children)), 5, "the children's exit")
            os.kill(self.pid, signal.SIGABRT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(10)
            tail = self.log.read_text(errors="replace")[-12000:] if self.log.exists() else ""
            print(f"--- {self.name} did not exit in {timeout:g} s; {self.log} (tail) ---\n{tail}")
            raise


def _stat(pid: int | str) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the command name (which may hold spaces and
    parentheses): state, parent pid...; empty if there is no such process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return []


def children_of(pid: int) -> list[int]:
    """The child processes of ``pid`` (from ``/proc``)."""
    return [int(p.name) for p in Path("/proc").glob("[0-9]*") if _stat(p.name)[1:2] == [str(pid)]]


def running(pid: int) -> bool:
    """Whether process ``pid`` exists and has not exited (a zombie has)."""
    return _stat(pid)[:1] not in ([], ["Z"])


class Spawner:
    """Starts processes, records every one, and kills them by pid at teardown."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.procs: list[Proc] = []

    def spawn(self, name: str, argv: list[str], *, cwd: Path, env: dict[str, str]) -> Proc:
        """Start ``argv`` in ``cwd``; stderr to ``<tmp_path>/<name>.log``, stdout to ``.out``."""
        n = sum(1 for p in self.procs if p.name.split("#")[0] == name)
        unique = name if n == 0 else f"{name}#{n}"
        log = self.tmp_path / f"{unique.replace('#', '-')}.log"
        err = open(log, "wb")  # noqa: SIM115 - closed at teardown
        out = open(log.with_suffix(".out"), "wb")  # noqa: SIM115
        popen = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=err)
        proc = Proc(unique, popen, log, [err, out])
        self.procs.append(proc)
        return proc

    def hub(self, url: str, data_dir: Path, *, name: str = "hub", store: str | None = None) -> Proc:
        """Start ``celeriac hub`` and wait until it logged ``hub_started`` (``store``: a
        PostgreSQL URL for ``--store``; None: SQLite in ``data_dir``)."""
        argv = [sys.executable, "-m", "celeriac", "hub", "--bind", url]
        argv += ["--data-dir", str(data_dir), "--log-format", "json"]
        if store:
            argv += ["--store", store]
        proc = self.spawn(name, argv, cwd=self.tmp_path, env=clean_env())
        wait_for_event(proc.log, "hub_started", proc=proc)
        return proc

    def worker(
        self,
        url: str,
        *,
        cwd: Path | None = None,
        app: str = "itasks",
        concurrency: int = 2,
        name: str = "worker",
        env: dict[str, str] | None = None,
        wait: bool = True,
        embedded_hub: str | None = None,
    ) -> Proc:
        """Start ``celeriac -A <app> worker --broker <url>`` in ``cwd`` and wait until
        ``worker_ready``.

        ``embedded_hub``: ``--embedded-hub``. None: ``always`` when nothing listens at ``url``
        (a test's one-command start on its own port: a worker given ``--broker`` never embeds
        in ``auto``), else left to ``auto`` (the worker connects to the hub there).
        """
        argv = [sys.executable, "-m", "celeriac", "-A", app, "worker", "--broker", url]
        argv += ["-c", str(concurrency), "--log-format", "json", "-l", "INFO"]
        argv += embed_if_free(url) if embedded_hub is None else ["--embedded-hub", embedded_hub]
        proc = self.spawn(
            name,
            argv,
            cwd=cwd or self.tmp_path,
            env=env or clean_env(CELERIAC_HUB_DATA_DIR=str(self.tmp_path / "embedded-hub")),
        )
        if wait:
            wait_for_event(proc.log, "worker_ready", proc=proc)
        return proc

    def shutdown(self, grace: float = 5.0) -> None:
        """SIGTERM every live process, then SIGKILL those still alive after ``grace``."""
        live = [p for p in self.procs if p.popen.poll() is None]
        for p in live:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for p in live:
            try:
                p.popen.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.popen.pid, signal.SIGKILL)
                p.popen.wait(10)
        for p in self.procs:
            for f in p._files:
                f.close()


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(autouse=True, scope="session")
def _state_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Default hub stores (``$XDG_STATE_HOME/celeriac/...``) of every process started by a test
    land in a temporary folder, never in the real home directory."""
    saved = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("state-home"))
    yield
    if saved is None:
        del os.environ["XDG_STATE_HOME"]
    else:
        os.environ["XDG_STATE_HOME"] = saved


def _ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (outgoing connections take ports there)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


#: The ports pick_port has handed out in this run, each pair's two.
_GIVEN: set[int] = set()


def _port_slice() -> tuple[int, int]:
    """This test process's share of the ports below the ephemeral range: under pytest-xdist each
    worker draws from its own slice, so two workers never hand out the same pair (they would
    both find it free before either hub binds it)."""
    low, high = 20_000, _ephemeral_low() - 2
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", ... under xdist
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if not worker.startswith("gw") or count < 2:
        return low, high
    width = (high - low) // count
    index = int(worker[2:]) % count
    return low + index * width, low + (index + 1) * width


def pick_port() -> int:
    """A broker port whose events port (broker port + 1) is free too.

    A hub binds its broker port and the port above it (events). Port 0 cannot reserve such a
    pair, and a port from the ephemeral range can be taken by any outgoing connection (every
    client's) between this check and the hub's bind. So the pair is drawn at random below the
    ephemeral range, where only listeners bind, and both ports are checked free; the draw makes
    two suites on one machine unlikely to pick the same pair (two pytest-xdist workers of one
    suite never do: each has its slice); a pair once given is never given again in this run
    (a test picks several before its hubs bind them).
    """
    rng = random.SystemRandom()
    low, high = _port_slice()
    for _ in range(200):
        port = rng.randrange(low, high)
        if port in _GIVEN or port + 1 in _GIVEN:
            continue
        if _bindable(port) and _bindable(port + 1):
            _GIVEN.update((port, port + 1))
            return port
    raise RuntimeError("no free pair of loopback ports below the ephemeral range")


@pytest.fixture
def free_port() -> int:
    """A loopback TCP port nobody listened on a moment ago, and the one above it too."""
    return pick_port()


@pytest.fixture
def broker_url(free_port: int) -> str:
    """``tcp://127.0.0.1:<free port>``."""
    return f"tcp://127.0.0.1:{free_port}"


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Spawner]:
    """Start processes; all are killed (SIGTERM, then SIGKILL) at teardown."""
    spawner = Spawner(tmp_path)
    yield spawner
    spawner.shutdown()


@dataclass
class TaskModule:
    """The per-test task module: its directory (the worker's cwd) and its log files."""

    dir: Path
    exec_log: Path
    signal_log: Path

    def executions(self) -> list[tuple[str, str, int]]:
        """(phase, task id, pid) for every start/end line written so far."""
        return read_exec_log(self.exec_log)

    def ended(self) -> list[str]:
        """Ids of finished executions, once per execution."""
        return [tid for phase, tid, _ in self.executions() if phase == "end"]


@pytest.fixture
def tasks_module(tmp_path: Path) -> TaskModule:
    """Write ``itasks.py`` into ``tmp_path/app`` (run workers with that as cwd)."""
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    module = TaskModule(app_dir, tmp_path / "exec.log", tmp_path / "signals.log")
    source = TASKS_SOURCE.format(exec_log=str(module.exec_log), signal_log=str(module.signal_log))
    (app_dir / "itasks.py").write_text(textwrap.dedent(source))
    return module


@pytest.fixture
def client(broker_url: str) -> Iterator[App]:
    """A client App in this process pointed at ``broker_url`` (outer environment ignored)."""
    app = App("client", broker=broker_url, environ={})
    yield app
    app.close()
