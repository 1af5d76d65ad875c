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

import os
import sys
from collections.abc import Iterator
from pathlib import Path

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
