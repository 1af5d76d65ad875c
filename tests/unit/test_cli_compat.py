"""Celery's worker options and commands: honoured, accepted with a note, or refused with why."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from celeriac import App
from celeriac.runtime.cli import cli
from celeriac.runtime.cli_compat import REFUSED_COMMANDS, worker_settings


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["worker", "--uid", "nobody"], "--uid: run the worker under systemd"),
        (["worker", "-B", "-s", "x"], "beat keeps its state at the hub, not in a file"),
        (["worker", "--statedb", "x"], "no state file"),
    ],
)
def test_refused_worker_options_say_why(argv: list[str], message: str) -> None:
    """An option celeriac cannot honour stops the worker before it starts, saying why."""
    result = CliRunner().invoke(cli, ["-A", "no_such_module_for_test", *argv])
    assert result.exit_code == 2
    assert "does not support" in result.output
    assert message in " ".join(result.output.split())


@pytest.mark.parametrize("name", sorted(REFUSED_COMMANDS))
def test_refused_commands_say_what_to_use(name: str) -> None:
    """Celery's commands with no meaning here exist and explain themselves."""
    result = CliRunner().invoke(cli, [name, "anything"])
    assert result.exit_code == 2
    assert f"celeriac has no `{name}` command" in result.output


def test_honoured_worker_options_become_settings() -> None:
    """--time-limit, --soft-time-limit, --prefetch-multiplier, --heartbeat-interval, -I, -E."""
    app = App("cliopts", environ={}, include=["a.tasks"])
    options = {
        "time_limit": 60.0,
        "soft_time_limit": 50.0,
        "prefetch_multiplier": 1,
        "heartbeat_interval": 5.0,
        "include": "b.tasks, c.tasks",
        "task_events": True,
    }
    given = worker_settings(app, options)
    assert given == {
        "include": ["a.tasks", "b.tasks", "c.tasks"],
        "task_time_limit": 60.0,
        "task_soft_time_limit": 50.0,
        "worker_prefetch_multiplier": 1,
        "broker_heartbeat": 5.0,
        "worker_send_task_events": True,
    }
    assert app.conf.changes() == given


def test_report_prints_versions_and_changed_settings() -> None:
    """`celeriac report` prints the versions and, with an app, its changed settings."""
    app = App("reportapp", environ={}, worker_concurrency=3)
    result = CliRunner().invoke(cli, ["report"], obj={"app": app})
    assert result.exit_code == 0, result.output
    assert result.output.startswith("celeriac ")
    assert "worker_concurrency = 3" in result.output
