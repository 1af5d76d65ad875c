"""The beat node: the timer actor wired to the App's connection to the hub.

How it works
------------
:class:`Beat` finalizes the App (so ``@app.on_after_configure.connect`` receivers have added
their ``add_periodic_task`` entries), binds every schedule to the App (its ``timezone``),
logs the schedule it loaded, sends ``beat_init`` (and ``beat_embedded_init`` inside a worker,
``worker -B``) and starts the :class:`~celeriac.actors.beat.BeatTimer` actor. The actor reaches
the hub through :class:`ClientPort`: lease requests and state saves are request/answer
messages (``BEAT_LEASE``/``BEAT_SAVE`` -> ``BEAT_GRANT``) on the App's own client connection,
and ticks are ordinary publishes (``app.send_task`` with the derived task id, so routing,
``task_routes`` and the publish signals apply). Every later assignment of ``beat_schedule``
(``add_periodic_task`` included) is followed: the actor is told at once.

The lease is the App's name (``app.main``): every beat of one App shares one lease, so
however many run, one fires. Its length is three heartbeats (``broker_heartbeat``, 2 s: a
6 s lease, renewed every 2 s), the same rule by which the hub declares a silent peer dead.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import threading
import uuid
from collections.abc import Mapping
from typing import Any, Final

from celeriac import signals
from celeriac._app import App
from celeriac._beatplan import Tick
from celeriac._log import get_logger
from celeriac.actors.beat import BeatTimer
from celeriac.exceptions import PublishError, TimeoutError
from celeriac.schedules import BaseSchedule
from celeriac.transport import protocol as p

__all__ = ["Beat", "ClientPort", "beat_holder_name", "lease_key"]

_log = get_logger("celeriac.beat")

#: Longest wait for the hub's answer to a lease request or a state save (seconds).
ANSWER_TIMEOUT: Final = 2.0


def lease_key(app: App) -> str:
    """The lease (and state) name of an App's schedule: its ``main`` name."""
    return app.main if app.main and app.main != "__main__" else "celeriac"


def beat_holder_name() -> str:
    """This beat's name at the hub, unique per incarnation (``beat@host:pid:nonce``)."""
    return f"beat@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class ClientPort:
    """The timer's way to the hub: the App's client (see the module docstring)."""

    def __init__(self, app: App, key: str, holder: str) -> None:
        self.app = app
        self.key = key
        self.holder = holder

    def _ask(self, message: Any) -> p.BeatGrant | None:
        client = self.app._client()
        timeout = min(ANSWER_TIMEOUT, 2 * float(self.app.conf.broker_heartbeat))
        answer = client.request(message, timeout)
        return answer if isinstance(answer, p.BeatGrant) else None

    def lease(self, ttl: float) -> p.BeatGrant | None:
        """Ask for (or renew) the lease."""
        return self._ask(lambda rid: p.BeatLease(self.key, self.holder, ttl, rid))

    def release(self) -> None:
        """Give the lease up."""
        self._ask(lambda rid: p.BeatLease(self.key, self.holder, 0.0, rid))

    def save(self, state: Mapping[str, float]) -> p.BeatGrant | None:
        """Store the last-run state (refused by the hub unless this beat holds the lease)."""
        return self._ask(lambda rid: p.BeatSave(self.key, self.holder, dict(state), rid))

    def send(self, tick: Tick) -> None:
        """Publish one tick under its derived id; log what was sent."""
        options: dict[str, Any] = dict(tick.options)
        headers = {"periodic_task_name": tick.entry, **(options.pop("headers", None) or {})}
        result = self.app.send_task(
            tick.task, tick.args, tick.kwargs, task_id=tick.task_id, headers=headers, **options
        )
        _log.info(
            "beat_sent",
            entry=tick.entry,
            task=tick.task,
            id=result.id,
            slot=tick.slot.isoformat(),
            args=list(tick.args),
            kwargs=dict(tick.kwargs),
        )

    def flush(self, timeout: float) -> bool:
        """Wait for the hub's confirmations; a refused publish is logged and counts as done."""
        try:
            self.app.flush(timeout)
        except TimeoutError:
            return False
        except PublishError as exc:
            _log.error("beat_publish_refused", error=str(exc))
        return True


class Beat:
    """One beat: the timer actor for an App's ``beat_schedule`` (see the module docstring)."""

    def __init__(self, app: App, *, embedded: bool = False) -> None:
        self.app = app
        self.embedded = embedded
        self.key = lease_key(app)
        self.holder = beat_holder_name()
        self.timer: Any = None
        self._unwatch: Any = None
        self._stop = threading.Event()

    def entries(self) -> dict[str, dict[str, Any]]:
        """The schedule now, each schedule bound to the App (its time zone and clock)."""
        entries = {name: dict(e) for name, e in self.app.conf.beat_schedule.items()}
        for entry in entries.values():
            schedule: BaseSchedule = entry["schedule"]
            if schedule.app is None:
                schedule.app = self.app
        return entries

    def start(self) -> None:
        """Load the schedule, say what it is, send the signals, start the timer."""
        self.app.finalize()
        entries = self.entries()
        self._show(entries)
        signals.beat_init.send(sender=self)
        if self.embedded:
            signals.beat_embedded_init.send(sender=self)
        port = ClientPort(self.app, self.key, self.holder)
        conf = self.app.conf
        self.timer = BeatTimer.start(
            port,
            entries,
            heartbeat=float(conf.broker_heartbeat),
            max_interval=float(conf.beat_max_loop_interval),
            cron_starting_deadline=conf.beat_cron_starting_deadline,
            clock=self.app.clock,
        )
        self._unwatch = conf.watch("beat_schedule", lambda _value: self._changed())

    def _changed(self) -> None:
        if self.timer is not None:
            self.timer.proxy().replace(self.entries())

    def _show(self, entries: Mapping[str, Mapping[str, Any]]) -> None:
        moment = dt.datetime.fromtimestamp(self.app.clock.time(), dt.UTC)
        _log.info(
            "beat_starting",
            app=self.key,
            holder=self.holder,
            broker=self.app.conf.broker_url,
            entries=len(entries),
            embedded=self.embedded,
        )
        if not entries:
            _log.warning(
                "beat_schedule_empty",
                hint="set app.conf.beat_schedule or call app.add_periodic_task (inside "
                "@app.on_after_configure.connect); beat follows later changes",
            )
        for name in sorted(entries):
            entry = entries[name]
            schedule = entry["schedule"]
            _log.info(
                "beat_entry",
                entry=name,
                task=entry["task"],
                schedule=repr(schedule),
                next=schedule.next_run(moment).isoformat(),
                args=list(entry["args"]),
                kwargs=dict(entry["kwargs"]),
                options=dict(entry["options"]),
            )

    def stop(self) -> None:
        """Stop the timer (it releases the lease)."""
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        timer, self.timer = self.timer, None
        if timer is not None:
            timer.stop(timeout=10)

    def request_stop(self) -> None:
        """Make :meth:`run` return (from a signal handler or another thread)."""
        self._stop.set()

    def run(self) -> int:
        """``celeriac beat``: start, fire until SIGTERM/SIGINT, stop; the exit code."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda _s, _f: self._stop.set())
        self.start()
        try:
            while not self._stop.wait(1.0):  # the main thread waits here for a signal
                pass
        finally:
            self.stop()
            self.app.close()
        _log.info("beat_stopped", holder=self.holder)
        return 0
