"""``celeriac hub``: a standalone hub (or ``--migrate`` its PostgreSQL store)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from celeriac._app import App
from celeriac.exceptions import CeleriacError

from .cli_common import log_format, log_level
from .loader import find_app
from .logging import setup_logging

__all__ = ["hub"]


class _StartError(click.ClickException):
    """A process that cannot start (address in use, unusable data dir): exit code 2."""

    exit_code = 2


@click.command()
@click.option(
    "--bind",
    default=None,
    show_default="broker_url, i.e. tcp://127.0.0.1:5555",
    help="Address to listen on: loopback unless you say otherwise. Use tcp://0.0.0.0:PORT "
    "(or this machine's address, or tcp://[::]:PORT for IPv6) to accept other machines; they "
    "need PORT open, and PORT+1 for events (hub_events_url).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the durable store lives (default: hub_data_dir, or "
    "~/.local/state/celeriac/hub-HOST-PORT: one per address, whatever the current directory).",
)
@click.option(
    "--sync",
    type=click.Choice(["normal", "full"]),
    default=None,
    help="normal: survives a killed process; full: also a power cut (slower).",
)
@click.option(
    "--store",
    "store_url",
    default=None,
    metavar="URL",
    help="Keep the store in PostgreSQL instead of SQLite in --data-dir: "
    "postgresql://user@host:5432/dbname[?schema=NAME] (default: hub_store_url; needs "
    "pip install 'celeriac[postgres]'). The tables are created on first start.",
)
@click.option(
    "--shared",
    is_flag=True,
    default=None,
    help="With --store: share the PostgreSQL schema with other hubs started with --shared "
    "(default: hub_store_shared). Any hub's workers run any hub's tasks; a dead hub's tasks "
    "are taken back by the others.",
)
@click.option(
    "--migrate",
    is_flag=True,
    help="Create or upgrade the PostgreSQL tables of --store, print the version and exit "
    "(idempotent).",
)
@log_level
@log_format
@click.pass_context
def hub(
    ctx: click.Context,
    bind: str | None,
    data_dir: Path | None,
    sync: str | None,
    store_url: str | None,
    shared: bool | None,
    migrate: bool,
    loglevel: str,
    log_format: str,
) -> None:
    """Run a standalone hub: the durable router that workers and clients connect to.

    \b
    For several machines, on the hub's machine:
      celeriac hub --bind tcp://0.0.0.0:5555 --data-dir /var/lib/celeriac
    and on every other machine:
      celeriac -A tasks worker --broker tcp://HUB-HOST:5555

    \b
    With the store in PostgreSQL (one hub per schema):
      celeriac hub --store postgresql://celeriac@db-host/celeriac

    \b
    Several hubs on one PostgreSQL schema (each on its own machine):
      celeriac hub --bind tcp://0.0.0.0:5555 --store postgresql://db-host/celeriac --shared
    """
    setup_logging(loglevel, log_format)
    from .hub import migrate_store, run_hub  # noqa: PLC0415

    app = find_app(ctx.obj["app_spec"]) if ctx.obj.get("app_spec") else App("hub")
    try:
        if migrate:
            click.echo(migrate_store(app.conf, store_url))
            return
        code = run_hub(
            app.conf, bind=bind, data_dir=data_dir, sync=sync, store_url=store_url, shared=shared
        )
        sys.exit(code)
    except CeleriacError as exc:  # cannot bind, cannot use the data dir, bad keys: one line, 2
        raise _StartError(str(exc)) from exc
