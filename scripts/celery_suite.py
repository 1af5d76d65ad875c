"""Celery's own canvas and task integration tests, run against celeriac (issue 8's yardstick).

Usage::

    python scripts/celery_suite.py --celery PATH [--out DIR] [--timeout S] [-- PYTEST_ARGS]

``PATH`` is a Celery checkout (a source tree, or a git directory such as a bare mirror: the
files are read with ``git show HEAD:...``). The script copies ``t/integration/tasks.py``,
``test_canvas.py`` and ``test_tasks.py`` into ``DIR/t/integration/`` with only the imports
changed (``celery`` -> ``celeriac``, ``billiard`` -> ``multiprocessing``), writes its own
``conftest.py`` there (the fixture shim below) in place of Celery's, runs pytest on the two
test files with a per-test timeout, and prints how many tests ran, passed, failed, errored and
were skipped, with the most common first lines of the failures.

The fixture shim
    ``celery_session_app`` is a celeriac :class:`~celeriac.App` with the tasks of
    ``t.integration.tasks`` (Celery's ``shared_task`` declarations bind to it);
    ``celery_session_worker`` runs a threads worker and its hub in this process
    (:func:`celeriac.testing.start_worker`); ``manager`` is a small stand-in for Celery's
    ``celery.contrib.testing.manager.Manager`` (``app``, ``join``, ``wait_for``,
    ``assert_accepted``, ``assert_result_tasks_in_progress_or_completed``, ``inspect``,
    ``wait_until_idle``); ``subtests`` runs each sub-test inline. Celery import paths that
    celeriac does not have (``celery.backends.base``, ``pydantic`` when
    it is not installed...) are stubbed so the modules import: a test that *uses* one fails
    with NotImplementedError, and is counted as failing. Task options celeriac refuses at
    declaration (``pydantic=True``, a soft limit above the hard one) are dropped from
    ``shared_task`` for the same reason (said on stderr). ``result_backend`` is ``"hub"``
    (Celery's conftest sets it to ``TEST_BACKEND``, Redis by default): the tests Celery runs
    only with a Redis backend skip themselves, as they do on Celery with any other backend;
    Redis itself is never used.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

FILES = ("tasks.py", "test_canvas.py", "test_tasks.py")

REWRITES = (
    (re.compile(r"^(\s*)from celery(\.|\s)", re.M), r"\1from celeriac\2"),
    (re.compile(r"^(\s*)import celery\s*$", re.M), r"\1import celeriac as celery"),
    (re.compile(r"^(\s*)import billiard as multiprocessing", re.M), r"\1import multiprocessing"),
)

CONFTEST = '''
"""Fixture shim: Celery's integration fixtures on celeriac (written by celery_suite.py)."""

import contextlib
import importlib
import re
import sys
import tempfile
import time
import types

import pytest

import celeriac
from celeriac import states
from celeriac.testing import start_worker

#: Celery's conftest sets result_backend to TEST_BACKEND; celeriac's only backend is "hub".
#: Tests Celery runs only on a Redis backend then skip, as they do on Celery with another one.
TEST_BACKEND = "hub"
TEST_BROKER = "hub"


def _missing(path):
    """A class standing in for a name celeriac lacks: subclassing works, using it fails."""

    def fail(*args, **kwargs):
        raise NotImplementedError(f"celeriac has no {path}")

    return type(path.rsplit(".", 1)[-1], (), {"__init__": fail, "__call__": fail})


def _stub_module(name, names):
    try:
        module = importlib.import_module(name)
    except ImportError:
        module = types.ModuleType(name)
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        if parent and parent in sys.modules:
            setattr(sys.modules[parent], child, module)
    for attr in names:
        if not hasattr(module, attr):
            setattr(module, attr, _missing(f"{name}.{attr}"))


def _control_command(*args, **kwargs):
    return lambda fn: fn


