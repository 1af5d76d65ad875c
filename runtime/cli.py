"""The ``celeriac`` command line (click): the group, its global ``-A``, and every command.

Each command lives in a module of its own: ``cli_worker.py``, ``cli_beat.py``, ``cli_hub.py``,
``cli_call.py``, ``cli_control.py`` (inspect, control, events...), ``cli_compat.py`` (Celery's
other commands and options), ``keys_cli.py``; what they share is ``cli_common.py``.
"""

from __future__ import annotations

from typing import Any

import click

from celeriac._app import App

from .cli_beat import beat_command
from .cli_call import call
from .cli_common import app_of
from .cli_compat import add_celery_commands
from .cli_control import add_control_commands
from .cli_hub import hub
from .cli_worker import worker
from .keys_cli import keys
from .loader import find_app

__all__ = ["find_app", "main", "run_for_app"]


class _Cli(click.Group):
    """The command group; a global option given after the command gets a hint, not just
    "No such option" (Celery 5 users type ``celery worker -A proj`` from old habits)."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; explain a misplaced ``-A``/``--app``."""
        try:
            return super().invoke(ctx)
        except click.NoSuchOption as exc:
            if exc.option_name not in ("-A", "--app"):
                raise
            raise click.UsageError(
                f"{exc.format_message()}\n{exc.option_name} is a global option: it goes before "
                "the command, e.g. `celeriac -A tasks worker`, not `celeriac worker -A tasks`",
                exc.ctx,
            ) from None


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-A",
    "--app",
    "app_spec",
    metavar="MODULE[:APP]",
    help="The module that defines your App and tasks (e.g. -A tasks).",
)
@click.version_option(package_name="celeriac")
@click.pass_context
def cli(ctx: click.Context, app_spec: str | None) -> None:
    """celeriac: a distributed task framework on actors and ZeroMQ.

    \b
    Quick start (one machine, no broker to install):
      celeriac -A tasks worker            # starts an embedded hub if none answers
      python -c "from tasks import add; print(add.delay(2, 2).get(timeout=10))"
    \b
    Periodic tasks (beat_schedule, add_periodic_task):
      celeriac -A tasks beat              # or: celeriac -A tasks worker -B
    \b
    Many machines:
      celeriac hub --bind tcp://0.0.0.0:5555 --data-dir /var/lib/celeriac
      celeriac -A tasks worker --broker tcp://hub.example:5555
    """
    given = ctx.obj or {}  # app.start()/worker_main() pass their App (run_for_app)
    ctx.obj = {**given, "app_spec": app_spec or given.get("app_spec")}


cli.add_command(worker)
cli.add_command(beat_command)
cli.add_command(hub)
cli.add_command(call)
cli.add_command(keys)
add_control_commands(cli, app_of)  # inspect, control, purge, status, list, events (issue 9)
add_celery_commands(cli)  # result, report, shell; Celery's commands with no meaning here refused


def main() -> None:
    """Entry point of the ``celeriac`` console script and ``python -m celeriac``."""
    cli(prog_name="celeriac")


def run_for_app(app: App, argv: list[str]) -> None:
    """The command line for an App object: ``app.start(argv)`` and ``app.worker_main(argv)``.

    Prefork children import the app again by module: its ``main`` name (``Celery("proj")``)
    is used as ``-A`` unless ``argv`` names one.
    """
    spec = app.main if app.main and app.main != "__main__" else None
    cli.main(args=argv, obj={"app": app, "app_spec": spec}, prog_name="celeriac")
