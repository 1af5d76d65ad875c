"""celeriac's version, as a constant: reading it from the installed metadata
(:mod:`importlib.metadata`) costs every process that imports celeriac tens of milliseconds
of imports (issue 18, start-up). It is the version's one home: ``pyproject.toml`` reads it
(``[tool.setuptools.dynamic]``), and ``tests/unit/test_version.py`` checks the installed
distribution says the same."""

from __future__ import annotations

from typing import Final

__all__ = ["VERSION"]

VERSION: Final = "0.1.0"
