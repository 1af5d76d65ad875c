"""Loading the user's App named by ``-A`` (the CLI and every prefork child resolve it alike)."""

from __future__ import annotations

import importlib
import os
import sys

import click

from celeriac._app import App

__all__ = ["find_app"]


def find_app(spec: str) -> App:
    """Load the App named by ``-A``: ``module``, ``module:attribute`` or ``package.module``.

    With only a module, its ``app`` or ``celery`` attribute is used, or its only App.
    """
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise click.UsageError(f"cannot import -A {spec!r}: {exc}") from exc
    if attr:
        app = getattr(module, attr, None)
        if not isinstance(app, App):
            raise click.UsageError(f"{module_name}.{attr} is not a celeriac App")
        return app
    for name in ("app", "celery"):
        candidate = getattr(module, name, None)
        if isinstance(candidate, App):
            return candidate
    apps = [v for v in vars(module).values() if isinstance(v, App)]
    if len(apps) == 1:
        return apps[0]
    raise click.UsageError(
        f"module {module_name!r} has {len(apps) or 'no'} App(s); name one: -A {module_name}:app"
    )