STUBS = {
    "pydantic": ["BaseModel"],
    "celeriac.backends": [],
    "celeriac.backends.base": ["BaseKeyValueStoreBackend"],
    "celeriac.canvas": ["StampingVisitor"],
    "celeriac.worker": [],
    "celeriac.worker.state": [],
    "celeriac.worker.control": [],
    "celeriac.utils": [],
    "celeriac.utils.log": ["get_task_logger"],
    "celeriac.utils.serialization": ["UnpickleableExceptionWrapper"],
    "celeriac.exceptions": [
        "ChordError", "ImproperlyConfigured", "TimeoutError", "Reject", "SoftTimeLimitExceeded",
    ],
    "celeriac.result": ["AsyncResult", "GroupResult", "ResultSet"],
    "celeriac.signals": ["before_task_publish", "task_received"],
}
for _name, _names in STUBS.items():
    _stub_module(_name, _names)
if not hasattr(sys.modules["celeriac.worker.control"], "control_command"):
    sys.modules["celeriac.worker.control"].control_command = _control_command


#: Task options of Celery's that celeriac refuses at declaration (an error at import would
#: fail every test): dropped here, so only the tests relying on them fail.
DROPPED_OPTIONS = {"pydantic", "pydantic_strict", "pydantic_context", "pydantic_dump_kwargs"}
_shared_task = celeriac.shared_task


def _lenient_shared_task(*args, **options):
    kept = {k: v for k, v in options.items() if k not in DROPPED_OPTIONS}
    try:
        return _shared_task(*args, **kept)
    except celeriac.exceptions.ImproperlyConfigured as exc:  # refused: declared without them
        print(f"celery_suite: task options {sorted(kept)} refused ({exc})", file=sys.stderr)
        return _shared_task(*args, **{k: v for k, v in kept.items() if k in ("bind", "name")})


celeriac.shared_task = _lenient_shared_task


def flaky(fn):
    return fn  # no reruns, and the run's --timeout (Celery's flaky sets 300 s)


def check_for_logs(caplog, message, max_wait=1.0, interval=0.1):
    start = time.monotonic()
    while time.monotonic() - start < max_wait:
        if any(re.search(message, r.message) for r in caplog.records):
            return True
        time.sleep(interval)
    return False


def get_redis_connection():
    from t.integration.tasks import get_redis_connection as connect

    return connect()


def get_active_redis_channels():
    return get_redis_connection().execute_command("PUBSUB CHANNELS")


class Manager:
    """A stand-in for celery.contrib.testing.manager.Manager."""

    def __init__(self, app):
        self.app = app

    def wait_for(self, fun, catch=(), desc="thing", args=(), kwargs=None, errback=None,
                 max_retries=10, interval_start=0.1, interval_step=0.5, interval_max=5.0,
                 emit_warning=False, **options):
        deadline = time.monotonic() + 30
        while True:
            try:
                return fun(*args, **(kwargs or {}))
            except catch:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def join(self, r, propagate=False, max_retries=10, **kwargs):
        return r.get(timeout=kwargs.get("timeout", 30), propagate=propagate)

    def inspect(self, timeout=3.0):
        return self.app.control.inspect(timeout=timeout)

    def _states(self, ids, wanted):
        def check():
            got = [celeriac.AsyncResult(i, self.app).state for i in ids]
            if not all(s in wanted for s in got):
                raise AssertionError(f"states {got}")
            return True

        return self.wait_for(check, AssertionError)

    def assert_accepted(self, ids, interval=0.5, desc="waiting for tasks to be accepted", **p):
        return self._states(ids, states.ALL_STATES - {states.PENDING})

    def assert_received(self, ids, interval=0.5, desc="waiting for tasks to be received", **p):
        return self._states(ids, states.ALL_STATES - {states.PENDING})

    def assert_result_tasks_in_progress_or_completed(self, async_results, interval=0.5,
                                                     desc="waiting", **policy):
        wanted = {states.STARTED, *states.READY_STATES}
        return self._states([r.id for r in async_results], wanted)

    def wait_until_idle(self):
        return None


class _SubTests:
    @contextlib.contextmanager
    def test(self, msg=None, **kwargs):
        yield


@pytest.fixture
def subtests():
    return _SubTests()


