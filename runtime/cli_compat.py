"""The ``celery worker`` options and ``celery`` commands that Celery users type.

Each one is honoured (``--time-limit``, ``--soft-time-limit``, ``--prefetch-multiplier``,
``--heartbeat-interval``, ``-I/--include``, ``-f/--logfile``, ``--pidfile``, ``-D/--detach``;
the ``result``,
``report`` and ``shell`` commands), accepted with a note where celeriac always behaves that
way (``-E``, ``-O fair``, ``--without-gossip``/``--without-mingle``/``--without-heartbeat``),
or refused with a message that says what to do instead. None is accepted and then ignored.
"""

from __future__ import annotations

import atexit
import code
import contextlib
import json
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from celeriac._app import App

from .loader import find_app

__all__ = [
    "REFUSED_COMMANDS",
    "REFUSED_WORKER_OPTIONS",
    "add_celery_commands",
    "celery_worker_options",
    "prepare_worker_process",
    "worker_settings",
]

_NOT_A_DAEMON = "run the worker under systemd, supervisord or a container (examples/deploy)"

REFUSED_WORKER_OPTIONS: dict[tuple[str, ...], str] = {
    ("--uid",): _NOT_A_DAEMON + ", as the user it should run as",
    ("--gid",): _NOT_A_DAEMON + ", as the group it should run as",
    ("--umask",): _NOT_A_DAEMON + ", with the umask it should use",
    ("--executable",): _NOT_A_DAEMON,
    ("-S", "--statedb"): "revoked task ids are kept durably by the hub; there is no state file",
    ("-s", "--schedule-filename", "--schedule"): "beat keeps its state at the hub, not in a file",
    ("--scheduler",): "beat's scheduler is not pluggable: its state is kept at the hub",
    ("--pool-start-method",): "prefork children always start with forkserver",
    ("--disable-prefetch",): "use --prefetch-multiplier 1 and worker_prefetch_window = 0 "
    "(prefetched messages also go back to the hub after worker_prefetch_giveback seconds)",
}
"""``celery worker`` options celeriac refuses, with what to do instead."""

_NOTES: dict[str, str] = {
    "without_gossip": "--without-gossip: celeriac workers do not gossip; nothing to disable",
    "without_mingle": "--without-mingle: celeriac workers do not mingle; nothing to disable",
    "without_heartbeat": "--without-heartbeat: heartbeats to the hub are how it detects a lost "
    "worker and redelivers its tasks, so they stay on (--heartbeat-interval sets them)",
}

REFUSED_COMMANDS: dict[str, str] = {
    "amqp": "celeriac has no AMQP broker: its hub is administered with `celeriac hub`",
    "graph": "bootsteps and worker graphs do not exist in celeriac",
    "logtool": "logs are JSON (--log-format json): use jq",
    "migrate": "there is no other broker to migrate tasks from",
    "multi": "start one `celeriac worker` per service (systemd, supervisord, containers)",
    "upgrade": "settings keep Celery's lower-case names; old upper-case ones are explained when "
    "you use them",
}
"""``celery`` commands celeriac refuses, with what to do instead."""


#: Where a detached worker logs and writes its pid unless told (in the current directory).
DETACHED_LOGFILE = "celeriac-worker.log"
DETACHED_PIDFILE = "celeriac-worker.pid"


def _refused_param(names: tuple[str, ...], reason: str) -> Callable[[Any], Any]:
    is_flag = names[0] in ("--purge", "--disable-prefetch")
    dest = names[-1].lstrip("-").replace("-", "_") if names[0] != "-s" else "schedule_filename"
    return click.option(
        *names, dest, is_flag=is_flag, default=None, help=f"Not supported: {reason}."
    )


