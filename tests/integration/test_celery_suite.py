"""Celery's own canvas and task integration tests against celeriac (scripts/celery_suite.py).

Slow (a few minutes) and it needs a Celery checkout: set ``CELERIAC_CELERY_CHECKOUT`` to a
Celery source tree or git directory and run
``pytest -m slow tests/integration/test_celery_suite.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "celery_suite.py"
#: Measured when issue 8's nested shapes landed (120; 88 before, 27 before the canvas): a
#: drop is a regression (a few retry tests are timing-sensitive on a busy machine).
MIN_PASSED = 115


@pytest.mark.skipif(
    not os.environ.get("CELERIAC_CELERY_CHECKOUT"), reason="set CELERIAC_CELERY_CHECKOUT"
)
@pytest.mark.timeout(1800)
def test_celery_canvas_and_task_suites(tmp_path: Path) -> None:
    """At least MIN_PASSED of Celery's test_canvas.py + test_tasks.py pass, none errors."""
    checkout = os.environ["CELERIAC_CELERY_CHECKOUT"]
    command = [sys.executable, str(SCRIPT), "--celery", checkout, "--out", str(tmp_path)]
    subprocess.run(command, check=True, capture_output=True, timeout=1700)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["ran"] > 200
    assert summary["passed"] >= MIN_PASSED, summary["top_reasons"]
