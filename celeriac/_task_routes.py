"""``task_routes`` compiled into routers (pure).

``task_routes`` accepts a dict, a router callable, or a list/tuple of those. A dict maps exact
task names, glob patterns (``"feed.*"``, matched with :func:`fnmatch.fnmatchcase`) and compiled
regular expressions (``re.compile(...)``, matched with ``.match`` as Celery does) to an option
dict or a queue name; exact names are tried first, then patterns in the dict's order. A router
is called as ``router(name, args, kwargs, options, task=task)`` and returns a dict, a queue name
or None. Dotted-string routers are not supported: import the function and pass it.

The names are public through :mod:`celeriac.routing`; this module is their home.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from celeriac.exceptions import ImproperlyConfigured

__all__ = ["MapRoute", "Router", "Routes", "compile_routes"]

_GLOB_CHARS: Final = frozenset("*?[")

#: A router: ``(name, args, kwargs, options, task=None, **kw) -> dict | str | None``.
Router = Callable[..., Any]


# -- task_routes -------------------------------------------------------------------------------


def _as_route(value: Any, where: str) -> dict[str, Any]:
    """A route value (option dict or queue name) as a fresh option dict."""
    if isinstance(value, str):
        return {"queue": value}
    if isinstance(value, Mapping):
        return dict(value)
    raise ImproperlyConfigured(f"{where}: a route must be a dict or a queue name, not {value!r}")


class MapRoute:
    """A router built from a ``task_routes`` dict: exact names, then globs and regexes in order."""

    def __init__(self, mapping: Mapping[Any, Any]) -> None:
        self.exact: dict[str, Any] = {}
        self.patterns: list[tuple[re.Pattern[str] | str, Any]] = []
        for key, value in mapping.items():
            _as_route(value, f"task_routes[{key!r}]")  # fail at configuration time
            if isinstance(key, re.Pattern) or (isinstance(key, str) and _GLOB_CHARS & set(key)):
                self.patterns.append((key, value))
            elif isinstance(key, str):
                self.exact[key] = value
            else:
                raise ImproperlyConfigured(f"task_routes keys must be str or re.Pattern: {key!r}")

    def __call__(
        self,
        name: str,
        args: Any = (),
        kwargs: Any = None,
        options: Any = None,
        task: Any = None,
        **kw: Any,
    ) -> dict[str, Any] | None:
        """The options for task ``name``, or None when no entry matches."""
        if name in self.exact:
            return _as_route(self.exact[name], name)
        for pattern, value in self.patterns:
            if _pattern_matches(pattern, name):
                return _as_route(value, name)
        return None

    def __repr__(self) -> str:
        return f"MapRoute(exact={self.exact!r}, patterns={self.patterns!r})"


def _pattern_matches(pattern: re.Pattern[str] | str, name: str) -> bool:
    if isinstance(pattern, str):
        return fnmatch.fnmatchcase(name, pattern)
    return pattern.match(name) is not None


class Routes(tuple[Router, ...]):
    """``task_routes`` compiled: the routers to ask, in order (what the setting stores)."""

    __slots__ = ()


def compile_routes(value: Any) -> Routes:
    """Turn a ``task_routes`` value (None, a dict, a router, or a list of them) into Routes."""
    if isinstance(value, Routes):
        return value
    if value is None:
        return Routes(())
    items = value if isinstance(value, list | tuple) else [value]
    return Routes(_compile_router(item) for item in items)


def _compile_router(item: Any) -> Router:
    if isinstance(item, Mapping):
        return MapRoute(item)
    if isinstance(item, str):
        raise ImproperlyConfigured(
            f"task_routes entry {item!r}: dotted-string routers are not supported, "
            "import the router and pass the callable"
        )
    if callable(item):
        return item  # type: ignore[no-any-return]
    raise ImproperlyConfigured(f"task_routes entries must be dicts or callables, not {item!r}")
