"""``celeriac worker``: a worker node (threads, solo, asyncio or prefork), beat inside with -B."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from celeriac import signals
from celeriac._app import App
from celeriac._conf import EMBEDDED_HUB_MODES, WORKER_POOLS
from celeriac.exceptions import CeleriacError

from .cli_common import app_of, log_format, log_level
from .cli_compat import celery_worker_options, prepare_worker_process, worker_settings
from .logging import setup_logging

__all__ = ["worker"]


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


@click.command()
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
    help="Run the hub inside this worker? auto: only if no broker is configured (no --broker, "
    "broker_url or CELERIAC_BROKER_URL) and nothing listens on the default "
    "tcp://127.0.0.1:5555; always: this worker is the hub and binds the broker address; "
    "never: connect and wait for the hub. A given address is never bound in auto: the worker "
    "waits for its hub. Default: worker_embedded_hub (auto).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where an embedded hub keeps its store (default: hub_data_dir, or "
    "~/.local/state/celeriac/hub-HOST-PORT: one per address, whatever the current directory).",
)
@click.option(
    "--cpu-affinity",
    metavar="one|CPUS",
    help="Keep this worker's threads on CPUs (threads, solo, asyncio pools; Linux): 'one' (the "
    "least busy at start) or a list such as 0 or 0,2-3. Quick tasks run faster when the "
    "threads that share the GIL share a CPU; not for C code that releases the GIL, nor for "
    "tasks that start programs. Default: worker_cpu_affinity (None: the kernel places them).",
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
@log_level
@log_format
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
    cpu_affinity: str | None,
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
    One machine: with no broker configured (default tcp://127.0.0.1:5555) and nothing listening
    there, the worker starts an embedded hub (a child process of the worker on 2+ CPUs, else a
    thread: worker_embedded_hub_process; data in --data-dir, default
    ~/.local/state/celeriac/hub-127.0.0.1-5555) and says so in its log.
    Several machines: run `celeriac hub --bind tcp://0.0.0.0:5555` on one and
    `celeriac -A tasks worker --broker tcp://HUB-HOST:5555` on the others; a worker whose hub
    does not answer yet logs waiting_for_hub and connects when it appears.

    The first
    SIGTERM/SIGINT is a warm shutdown (running tasks finish, queued ones go back to the hub);
    a second one exits at once (unfinished tasks are redelivered; the log says
    tasks_abandoned and the exit code is 1). Once its tasks are done, a stopping worker
    exits within 30 s whatever hangs (a bug, a worker_shutdown receiver that never
    returns): it logs shutdown_stuck with every thread's stack and exits 1 (the whole
    stop: within worker_shutdown_timeout + 60 s).

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
        app = app_of(ctx, broker)
        given = worker_settings(app, celery_options)  # --time-limit, -I, ...
        if embedded_hub is not None:
            app.conf.worker_embedded_hub = embedded_hub
        if data_dir is not None:
            app.conf.hub_data_dir = str(data_dir.resolve())
        if cpu_affinity is not None:
            app.conf.worker_cpu_affinity = cpu_affinity
        chosen = pool or app.conf.worker_pool
        if autoscale is not None and chosen != "prefork":
            raise click.UsageError(
                f"--autoscale needs -P prefork (the pool is {chosen}): the {chosen} pool's "
                "credit at the hub is fixed at start; use -P prefork for --autoscale"
            )
        if chosen == "prefork":
            from .prefork import PreforkNode  # noqa: PLC0415

            overrides: dict[str, Any] = dict(given)
            if app.conf.is_set("broker_url"):  # a default left alone may still embed a hub
                overrides["broker_url"] = app.conf.broker_url
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
                code = parent.run(guarded=True)
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
            code = node.run(guarded=True)
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
