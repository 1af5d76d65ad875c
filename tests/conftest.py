"""Settings shared by every test: the source tree kept off ``sys.path``, the test kit's fixtures,
a hypothesis profile for a loaded 2-core machine.

``python -m pytest`` from the repository root puts the root first on ``sys.path``, where the
source folder ``celeriac/`` would shadow the installed package (whose subpackages
``celeriac.transport``, ``.actors`` and ``.runtime`` come from the package-dir mapping). The
test kit's pytest plugin is therefore not loaded from its entry point (``-p no:celeriac`` in
pyproject.toml, which would import ``celeriac`` before this file runs) but here, after the root
is taken off the path, so ``pytest`` and ``python -m pytest`` import the same installed package.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from hypothesis import settings

_ROOT = Path(__file__).resolve().parents[1]


def _is_root(entry: str) -> bool:
    return Path(entry or os.curdir).resolve() == _ROOT


sys.path[:] = [entry for entry in sys.path if not _is_root(entry)]
if "celeriac" in sys.modules:  # imported from the source folder before this file ran
    raise RuntimeError(
        f"celeriac was imported before tests/conftest.py (from {sys.modules['celeriac'].__file__})"
    )

pytest_plugins = ["celeriac.testing.fixtures"]

# Hypothesis' default 200 ms deadline fails on a busy box; correctness, not speed, is tested.
settings.register_profile("celeriac", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "celeriac"))


@pytest.fixture(autouse=True)
def _structlog_defaults() -> Iterator[None]:
    """Each test starts from structlog's defaults: a test that configured it (or captured its
    lines) must not decide where the next test's log lines go."""
    yield
    structlog.reset_defaults()


# -- the hub's stores: one parametrised fixture runs the hub's tests on SQLite and PostgreSQL --

#: Where the PostgreSQL tests find a server (CI runs one on 127.0.0.1:5432, trust auth).
PG_URL = os.environ.get("CELERIAC_TEST_PG_URL", "postgresql://127.0.0.1:5432/test")


@functools.cache
def _pg_missing() -> str | None:
    """Why the PostgreSQL cases cannot run here (None: they can); asked once per session."""
    try:
        import psycopg  # noqa: PLC0415 - the optional extra celeriac[postgres]
    except ImportError:
        return "psycopg is not installed (pip install 'celeriac[postgres]')"
    try:
        psycopg.connect(PG_URL, connect_timeout=3).close()
    except psycopg.Error as exc:
        first = (str(exc).strip() or repr(exc)).splitlines()[0]
        return f"no PostgreSQL answers at {PG_URL} ({first}); set CELERIAC_TEST_PG_URL"
    return None


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A store URL on a fresh PostgreSQL schema of its own (parallel runs never share one),
    dropped after the test; the test is skipped, saying why, when no server answers."""
    missing = _pg_missing()
    if missing:
        pytest.skip(missing)
    import uuid  # noqa: PLC0415

    import psycopg  # noqa: PLC0415

    schema = f"t_{uuid.uuid4().hex[:16]}"
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}schema={schema}"
    with psycopg.connect(PG_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgres"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A function that opens the hub's store, on SQLite or (second run) on PostgreSQL: each
    call opens the same store again, as a restarted hub would. On PostgreSQL, opening it again
    first drops the previous connection without committing (as a killed hub's would be)."""
    from celeriac.transport.store import SQLiteStore  # noqa: PLC0415

    opened: list[Any] = []
    if request.param == "sqlite":

        def open_sqlite() -> Any:
            opened.append(SQLiteStore(tmp_path / "hub.sqlite3"))
            return opened[-1]

        yield open_sqlite
    else:
        url = request.getfixturevalue("pg_url")
        from celeriac.transport.store_postgres import PostgresStore  # noqa: PLC0415

        def open_postgres() -> Any:
            for earlier in opened:
                earlier.abandon()
            opened.append(PostgresStore(url))
            return opened[-1]

        yield open_postgres
        for store in opened:
            store.abandon()


@pytest.fixture(params=["sqlite", "postgres"])
def hub_store_url(request: pytest.FixtureRequest) -> str | None:
    """For tests of a hub process: None (SQLite in its data directory), then a PostgreSQL
    store URL on a schema of its own (skipped, saying why, where no server answers)."""
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("pg_url"))
