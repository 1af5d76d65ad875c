"""examples/periodic: Celery's periodic-task example, import lines changed, loads its schedule."""

from __future__ import annotations

import datetime as dt
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from click.testing import CliRunner

from celeriac.runtime.cli import cli

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "periodic" / "tasks.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("periodic_example_tasks", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_example_schedule_has_every_entry_after_configure() -> None:
    """on_after_configure's add_periodic_task calls and beat_schedule end up in one schedule."""
    module = load()
    app = module.app
    app.finalize()
    schedule = app.conf.beat_schedule
    assert len(schedule) == 5
    assert schedule["add every 10"]["task"] == module.test.name
    assert schedule["add every 10"]["schedule"].seconds == 10.0
    assert schedule["add-every-30-seconds"]["args"] == (16, 16)
    (monday,) = [e for e in schedule.values() if e["args"] == ("Happy Mondays!",)]
    after = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)  # a Tuesday
    assert monday["schedule"].next_run(after) == dt.datetime(2026, 12, 7, 7, 30, tzinfo=dt.UTC)
    (expiring,) = [e for e in schedule.values() if e["args"] == ("world",)]
    assert expiring["options"] == {"expires": 10}


def test_beat_and_worker_dash_b_explain_themselves() -> None:
    """``celeriac beat --help`` and ``worker --help`` say what beat does and how it is safe."""
    beat_help = CliRunner().invoke(cli, ["beat", "--help"]).output
    assert "one lease per app" in " ".join(beat_help.split())
    assert "catch-up" in beat_help
    worker_help = " ".join(CliRunner().invoke(cli, ["worker", "--help"]).output.split())
    assert "-B, --beat" in worker_help
    assert "one beat fires at a time" in worker_help


def test_beat_refuses_a_schedule_file_saying_why() -> None:
    """Celery's ``beat -s FILE`` is refused: the state lives at the hub."""
    result = CliRunner().invoke(cli, ["-A", "no_such_module_for_test", "beat", "-s", "x.db"])
    assert result.exit_code == 2
    assert "keeps each entry's last run at the hub" in " ".join(result.output.split())
