"""The effective settings of one app (:class:`Settings`), and reading settings from objects.

How a value is found, lowest to highest precedence:

1. the default given to :func:`celeriac._conf.declare`;
2. the environment variable ``CELERIAC_<NAME>`` (``CELERIAC_WORKER_CONCURRENCY=4``), parsed by
   the setting's ``parse`` function. The settings are the only code that reads the environment,
   and only from the mapping a :class:`Settings` is given (the App passes ``os.environ``);
   nothing is read at import time. Environment values are parsed and checked on first read;
   unknown ``CELERIAC_*`` names are refused when the :class:`Settings` is built;
3. explicit values: constructor ``overrides``, ``conf.name = v``, ``conf["name"] = v``,
   :meth:`Settings.update` and :meth:`Settings.config_from_object`.

:meth:`Settings.freeze` returns the read-only copy that the running app passes down to its
components; any write to it raises :class:`ConfigurationFrozen`.
"""

from __future__ import annotations

import contextlib
import importlib
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from types import ModuleType
from typing import Any, Final

from celeriac._conf_refused import OLD_NAMES
from celeriac._conf_registry import REGISTRY, Setting, lookup, old_name_error, read_environ
from celeriac.exceptions import ConfigurationFrozen, ImproperlyConfigured

__all__ = ["FROZEN_MESSAGE", "Settings", "SettingsReader"]

FROZEN_MESSAGE: Final = (
    "configuration is frozen once the app has started; set it before the first send or worker start"
)
"""What a write to frozen settings says."""

_MISSING: Final[Any] = object()

# -- config objects ----------------------------------------------------------------------------


def _load_object(path: str) -> object:
    module_name, _, attr = path.partition(":")
    module = importlib.import_module(module_name)
    if not attr:
        return module
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ImproperlyConfigured(f"module {module_name!r} has no attribute {attr!r}") from None


def _public_items(obj: object) -> Iterator[tuple[str, Any]]:
    """Name and value of each public data attribute (modules, classes, callables skipped)."""
    if isinstance(obj, Mapping):
        yield from ((str(k), v) for k, v in obj.items())
        return
    for attr in dir(obj):
        if attr.startswith("_"):
            continue
        value = getattr(obj, attr)
        if not callable(value) and not isinstance(value, ModuleType):
            yield attr, value


def _select(obj: object, namespace: str | None) -> dict[str, Any]:
    """The settings that ``obj`` holds, by setting name, raising on old or unknown names.

    With a namespace the prefix is removed first, so Django's ``CELERY_TASK_SERIALIZER``
    (namespace ``"CELERY"``) is ``task_serializer``, not Celery's old ``CELERY_TASK_SERIALIZER``.
    """
    prefix = f"{namespace.upper()}_" if namespace else None
    chosen: dict[str, Any] = {}
    for attr, value in _public_items(obj):
        if prefix is not None and attr.startswith(prefix):
            name = attr[len(prefix) :].lower()
            if name not in REGISTRY and OLD_NAMES.get(attr, name) != name:
                raise old_name_error(attr, OLD_NAMES[attr], prefix)
            chosen[name] = value
        elif attr.isupper() and attr in OLD_NAMES:
            raise old_name_error(attr, OLD_NAMES[attr], prefix)
        elif prefix is None and not attr.isupper():
            chosen[attr] = value
    return chosen


# -- Settings ----------------------------------------------------------------------------------


