"""Setting a hub up: its address, its data directory (locked: one hub per store) and its store.

What :class:`~celeriac.transport.hubserver.HubServer` does once, before its loop runs; kept out
of the loop's module so that one reads as the loop.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import zmq

from celeriac._log import get_logger
from celeriac.exceptions import ImproperlyConfigured

from .curve import CurveServer
from .portholder import port_holder
from .sockets import configure_events

if TYPE_CHECKING:
    from .store import SQLiteStore, Store

__all__ = [
    "HubAddressError",
    "bind",
    "bind_events",
    "default_data_dir",
    "describe_url",
    "lock_data_dir",
    "open_data_dir",
    "open_postgres",
    "open_store",
    "release_lock",
]

_log = get_logger("celeriac.hub")


class HubAddressError(ImproperlyConfigured):
    """The hub cannot listen at an address: it is in use, or not an address of this machine."""

    def __init__(self, url: str, exc: zmq.ZMQError) -> None:
        self.url = url
        self.errno = exc.errno
        if exc.errno == errno.EADDRINUSE:
            holder = port_holder(url)
            held = f"held by {holder}; " if holder else ""
            why = f"the address is in use ({held}is a hub already running there?)"
        elif exc.errno == errno.EADDRNOTAVAIL:
            why = (
                "that address is not one of this machine's (a hub on another machine is "
                "reached with --broker, not bound)"
            )
        else:
            why = str(exc)
        super().__init__(f"cannot listen at {url}: {why}")


def default_data_dir(bind: str) -> Path:
    """Where a hub bound at ``bind`` keeps its store when ``hub_data_dir`` is not set.

    ``$XDG_STATE_HOME/celeriac/hub-<host>-<port>`` (``~/.local/state`` when unset): absolute
    and the same whatever the current directory, so a worker restarted elsewhere finds the
    tasks its embedded hub had stored; one per address, so two hubs never share a store.
    """
    state_home = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    address = bind.partition("://")[2].replace("[", "").replace("]", "")
    name = re.sub(r"[^A-Za-z0-9.-]+", "-", address.replace(":", "-")).strip("-")
    return Path(state_home) / "celeriac" / f"hub-{name or 'default'}"


def bind(sock: zmq.Socket[Any], url: str) -> None:
    """Bind ``sock`` at ``url``; a failure is a :class:`HubAddressError` that says why."""
    try:
        sock.bind(url)
    except zmq.ZMQError as exc:
        raise HubAddressError(url, exc) from None


def bind_events(
    ctx: zmq.Context[Any], url: str, curve: CurveServer | None
) -> tuple[zmq.Socket[Any] | None, str | None]:
    """An XPUB socket for events (under the same CURVE rules as the commands; XPUB so the hub
    reads the subscriptions and builds no events while there are none); a taken port disables
    events with a warning, not the hub."""
    pub: zmq.Socket[Any] = ctx.socket(zmq.XPUB)
    configure_events(pub, url)
    if curve is not None:
        curve.apply(pub)
    try:
        pub.bind(url)
    except zmq.ZMQError as exc:
        pub.close(0)
        _log.warning(
            "events_disabled",
            endpoint=url,
            error=str(exc),
            hint="set hub_events_url to a free address",
        )
        return None, None
    return pub, pub.getsockopt_string(zmq.LAST_ENDPOINT)


def open_data_dir(data_dir: Path) -> IO[str]:
    """Create and lock the data directory; an unusable one is one clear error."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        return lock_data_dir(data_dir)
    except OSError as exc:
        raise ImproperlyConfigured(
            f"cannot use the data directory {data_dir}: {exc.strerror or exc} (set --data-dir "
            "or hub_data_dir to a writable directory)"
        ) from None


def open_store(data_dir: Path, sync: str) -> SQLiteStore:
    """The store in ``data_dir``; a file SQLite cannot open or write is one clear error."""
    # Imported here: a worker imports this module (addresses, data directories) but opens no
    # store unless it runs the hub in a thread (start-up time, issue 18).
    import sqlite3  # noqa: PLC0415

    from .store import SQLiteStore  # noqa: PLC0415

    try:
        return SQLiteStore(data_dir / "hub.sqlite3", sync=sync)
    except (OSError, sqlite3.Error) as exc:
        raise ImproperlyConfigured(
            f"cannot open the hub's store in {data_dir}: {exc} (is the directory writable, "
            "the disk not full?)"
        ) from None


def open_postgres(url: str, sync: str, *, shared: bool = False) -> Store:
    """The store in PostgreSQL (``pip install 'celeriac[postgres]'``); created on first use.
    ``shared``: one of several hubs on the schema (:mod:`.store_pg_shared`)."""
    try:
        from .store_pg_shared import SharedPostgresStore  # noqa: PLC0415 - psycopg is optional
        from .store_postgres import PostgresStore  # noqa: PLC0415
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"hub_store_url is a PostgreSQL URL but psycopg is missing ({exc}): "
            "pip install 'celeriac[postgres]'"
        ) from None
    return SharedPostgresStore(url, sync=sync) if shared else PostgresStore(url, sync=sync)


def describe_url(url: str) -> str:
    """``postgresql://user@host:port/db`` without its password, for the start line."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")
    user = netloc[0].partition(":")[0]
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "password"])
    return urlunsplit(
        parts._replace(netloc=f"{user}@{netloc[2]}" if user else netloc[2], query=query)
    )


def lock_data_dir(data_dir: Path) -> IO[str]:
    """Hold an exclusive lock on the data directory: two hubs must never share one store."""
    handle = open(data_dir / "hub.lock", "a+")  # noqa: SIM115 - held for the hub's lifetime
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise ImproperlyConfigured(
            f"another hub is already using the data directory {data_dir}"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def release_lock(handle: IO[str]) -> None:
    """Let another hub use the data directory locked by :func:`lock_data_dir`."""
    fcntl.flock(handle, fcntl.LOCK_UN)
    handle.close()


def open_bound(
    router: zmq.Socket[Any],
    url: str,
    *,
    also_bind: tuple[str, ...],
    curve: CurveServer | None,
    data_dir: Path,
    store_url: str | None,
    sync: str,
    shared: bool,
) -> tuple[IO[str] | None, Store]:
    """Bind a hub's ``router`` at ``url`` and open its store: the data directory's lock (None
    for PostgreSQL, whose advisory lock keeps one hub per schema) and the store. If anything
    fails, what was taken is given back (the socket closed, the lock released, CURVE stopped)
    and the error raised."""
    lock: IO[str] | None = None
    # Bind before touching the data directory: a worker probing for a hub (EADDRINUSE: one
    # already listens) must not create, lock or open a store there.
    try:
        # ``also_bind``: the owner's own local addresses (its worker's connection to an
        # embedded hub, an ipc:// path only its user can reach), bound before CURVE is
        # applied: ZeroMQ fixes an endpoint's mechanism when it binds, and the owner holds
        # the hub's keys anyway (an in-process peer never had a handshake either).
        for address in also_bind:
            bind(router, address)
        if curve is not None:  # the ZAP handler runs before the first peer can knock
            curve.apply(router)
            curve.start(router.context)
        bind(router, url)
        if store_url:
            return None, open_postgres(store_url, sync, shared=shared)
        lock = open_data_dir(data_dir)
        return lock, open_store(data_dir, sync)
    except BaseException:
        router.close(0)
        if lock is not None:
            release_lock(lock)
        if curve is not None:
            curve.stop()
        raise
