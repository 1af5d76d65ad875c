"""The embedded hub's child process (:mod:`.embedded_process` starts and watches it).

How it works
------------
:func:`hub_child_main` asks the kernel for SIGKILL when its worker dies, sets up logging as
its worker's, and serves with :func:`~.hub.run_hub` (``celeriac hub``'s start path) at
``broker_url`` and its worker's local address. It tells its worker "ready" (with where its
store is) once it serves, or why it cannot start.

Its worker stops it with SIGTERM after its own warm shutdown, which still needs the hub. So the
child ignores SIGINT (a Ctrl-C reaches the terminal's whole process group) and every SIGTERM
that is not its worker's (:func:`stop_on_workers_sigterm`: systemd's default stop signals every
process of the service at once, ``kill -TERM -PGID`` the whole group), logging
``hub_sigterm_ignored``: else the hub would be gone before the tasks running in the warm
shutdown report, and they would run again.

Before that, it waits (at most :data:`HOLDER_WAIT` s, logging ``hub_waiting_for_exiting_holder``)
while the data directory's lock is held by a process that is exiting: the hub child of a worker
killed a moment ago, whose files the kernel has not closed yet; then until its port is free. A
live holder is left to the hub's own refusal ("another hub is already using the data
directory").
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Final

from celeriac._conf import Settings
from celeriac._log import get_logger
from celeriac.exceptions import ImproperlyConfigured
from celeriac.transport.endpoints import parse_tcp
from celeriac.transport.hubfiles import HubAddressError, default_data_dir

from .logging import setup_logging
from .parent_death import signal_on_parent_death

__all__ = ["HOLDER_WAIT", "HubChildOptions", "hub_child_main", "stop_on_workers_sigterm"]

#: How long a new hub child waits for an exiting process (the old child of a killed worker)
#: to let go of the data directory and the port (seconds).
HOLDER_WAIT: Final = 10.0


@dataclass(frozen=True, slots=True)
class HubChildOptions:
    """What the hub child needs (pickled to the spawned process)."""

    settings: dict[str, Any]
    local: str
    loglevel: str
    log_format: str
    parent_pid: int


def hub_child_main(opts: HubChildOptions, conn: Connection) -> None:
    """Entry point of the hub's child process (see the module docs on its signals)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal_on_parent_death(signal.SIGKILL)  # the worker's kill -9 is ours (module docs)
    if os.getppid() != opts.parent_pid:  # it died before the kernel was told
        os._exit(1)
    setup_logging(opts.loglevel, opts.log_format)
    from .hub import run_hub  # noqa: PLC0415 - after logging is set up

    code = 1
    try:
        conf = Settings(opts.settings)
        _wait_for_exiting_holder(conf)

        def ready(server: Any) -> None:
            conn.send(
                (
                    "ready",
                    os.getpid(),
                    str(server.data_dir),
                    server.store_url,
                    server.store_description,
                )
            )
            conn.close()
            if not stop_on_workers_sigterm(opts.parent_pid, lambda: server.stop(timeout=0)):
                signal.signal(signal.SIGTERM, lambda _s, _f: server.stop(timeout=0))
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})

        code = run_hub(conf, also_bind=(opts.local,), on_ready=ready, stop_signals=())
    except HubAddressError as exc:
        _tell(conn, ("address", exc.url, exc.errno))
    except ImproperlyConfigured as exc:
        _tell(conn, ("error", str(exc)))
    except BaseException as exc:
        get_logger("celeriac.hub").exception("hub_failed")
        _tell(conn, ("error", f"{type(exc).__name__}: {exc}"[:300]))
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os._exit(code)


def stop_on_workers_sigterm(worker_pid: int, stop: Callable[[], None]) -> bool:
    """Call ``stop`` at the first SIGTERM sent by ``worker_pid``; log and ignore the others.

    SIGTERM must be blocked in every thread (the child's program blocks it on its first line,
    so each thread inherits the mask): a thread of ours takes the signals with
    ``sigwaitinfo``, which says who sent each. False where that is not available (macOS): the
    caller then stops at any SIGTERM, as before (a handler, then SIGTERM unblocked).
    """
    if not hasattr(signal, "sigwaitinfo"):
        return False

    def wait() -> None:
        while (sender := signal.sigwaitinfo({signal.SIGTERM}).si_pid) != worker_pid:
            get_logger("celeriac.hub").warning(
                "hub_sigterm_ignored",
                sender=sender,
                hint="the worker stops its hub after its warm shutdown: stop the worker",
            )
        stop()

    threading.Thread(target=wait, name="celeriac-hub-signals", daemon=True).start()
    return True


def _tell(conn: Connection, message: tuple[Any, ...]) -> None:
    with contextlib.suppress(OSError):  # after "ready" the worker no longer listens
        conn.send(message)


def _wait_for_exiting_holder(conf: Settings) -> None:
    """Wait, at most :data:`HOLDER_WAIT` s, while the data directory's lock is held by a process
    that is exiting (the hub child of a worker killed a moment ago), then until its port is
    free too. A live holder is left to the hub's usual refusal."""
    if conf["hub_store_url"]:
        return  # PostgreSQL: no directory lock here
    data_dir = Path(conf["hub_data_dir"] or default_data_dir(conf["broker_url"])).expanduser()
    deadline = time.monotonic() + HOLDER_WAIT
    told = False
    while (holder := _lock_holder(data_dir / "hub.lock")) is not None and _exiting(holder):
        if not told:
            told = True
            _log_wait(holder, data_dir)
        if time.monotonic() > deadline:
            return  # the hub's own lock attempt says what is wrong
        time.sleep(0.02)
    if not told:
        return
    address = parse_tcp(conf["broker_url"])
    while address is not None and time.monotonic() < deadline:
        with socket.socket() as probe:
            probe.settimeout(1.0)
            if probe.connect_ex((address.host, int(address.port))) != 0:
                return
        time.sleep(0.02)


def _log_wait(pid: int, data_dir: Path) -> None:
    get_logger("celeriac.hub").warning(
        "hub_waiting_for_exiting_holder",
        holder_pid=pid,
        data_dir=str(data_dir),
        at_most=HOLDER_WAIT,
        hint="the hub process of a worker killed a moment ago is exiting",
    )


def _lock_holder(lock: Path) -> int | None:
    """The pid written in a held lock file; None if it is free (or unreadable)."""
    try:
        with lock.open("r") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    return None
                text = handle.read().strip()
                return int(text) if text.isdigit() else -1
            fcntl.flock(handle, fcntl.LOCK_UN)
            return None
    except OSError:
        return None


#: ``PF_EXITING`` in ``/proc/<pid>/stat``'s flags: the process is in its exit path.
_PF_EXITING: Final = 0x4


def _exiting(pid: int, proc: Path = Path("/proc")) -> bool:
    """Whether process ``pid`` is dying: gone, a zombie, exiting, or with SIGKILL pending."""
    if pid <= 0:
        return False
    try:
        stat = (proc / str(pid) / "stat").read_text().rpartition(")")[2].split()
        status = (proc / str(pid) / "status").read_text()
    except OSError:
        return True  # gone: its lock goes with its last file
    if stat[0] in ("Z", "X") or int(stat[6]) & _PF_EXITING:
        return True
    kill_bit = 1 << (signal.SIGKILL - 1)
    for line in status.splitlines():
        if line.startswith(("SigPnd:", "ShdPnd:")) and int(line.split()[1], 16) & kill_bit:
            return True
    return False