class Settings(MutableMapping[str, Any]):
    """The effective settings of one app: attribute and item access, unknown names refused.

    ``Settings(overrides, environ=os.environ)``: defaults < ``CELERIAC_*`` environment <
    explicit values. Iterating yields every declared name; ``dict(conf)`` gives every value.
    Returned lists are the stored objects: assign a new value rather than mutating one.
    """

    _explicit: dict[str, Any]
    _environ: dict[str, str]
    _values: dict[str, Any]
    _frozen: bool

    def __init__(
        self,
        overrides: Mapping[str, Any] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._explicit = {}
        self._values = {}
        self._environ = read_environ(environ)
        self._frozen = False
        if overrides:
            self.update(overrides)

    # -- reading

    def __getitem__(self, name: str) -> Any:
        value = self._values.get(name, _MISSING)
        if value is _MISSING:
            value = self._resolve(lookup(name))
        return value

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        value = self[name]
        if self._frozen:
            self.__dict__[name] = value  # frozen values never change: later reads skip this
        return value

    def __contains__(self, name: object) -> bool:
        return name in REGISTRY

    def __iter__(self) -> Iterator[str]:
        return iter(list(REGISTRY))

    def __len__(self) -> int:
        return len(REGISTRY)

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *REGISTRY})

    def __repr__(self) -> str:
        state = "frozen " if self._frozen else ""
        return f"<{state}Settings changes={self._explicit!r}>"

    def get(self, name: str, default: Any = None) -> Any:
        """The effective value of ``name``.

        An unknown name raises :class:`UnknownSettingError` rather than return ``default``:
        a typo never passes silently. Every declared setting has a value, so ``default`` is
        accepted only for ``Mapping`` compatibility.
        """
        return self[name]

    def changes(self) -> dict[str, Any]:
        """The explicitly set values only (not defaults, not the environment)."""
        return dict(self._explicit)

    def is_set(self, name: str) -> bool:
        """Whether ``name`` was given (an explicit value or its environment variable), as
        opposed to left at its default."""
        lookup(name)
        return name in self._explicit or name in self._environ

    def as_dict(self) -> dict[str, Any]:
        """Every declared setting with its effective value."""
        return {name: self[name] for name in list(REGISTRY)}

    def _resolve(self, setting: Setting) -> Any:
        raw = self._environ.get(setting.name)
        if raw is None:
            value = setting.default
            if isinstance(value, list | dict | set):
                value = value.copy()  # never hand out the registry's own object
        else:
            value = self._parse_environ(setting, raw)
        self._values[setting.name] = value
        return value

    @staticmethod
    def _parse_environ(setting: Setting, raw: str) -> Any:
        try:
            return setting.validate(setting.parse(raw))
        except (ImproperlyConfigured, TypeError, ValueError) as exc:
            raise ImproperlyConfigured(
                f"environment variable {setting.env_name}={raw!r}: {exc}"
            ) from exc

    # -- writing

    def __setitem__(self, name: str, value: Any) -> None:
        self._ensure_writable()
        setting = lookup(name)
        self._store(name, setting.validate(value))

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            self[name] = value

    def __delitem__(self, name: str) -> None:
        """Forget the explicit value of ``name`` (the environment or default shows again)."""
        self._ensure_writable()
        lookup(name)
        self._explicit.pop(name, None)
        self._values.pop(name, None)

    def __delattr__(self, name: str) -> None:
        if name.startswith("_"):
            object.__delattr__(self, name)
        else:
            del self[name]

    def clear(self) -> None:
        """Forget every explicit value."""
        self._ensure_writable()
        self._explicit.clear()
        self._values.clear()

    def popitem(self) -> tuple[str, Any]:
        """Remove and return one explicit value (KeyError when there is none)."""
        self._ensure_writable()
        if not self._explicit:
            raise KeyError("no explicit settings to pop")
        name, value = self._explicit.popitem()
        self._values.pop(name, None)
        return name, value

    def update(  # type: ignore[override]
        self,
        mapping: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
        /,
        **kw: Any,
    ) -> None:
        """Set several settings at once; all are checked before any is stored."""
        self._ensure_writable()
        pairs = dict(mapping or {})
        pairs.update(kw)
        checked = {name: lookup(name).validate(value) for name, value in pairs.items()}
        for name, value in checked.items():
            self._store(name, value)

    def config_from_object(
        self, obj: object | str, *, namespace: str | None = None, silent: bool = False
    ) -> None:
        """Take settings from a module, class, instance, mapping, or ``"pkg.mod[:attr]"`` path.

        Lower-case public data attributes are read (modules, functions, classes, other
        callables and ``_names`` are skipped); with ``namespace="CELERIAC"`` the upper-case
        ``CELERIAC_BROKER_URL``-style attributes are read instead. Old Celery names are an
        error naming the new one, and so is a lower-case attribute that is not a setting.
        ``silent=True`` only ignores an ImportError of a dotted path.
        """
        self._ensure_writable()
        if isinstance(obj, str):
            try:
                obj = _load_object(obj)
            except ImportError:
                if silent:
                    return
                raise
        self.update(_select(obj, namespace))

    def _store(self, name: str, value: Any) -> None:
        self._explicit[name] = value
        self._values[name] = value
        for callback in list(self.__dict__.get("_watchers", {}).get(name, ())):
            callback(value)

    def watch(self, name: str, callback: Callable[[Any], None]) -> Callable[[], None]:
        """Call ``callback(value)`` after each assignment of setting ``name`` (a running beat
        follows ``beat_schedule`` so); returns the function that stops watching."""
        lookup(name)
        watchers: dict[str, list[Callable[[Any], None]]] = self.__dict__.setdefault("_watchers", {})
        watchers.setdefault(name, []).append(callback)

        def unwatch() -> None:
            with contextlib.suppress(ValueError):
                watchers[name].remove(callback)

        return unwatch

    def _ensure_writable(self) -> None:
        if self._frozen:
            raise ConfigurationFrozen(FROZEN_MESSAGE)

    # -- freezing

    @property
    def frozen(self) -> bool:
        """True for the read-only copy made by :meth:`freeze`."""
        return self._frozen

    def freeze(self) -> Settings:
        """A read-only copy: reads work, any write raises :class:`ConfigurationFrozen`."""
        if self._frozen:
            return self
        copy = Settings.__new__(Settings)
        copy._explicit = dict(self._explicit)
        copy._values = dict(self._values)
        copy._environ = dict(self._environ)
        copy._frozen = True
        return copy


class SettingsReader:
    """Several settings read at once, as a tuple in the order named: ``conf[name]`` for each.

    A hot path reads many (a send some sixteen): once each has been read, their values come
    from the settings' cache in one C call instead of one method call each (issue 18). Any
    mapping works; one that is not :class:`Settings`, or a value not read yet, goes name by name.
    """

    __slots__ = ("_get", "names")

    def __init__(self, *names: str) -> None:
        if len(names) < 2:
            raise ValueError("a SettingsReader reads two settings or more")
        self.names = names
        self._get = operator.itemgetter(*names)

    def __call__(self, conf: Mapping[str, Any]) -> tuple[Any, ...]:
        """The values of :attr:`names` in ``conf``."""
        if type(conf) is Settings:
            try:  # the cache holds exactly what conf[name] gives, once name has been read
                values: tuple[Any, ...] = self._get(conf._values)
            except KeyError:
                pass
            else:
                return values
        return tuple(conf[name] for name in self.names)
