"""What the ``celeriac`` commands share: the App a command acts on, and the log options."""

from __future__ import annotations

import click

from celeriac._app import App

from .loader import find_app
from .logging import LEVELS

__all__ = ["app_of", "log_format", "log_level"]

#: ``-l/--loglevel``.
log_level = click.option(
    "-l",
    "--loglevel",
    default="INFO",
    show_default=True,
    type=click.Choice(LEVELS, case_sensitive=False),
    help="Log level.",
)
#: ``--log-format``.
log_format = click.option(
    "--log-format",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", "console", "json"]),
    help="console: readable lines; json: one JSON object per line; auto: console on a terminal.",
)


def app_of(ctx: click.Context, broker: str | None = None) -> App:
    """The App a command acts on: the one given (``app.start()``), else ``-A``; ``broker``
    (a ``--broker`` option) overrides its ``broker_url``."""
    spec = ctx.obj.get("app_spec")
    if ctx.obj.get("app") is not None:
        app: App = ctx.obj["app"]
    elif not spec:
        raise click.UsageError("this command needs -A MODULE (the module defining your App)")
    else:
        app = find_app(spec)
    if broker:
        app.conf.broker_url = broker
    return app
