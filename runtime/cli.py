"""The ``celeriac`` command line (click): worker, beat, hub, call."""

from __future__ import annotations

import contextlib
import datetime
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from celeriac import signals
from celeriac._app import App
from celeriac._conf import EMBEDDED_HUB_MODES, WORKER_POOLS
from celeriac.exceptions import CeleriacError
from celeriac.result import AsyncResult

from .cli_compat import (
    add_celery_commands,
    celery_worker_options,
    prepare_worker_process,
    worker_settings,
)
from .cli_control import add_control_commands
from .keys_cli import keys
from .loader import find_app
from .logging import LEVELS, setup_logging

__all__ = ["find_app", "main", "run_for_app"]


class _StartError(click.ClickException):
    """A process that cannot start (address in use, unusable data dir): exit code 2."""

    exit_code = 2


def _split(value: str | None) -> list[str] | None:
    """A comma-separated option as a list (None when not given)."""
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _autoscale(
    _ctx: click.Context, param: click.Parameter, value: str | None
) -> tuple[int, int] | None:
    """``--autoscale MAX,MIN`` (or ``MAX`` alone: MIN is 1) as ``(max, min)``, MAX >= MIN >= 1."""
    if value is None:
        return None
    shape = f"{value!r} is not MAX,MIN (two integers, e.g. 6,2) or MAX"
    parts = [p.strip() for p in value.split(",")]
    if len(parts) > 2 or not all(parts):
        raise click.BadParameter(shape, param=param)
    try:
        high = int(parts[0])
        low = int(parts[1]) if len(parts) == 2 else 1
    except ValueError:
        raise click.BadParameter(shape, param=param) from None
    if low < 1:
        raise click.BadParameter(
            f"MIN must be 1 or more (the pool keeps at least one child), got {value!r}",
            param=param,
        )
    if high < low:
        raise click.BadParameter(
            f"MAX must be >= MIN (the order is MAX,MIN, as in Celery), got {value!r}",
            param=param,
        )
    return high, low


_log_level = click.option(
    "-l",
    "--loglevel",
    default="INFO",
    show_default=True,
    type=click.Choice(LEVELS, case_sensitive=False),
    help="Log level.",
)
_log_format = click.option(
    "--log-format",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", "console", "json"]),
    help="console: readable lines; json: one JSON object per line; auto: console on a terminal.",
)


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


def _app(ctx: click.Context, broker: str | None = None) -> App:
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