def celery_worker_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add Celery's worker options (honoured, noted or refused) to the worker command."""
    options = [
        click.option("-I", "--include", help="Comma-separated modules to import (include)."),
        click.option(
            "--purge",
            "--discard",
            "discard",
            is_flag=True,
            default=None,
            help="Remove the messages waiting in this worker's queues before it starts.",
        ),
        click.option("--time-limit", type=float, help="Hard time limit, s (task_time_limit)."),
        click.option(
            "--soft-time-limit", type=float, help="Soft time limit, s (task_soft_time_limit)."
        ),
        click.option(
            "--prefetch-multiplier",
            type=click.IntRange(min=1),
            help="Messages held per slot at least (worker_prefetch_multiplier; more while tasks "
            "are quick, see worker_prefetch_window).",
        ),
        click.option(
            "--heartbeat-interval",
            type=float,
            help="Seconds between heartbeats (broker_heartbeat).",
        ),
        click.option("-f", "--logfile", type=click.Path(dir_okay=False), help="Log to this file."),
        click.option("--pidfile", type=click.Path(dir_okay=False), help="Write the pid here."),
        click.option(
            "-D",
            "--detach",
            is_flag=True,
            default=None,
            help="Run in the background (a daemon): logs to --logfile (default "
            f"{DETACHED_LOGFILE}), pid in --pidfile (default {DETACHED_PIDFILE}). Under systemd "
            "or a container, run in the foreground instead.",
        ),
        click.option(
            "-E",
            "--task-events",
            "--events",
            "task_events",
            is_flag=True,
            default=None,
            help="Send task events (worker_send_task_events).",
        ),
        click.option(
            "-O",
            "--optimization",
            type=click.Choice(["default", "fair"]),
            help="Accepted: celeriac always dispatches fairly (by free slots).",
        ),
        click.option("--without-gossip", is_flag=True, default=None, help="Accepted: no gossip."),
        click.option("--without-mingle", is_flag=True, default=None, help="Accepted: no mingle."),
        click.option(
            "--without-heartbeat",
            is_flag=True,
            default=None,
            help="Accepted with a note: heartbeats to the hub stay on.",
        ),
        *(_refused_param(names, reason) for names, reason in REFUSED_WORKER_OPTIONS.items()),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _refused_given(options: dict[str, Any]) -> None:
    for names, reason in REFUSED_WORKER_OPTIONS.items():
        dest = names[-1].lstrip("-").replace("-", "_") if names[0] != "-s" else "schedule_filename"
        if options.get(dest) not in (None, False):
            raise click.UsageError(f"celeriac worker does not support {'/'.join(names)}: {reason}")


def prepare_worker_process(options: dict[str, Any]) -> None:
    """Refuse unsupported options; print the notes; honour --detach, --logfile and --pidfile.

    Called before the app is imported and before any thread or ZeroMQ context exists, so
    ``--detach`` can fork safely.
    """
    _refused_given(options)
    for key, note in _NOTES.items():  # on the terminal, before --logfile takes stderr
        if options.get(key):
            click.echo(f"note: {note}", err=True)
    if options.get("optimization") == "fair":
        click.echo("note: -O fair: celeriac always dispatches by free slots", err=True)
    if options.get("detach"):
        _detach(options)
    if options.get("logfile"):
        sys.stderr.flush()
        fd = os.open(options["logfile"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 2)  # the worker logs to stderr: now to the file
        os.close(fd)
    if options.get("pidfile"):
        _write_pidfile(Path(options["pidfile"]))


def _detach(options: dict[str, Any]) -> None:
    """Become a daemon (Celery's ``-D``): fork twice, leave the terminal's session, stdin and
    stdout on /dev/null, stderr (the log) to --logfile; the starting process exits 0."""
    logfile = Path(options.get("logfile") or DETACHED_LOGFILE).resolve()
    pidfile = Path(options.get("pidfile") or DETACHED_PIDFILE).resolve()
    options["logfile"], options["pidfile"] = str(logfile), str(pidfile)
    _check_pidfile(pidfile)  # refused here, on the terminal, not in the daemon's log
    click.echo(f"detaching: log in {logfile}, pid in {pidfile}", err=True)
    sys.stdout.flush()
    sys.stderr.flush()
    if os.fork() > 0:
        os._exit(0)  # the starting process: done (no atexit handlers, nothing to clean)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)


def _check_pidfile(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError, ValueError):
        other = int(path.read_text().strip())
        if other != os.getpid() and _alive(other):
            raise click.UsageError(f"pidfile {path} names a running process ({other})")


def _write_pidfile(path: Path) -> None:
    _check_pidfile(path)
    pid = os.getpid()
    # Written aside and renamed: whoever sees the file sees the whole pid, never an empty file.
    partial = path.with_name(f".{path.name}.{pid}")
    partial.write_text(f"{pid}\n")
    partial.replace(path)

    def remove() -> None:
        with contextlib.suppress(OSError, ValueError):
            if int(path.read_text().strip()) == pid:
                path.unlink()

    atexit.register(remove)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def worker_settings(app: App, options: dict[str, Any]) -> dict[str, Any]:
    """Apply the honoured options to ``app.conf``; the settings set (for prefork children)."""
    settings: dict[str, Any] = {}
    if options.get("include"):
        extra = [m.strip() for m in options["include"].split(",") if m.strip()]
        settings["include"] = [*app.conf.include, *extra]
    pairs = {
        "time_limit": "task_time_limit",
        "soft_time_limit": "task_soft_time_limit",
        "prefetch_multiplier": "worker_prefetch_multiplier",
        "heartbeat_interval": "broker_heartbeat",
    }
    for option, setting in pairs.items():
        if options.get(option) is not None:
            settings[setting] = options[option]
    if options.get("task_events"):
        settings["worker_send_task_events"] = True
    app.conf.update(settings)
    return settings


# -- commands --------------------------------------------------------------------------------


def _ctx_app(ctx: click.Context) -> App:
    """The App of ``-A`` (or the one ``app.start()`` passed)."""
    obj = ctx.obj or {}
    if obj.get("app") is not None:
        app: App = obj["app"]
        return app
    if not obj.get("app_spec"):
        raise click.UsageError("this command needs -A MODULE (the module defining your App)")
    return find_app(obj["app_spec"])


def _refused_command(name: str, reason: str) -> click.Command:
    def run(**_: Any) -> None:
        raise click.UsageError(f"celeriac has no `{name}` command: {reason}")

    return click.Command(
        name,
        callback=run,
        help=f"Not supported: {reason}.",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )


@click.command("result")
@click.argument("task_id")
@click.option("--timeout", type=float, default=10.0, show_default=True)
@click.pass_context
def result_command(ctx: click.Context, task_id: str, timeout: float) -> None:
    """Print the result of a task by id (waits up to --timeout seconds)."""
    app = _ctx_app(ctx)
    try:
        value = app.AsyncResult(task_id).get(timeout=timeout, propagate=False)
    finally:
        app.close()
    click.echo(json.dumps(value, default=repr))


@click.command("report")
@click.pass_context
def report_command(ctx: click.Context) -> None:
    """Print versions and the settings changed from their defaults (for bug reports)."""
    from celeriac import __version__  # noqa: PLC0415

    click.echo(f"celeriac {__version__} python {platform.python_version()} {sys.platform}")
    if ctx.obj.get("app_spec") or ctx.obj.get("app"):
        for name, value in sorted(_ctx_app(ctx).conf.changes().items()):
            click.echo(f"{name} = {value!r}")


@click.command("shell")
@click.pass_context
def shell_command(ctx: click.Context) -> None:
    """A Python shell with ``app`` and the registered tasks in scope."""
    app = _ctx_app(ctx)
    app.finalize()
    scope: dict[str, Any] = {"app": app, "celery": app}
    scope.update({name.rsplit(".", 1)[-1]: task for name, task in app.tasks.items()})
    code.interact(banner=f"celeriac shell: app, {', '.join(sorted(scope)[:10])}...", local=scope)


def add_celery_commands(group: click.Group) -> None:
    """Add ``result``, ``report``, ``shell`` and the refused commands (never over another)."""
    commands = [result_command, report_command, shell_command]
    commands += [_refused_command(name, why) for name, why in REFUSED_COMMANDS.items()]
    for command in commands:
        if command.name not in group.commands:
            group.add_command(command)
