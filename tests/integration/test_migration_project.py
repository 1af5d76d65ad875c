"""A Celery project layout migrated by changing one import runs on a real worker."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from celeriac import App

from .conftest import RESULT_TIMEOUT, Spawner, clean_env, embed_if_free, wait_for_event

#: proj/celery.py as Celery's Django guide writes it, with the import changed.
PROJ_CELERY = """
from celeriac import Celery

app = Celery("proj", include=["proj.extra"])
app.config_from_object("proj.settings", namespace="CELERY")
app.autodiscover_tasks(["orders", "billing"])
"""

#: Django-style settings: upper-case names with the CELERY_ prefix.
PROJ_SETTINGS = """
DEBUG = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_TASK_TRACK_STARTED = True
CELERY_IMPORTS = ["proj.imported"]
"""

SHARED = """
from celeriac import shared_task

@shared_task(name={name!r})
def run(x):
    return [{name!r}, x]
"""


def _write_project(root: Path) -> None:
    files = {
        "proj/__init__.py": "",
        "proj/celery.py": PROJ_CELERY,
        "proj/settings.py": PROJ_SETTINGS,
        "proj/extra.py": SHARED.format(name="proj.extra"),
        "proj/imported.py": SHARED.format(name="proj.imported"),
        "orders/__init__.py": "",
        "orders/tasks.py": SHARED.format(name="orders.total"),
        "billing/__init__.py": "",
        "billing/tasks.py": SHARED.format(name="billing.charge"),
    }
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)


@pytest.mark.integration
@pytest.mark.parametrize("pool", ["threads", "prefork"])
def test_imports_include_and_autodiscovered_tasks_run_on_the_worker(
    procs: Spawner, tmp_path: Path, broker_url: str, pool: str
) -> None:
    """Tasks from imports, include and two autodiscovered apps run (prefork children too)."""
    project = tmp_path / "project"
    _write_project(project)
    argv = [sys.executable, "-m", "celeriac", "-A", "proj.celery", "worker", "-P", pool]
    argv += ["-c", "1", "--broker", broker_url, "--log-format", "json", "-l", "INFO"]
    argv += embed_if_free(broker_url)  # given --broker, auto would wait for a hub
    env = clean_env(CELERIAC_HUB_DATA_DIR=str(tmp_path / "hub"))
    worker = procs.spawn("worker", argv, cwd=project, env=env)
    wait_for_event(worker.log, "worker_ready", proc=worker)
    client = App("client", broker=broker_url, environ={})
    try:
        names = ["proj.imported", "proj.extra", "orders.total", "billing.charge"]
        results = [client.send_task(name, (i,)) for i, name in enumerate(names)]
        assert [r.get(timeout=RESULT_TIMEOUT) for r in results] == [
            [name, i] for i, name in enumerate(names)
        ]
    finally:
        client.close()


@pytest.mark.integration
def test_celery_worker_options_on_a_real_worker(
    procs: Spawner, tmp_path: Path, broker_url: str
) -> None:
    """-I, --logfile, --pidfile, --time-limit, -E, -O fair, --without-gossip: a worker runs."""
    project = tmp_path / "project"
    _write_project(project)
    (project / "proj" / "cli_only.py").write_text(SHARED.format(name="proj.cli_only"))
    logfile, pidfile = tmp_path / "worker.log", tmp_path / "worker.pid"
    argv = [sys.executable, "-m", "celeriac", "-A", "proj.celery", "worker", "-c", "1"]
    argv += ["--broker", broker_url, "--log-format", "json", "-l", "INFO", "-I", "proj.cli_only"]
    argv += embed_if_free(broker_url)  # given --broker, auto would wait for a hub
    argv += ["-f", str(logfile), "--pidfile", str(pidfile), "--time-limit", "30"]
    argv += ["-E", "-O", "fair", "--without-gossip", "--without-mingle"]
    env = clean_env(CELERIAC_HUB_DATA_DIR=str(tmp_path / "hub"))
    worker = procs.spawn("worker", argv, cwd=project, env=env)
    wait_for_event(logfile, "worker_ready", proc=worker)
    assert pidfile.read_text().strip() == str(worker.pid)
    assert "-O fair: celeriac always dispatches by free slots" in worker.log.read_text()
    client = App("client", broker=broker_url, environ={})
    try:
        assert client.send_task("proj.cli_only", (7,)).get(timeout=RESULT_TIMEOUT) == [
            "proj.cli_only",
            7,
        ]
    finally:
        client.close()
    procs.shutdown()
    assert worker.popen.returncode == 0
    assert not pidfile.exists()
