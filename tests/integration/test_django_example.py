"""examples/django_project end to end with real Django: a worker's task writes a model row."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import RESULT_TIMEOUT, Spawner, clean_env, embed_if_free, wait_for_event

pytest.importorskip("django")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "django_project"

CLIENT = """
from orders.tasks import record_order
result = record_order.delay({total})
print("count", result.get(timeout={timeout}))
"""

ON_COMMIT = """
import time
from django.db import transaction
from orders.models import Order
from orders.tasks import record_order

class Rollback(Exception):
    pass

try:
    with transaction.atomic():
        record_order.delay_on_commit(13)  # rolled back: never sent
        raise Rollback()
except Rollback:
    pass
with transaction.atomic():
    record_order.delay_on_commit(7)  # sent when this block commits
deadline = time.monotonic() + {timeout}
while not Order.objects.filter(total=7).exists() and time.monotonic() < deadline:
    time.sleep(0.05)
print("totals", sorted(Order.objects.values_list("total", flat=True)))
"""


#: Appended to the copy's orders/tasks.py: which connections a task finds open as it starts.
OPEN_AT_START = """

@shared_task
def open_connections_at_start():
    from django.db import connections

    return [c.alias for c in connections.all() if c.connection is not None]
"""

CONNECTIONS = """
from orders.tasks import open_connections_at_start, record_order
record_order.delay(1).get(timeout={timeout})  # opens the worker's connection
print("open", open_connections_at_start.delay().get(timeout={timeout}))
"""


@pytest.mark.integration
def test_django_example_task_writes_a_row(procs: Spawner, tmp_path: Path, broker_url: str) -> None:
    """migrate, start `celeriac -A proj worker`, send from `manage.py shell`: the row is there;
    delay_on_commit sends when the transaction commits, and not after a rollback; a task
    starts with no database connection left open by the one before (the Django fixup)."""
    project = tmp_path / "django_project"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3"))
    with (project / "orders" / "tasks.py").open("a") as tasks:
        tasks.write(OPEN_AT_START)
    db = tmp_path / "db.sqlite3"
    env = clean_env(
        EXAMPLE_DB=str(db),
        EXAMPLE_BROKER_URL=broker_url,
        CELERIAC_HUB_DATA_DIR=str(tmp_path / "hub"),
    )
    env.pop("DJANGO_SETTINGS_MODULE", None)
    manage = [sys.executable, "manage.py"]

    def shell(script: str) -> subprocess.CompletedProcess[str]:
        """``manage.py shell -c script`` in the project; it must exit 0."""
        done = subprocess.run(
            [*manage, "shell", "-c", script],
            check=False,
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done

    subprocess.run([*manage, "migrate", "-v", "0"], cwd=project, env=env, check=True, timeout=120)
    argv = [sys.executable, "-m", "celeriac", "-A", "proj", "worker", "-c", "1"]
    argv += embed_if_free(broker_url)  # a configured broker: auto would wait for a hub
    worker = procs.spawn("worker", [*argv, "--log-format", "json"], cwd=project, env=env)
    wait_for_event(worker.log, "worker_ready", proc=worker)
    script = CLIENT.format(total=42, timeout=RESULT_TIMEOUT)
    out = shell(script)
    assert out.stdout.split()[-2:] == ["count", "1"]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT total FROM orders_order").fetchall() == [(42,)]
    # delay_on_commit with real Django: sent when the transaction commits, never on a rollback
    # (one worker slot, FIFO: a sent 13 would have been written before the 7 waited for).
    on_commit = shell(ON_COMMIT.format(timeout=RESULT_TIMEOUT))
    assert on_commit.stdout.strip().splitlines()[-1] == "totals [7, 42]"
    # Celery's Django fixup: the worker closes Django's old connections around each task, so
    # the next task (same slot, same thread) starts with none open.
    connections = shell(CONNECTIONS.format(timeout=RESULT_TIMEOUT))
    assert connections.stdout.strip().splitlines()[-1] == "open []"
