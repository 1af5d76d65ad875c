"""The version constant (no :mod:`importlib.metadata` at import, for start-up time) is the
installed distribution's."""

from __future__ import annotations

import importlib.metadata

import celeriac
from celeriac._version import VERSION


def test_version_constant_is_the_installed_distributions() -> None:
    assert importlib.metadata.version("celeriac") == VERSION
    assert celeriac.__version__ == VERSION
