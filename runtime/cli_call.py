"""``celeriac call``: send a task by name, and optionally wait for its result."""

from __future__ import annotations

import datetime
import json
from typing import Any

import click

from celeriac._app import App
from celeriac.exceptions import CeleriacError
from celeriac.result import AsyncResult

from .cli_common import app_of

__all__ = ["call"]


@click.command()
@click.argument("name")
@click.option("-a", "--args", default="[]", help="Positional arguments as a JSON list.")
@click.option("-k", "--kwargs", default="{}", help="Keyword arguments as a JSON object.")
@click.option("--queue", help="Queue to send to (default: task_default_queue).")
@click.option("--countdown", type=float, help="Run no earlier than this many seconds from now.")
@click.option("--eta", help="Run no earlier than this ISO 8601 time (e.g. 2030-01-01T10:00:00Z).")
@click.option("--expires", help="Seconds from now, or an ISO 8601 time, after which it is dropped.")
@click.option("--serializer", help="json, msgpack, pickle or yaml (default: task_serializer).")
@click.option("--exchange", help="Exchange to publish to.")
@click.option("--routing-key", help="Routing key to publish with.")
@click.option("--wait/--no-wait", default=False, help="Wait for the result and print it.")
@click.option("--timeout", type=float, default=30.0, show_default=True, help="With --wait.")
@click.option("-b", "--broker", help="Hub address (default: broker_url).")
@click.option("-v", "--verbose", is_flag=True, help="With --wait: print a failed task's traceback.")
@click.pass_context
def call(
    ctx: click.Context,
    name: str,
    args: str,
    kwargs: str,
    queue: str | None,
    countdown: float | None,
    eta: str | None,
    expires: str | None,
    serializer: str | None,
    exchange: str | None,
    routing_key: str | None,
    wait: bool,
    timeout: float,
    broker: str | None,
    verbose: bool,
) -> None:
    """Send task NAME by name and print its id (or, with --wait, its result).

    With --wait, a task that fails prints one line (its exception) and exits 1; -v adds the
    task's traceback.

    \b
    Example:
      celeriac -A tasks call tasks.add -a '[2, 2]' --countdown 10 --expires 60 --wait
    """
    try:
        parsed_args: Any = json.loads(args)
        parsed_kwargs: Any = json.loads(kwargs)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}") from exc
    if not isinstance(parsed_args, list) or not isinstance(parsed_kwargs, dict):
        raise click.BadParameter("--args must be a JSON list and --kwargs a JSON object")
    app = app_of(ctx, broker) if ctx.obj.get("app_spec") else App("call", broker=broker)
    try:
        options = _send_options(eta, expires, serializer, exchange, routing_key)
        result = app.send_task(
            name, parsed_args, parsed_kwargs, queue=queue, countdown=countdown, **options
        )
        if wait:
            click.echo(json.dumps(_wait(result, timeout, verbose), default=str))
        else:
            app.flush(timeout)
            click.echo(result.id)
    except CeleriacError as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc
    finally:
        app.close()


def _when(value: str, option: str) -> datetime.datetime:
    try:
        when = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{option}: {value!r} is not an ISO 8601 time") from None
    return when if when.tzinfo else when.replace(tzinfo=datetime.UTC)


def _send_options(
    eta: str | None,
    expires: str | None,
    serializer: str | None,
    exchange: str | None,
    routing_key: str | None,
) -> dict[str, Any]:
    """``call``'s --eta, --expires, --serializer, --exchange, --routing-key as send options."""
    options: dict[str, Any] = {}
    if eta:
        options["eta"] = _when(eta, "--eta")
    if expires:
        try:
            options["expires"] = float(expires)
        except ValueError:
            options["expires"] = _when(expires, "--expires")
    for key, value in (
        ("serializer", serializer),
        ("exchange", exchange),
        ("routing_key", routing_key),
    ):
        if value:
            options[key] = value
    return options


def _wait(result: AsyncResult[Any], timeout: float, verbose: bool) -> Any:
    """The task's return value; a task failure becomes one clear line (traceback with -v)."""
    try:
        return result.get(timeout=timeout)
    except CeleriacError:
        raise
    except Exception as exc:
        detail = f"\n{result.traceback}" if verbose and result.traceback else ""
        raise click.ClickException(
            f"task {result.id} failed: {type(exc).__name__}: {exc}{detail}"
        ) from exc
