"""Messages that tell a user how to fix what they typed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from celeriac import App
from celeriac.exceptions import NotRegistered
from celeriac.runtime.cli import cli
from celeriac.runtime.loader import find_app


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


@pytest.fixture
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A working directory with modules for -A (removed from sys.modules afterwards)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        del sys.modules[name]


def _module(directory: Path, source: str) -> str:
    name = f"fa_{uuid.uuid4().hex[:8]}"
    (directory / f"{name}.py").write_text(textwrap.dedent(source))
    return name


def test_find_app_takes_app_celery_the_only_app_or_a_named_attribute(app_dir: Path) -> None:
    """-A module finds `app`, then `celery`, then its only App; module:attr names one."""
    by_app = _module(app_dir, "from celeriac import App\napp = App('a', environ={})\n")
    assert find_app(by_app).main == "a"
    by_celery = _module(app_dir, "from celeriac import App\ncelery = App('c', environ={})\n")
    assert find_app(by_celery).main == "c"
    only = _module(app_dir, "from celeriac import App\nmine = App('o', environ={})\n")
    assert find_app(only).main == "o"
    two = _module(
        app_dir, "from celeriac import App\nx = App('x', environ={})\ny = App('y', environ={})\n"
    )
    assert find_app(f"{two}:y").main == "y"


def test_find_app_errors_say_what_to_type(app_dir: Path) -> None:
    """A missing module, a non-App attribute, and no or several Apps are usage errors."""
    with pytest.raises(click.UsageError, match=r"cannot import -A 'fa_missing_zz'"):
        find_app("fa_missing_zz")
    plain = _module(app_dir, "value = 1\n")
    with pytest.raises(click.UsageError, match=rf"{plain}\.value is not a celeriac App"):
        find_app(f"{plain}:value")
    with pytest.raises(click.UsageError, match=rf"module '{plain}' has no App\(s\)"):
        find_app(plain)
    two = _module(
        app_dir, "from celeriac import App\nx = App('x', environ={})\ny = App('y', environ={})\n"
    )
    with pytest.raises(click.UsageError, match=rf"has 2 App\(s\); name one: -A {two}:app"):
        find_app(two)


def test_cli_reports_a_bad_app_as_a_usage_error(app_dir: Path) -> None:
    """`celeriac -A nowhere worker` exits 2 with the import error, not a traceback."""
    result = CliRunner().invoke(cli, ["-A", "fa_nowhere_zz", "worker"])
    assert result.exit_code == 2
    assert "cannot import -A 'fa_nowhere_zz'" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--args", "[1,"], "not valid JSON"),
        (["--kwargs", "{nope}"], "not valid JSON"),
        (["--args", '{"x": 1}'], "--args must be a JSON list and --kwargs a JSON object"),
        (["--kwargs", "[1]"], "--args must be a JSON list and --kwargs a JSON object"),
    ],
)
def test_call_refuses_arguments_that_are_not_json_of_the_right_shape(
    options: list[str], message: str
) -> None:
    """`celeriac call` with bad --args/--kwargs exits 2 naming the problem, sending nothing."""
    result = CliRunner().invoke(cli, ["call", "tasks.add", *options, "-b", "tcp://127.0.0.1:9"])
    assert result.exit_code == 2
    assert message in result.output


def test_python_m_celeriac_works_from_the_repository_root() -> None:
    """From the root, Python finds the source directory first; its mapped subpackages resolve."""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-m", "celeriac", "--help"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Usage: celeriac" in done.stdout
