"""The deployment recipes in examples/deploy use options the command line really has."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from celeriac import _hub_settings  # noqa: F401 - declares the hub's settings
from celeriac._conf import ENV_PREFIX, Settings
from celeriac.runtime.cli import cli

DEPLOY = Path(__file__).resolve().parents[2] / "examples" / "deploy"


def _commands() -> list[tuple[str, list[str]]]:
    """(file, argv after `celeriac`) of every ExecStart= line and the Containerfile's CMD."""
    found = []
    for unit in sorted(DEPLOY.glob("*.service")):
        for line in unit.read_text().splitlines():
            if line.startswith("ExecStart="):
                argv = shlex.split(
                    line.removeprefix("ExecStart=").replace("%i", "n").replace("%H", "h")
                )
                found.append((unit.name, argv[1:]))
    for line in (DEPLOY / "Containerfile").read_text().splitlines():
        if line.startswith("CMD "):
            found.append(("Containerfile", json.loads(line.removeprefix("CMD "))[1:]))
    return found


def test_every_recipe_has_a_command() -> None:
    """Both units and the image start something."""
    assert {name for name, _ in _commands()} == {
        "celeriac-hub.service",
        "celeriac-worker@.service",
        "Containerfile",
    }


@pytest.mark.parametrize(("name", "argv"), _commands())
def test_recipe_options_exist(name: str, argv: list[str]) -> None:
    """Each recipe's options parse (checked with --help, so nothing starts)."""
    result = CliRunner().invoke(cli, [*argv, "--help"])
    assert result.exit_code == 0, f"{name}: {result.output}"


def test_recipe_settings_exist_and_parse() -> None:
    """Every CELERIAC_* variable a recipe sets is a setting, and its value passes its check."""
    found: dict[str, str] = {}
    for path in [*DEPLOY.glob("*.service"), DEPLOY / "Containerfile"]:
        for line in path.read_text().splitlines():
            text = line.removeprefix("Environment=").removeprefix("ENV ").strip()
            if text.startswith(ENV_PREFIX) and "=" in text:
                name, _, value = text.partition("=")
                found[name] = value
    assert "CELERIAC_HUB_BODY_WINDOW_SIZE" in found
    conf = Settings({}, environ=found)
    for name in found:
        assert getattr(conf, name.removeprefix(ENV_PREFIX).lower()) is not None