@cli.command()
@click.option(
    "-c",
    "--concurrency",
    type=click.IntRange(min=1),
    help="Execution slots (default: worker_concurrency, or the number of CPUs).",
)
@click.option(
    "-P",
    "--pool",
    type=click.Choice(WORKER_POOLS),
    help="threads: N slots in threads; solo: one slot; asyncio: async def tasks on one event "
    "loop, N at a time (sync tasks run in threads); prefork: N child processes, each its own "
    "consumer at the hub, for CPU-bound tasks (a child that dies is replaced, its task "
    "redelivered; see task_reject_on_worker_lost). Time limits: "
    "only prefork kills a task at its hard limit; threads/solo raise TimeLimitExceeded in the "
    "task's thread and asyncio cancels the coroutine, which cannot stop C code or a blocking "
    "call. Default: worker_pool.",
)
@click.option(
    "-Q",
    "--queues",
    help="Comma-separated queues to consume (default: every queue in task_queues, or "
    "task_default_queue).",
)
@click.option(
    "-X", "--exclude-queues", help="Comma-separated queues NOT to consume (of task_queues)."
)
@click.option("-n", "--hostname", help="Node name (default: celeriac@HOSTNAME).")
@click.option(
    "-b",
    "--broker",
    help="Hub address: tcp://host:port (a hostname, an IPv4 address or [IPv6]) or "
    "ipc:///path (default: broker_url, or CELERIAC_BROKER_URL).",
)
@click.option(
    "--embedded-hub",
    type=click.Choice(EMBEDDED_HUB_MODES),
    help="Run the hub inside this worker? auto: only if the broker address is loopback "
    "(127.0.0.1, localhost, [::1]) and nothing listens there; always: this worker is the hub "
    "and binds the broker address; never: connect and wait for the hub. Another machine's "
    "address is never bound. Default: worker_embedded_hub (auto).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where an embedded hub keeps its store (default: hub_data_dir, or "
    "~/.local/state/celeriac/hub-HOST-PORT: one per address, whatever the current directory).",
)
@click.option("-q", "--quiet", is_flag=True, help="Do not print the start-up banner.")
@click.option(
    "-B",
    "--beat",
    "with_beat",
    is_flag=True,
    help="Also run beat in this worker: fire beat_schedule's periodic tasks (see `celeriac "
    "beat --help`). Safe on several workers: one beat fires at a time, by a lease at the hub.",
)
@click.option(
    "--autoscale",
    metavar="MAX,MIN",
    callback=_autoscale,
    help="prefork only: MAX,MIN children (Celery's order), growing and shrinking with load. "
    "Starts MIN; one more child (up to MAX) each time all have been busy for "
    "worker_autoscale_grow_after s (0.5); a child idle for worker_autoscale_keepalive s (30) "
    "leaves (down to MIN). MAX alone means MAX,1. Overrides -c.",
)
@click.option(
    "--max-tasks-per-child",
    type=click.IntRange(min=1),
    help="prefork: replace a child after it ran this many tasks (worker_max_tasks_per_child).",
)
@click.option(
    "--max-memory-per-child",
    type=click.IntRange(min=1),
    help="prefork: replace a child whose resident memory exceeds this many KiB after a task "
    "(worker_max_memory_per_child).",
)
@_log_level
@_log_format
@celery_worker_options  # Celery's other worker options: honoured, noted or refused
@click.pass_context
def worker(
    ctx: click.Context,
    /,
    concurrency: int | None,
    pool: str | None,
    queues: str | None,
    exclude_queues: str | None,
    hostname: str | None,
    broker: str | None,
    embedded_hub: str | None,
    data_dir: Path | None,
    quiet: bool,
    with_beat: bool,
    autoscale: tuple[int, int] | None,
    max_tasks_per_child: int | None,
    max_memory_per_child: int | None,
    loglevel: str,
    log_format: str,
    **celery_options: Any,
) -> None:
    """Start a worker node: run tasks from the hub's queues.

    \b
    One machine: with the default broker (tcp://127.0.0.1:5555) and nothing listening there,
    the worker starts an embedded hub in its own process (data in --data-dir, default
    ~/.local/state/celeriac/hub-127.0.0.1-5555) and says so in its log.
    Several machines: run `celeriac hub --bind tcp://0.0.0.0:5555` on one and
    `celeriac -A tasks worker --broker tcp://HUB-HOST:5555` on the others; a worker whose hub
    does not answer yet logs waiting_for_hub and connects when it appears.

    The first
    SIGTERM/SIGINT is a warm shutdown (running tasks finish, queued ones go back to the hub);
    a second one exits at once (unfinished tasks are redelivered; the log says
    tasks_abandoned and the exit code is 1).

    Task types may be limited on each worker node: @app.task(rate_limit="10/s") (Celery's
    N/s, N/m, N/h; also task_default_rate_limit and task_annotations) and
    @app.task(max_concurrency=2) (at most that many of the type at once). A task waiting for
    its type's limit holds no slot: other types use the -c slots meanwhile. The limits hold
    for the whole node, whatever the pool (with -P prefork the parent holds them).
    """
    prepare_worker_process(celery_options)  # refused options, --logfile, --pidfile, notes
    setup_logging(loglevel, log_format)
    from .worker import WorkerNode  # noqa: PLC0415 - keep `celeriac --help` fast

    try:
        app = _app(ctx, broker)
        given = worker_settings(app, celery_options)  # --time-limit, -I, ...
        if embedded_hub is not None:
            app.conf.worker_embedded_hub = embedded_hub
        if data_dir is not None:
            app.conf.hub_data_dir = str(data_dir.resolve())
        chosen = pool or app.conf.worker_pool
        if autoscale is not None and chosen != "prefork":
            raise click.UsageError(
                f"--autoscale needs -P prefork (the pool is {chosen}): the {chosen} pool's "
                "credit at the hub is fixed at start; use -P prefork for --autoscale"
            )
        if chosen == "prefork":
            from .prefork import PreforkNode  # noqa: PLC0415

            overrides: dict[str, Any] = {"broker_url": app.conf.broker_url, **given}
            if max_tasks_per_child is not None:
                overrides["worker_max_tasks_per_child"] = max_tasks_per_child
            if max_memory_per_child is not None:
                overrides["worker_max_memory_per_child"] = max_memory_per_child
            parent = PreforkNode(
                app,
                app_spec=ctx.obj["app_spec"],
                concurrency=concurrency,
                autoscale=autoscale,
                queues=_split(queues),
                exclude_queues=_split(exclude_queues),
                hostname=hostname,
                settings=overrides,
                loglevel=loglevel,
                log_format=log_format,
                banner=not quiet,
                purge=bool(celery_options.get("discard")),
            )
            with _embedded_beat(app, with_beat):
                code = parent.run()
            sys.exit(code)
        node = WorkerNode(
            app,
            queues=_split(queues),
            exclude_queues=_split(exclude_queues),
            concurrency=concurrency,
            pool=pool,
            hostname=hostname,
            banner=not quiet,
            purge=bool(celery_options.get("discard")),
        )
        with _embedded_beat(app, with_beat):
            code = node.run()
    except CeleriacError as exc:
        raise click.ClickException(str(exc)) from exc
    sys.exit(code)


