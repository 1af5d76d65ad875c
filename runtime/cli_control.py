"""The operators' commands: ``inspect``, ``control``, ``purge``, ``status``, ``list bindings``,
``events`` (see :mod:`celeriac._control` and :mod:`celeriac.runtime.events`).

Output is readable on a terminal (one block per node, Celery's ``-> node: OK`` lines) and
JSON with ``--json`` (one object: node -> answer) for scripts.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

import click

from celeriac._app import App
from celeriac._panel import COMMANDS
from celeriac.events import State

__all__ = ["add_control_commands"]

GetApp = Callable[[click.Context, str | None], App]

INSPECT_VERBS = (
    "ping",
    "active",
    "reserved",
    "scheduled",
    "registered",
    "stats",
    "revoked",
    "active_queues",
    "conf",
    "query_task",
    "report",
    "clock",
)
#: control VERB: the names of its positional arguments and how to read them.
CONTROL_VERBS: dict[str, tuple[tuple[str, Callable[[str], Any]], ...]] = {
    "rate_limit": (("task_name", str), ("rate_limit", str)),
    "time_limit": (("task_name", str), ("soft", float), ("hard", float)),
    "shutdown": (),
    "pool_grow": (("n", int),),
    "pool_shrink": (("n", int),),
    "autoscale": (("max", int), ("min", int)),
    "add_consumer": (("queue", str),),
    "cancel_consumer": (("queue", str),),
    "enable_events": (),
    "disable_events": (),
    "heartbeat": (),
    "revoke": (),
}


def _options(fun: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option(
                "-d", "--destination", help="Comma-separated node names (default: every node)."
            ),
            click.option(
                "-t",
                "--timeout",
                type=float,
                default=1.0,
                show_default=True,
                help="Seconds to wait for replies.",
            ),
            click.option("-j", "--json", "as_json", is_flag=True, help="Print JSON."),
            click.option("-b", "--broker", help="Hub address (default: broker_url)."),
        ]
    ):
        fun = option(fun)
    return fun


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _show(replies: dict[str, Any], missing: list[str], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(replies, default=str, sort_keys=True))
    else:
        for node, answer in sorted(replies.items()):
            error = isinstance(answer, dict) and "error" in answer
            click.echo(f"-> {node}: {'ERROR' if error else 'OK'}")
            text = answer.get("ok") if isinstance(answer, dict) and len(answer) == 1 else None
            body = text if isinstance(text, str) else json.dumps(answer, indent=4, default=str)
            click.echo("\n".join("    " + line for line in body.splitlines()))
        if not replies:
            click.echo("Error: no nodes replied within time constraint.", err=True)
    for node in missing:
        click.echo(f"missing: {node} did not answer in time", err=True)
    if not replies:
        sys.exit(69)  # EX_UNAVAILABLE, as celery inspect


def _arguments(
    verb: str, words: tuple[str, ...], spec: tuple[tuple[str, Callable[[str], Any]], ...]
) -> dict[str, Any]:
    if len(words) > len(spec):
        raise click.UsageError(f"{verb} takes at most {len(spec)} argument(s), got {len(words)}")
    try:
        return {name: read(word) for (name, read), word in zip(spec, words, strict=False)}
    except ValueError as exc:
        raise click.UsageError(f"{verb}: {exc}") from None


_getter: list[GetApp] = []


def _get_app(ctx: click.Context, broker: str | None) -> App:
    return _getter[0](ctx, broker)


def add_control_commands(group: click.Group, get_app: GetApp) -> None:
    """Add inspect, control, purge, status, list and events to ``group``."""
    _getter[:] = [get_app]
    for command in (inspect, control, purge, status, list_, events):
        group.add_command(command)


@click.command(
    context_settings={"ignore_unknown_options": False},
    epilog="Example: celeriac -A tasks inspect active -d w1@host --json",
)
@click.argument("verb")
@click.argument("words", nargs=-1)
@_options
@click.pass_context
def inspect(
    ctx: click.Context,
    verb: str,
    words: tuple[str, ...],
    destination: str | None,
    timeout: float,
    as_json: bool,
    broker: str | None,
) -> None:
    """Ask the workers VERB: ping, active, reserved, scheduled, registered, stats, revoked,
    active_queues, conf, query_task ID..., report, clock (or a custom @inspect_command)."""
    custom = COMMANDS.get(verb)
    if verb not in INSPECT_VERBS and (custom is None or custom.kind != "inspect"):
        raise click.UsageError(f"unknown inspect verb {verb!r}; known: {list(INSPECT_VERBS)}")
    app = _get_app(ctx, broker)
    try:
        inspector = app.control.inspect(_split(destination), timeout=timeout)
        if verb == "query_task":
            answer = inspector.query_task(*words)
        elif verb == "registered":
            answer = inspector.registered(*words)
        elif custom is not None and verb not in INSPECT_VERBS:
            answer = getattr(inspector, verb)(**_arguments(verb, words, custom.args))
        else:
            answer = getattr(inspector, verb)()
        _show(answer or {}, inspector.missing, as_json)
    finally:
        app.close()


@click.command(epilog="Example: celeriac -A tasks control rate_limit tasks.add 10/m")
@click.argument("verb")
@click.argument("words", nargs=-1)
@_options
@click.pass_context
def control(
    ctx: click.Context,
    verb: str,
    words: tuple[str, ...],
    destination: str | None,
    timeout: float,
    as_json: bool,
    broker: str | None,
) -> None:
    """Tell the workers VERB: rate_limit TASK RATE, time_limit TASK SOFT [HARD], shutdown,
    pool_grow [N], pool_shrink [N], autoscale MAX MIN, add_consumer QUEUE,
    cancel_consumer QUEUE, enable_events, disable_events, heartbeat, revoke ID... (or a
    custom @control_command)."""
    custom = COMMANDS.get(verb)
    if verb not in CONTROL_VERBS and (custom is None or custom.kind != "control"):
        raise click.UsageError(f"unknown control verb {verb!r}; known: {list(CONTROL_VERBS)}")
    app = _get_app(ctx, broker)
    try:
        ctl = app.control
        if verb == "revoke":
            ctl.revoke(list(words))
            click.echo(f"revoked {len(words)} task(s) at the hub (durably)")
            return
        spec = CONTROL_VERBS.get(verb) or (custom.args if custom else ())
        arguments = _arguments(verb, words, spec)
        replies = ctl.request(verb, arguments, _split(destination), True, timeout)
        _show(replies, ctl.last_missing, as_json)
    finally:
        app.close()


@click.command(epilog="Example: celeriac -A tasks purge -Q celery,images -f")
@click.option("-Q", "--queues", help="Comma-separated queues (default: the app's queues).")
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
@click.option("-b", "--broker", help="Hub address (default: broker_url).")
@click.pass_context
def purge(ctx: click.Context, queues: str | None, force: bool, broker: str | None) -> None:
    """Remove the messages waiting in queues at the hub (ready or delayed; not running)."""
    app = _get_app(ctx, broker)
    names = _split(queues) or app.control.app_queues()
    where = ", ".join(names)
    try:
        if not force:
            click.confirm(
                f"Remove all waiting messages from {where}? This cannot be undone", abort=True
            )
        count = app.control.purge(names)
    finally:
        app.close()
    click.echo(f"Purged {count} message(s) from {where}.")


@click.command(epilog="Example: celeriac -A tasks status")
@_options
@click.pass_context
def status(
    ctx: click.Context,
    destination: str | None,
    timeout: float,
    as_json: bool,
    broker: str | None,
) -> None:
    """Say which nodes answer a ping."""
    app = _get_app(ctx, broker)
    try:
        inspector = app.control.inspect(_split(destination), timeout=timeout)
        replies = inspector.ping() or {}
    finally:
        app.close()
    if as_json:
        click.echo(json.dumps(sorted(replies)))
        return
    for node in sorted(replies):
        click.echo(f"{node}: OK")
    for node in inspector.missing:
        click.echo(f"{node}: did not answer", err=True)
    click.echo(f"\n{len(replies)} node(s) online.")
    if not replies:
        sys.exit(69)


@click.command("list", epilog="Example: celeriac -A tasks list bindings --json")
@click.argument("what", type=click.Choice(["bindings", "queues"]))
@click.option("-j", "--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("-b", "--broker", help="Hub address (default: broker_url).")
@click.pass_context
def list_(ctx: click.Context, what: str, as_json: bool, broker: str | None) -> None:
    """List the hub's bindings (exchange, routing key, queue) or queues (with lengths)."""
    app = _get_app(ctx, broker)
    try:
        answer = app.control.hub(what, timeout=5.0)
    finally:
        app.close()
    if answer is None:
        raise click.ClickException("the hub did not answer")
    if as_json:
        click.echo(json.dumps(answer, default=str, sort_keys=True))
    elif what == "bindings":
        click.echo(f"{'Queue':<30} {'Exchange':<20} {'Type':<8} Routing key")
        for b in answer:
            ex = b["exchange"] or "(default)"
            click.echo(f"{b['queue']:<30} {ex:<20} {b['type']:<8} {b['routing_key']}")
    else:
        click.echo(f"{'Queue':<30} {'ready':>7} {'delayed':>8} {'unacked':>8}  consumers")
        for name, q in answer.items():
            consumers = ", ".join(q["consumers"])
            click.echo(
                f"{name:<30} {q['ready']:>7} {q['delayed']:>8} {q['unacked']:>8}  {consumers}"
            )


