"""The embedded hub in a child process of its worker, so that the two do not share one GIL.

How it works
------------
:class:`HubProcess` starts the hub as a new Python interpreter (``sys.executable``) that
imports the worker's ``sys.path`` and then only :mod:`.embedded_child`, over a socket pair it
inherits: not ``multiprocessing``'s ``spawn``, which imports the worker's ``__main__`` module
again in the child (the whole CLI; or a user's script, run again if it lacks an
``if __name__ == "__main__"`` guard). The child (:func:`hub_child_main`) configures logging as
its worker's (same stream, format and level), rebuilds the worker's settings (every one given,
by the app or the ``CELERIAC_*`` environment: the child reads no environment itself) and
serves with :func:`~.hub.run_hub`,
the start path of ``celeriac hub``: the same settings, CURVE keys and store as the hub thread
had. It listens at ``broker_url`` and at an ``ipc://`` address of its own (without CURVE: see
:func:`_local_endpoint`) that its worker (and a prefork parent) uses instead of TCP. Its first
words on the pipe are "ready" (with where its store is) or why it cannot start; the worker
decides from them as it did from the thread's constructor (:mod:`.embedded`).

One thread of the worker, ``celeriac-hub-watch``, starts the child and every replacement and
watches it. That thread lives as long as the hub, so the kernel's ``PR_SET_PDEATHSIG``
(:mod:`.parent_death`: sent when the *starting thread* ends) means "the worker died": a worker
killed with ``kill -9`` takes its hub with it (``SIGKILL``, as the thread died with it before).
A child that dies alone is logged (``embedded_hub_exited``) and started again after the backoff
of the one restart policy (:data:`RESTART_POLICY`); past its intensity, or if the replacement
cannot start, the worker stops with the reason (:data:`EXIT_HUB_DIED`, as when the hub thread
died). The store keeps every confirmed task across either.

A worker restarted right after a ``kill -9`` may find the old child still exiting and holding
the data directory's lock (and the port): the new child waits for such a holder, for a while,
and says so (:mod:`.embedded_child`). A live holder is refused at once, as before.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, Pipe
from pathlib import Path
from typing import Any, Final

import zmq

from celeriac._conf import Settings
from celeriac._log import get_logger
from celeriac.actors.restart import Escalate, RestartPolicy, RestartTracker
from celeriac.exceptions import ImproperlyConfigured
from celeriac.transport.hubfiles import HubAddressError

from .cpu_affinity import unpinned
from .embedded_child import HubChildOptions
from .logging import log_format

__all__ = ["EXIT_HUB_DIED", "RESTART_POLICY", "HubProcess"]

_log = get_logger("celeriac.worker")

#: The exit code of a worker whose embedded hub died and could not be started again.
EXIT_HUB_DIED: Final = 70
#: At most 3 restarts of the hub child within 60 s, 0.1-0.2 s after the first death, doubling,
#: at most 2 s: a hub that keeps dying (a broken store, a full disk) stops its worker.
RESTART_POLICY: Final = RestartPolicy(intensity=3, period=60.0, backoff=(0.2, 2.0))
#: How long a stopping worker waits for its hub child to commit and exit before SIGKILL.
STOP_GRACE: Final = 10.0
#: How often a starting child is looked at while it has not answered (seconds).
WATCH_POLL: Final = 0.1
#: The child's program (``python -c``; its argument: the inherited socket's descriptor). Only
#: the standard library until the worker's ``sys.path`` (the first message) is in place; a
#: Ctrl-C or SIGTERM meant for the worker's process group must not stop it while it imports
#: (SIGTERM stays blocked: see :func:`~.embedded_child.stop_on_workers_sigterm`).
_CHILD_PROGRAM: Final = """\
import pickle, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
from multiprocessing.connection import Connection
conn = Connection(int(sys.argv[1]))
try:
    sys.path[:] = conn.recv()
    options = conn.recv_bytes()
except EOFError:  # the worker died before it said how to serve
    raise SystemExit(1)
