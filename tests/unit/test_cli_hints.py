"""Messages that tell a user how to fix what they typed."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from celeriac import App
from celeriac.exceptions import NotRegistered
from celeriac.runtime.cli import cli


def test_app_option_after_the_command_gets_a_hint() -> None:
    """`celeriac worker -A tasks` explains that -A goes before the command."""
    result = CliRunner().invoke(cli, ["worker", "-A", "tasks"])
    assert result.exit_code == 2
    assert "No such option" in result.output
    assert "celeriac -A tasks worker" in result.output


def test_other_unknown_options_get_no_app_hint() -> None:
    """The hint is only for -A/--app."""
    result = CliRunner().invoke(cli, ["worker", "--frobnicate"])
    assert result.exit_code == 2
    assert "global option" not in result.output


def test_not_registered_names_the_closest_tasks_and_the_fix() -> None:
    """get_task of a misspelt name suggests the close ones and how to register tasks."""
    app = App("t", environ={})

    @app.task(name="tasks.add")
    def add(x: int, y: int) -> int:
        return x + y

    with pytest.raises(NotRegistered) as caught:
        app.get_task("tasks.ad")
    message = str(caught.value)
    assert "did you mean 'tasks.add'?" in message
    assert "celeriac -A MODULE" in message


def test_not_registered_lists_at_most_ten_names() -> None:
    """A large registry is summarised, not dumped."""
    error = NotRegistered.for_task("x", [f"t{i:02}" for i in range(30)], "here")
    assert "t09, ..." in str(error)
    assert "t10" not in str(error)
