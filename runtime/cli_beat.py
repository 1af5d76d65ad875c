"""``celeriac beat``: fire the periodic tasks of ``beat_schedule`` in a process of their own."""

from __future__ import annotations

import sys

import click

from celeriac.exceptions import CeleriacError

from .cli_common import app_of, log_format, log_level
from .logging import setup_logging

__all__ = ["beat_command"]


@click.command(name="beat")
@click.option(
    "-b",
    "--broker",
    help="Hub address (default: broker_url, or CELERIAC_BROKER_URL).",
)
@click.option(
    "--max-interval",
    type=click.FloatRange(min=0, min_open=True),
    help="Most seconds beat sleeps before it looks at the schedule again "
    "(beat_max_loop_interval, 300).",
)
@click.option(
    "-s",
    "--schedule",
    "schedule_file",
    help="Not supported: beat keeps each entry's last run at the hub, not in a file.",
)
@click.option(
    "-S",
    "--scheduler",
    help="Not supported: beat's scheduler is not pluggable; its state is kept at the hub.",
)
@log_level
@log_format
@click.pass_context
def beat_command(
    ctx: click.Context,
    broker: str | None,
    max_interval: float | None,
    schedule_file: str | None,
    scheduler: str | None,
    loglevel: str,
    log_format: str,
) -> None:
    """Fire the periodic tasks of beat_schedule (and add_periodic_task) when they are due.

    \b
      celeriac -A proj beat          # a beat process of its own
      celeriac -A proj worker -B     # or beat inside a worker

    Beat logs the schedule it loaded (beat_entry lines) and, at each firing, what it sent
    (beat_sent: entry, task, id, slot). Start as many as you like: one lease per app at the
    hub lets one beat fire at a time; a standby takes over within about three heartbeats
    (broker_heartbeat, 2 s) when the holder dies, and at once when it stops. Each entry's last
    run is kept durably at the hub, so a restarted or new beat neither skips nor repeats a
    slot, and each firing's task id is derived from its entry and slot, so a repeated publish
    is dropped by the hub. Slots missed while no beat ran get one late firing (Celery's
    catch-up), then the entry is back on its schedule. Naive times and crontabs follow the
    timezone and enable_utc settings.
    """
    if schedule_file is not None or scheduler is not None:
        raise click.UsageError(
            "celeriac beat does not support -s/--schedule or -S/--scheduler: beat keeps each "
            "entry's last run at the hub (one beat fires at a time, by a lease there)"
        )
    setup_logging(loglevel, log_format)
    from .beat import Beat  # noqa: PLC0415

    app = app_of(ctx, broker)
    if max_interval is not None:
        app.conf.beat_max_loop_interval = max_interval
    try:
        code = Beat(app).run()
    except CeleriacError as exc:
        raise click.ClickException(str(exc)) from exc
    sys.exit(code)