from celeriac.runtime.embedded_child import hub_child_main
hub_child_main(pickle.loads(options), conn)
"""


@dataclass(frozen=True, slots=True)
class _Started:
    pid: int
    data_dir: Path
    store_url: str | None
    store_description: str


class HubProcess:
    """The embedded hub, served by a child process; :meth:`start` it, then :meth:`stop` it.

    ``on_death(reason)`` is called (in the watching thread) when the hub cannot be kept
    running; the default logs and ends the worker with :data:`EXIT_HUB_DIED`.
    """

    def __init__(
        self,
        conf: Settings,
        *,
        on_death: Callable[[str], None] | None = None,
        policy: RestartPolicy = RESTART_POLICY,
    ) -> None:
        local, self._private_dir = _local_endpoint(conf)
        self._options = HubChildOptions(
            settings=_picklable({name: conf[name] for name in conf if conf.is_set(name)}),
            local=local,
            loglevel=logging.getLevelName(logging.getLogger().getEffectiveLevel()),
            log_format=log_format(),
            parent_pid=os.getpid(),
        )
        #: The address the worker's own connection uses (no TCP, no CURVE handshake).
        self.local_endpoint: str = local
        self.on_death = on_death or _exit_worker
        self._tracker = RestartTracker(policy)
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._first: list[_Started | BaseException] = []
        self._first_done = threading.Event()
        self._thread: threading.Thread | None = None
        self.data_dir = Path()
        self.store_url: str | None = None
        self.store_description = ""
        self.pid: int | None = None

    def start(self) -> None:
        """Start the child and wait until it serves; raises why it cannot (e.g.
        :class:`HubAddressError` when the address is taken)."""
        self._thread = threading.Thread(target=self._watch, name="celeriac-hub-watch", daemon=True)
        self._thread.start()
        self._first_done.wait()
        outcome = self._first[0]
        if isinstance(outcome, BaseException):
            self._thread.join()
            self._remove_private_dir()
            raise outcome
        self._adopt(outcome)
        # A worker that exits without stop() (an error after this) still stops its hub
        # gently; the kernel's SIGKILL (module docs) is for a worker that cannot.
        atexit.register(self.stop)

    def stop(self) -> None:
        """Ask the child to finish its turn, commit and exit (SIGTERM); wait for it (at most
        :data:`STOP_GRACE` s, then SIGKILL)."""
        atexit.unregister(self.stop)
        self._stopping.set()
        _terminate(self._process)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(STOP_GRACE)
            if thread.is_alive():  # the child ignored SIGTERM, or hangs
                process = self._process
                assert process is not None
                _log.warning("embedded_hub_killed", pid=process.pid, after=STOP_GRACE)
                with contextlib.suppress(OSError):
                    process.kill()
                thread.join()
        self._remove_private_dir()

    def _remove_private_dir(self) -> None:
        if self._private_dir is not None:
            shutil.rmtree(self._private_dir, ignore_errors=True)

    # -- the watching thread (starts every child: see the module docs on PR_SET_PDEATHSIG)

    def _watch(self) -> None:
        try:
            started = self._spawn()
        except BaseException as exc:
            self._first.append(exc)
            self._first_done.set()
            return
        self._first.append(started)
        self._first_done.set()
        while not self._stopping.is_set():
            process = self._process
            assert process is not None
            process.wait()  # blocks until the child exits; only this thread reaps it
            if self._stopping.is_set():
                break
            reason = self._replace(process)
            if reason is not None:
                _log.critical("embedded_hub_gave_up", reason=reason, exit=EXIT_HUB_DIED)
                self.on_death(reason)
                return
        process = self._process
        assert process is not None
        _terminate(process)  # again: stop() may have signalled the one being replaced
        process.wait()  # stop() kills it after STOP_GRACE

    def _replace(self, dead: subprocess.Popen[bytes]) -> str | None:
        """Start a new child for the ``dead`` one; None once it serves, else why not."""
        how = _how(dead.returncode)
        _log.error("embedded_hub_exited", pid=dead.pid, how=how)
        decision = self._tracker.failed("hub")
        if isinstance(decision, Escalate):
            return (
                f"the embedded hub's process died {decision.restarts} times within "
                f"{decision.period:g} s (the last with {how}): see the errors above"
            )
        if self._stopping.wait(decision.delay):
            return None
        try:
            started = self._spawn()
        except Exception as exc:
            if self._stopping.is_set():  # stopped while it started: nothing to give up on
                return None
            return f"the embedded hub's process died ({how}) and cannot start again: {exc}"
        self._adopt(started)
        _log.warning("embedded_hub_restarted", old_pid=dead.pid, pid=started.pid, after=how)
        return None

    def _spawn(self) -> _Started:
        """Start a child; its "ready" (or why it cannot start) is the answer."""
        ours, theirs = Pipe()  # a socket pair: the child's end is inherited, ours is not
        try:
            with unpinned():  # a hub restarted by a pinned worker keeps every CPU
                process = subprocess.Popen(
                    [sys.executable, "-c", _CHILD_PROGRAM, str(theirs.fileno())],
                    stdin=subprocess.DEVNULL,
                    pass_fds=(theirs.fileno(),),
                )
        finally:
            theirs.close()
        self._process = process
        try:
            ours.send(sys.path)
            ours.send_bytes(pickle.dumps(self._options))
            message = _answer(ours, process)
        finally:
            ours.close()
        kind = message[0]
        if kind == "ready":
            return _Started(message[1], Path(message[2]), message[3], message[4])
        process.wait()
        if kind == "address":
            raise HubAddressError(message[1], zmq.ZMQError(message[2]))
        raise ImproperlyConfigured(message[1])

    def _adopt(self, started: _Started) -> None:
        self.pid = started.pid
        self.data_dir = started.data_dir
        self.store_url = started.store_url
        self.store_description = started.store_description


def _answer(conn: Connection, process: subprocess.Popen[bytes]) -> Any:
    """The child's first words ("ready", or why it cannot start); an error if it exits first."""
    try:
        while not conn.poll(WATCH_POLL):
            if process.poll() is not None and not conn.poll(0):
                raise EOFError
        return conn.recv()
    except (EOFError, OSError):
        process.wait()
        raise ImproperlyConfigured(
            f"the embedded hub's process exited before it served (exit code "
            f"{process.returncode}): see its errors above"
        ) from None


