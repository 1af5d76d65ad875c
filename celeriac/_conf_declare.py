"""Declaring a setting: :func:`declare`, which components call at import time for the settings
they own (the core ones are in :mod:`celeriac._conf`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celeriac._conf_parse import infer_check, infer_parse
from celeriac._conf_refused import OLD_NAMES, PENDING, UNSUPPORTED
from celeriac._conf_registry import REGISTRY, Setting
from celeriac._conf_settings import Settings
from celeriac.exceptions import ImproperlyConfigured

__all__ = ["declare"]


def declare(
    name: str,
    default: Any,
    doc: str,
    *,
    parse: Callable[[str], Any] | None = None,
    check: Callable[[Any], Any] | None = None,
) -> Setting:
    """Declare a setting (components call this at import time for the settings they own).

    ``parse`` defaults to one inferred from the default's type (bool, int, float, list/tuple as
    comma-separated, anything else as the string itself). ``check`` defaults, for a bool, int,
    float or str default, to a type check of that type (an int is accepted for a float).
    Declaring a name again with an equal default replaces the declaration (module reloads);
    with a different default it is an error.
    """
    _check_declarable(name)
    existing = REGISTRY.get(name)
    if existing is not None and existing.default != default:
        raise ImproperlyConfigured(
            f"setting {name!r} is already declared with default {existing.default!r}, "
            f"not {default!r}"
        )
    setting = Setting(
        name=name,
        default=default,
        doc=doc,
        parse=parse or infer_parse(default),
        check=check if check is not None else infer_check(name, default),
    )
    setting.validate(default)
    REGISTRY[name] = setting
    return setting


def _check_declarable(name: str) -> None:
    if not name.isidentifier() or name.startswith("_") or name != name.lower():
        raise ImproperlyConfigured(f"setting names are lower-case identifiers, got {name!r}")
    PENDING.pop(name, None)  # refused until now as "not implemented yet": now it is
    if name in UNSUPPORTED or OLD_NAMES.get(name.upper(), name) != name:
        raise ImproperlyConfigured(f"{name!r} is reserved (an unsupported or old Celery name)")
    if hasattr(Settings, name):
        raise ImproperlyConfigured(f"{name!r} would hide the Settings attribute of that name")
