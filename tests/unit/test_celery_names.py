"""The measurement of Celery's surface in celeriac (scripts/celery_names.py) and its floors."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "celery_names.py"


@pytest.fixture(scope="module")
def report() -> dict[str, dict[str, list[str]]]:
    """The script's measurement of this tree."""
    namespace: dict[str, Any] = runpy.run_path(str(SCRIPT))
    result: dict[str, dict[str, list[str]]] = namespace["measure"]()
    return result


def test_every_celery_setting_is_classified(report: dict[str, dict[str, list[str]]]) -> None:
    """No Celery setting is unknown: each is honoured, a documented no-op, or refused."""
    assert report["settings"]["missing"] == []


@pytest.mark.parametrize(
    ("title", "names"),
    [
        ("top-level names", {"current_app", "current_task", "uuid", "shared_task", "Celery"}),
        (
            "App attributes",
            {"autodiscover_tasks", "config_from_envvar", "on_after_configure", "worker_main"},
        ),
    ],
)
def test_names_issue_10_asks_for_are_present(
    report: dict[str, dict[str, list[str]]], title: str, names: set[str]
) -> None:
    """The names issue 10 lists (outside the canvas) are present."""
    assert names <= set(report[title]["present"])


def test_refused_app_attributes_are_counted_apart(report: dict[str, dict[str, list[str]]]) -> None:
    """Refused attributes are not counted as present (they raise NotImplementedError)."""
    assert "amqp" in report["App attributes"]["refused"]
    assert "amqp" not in report["App attributes"]["present"]
    assert "control" in report["App attributes"]["present"]  # app.control.revoke exists