def _terminate(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM unless reaped (``Popen`` checks first: safe beside the watching thread's
    ``wait``)."""
    if process is not None:
        with contextlib.suppress(OSError):
            process.terminate()


def _how(code: int) -> str:
    """``signal SIGKILL`` or ``exit code 1``: how a child ended, for the log."""
    if code >= 0:
        return f"exit code {code}"
    try:
        return f"signal {signal.Signals(-code).name}"
    except ValueError:
        return f"signal {-code}"


def _exit_worker(_reason: str) -> None:
    """A worker must not live on hub-less (its clients would hang): it exits at once; the store
    keeps every confirmed task for the next start, and a supervisor restarts the worker."""
    os._exit(EXIT_HUB_DIED)


def _picklable(values: dict[str, Any]) -> dict[str, Any]:
    """The settings that can cross to the child (a hub's are strings, numbers and paths; a
    task route given as a function cannot, and the hub never reads it)."""
    kept = {}
    for name, value in values.items():
        try:
            pickle.dumps(value)
        except Exception:  # noqa: S112 - not a hub setting: the child goes without it
            continue
        kept[name] = value
    return kept


def _local_endpoint(conf: Settings) -> tuple[str, Path | None]:
    """The ``ipc://`` address the worker's own connection uses, and the directory to remove
    at the end (None: nothing to remove).

    The hub binds it without CURVE (see ``also_bind`` in :class:`HubServer`): with CURVE on,
    it is a socket file in a directory only this user can enter; without, an abstract-namespace
    address (Linux; no file to leave behind), which any local process could reach, as it could
    the loopback TCP port.
    """
    if conf["hub_curve_secret_key_file"] is None and sys.platform.startswith("linux"):
        return f"ipc://@celeriac-hub-{os.getpid()}-{time.monotonic_ns()}", None
    private = Path(tempfile.mkdtemp(prefix="celeriac-hub-"))  # mode 0700
    return f"ipc://{private / 'hub.ipc'}", private