@click.command(epilog="Example: celeriac -A tasks events --dump")
@click.option("--dump", is_flag=True, help="Print each raw event (one JSON line each).")
@click.option("--limit", type=int, help="Stop after this many events.")
@click.option("--timeout", type=float, help="Stop after this many seconds without an event.")
@click.option("-b", "--broker", help="Hub address (default: broker_url).")
@click.pass_context
def events(
    ctx: click.Context,
    dump: bool,
    limit: int | None,
    timeout: float | None,
    broker: str | None,
) -> None:
    """Watch the event stream: tasks per state and per worker, updated in place (--dump:
    the raw events)."""
    app = _get_app(ctx, broker)
    state = State()
    shown = 0.0
    with app.events.Receiver(handlers={}) as receiver:
        try:
            for event in receiver.itercapture(limit, timeout):
                if dump:
                    click.echo(json.dumps(event, default=str, sort_keys=True), nl=True)
                    continue
                state.event(event)
                if time.monotonic() - shown > 0.5:
                    shown = time.monotonic()
                    _screen(state)
        except KeyboardInterrupt:
            pass
    if not dump:
        _screen(state)
    app.close()


def _screen(state: State) -> None:
    """The live view: tasks per state, per worker, the latest tasks."""
    lines = ["celeriac events (Ctrl-C to quit)", ""]
    by_state = state.tasks_by_state()
    lines.append("tasks: " + "  ".join(f"{s}={n}" for s, n in sorted(by_state.items())))
    lines.append("")
    lines.append(f"{'worker':<30} {'alive':<6} {'active':>6} {'processed':>10}  states")
    per_worker = state.tasks_by_worker()
    for host in sorted(set(state.workers) | set(per_worker)):
        w = state.workers.get(host)
        counts = "  ".join(f"{s}={n}" for s, n in sorted(per_worker.get(host, {}).items()))
        alive = "yes" if w and w.alive else "?"
        active = w.active if w else 0
        processed = w.processed if w else 0
        lines.append(f"{host:<30} {alive:<6} {active:>6} {processed:>10}  {counts}")
    lines.append("")
    for uuid, task in state.itertasks(10):
        lines.append(f"{uuid}  {task.name or '?':<30} {task.state:<9} {task.hostname or ''}")
    if sys.stdout.isatty():
        click.clear()
    click.echo("\n".join(lines))