#: Made at import: Celery's shared tasks are looked at during collection (parametrize ids),
#: when Celery falls back to its default app.
APP = celeriac.App("celery_suite", environ={})
APP.conf.result_backend = TEST_BACKEND


@pytest.fixture(scope="session")
def celery_session_app():
    importlib.import_module("t.integration.tasks")
    APP.finalize()
    yield APP
    APP.close()


@pytest.fixture(scope="session")
def celery_session_worker(celery_session_app):
    with tempfile.TemporaryDirectory() as data_dir:
        with start_worker(celery_session_app, concurrency=4, data_dir=data_dir) as worker:
            yield worker


@pytest.fixture
def celery_app(celery_session_app):
    return celery_session_app


@pytest.fixture
def app(celery_session_app):
    return celery_session_app


@pytest.fixture
def manager(celery_session_app, celery_session_worker):
    return Manager(celery_session_app)
'''

PYTEST_INI = """[pytest]
python_classes = test_* Test*
markers =
    flaky: Celery's rerun marker (no reruns here)
    xfail: expected failures
filterwarnings = ignore
"""


def read_file(celery: Path, rel: str) -> str:
    """``rel`` from a Celery source tree, or from a git directory's HEAD."""
    if (celery / rel).exists():
        return (celery / rel).read_text()
    out = subprocess.run(
        ["git", f"--git-dir={celery}", "show", f"HEAD:{rel}"],  # noqa: S607 - git on PATH
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout


def rewrite(source: str) -> str:
    """Only the imports change: celery -> celeriac, billiard -> multiprocessing."""
    for pattern, replacement in REWRITES:
        source = pattern.sub(replacement, source)
    return source


def prepare(celery: Path, out: Path) -> Path:
    """Write the suite into ``out``; the directory of the test files."""
    tests = out / "t" / "integration"
    tests.mkdir(parents=True, exist_ok=True)
    (out / "t" / "__init__.py").write_text("")
    (tests / "__init__.py").write_text("")
    for name in FILES:
        (tests / name).write_text(rewrite(read_file(celery, f"t/integration/{name}")))
    (tests / "conftest.py").write_text(CONFTEST.lstrip())
    (out / "pytest.ini").write_text(PYTEST_INI)
    return tests


def summarize(junit: Path) -> dict[str, object]:
    """Counts and the most common failure first lines, from pytest's JUnit XML."""
    root = ET.parse(junit).getroot()  # noqa: S314 - our own pytest run wrote it
    counts: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    passed: list[str] = []
    for case in root.iter("testcase"):
        kind = next(
            (c.tag for c in case if c.tag in ("failure", "error", "skipped")),
            "passed",
        )
        counts[kind] += 1
        name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        if kind == "passed":
            passed.append(name)
        elif kind in ("failure", "error"):
            detail = next(c for c in case if c.tag == kind)
            first = (detail.get("message") or "").splitlines()
            reasons[(first[0] if first else kind)[:160]] += 1
    return {
        "ran": sum(counts.values()),
        "passed": counts["passed"],
        "failed": counts["failure"],
        "errors": counts["error"],
        "skipped": counts["skipped"],
        "passing_tests": passed,
        "top_reasons": reasons.most_common(25),
    }


def main(argv: list[str] | None = None) -> int:
    """Prepare, run, summarize; exit 0 (the counts are the result, not the exit code)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--celery", type=Path, required=True, help="Celery checkout or git dir")
    parser.add_argument("--out", type=Path, default=Path("build/celery_suite"))
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per test")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    tests = prepare(args.celery, out)
    junit = out / "junit.xml"
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-c",
        str(out / "pytest.ini"),
        "--rootdir",
        str(out),
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        f"--timeout={args.timeout}",
        f"--junitxml={junit}",
        "-q",
        str(tests / "test_canvas.py"),
        str(tests / "test_tasks.py"),
        *args.pytest_args,
    ]
    subprocess.run(command, cwd=out, check=False)
    summary = summarize(junit)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k != "passing_tests"}, indent=2))  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
