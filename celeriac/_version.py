"""celeriac's version, as a constant: reading it from the installed metadata
(:mod:`importlib.metadata`) costs every process that imports celeriac tens of milliseconds
of imports (issue 18, start-up). ``tests/unit/test_version.py`` holds it equal to the
installed distribution's version (``pyproject.toml``)."""

from __future__ import annotations

from typing import Final

__all__ = ["VERSION"]

VERSION: Final = "0.1.0"