@contextlib.contextmanager
def _embedded_beat(app: App, enabled: bool) -> Iterator[None]:
    """``worker -B``: beat runs beside the worker, in its process, for the worker's life."""
    if not enabled:
        yield
        return
    from .beat import Beat  # noqa: PLC0415

    beat = Beat(app, embedded=True)

    def stop_first(**_kw: Any) -> None:  # before the worker (and an embedded hub) stops
        beat.stop()

    signals.worker_shutting_down.connect(stop_first, weak=False)
    beat.start()
    try:
        yield
    finally:
        signals.worker_shutting_down.disconnect(stop_first)
        beat.stop()


@cli.command(name="beat")
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
@_log_level
@_log_format
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

    app = _app(ctx, broker)
    if max_interval is not None:
        app.conf.beat_max_loop_interval = max_interval
    try:
        code = Beat(app).run()
    except CeleriacError as exc:
        raise click.ClickException(str(exc)) from exc
    sys.exit(code)


@cli.command()
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
    "(default: hub_store_shared). Each peer connects to one hub; any hub's workers run any "
    "hub's tasks; a dead hub's tasks are taken back by the others.",
)
@click.option(
    "--migrate",
    is_flag=True,
    help="Create or upgrade the PostgreSQL tables of --store, print the version and exit "
    "(idempotent).",
)
@_log_level
@_log_format
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


@cli.command()
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
    app = _app(ctx, broker) if ctx.obj.get("app_spec") else App("call", broker=broker)
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


cli.add_command(keys)


def main() -> None:
    """Entry point of the ``celeriac`` console script and ``python -m celeriac``."""
    cli(prog_name="celeriac")


add_control_commands(cli, _app)  # inspect, control, purge, status, list, events (issue 9)
add_celery_commands(cli)  # result, report, shell; Celery's commands with no meaning here refused


def run_for_app(app: App, argv: list[str]) -> None:
    """The command line for an App object: ``app.start(argv)`` and ``app.worker_main(argv)``.

    Prefork children import the app again by module: its ``main`` name (``Celery("proj")``)
    is used as ``-A`` unless ``argv`` names one.
    """
    spec = app.main if app.main and app.main != "__main__" else None
    cli.main(args=argv, obj={"app": app, "app_spec": spec}, prog_name="celeriac")
