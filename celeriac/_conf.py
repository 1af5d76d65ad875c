"""The settings registry: every setting is declared once, by the component that owns it.

How a value is found, lowest to highest precedence:

1. the default given to :func:`declare`;
2. the environment variable ``CELERIAC_<NAME>`` (``CELERIAC_WORKER_CONCURRENCY=4``), parsed by
   the setting's ``parse`` function. This module is the only one that reads the environment,
   and only from the mapping a :class:`Settings` is given (the App passes ``os.environ``);
   nothing is read at import time. Environment values are parsed and checked on first read;
3. explicit values: constructor ``overrides``, ``conf.name = v``, ``conf["name"] = v``,
   :meth:`Settings.update` and :meth:`Settings.config_from_object`.

Names are never guessed. A name nobody declared raises :class:`UnknownSettingError` whose
message names the closest declared one (``unknown setting 'task_serialiser'; did you mean
'task_serializer'?``, by :mod:`difflib`); an old upper-case Celery name (``CELERYD_CONCURRENCY``)
names its replacement; a Celery setting celeriac deliberately leaves out (:data:`UNSUPPORTED`)
says why. The same rules hold for ``CELERIAC_*`` environment variables, checked when the
:class:`Settings` is built.

:meth:`Settings.freeze` returns the read-only copy that the running app passes down to its
components; any write to it raises :class:`ConfigurationFrozen`.
"""

from __future__ import annotations

import contextlib
import datetime
import difflib
import importlib
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Final

from celeriac._beat import check_beat_schedule
from celeriac._compression import check_compression
from celeriac._limits import check_annotations, check_rate, parse_annotations
from celeriac._task_compat import check_acks_late_setting
from celeriac._zones import check_timezone
from celeriac.exceptions import (
    ConfigurationFrozen,
    ImproperlyConfigured,
    UnknownSettingError,
    UnsupportedBrokerError,
)

__all__ = [
    "ENVIRON_EXEMPT",
    "ENV_PREFIX",
    "HUB_SYNC_MODES",
    "PENDING",
    "REGISTRY",
    "UNSUPPORTED",
    "WORKER_POOLS",
    "Setting",
    "Settings",
    "UnsupportedSettingError",
    "choice_check",
    "declare",
    "int_check",
    "parse_bool",
    "parse_float",
    "parse_int",
    "parse_list",
    "parse_optional",
    "parse_seconds",
    "seconds_check",
    "str_list_check",
    "to_seconds",
]

ENV_PREFIX: Final = "CELERIAC_"
"""Environment variables ``CELERIAC_<SETTING NAME UPPER-CASE>`` set settings."""

FROZEN_MESSAGE: Final = (
    "configuration is frozen once the app has started; set it before the first send or worker start"
)

_MISSING: Final[Any] = object()


class UnsupportedSettingError(UnknownSettingError):
    """A Celery setting that celeriac deliberately does not support; the message says why.

    It derives from :class:`UnknownSettingError` (so from :class:`ImproperlyConfigured`,
    ``AttributeError`` and ``KeyError``), so ``hasattr`` and ``in`` behave as for any other
    name that is not a setting.
    """


@dataclass(frozen=True)
class Setting:
    """One declared setting: its name, default, one-line doc and how values are read."""

    name: str
    default: Any
    doc: str
    parse: Callable[[str], Any]
    """Turns an environment string into a value (then ``check`` runs on it)."""
    check: Callable[[Any], Any] | None = None
    """Validates and coerces a Python value, raising ImproperlyConfigured; returns what to store."""

    @property
    def env_name(self) -> str:
        """The environment variable that sets this setting."""
        return ENV_PREFIX + self.name.upper()

    def validate(self, value: Any) -> Any:
        """Run ``check`` on ``value``; any other error becomes ImproperlyConfigured."""
        if self.check is None:
            return value
        try:
            return self.check(value)
        except ImproperlyConfigured:
            raise
        except (TypeError, ValueError) as exc:
            raise ImproperlyConfigured(f"invalid value for setting {self.name!r}: {exc}") from exc


REGISTRY: dict[str, Setting] = {}
"""Every declared setting, by name."""


# -- parsers (environment strings -> values) ---------------------------------------------------

_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})
_NONE: Final = frozenset({"", "none", "null"})
_UNITS: Final = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_bool(text: str) -> bool:
    """``1/true/yes/on`` -> True, ``0/false/no/off`` -> False (any case); anything else fails."""
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ImproperlyConfigured(f"expected one of 1/true/yes/on/0/false/no/off, got {text!r}")


def parse_int(text: str) -> int:
    """A decimal integer."""
    try:
        return int(text.strip())
    except ValueError:
        raise ImproperlyConfigured(f"expected an integer, got {text!r}") from None


def parse_float(text: str) -> float:
    """A decimal number."""
    try:
        return float(text.strip())
    except ValueError:
        raise ImproperlyConfigured(f"expected a number, got {text!r}") from None


def parse_list(text: str) -> list[str]:
    """A comma-separated list; items are stripped and empty items dropped."""
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_seconds(text: str) -> float:
    """Seconds: ``"30"``, ``"1.5"``, or with a unit: ``"90s"``, ``"5m"``, ``"2h"``, ``"1d"``."""
    word = text.strip().lower()
    factor = _UNITS.get(word[-1:], 0.0)
    number = word[:-1] if factor else word
    try:
        return float(number) * (factor or 1.0)
    except ValueError:
        raise ImproperlyConfigured(
            f"expected seconds such as 30, 1.5 or 5m, got {text!r}"
        ) from None


def parse_optional(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """Wrap ``parse`` so that ``""``, ``"none"`` and ``"null"`` read as None."""

    def parse_or_none(text: str) -> Any:
        return None if text.strip().lower() in _NONE else parse(text)

    return parse_or_none


# -- checks (Python values -> stored values) ---------------------------------------------------


def _type_name(value: object) -> str:
    return type(value).__name__


def to_seconds(value: Any) -> float:
    """A number of seconds or a ``datetime.timedelta`` as float seconds (bools refused)."""
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ImproperlyConfigured(f"expected seconds or a timedelta, got {_type_name(value)}")
    return float(value)


def seconds_check(
    name: str, *, optional: bool = False, positive: bool = False
) -> Callable[[Any], float | None]:
    """A check for a duration in seconds (timedelta accepted); None allowed when ``optional``."""

    def check(value: Any) -> float | None:
        if value is None and optional:
            return None
        try:
            seconds = to_seconds(value)
        except ImproperlyConfigured as exc:
            raise ImproperlyConfigured(f"setting {name!r}: {exc}") from None
        if math.isnan(seconds) or seconds < 0 or (positive and seconds == 0):
            bound = "greater than 0" if positive else "0 or more"
            raise ImproperlyConfigured(f"setting {name!r} must be {bound} seconds, got {value!r}")
        return seconds

    return check


def int_check(
    name: str, *, minimum: int | None = None, optional: bool = False
) -> Callable[[Any], int | None]:
    """A check for an integer (not a bool) of at least ``minimum``; None too when ``optional``."""

    def check(value: Any) -> int | None:
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ImproperlyConfigured(f"setting {name!r} must be an integer, got {value!r}")
        if minimum is not None and value < minimum:
            raise ImproperlyConfigured(f"setting {name!r} must be {minimum} or more, got {value}")
        return value

    return check


def choice_check(name: str, choices: Callable[[], Iterable[str]]) -> Callable[[Any], str]:
    """A check for one of ``choices()`` (a callable, so the allowed set can grow later)."""

    def check(value: Any) -> str:
        allowed = tuple(choices())
        if isinstance(value, str) and value.strip().lower() in allowed:
            return value.strip().lower()
        raise ImproperlyConfigured(
            f"setting {name!r} must be one of {', '.join(allowed)}; got {value!r}"
        )

    return check


def str_list_check(name: str, *, optional: bool = False) -> Callable[[Any], list[str] | None]:
    """A check for a list of strings: a list, tuple or set, or a comma-separated string."""

    def check(value: Any) -> list[str] | None:
        if value is None and optional:
            return None
        if isinstance(value, str):
            return parse_list(value)
        if isinstance(value, list | tuple | set | frozenset) and all(
            isinstance(item, str) for item in value
        ):
            return list(value)
        raise ImproperlyConfigured(f"setting {name!r} must be a list of strings, got {value!r}")

    return check


def _exact_type_check(name: str, kind: type) -> Callable[[Any], Any]:
    """The check inferred from a bool, int, float or str default."""

    def check(value: Any) -> Any:
        if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, kind) and (kind is bool or not isinstance(value, bool)):
            return value
        raise ImproperlyConfigured(
            f"setting {name!r} must be of type {kind.__name__}, got {value!r} ({_type_name(value)})"
        )

    return check


def _infer_parse(default: Any) -> Callable[[str], Any]:
    if isinstance(default, bool):
        return parse_bool
    if isinstance(default, int):
        return parse_int
    if isinstance(default, float):
        return parse_float
    if isinstance(default, tuple):
        return lambda text: tuple(parse_list(text))
    if isinstance(default, list):
        return parse_list
    return str


def _infer_check(name: str, default: Any) -> Callable[[Any], Any] | None:
    for kind in (bool, int, float, str):
        if type(default) is kind:
            return _exact_type_check(name, kind)
    if isinstance(default, list | tuple):
        to_list = str_list_check(name)
        return to_list if isinstance(default, list) else lambda v: tuple(to_list(v) or ())
    return None


# -- declaring ---------------------------------------------------------------------------------


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
        parse=parse or _infer_parse(default),
        check=check if check is not None else _infer_check(name, default),
    )
    setting.validate(default)
    REGISTRY[name] = setting
    return setting


def _check_declarable(name: str) -> None:
    if not name.isidentifier() or name.startswith("_") or name != name.lower():
        raise ImproperlyConfigured(f"setting names are lower-case identifiers, got {name!r}")
    PENDING.pop(name, None)  # refused until now as "not implemented yet": now it is
    if name in UNSUPPORTED or _OLD_NAMES.get(name.upper(), name) != name:
        raise ImproperlyConfigured(f"{name!r} is reserved (an unsupported or old Celery name)")
    if hasattr(Settings, name):
        raise ImproperlyConfigured(f"{name!r} would hide the Settings attribute of that name")


# -- looking names up --------------------------------------------------------------------------


def _lookup(name: str) -> Setting:
    """The declared setting ``name``, or the error that explains why there is none."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise _name_error(name) from None


def _name_error(name: object) -> ImproperlyConfigured:
    if not isinstance(name, str):
        return UnknownSettingError(f"setting names are strings, got {name!r}")
    if name in UNSUPPORTED:
        return UnsupportedSettingError(
            f"celeriac does not support Celery's setting {name!r}: {UNSUPPORTED[name]}"
        )
    if name in PENDING:
        return UnsupportedSettingError(
            f"celeriac does not support Celery's setting {name!r}: not implemented yet: "
            f"{PENDING[name]}"
        )
    new = _OLD_NAMES.get(name.upper())
    if new is not None and new != name:
        return _old_name_error(name, new)
    if name.lower() in REGISTRY:
        return UnknownSettingError(
            f"unknown setting {name!r}; setting names are lower-case: use {name.lower()!r}"
        )
    return UnknownSettingError(f"unknown setting {name!r}{_suggestion(name)}")


def _old_name_error(name: str, new: str, prefix: str | None = None) -> UnknownSettingError:
    if new in UNSUPPORTED:
        return UnsupportedSettingError(
            f"{name!r} is Celery's old name for {new!r}, which celeriac does not support: "
            f"{UNSUPPORTED[new]}"
        )
    spelled = (
        repr(new) if prefix is None else f"{prefix + new.upper()!r} (namespace {prefix[:-1]!r})"
    )
    return UnknownSettingError(f"{name!r} is Celery's old name; use {spelled}")


def _suggestion(name: str) -> str:
    candidate = name.lower()
    if candidate.startswith(ENV_PREFIX.lower()):
        candidate = candidate[len(ENV_PREFIX) :]
        if candidate in REGISTRY:
            return f"; did you mean {candidate!r}? ({ENV_PREFIX} is for environment variables)"
    close = difflib.get_close_matches(candidate, list(REGISTRY), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _env_error(key: str) -> ImproperlyConfigured:
    name = key[len(ENV_PREFIX) :].lower()
    if name in REGISTRY:
        return UnknownSettingError(
            f"environment variable {key!r}: spell it {ENV_PREFIX + name.upper()!r}"
        )
    error = _name_error(name)
    if type(error) is UnknownSettingError and name not in _OLD_NAMES.values():
        close = difflib.get_close_matches(name, list(REGISTRY), n=1, cutoff=0.6)
        hint = f"; did you mean {ENV_PREFIX + close[0].upper()!r}?" if close else ""
        return UnknownSettingError(
            f"environment variable {key!r} names no setting (unknown setting {name!r}){hint}"
        )
    return type(error)(f"environment variable {key!r}: {error}")


def _read_environ(environ: Mapping[str, str] | None) -> dict[str, str]:
    """The ``CELERIAC_*`` entries of ``environ`` by setting name; unknown names raise."""
    found: dict[str, str] = {}
    for key, raw in (environ or {}).items():
        if not key.startswith(ENV_PREFIX) or key in ENVIRON_EXEMPT:
            continue
        name = key[len(ENV_PREFIX) :].lower()
        if name not in REGISTRY or key != ENV_PREFIX + name.upper():
            raise _env_error(key)
        found[name] = raw
    return found


ENVIRON_EXEMPT: set[str] = set()
"""``CELERIAC_*`` environment variables that are not settings (a command line may add its own)."""


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
            if name not in REGISTRY and _OLD_NAMES.get(attr, name) != name:
                raise _old_name_error(attr, _OLD_NAMES[attr], prefix)
            chosen[name] = value
        elif attr.isupper() and attr in _OLD_NAMES:
            raise _old_name_error(attr, _OLD_NAMES[attr], prefix)
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
        self._environ = _read_environ(environ)
        self._frozen = False
        if overrides:
            self.update(overrides)

    # -- reading

    def __getitem__(self, name: str) -> Any:
        value = self._values.get(name, _MISSING)
        if value is _MISSING:
            value = self._resolve(_lookup(name))
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
        setting = _lookup(name)
        self._store(name, setting.validate(value))

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            self[name] = value

    def __delitem__(self, name: str) -> None:
        """Forget the explicit value of ``name`` (the environment or default shows again)."""
        self._ensure_writable()
        _lookup(name)
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
        checked = {name: _lookup(name).validate(value) for name, value in pairs.items()}
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
        _lookup(name)
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


# -- Celery names celeriac refuses -------------------------------------------------------------


def _prefixed(prefix: str, names: str) -> list[str]:
    return [prefix + name for name in names.split()]


_NO_TRANSPORT = "celeriac speaks only its own ZeroMQ hub; there is no transport to choose or tune"
_NO_BACKEND = (
    "results live in the hub (see result_expires); there is no result backend to configure"
)
_NO_EAGER = (
    "eager mode hides the serialization and routing that break in production; "
    "use celeriac.testing, which runs the real path in-process"
)
_NO_QUEUE_TYPES = "hub queues are all durable and have no AMQP queue types"
_NO_EVENT_QUEUE = "events go out on the hub's PUB socket; there is no event queue"

UNSUPPORTED: dict[str, str] = {
    "broker_transport": _NO_TRANSPORT,
    "broker_transport_options": _NO_TRANSPORT,
    "broker_login_method": (
        "the hub authenticates peers by CURVE keys, not AMQP logins: see "
        "hub_curve_allowed_keys_dir and broker_curve_secret_key_file (celeriac keys generate)"
    ),
    "broker_use_ssl": (
        "links to the hub are encrypted with ZeroMQ CURVE, not TLS: set "
        "broker_curve_server_key_file and broker_curve_secret_key_file"
    ),
    "broker_pool_limit": "each process keeps one socket to the hub; there is no connection pool",
    "broker_native_delayed_delivery_queue_type": "delayed messages always wait at the hub",
    "task_protocol": "celeriac speaks task message protocol 2 only",
    "task_always_eager": _NO_EAGER,
    "task_eager_propagates": _NO_EAGER,
    "task_default_delivery_mode": "every message is stored durably by the hub",
    "task_default_queue_type": _NO_QUEUE_TYPES,
    "task_create_missing_queue_type": _NO_QUEUE_TYPES,
    "worker_detect_quorum_queues": _NO_QUEUE_TYPES,
    "worker_enable_prefetch_count_reduction": "the hub sends work by credit (free slots), "
    "not by an AMQP prefetch count",
    "worker_pool_putlocks": "the hub never sends more tasks than the worker has free slots",
    "worker_consumer": "the worker's consumer is not pluggable",
    "worker_timer": "the timer is an actor and is not pluggable",
    "worker_agent": "celeriac has no pluggable worker agent",
    "event_queue_expires": _NO_EVENT_QUEUE,
    "event_queue_ttl": _NO_EVENT_QUEUE,
    "event_queue_durable": _NO_EVENT_QUEUE,
    "event_queue_exclusive": _NO_EVENT_QUEUE,
    "event_queue_prefix": _NO_EVENT_QUEUE,
    "result_exchange": _NO_BACKEND,
    "result_exchange_type": _NO_BACKEND,
    "result_persistent": _NO_BACKEND,
    "result_backend_transport_options": _NO_BACKEND,
    "cache_backend": _NO_BACKEND,
    "cache_backend_options": _NO_BACKEND,
    "couchbase_backend_settings": _NO_BACKEND,
    "arangodb_backend_settings": _NO_BACKEND,
    "mongodb_backend_settings": _NO_BACKEND,
    "database_engine_options": _NO_BACKEND,
    "database_short_lived_sessions": _NO_BACKEND,
    "database_table_names": _NO_BACKEND,
    **dict.fromkeys(
        [
            *_prefixed("cassandra_", "table entry_ttl keyspace port read_consistency servers"),
            *_prefixed("cassandra_", "write_consistency options"),
            *_prefixed("s3_", "access_key_id secret_access_key bucket base_path endpoint_url"),
            *_prefixed("s3_", "region"),
            *_prefixed("redis_", "db host max_connections username password port"),
            *_prefixed("redis_", "backend_use_ssl"),
        ],
        _NO_BACKEND,
    ),
}
"""Celery settings celeriac deliberately does not support, with the reason (shown to users)."""

PENDING: dict[str, str] = {}
"""Celery settings refused only because their feature is not built yet, with what is missing;
declaring one replaces the refusal (``_settings_table.py`` lists them)."""


def _old(prefix: str, names: str, new_prefix: str) -> dict[str, str]:
    return {f"{prefix}{n}": f"{new_prefix}{n.lower()}" for n in names.split()}


_OLD_NAMES: Final[dict[str, str]] = {
    # Celery's "New lowercase settings" table (version 4.0), plus the older spellings it replaced.
    **_old("CELERY_", "ACCEPT_CONTENT ENABLE_UTC IMPORTS INCLUDE TIMEZONE", ""),
    **_old("CELERYBEAT_", "MAX_LOOP_INTERVAL SCHEDULE SCHEDULER SCHEDULE_FILENAME", "beat_"),
    **_old("CELERYBEAT_", "SYNC_EVERY", "beat_"),
    **_old("BROKER_", "URL TRANSPORT TRANSPORT_OPTIONS CONNECTION_TIMEOUT", "broker_"),
    **_old("BROKER_", "CONNECTION_RETRY CONNECTION_MAX_RETRIES FAILOVER_STRATEGY", "broker_"),
    **_old("BROKER_", "HEARTBEAT LOGIN_METHOD POOL_LIMIT USE_SSL", "broker_"),
    **_old("BROKER_", "NATIVE_DELAYED_DELIVERY_QUEUE_TYPE", "broker_"),
    **_old("CELERY_", "CACHE_BACKEND CACHE_BACKEND_OPTIONS", ""),
    "CASSANDRA_COLUMN_FAMILY": "cassandra_table",
    **_old("CASSANDRA_", "ENTRY_TTL KEYSPACE PORT READ_CONSISTENCY SERVERS", "cassandra_"),
    **_old("CASSANDRA_", "WRITE_CONSISTENCY OPTIONS", "cassandra_"),
    **_old("S3_", "ACCESS_KEY_ID SECRET_ACCESS_KEY BUCKET BASE_PATH ENDPOINT_URL REGION", "s3_"),
    **_old("CELERY_", "COUCHBASE_BACKEND_SETTINGS ARANGODB_BACKEND_SETTINGS", ""),
    **_old("CELERY_", "MONGODB_BACKEND_SETTINGS", ""),
    **_old("CELERY_", "EVENT_QUEUE_EXPIRES EVENT_QUEUE_TTL EVENT_QUEUE_DURABLE", ""),
    **_old("CELERY_", "EVENT_QUEUE_EXCLUSIVE EVENT_QUEUE_PREFIX EVENT_SERIALIZER", ""),
    **_old("CELERY_REDIS_", "DB HOST MAX_CONNECTIONS USERNAME PASSWORD PORT", "redis_"),
    **_old("CELERY_REDIS_", "BACKEND_USE_SSL", "redis_"),
    **_old("CELERY_RESULT_", "BACKEND EXCHANGE EXCHANGE_TYPE EXPIRES PERSISTENT", "result_"),
    **_old("CELERY_RESULT_", "SERIALIZER", "result_"),
    "CELERY_TASK_RESULT_EXPIRES": "result_expires",
    "CELERY_MAX_CACHED_RESULTS": "result_cache_max",
    "CELERY_MESSAGE_COMPRESSION": "result_compression",
    "CELERY_RESULT_DBURI": "result_backend",
    "CELERY_RESULT_ENGINE_OPTIONS": "database_engine_options",
    "CELERY_RESULT_DB_SHORT_LIVED_SESSIONS": "database_short_lived_sessions",
    "CELERY_RESULT_DB_TABLE_NAMES": "database_table_names",
    **_old("CELERY_SECURITY_", "CERTIFICATE CERT_STORE KEY KEY_PASSWORD", "security_"),
    **_old("CELERY_", "ACKS_LATE ACKS_ON_FAILURE_OR_TIMEOUT ANNOTATIONS COMPRESSION", "task_"),
    **_old("CELERY_", "CREATE_MISSING_QUEUES CREATE_MISSING_QUEUE_TYPE", "task_"),
    **_old("CELERY_", "CREATE_MISSING_QUEUE_EXCHANGE_TYPE IGNORE_RESULT", "task_"),
    **_old("CELERY_", "EAGER_PROPAGATES PUBLISH_RETRY PUBLISH_RETRY_POLICY QUEUES", "task_"),
    **_old("CELERY_", "ROUTES SEND_SENT_EVENT TRACK_STARTED ALWAYS_EAGER", "task_"),
    **_old("CELERY_", "ALLOW_ERROR_CB_ON_CHORD_HEADER", "task_"),
    **_old("CELERY_TASK_", "ALWAYS_EAGER SERIALIZER TRACK_STARTED PUBLISH_RETRY", "task_"),
    **_old("CELERY_TASK_", "PUBLISH_RETRY_POLICY REJECT_ON_WORKER_LOST", "task_"),
    **_old("CELERY_DEFAULT_", "DELIVERY_MODE EXCHANGE EXCHANGE_TYPE QUEUE", "task_default_"),
    **_old("CELERY_DEFAULT_", "QUEUE_TYPE RATE_LIMIT ROUTING_KEY", "task_default_"),
    "CELERY_EAGER_PROPAGATES_EXCEPTIONS": "task_eager_propagates",
    "CELERY_SEND_TASK_SENT_EVENT": "task_send_sent_event",
    **_old("CELERYD_", "SOFT_TIME_LIMIT TIME_LIMIT", "task_"),
    **_old("CELERYD_TASK_", "SOFT_TIME_LIMIT TIME_LIMIT", "task_"),
    **_old("CELERYD_", "AGENT AUTOSCALER CONCURRENCY CONSUMER HIJACK_ROOT_LOGGER", "worker_"),
    **_old("CELERYD_", "LOG_COLOR LOG_FORMAT MAX_TASKS_PER_CHILD MAX_MEMORY_PER_CHILD", "worker_"),
    **_old("CELERYD_", "POOL POOL_PUTLOCKS POOL_RESTARTS PREFETCH_MULTIPLIER", "worker_"),
    **_old("CELERYD_", "ETA_TASK_LIMIT ENABLE_PREFETCH_COUNT_REDUCTION", "worker_"),
    **_old("CELERYD_", "REDIRECT_STDOUTS REDIRECT_STDOUTS_LEVEL STATE_DB", "worker_"),
    **_old("CELERYD_", "TASK_LOG_FORMAT TIMER TIMER_PRECISION DETECT_QUORUM_QUEUES", "worker_"),
    "CELERYD_WORKER_LOST_WAIT": "worker_lost_wait",
    **_old("CELERY_", "REDIRECT_STDOUTS REDIRECT_STDOUTS_LEVEL", "worker_"),
    **_old("CELERY_WORKER_", "DIRECT LOG_FORMAT TASK_LOG_FORMAT", "worker_"),
    **_old("CELERY_", "DISABLE_RATE_LIMITS ENABLE_REMOTE_CONTROL", "worker_"),
    "CELERY_SEND_EVENTS": "worker_send_task_events",
}
"""Celery's old upper-case setting names and their new names (never accepted, only explained)."""


# -- the core settings -------------------------------------------------------------------------

WORKER_POOLS: tuple[str, ...] = ("threads", "solo", "prefork", "asyncio")
"""The ``worker_pool`` values accepted; a pool implementation adds its name here."""

HUB_SYNC_MODES: Final = ("normal", "full")
EMBEDDED_HUB_MODES: Final = ("auto", "always", "never")

_BROKER_SCHEMES: Final = ("tcp", "ipc", "inproc")
_BROKER_HINT: Final = (
    "celeriac talks to its own hub over ZeroMQ: use tcp://host:port (or ipc:///path); "
    "the hub is embedded in the worker by default, or run `celeriac hub`"
)


def _check_broker_url(value: Any) -> str:
    if not isinstance(value, str):
        raise ImproperlyConfigured(f"setting 'broker_url' must be a string, got {value!r}")
    scheme, sep, rest = value.strip().partition("://")
    if not sep or scheme.lower() not in _BROKER_SCHEMES:
        raise UnsupportedBrokerError(f"unsupported broker URL {value!r}: {_BROKER_HINT}")
    if not rest or any(c in rest for c in "; \t,") or not _valid_address(scheme.lower(), rest):
        raise UnsupportedBrokerError(f"malformed broker URL {value!r}: {_BROKER_HINT}")
    return value.strip()


def _valid_address(scheme: str, rest: str) -> bool:
    if scheme != "tcp":
        return True
    host, _, port = rest.rpartition(":")
    return bool(host) and port.isdigit() and 0 < int(port) < 65536


def _check_embedded_hub(value: Any) -> str:
    if value is True or value is False:
        return "always" if value else "never"
    if isinstance(value, str):
        word = value.strip().lower()
        word = {"true": "always", "yes": "always", "false": "never", "no": "never"}.get(word, word)
        if word in EMBEDDED_HUB_MODES:
            return word
    raise ImproperlyConfigured(
        "setting 'worker_embedded_hub' must be one of auto, always, never (or True/False); "
        f"got {value!r}"
    )


def _check_result_backend(value: Any) -> str | None:
    if value is None or value == "hub":
        return value  # type: ignore[no-any-return]
    raise ImproperlyConfigured(
        f"result_backend={value!r} is not supported: celeriac keeps results in its hub, which "
        "expires them after result_expires; leave result_backend unset (or set it to 'hub')"
    )


def _check_path(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str | os.PathLike):
        return os.fspath(value)
    raise ImproperlyConfigured(f"setting 'hub_data_dir' must be a path or None, got {value!r}")


def _check_store_url(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.partition("://")[0] in ("postgresql", "postgres"):
        return value
    raise ImproperlyConfigured(
        "setting 'hub_store_url' must be a PostgreSQL URL (postgresql://user@host/dbname) or "
        f"None, got {value!r}"
    )


def _check_non_empty(name: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if isinstance(value, str) and value.strip():
            return value.strip()
        raise ImproperlyConfigured(f"setting {name!r} must be a non-empty string, got {value!r}")

    return check


_parse_seconds_or_none = parse_optional(parse_seconds)

declare(
    "broker_url",
    "tcp://127.0.0.1:5555",
    "Address of the hub: tcp://host:port, ipc:///path or inproc://name.",
    check=_check_broker_url,
)
declare(
    "result_backend",
    None,
    "Where results are kept: only the hub (None or 'hub'); other backends are not supported.",
    parse=parse_optional(str),
    check=_check_result_backend,
)
declare("task_serializer", "json", "Serializer for task messages: json, msgpack, pickle, yaml.")
declare("result_serializer", "json", "Serializer for task results: json, msgpack, pickle, yaml.")
declare(
    "task_compression",
    None,
    "Compress task message bodies: gzip, zlib, bzip2 or lzma (None: not compressed); "
    "apply_async(compression=...) overrides it. The compression travels in the message's "
    "content type, so any worker decompresses.",
    parse=parse_optional(str),
    check=lambda v: check_compression(v, "task_compression"),
)
declare(
    "result_compression",
    None,
    "Compress task results (and failures) as workers store them: gzip, zlib, bzip2 or lzma "
    "(None: not compressed). Clients decompress whatever the result says.",
    parse=parse_optional(str),
    check=lambda v: check_compression(v, "result_compression"),
)
declare(
    "accept_content",
    ["json"],
    "Serializer names or content types a worker accepts in task messages.",
    check=str_list_check("accept_content"),
)
declare(
    "result_accept_content",
    None,
    "Serializer names or content types accepted for results (None: same as accept_content).",
    parse=parse_optional(parse_list),
    check=str_list_check("result_accept_content", optional=True),
)
declare("task_ignore_result", False, "Do not store task results unless a task asks to.")
declare(
    "result_expires",
    86400.0,
    "Seconds (or a timedelta) the hub keeps a result; None keeps results forever.",
    parse=_parse_seconds_or_none,
    check=seconds_check("result_expires", optional=True),
)
declare(
    "result_failure_expires",
    None,
    "Seconds (or a timedelta) the hub keeps the result of a FAILED task (None: as "
    "result_expires). Keep failures longer to investigate them, or shorter to shed them.",
    parse=_parse_seconds_or_none,
    check=seconds_check("result_failure_expires", optional=True),
)
declare(
    "worker_concurrency",
    None,
    "Task slots per worker node (None: os.cpu_count()).",
    parse=parse_optional(parse_int),
    check=int_check("worker_concurrency", minimum=1, optional=True),
)
declare(
    "worker_pool",
    "threads",
    "How a worker runs tasks: one of WORKER_POOLS (threads: N slots in threads of one process; "
    "solo: one slot; prefork: N child processes, for CPU-bound tasks and hard time limits; "
    "asyncio: async def tasks on one event loop, N at a time, sync tasks in threads).",
    check=choice_check("worker_pool", lambda: WORKER_POOLS),
)
declare(
    "worker_prefetch_multiplier",
    2,
    "Messages a worker may hold per task slot (an integer, 1 or more); see "
    "worker_prefetch_giveback for why a long task does not hold the extra ones back.",
    check=int_check("worker_prefetch_multiplier", minimum=1),
)
declare(
    "worker_prefetch_giveback",
    0.1,
    "Seconds prefetched messages may wait behind busy slots before the worker hands them "
    "back to the hub for another worker (celeriac's answer to Celery's prefetch complaint).",
    parse=parse_seconds,
    check=seconds_check("worker_prefetch_giveback"),
)
declare(
    "hub_events_url",
    None,
    "Where the hub publishes events (worker-online/offline, task-started/succeeded/failed...) on "
    "a PUB socket; None: the broker port + 1 (tcp) or <path>.events (ipc).",
    parse=parse_optional(str),
)
declare(
    "worker_shutdown_timeout",
    60.0,
    "Seconds a warm shutdown waits for running tasks; then they are handed back for redelivery.",
    parse=parse_seconds,
    check=seconds_check("worker_shutdown_timeout"),
)
declare(
    "task_default_queue",
    "celery",
    "Queue for tasks that name no queue and match no route.",
    check=_check_non_empty("task_default_queue"),
)
declare(
    "task_acks_late",
    True,
    "Acknowledge a task after it finishes (at-least-once delivery); False is refused.",
    check=check_acks_late_setting,
)
declare(
    "result_extended",
    False,
    "Keep each task's request (name, args, kwargs, worker, queue, retries, date_done) beside "
    "its result, for AsyncResult.name, .args... (stored by the hub with the result).",
)
declare(
    "task_store_errors_even_if_ignored",
    False,
    "Store the FAILURE of tasks whose results are ignored (ignore_result), so their errors can "
    "still be read with AsyncResult.",
)
declare("task_track_started", False, "Report the STARTED state when a worker begins a task.")
declare(
    "task_time_limit",
    None,
    "Hard time limit in seconds of every task (None: none); a task's time_limit option and "
    "apply_async(time_limit=) win. The task fails with TimeLimitExceeded; prefork kills its "
    "process, threads/asyncio can only interrupt Python code (an exception, a cancellation).",
    parse=_parse_seconds_or_none,
    check=seconds_check("task_time_limit", optional=True),
)
declare(
    "task_soft_time_limit",
    None,
    "Soft time limit in seconds of every task (None: none): SoftTimeLimitExceeded is raised "
    "inside the task (asyncio.CancelledError in a coroutine), which may catch it to clean up.",
    parse=_parse_seconds_or_none,
    check=seconds_check("task_soft_time_limit", optional=True),
)
declare(
    "task_default_rate_limit",
    None,
    "Rate limit of every task type that sets none, per worker node: '10/s', '100/m', '1000/h' "
    "or a number per second (None: no limit). A task's rate_limit option and task_annotations "
    "win. A delivery waiting for its rate holds no execution slot.",
    check=check_rate,
)
declare(
    "task_annotations",
    None,
    "Celery's task annotations, for rate_limit and max_concurrency: "
    "{'tasks.add': {'rate_limit': '10/s'}}, {'*': {...}} for every task, objects with "
    "annotate(task), or a list of these (first match wins; a task's own name wins over '*').",
    parse=parse_annotations,
    check=check_annotations,
)
declare(
    "worker_disable_rate_limits",
    False,
    "Ignore every rate limit on this worker (max_concurrency caps still apply).",
)
declare(
    "broker_heartbeat",
    2.0,
    "Seconds between heartbeats to the hub; a peer missing 3 in a row is declared dead.",
    parse=parse_seconds,
    check=seconds_check("broker_heartbeat", positive=True),
)
declare(
    "broker_connection_timeout",
    4.0,
    "Seconds to wait for the hub to answer when connecting.",
    parse=parse_seconds,
    check=seconds_check("broker_connection_timeout", positive=True),
)
declare(
    "hub_data_dir",
    None,
    "Directory of the hub's durable store (None: $XDG_STATE_HOME/celeriac/hub-<host>-<port>, "
    "i.e. ~/.local/state/celeriac/hub-127.0.0.1-5555 by default: one per hub address, the same "
    "whatever the current directory).",
    parse=parse_optional(str),
    check=_check_path,
)
declare(
    "hub_store_url",
    None,
    "Where a hub keeps its durable store instead of SQLite in hub_data_dir: a PostgreSQL URL, "
    "postgresql://user@host:5432/dbname (optionally ?schema=NAME, default celeriac: the "
    "PostgreSQL schema of the hub's tables; one hub per schema). Needs "
    "pip install 'celeriac[postgres]'. The hub creates its tables on first start; "
    "celeriac hub --migrate upgrades them. None: SQLite.",
    parse=parse_optional(str),
    check=_check_store_url,
)
declare(
    "hub_store_shared",
    False,
    "With hub_store_url: this hub shares the PostgreSQL schema with other hubs started the same "
    "way (celeriac hub --shared): the queues are the table, any hub's workers take any hub's "
    "tasks, and a dead hub's tasks are taken back by the others. False: one hub per schema.",
)
declare(
    "hub_sync",
    "normal",
    "SQLite synchronous mode: normal survives a process kill, full also survives power loss. "
    "With hub_store_url (PostgreSQL): normal commits with synchronous_commit=off, full with on.",
    check=choice_check("hub_sync", lambda: HUB_SYNC_MODES),
)
declare(
    "worker_embedded_hub",
    "auto",
    "Whether a worker runs the hub in its own process: auto (only when broker_url is a "
    "loopback tcp:// address nobody listens on: the one-machine start), always (this worker is "
    "the hub and binds broker_url), never (connect to broker_url and wait for the hub there).",
    check=_check_embedded_hub,
)
declare("imports", [], "Modules a worker imports at start (comma-separated in the environment).")
declare("include", [], "More modules a worker imports at start, after imports.")

# -- time zones and periodic tasks (beat) --------------------------------------------------------

declare(
    "timezone",
    "UTC",
    "IANA time zone name (Europe/Berlin) crontab schedules are evaluated in; checked against "
    "this machine's tz database with a did-you-mean.",
    check=check_timezone,
)
declare(
    "enable_utc",
    True,
    "Naive datetimes (eta, expires, a schedule's last run) are read as UTC; False reads them as "
    "wall-clock time in the timezone setting (Celery's meaning).",
)


def _no_environ_schedule(text: str) -> Any:
    raise ImproperlyConfigured("beat_schedule holds schedule objects: set it in code or config")


declare(
    "beat_schedule",
    {},
    "Periodic tasks: {name: {task, schedule, args, kwargs, options, relative}} (Celery's "
    "entries); checked on assignment, unknown keys refused. Fired by `celeriac beat` or "
    "`worker -B` (one beat at a time, by a lease at the hub), each entry's last run kept "
    "durably at the hub.",
    parse=_no_environ_schedule,
    check=check_beat_schedule,
)
declare(
    "beat_max_loop_interval",
    300.0,
    "Most seconds beat sleeps before it looks at the schedule again.",
    parse=parse_seconds,
    check=seconds_check("beat_max_loop_interval", positive=True),
)
_BEAT_STATE_AT_HUB = (
    "beat keeps each entry's last run durably at the hub (one beat at a time, by a lease), so "
    "there is no scheduler class, state file or sync interval to choose"
)
UNSUPPORTED.update(
    dict.fromkeys(
        ("beat_scheduler", "beat_schedule_filename", "beat_sync_every"), _BEAT_STATE_AT_HUB
    )
)
declare(
    "beat_cron_starting_deadline",
    None,
    "Crontab entries: the most seconds beat looks back for a missed slot to run late (after "
    "a time with no beat); an older slot is skipped. None: a missed slot always runs once, "
    "late (beat's catch-up policy).",
    parse=_parse_seconds_or_none,
    check=seconds_check("beat_cron_starting_deadline", optional=True),
)

# -- prefork pool, lost workers, poison messages -------------------------------------------------

declare(
    "task_reject_on_worker_lost",
    True,
    "When the worker process running a task dies (kill -9, segfault, OOM), True gives the task "
    "back to the hub for redelivery; False ends it FAILURE with WorkerLostError. Celery's name "
    "and meaning; only the default differs (Celery: False, i.e. no redelivery).",
)
declare(
    "broker_max_deliveries",
    5,
    "Worker losses a message survives (read by the hub): after this many it is kept in the "
    "celeriac.dead_letter queue and its result is FAILURE with WorkerLostError.",
    check=int_check("broker_max_deliveries", minimum=1),
)
declare(
    "worker_max_tasks_per_child",
    None,
    "Prefork: a child process runs at most this many tasks, then is replaced (None: no limit).",
    parse=parse_optional(parse_int),
    check=int_check("worker_max_tasks_per_child", minimum=1, optional=True),
)
declare(
    "worker_max_memory_per_child",
    None,
    "Prefork: a child whose resident memory exceeds this many KiB after a task is replaced "
    "(None: no limit).",
    parse=parse_optional(parse_int),
    check=int_check("worker_max_memory_per_child", minimum=1, optional=True),
)
declare(
    "worker_autoscale_keepalive",
    30.0,
    "Prefork with --autoscale MAX,MIN: a child idle this many seconds leaves (the pool shrinks "
    "by one, never below MIN).",
    parse=parse_seconds,
    check=seconds_check("worker_autoscale_keepalive", positive=True),
)
declare(
    "worker_autoscale_grow_after",
    0.5,
    "Prefork with --autoscale MAX,MIN: when every child has been busy this many seconds without "
    "a break, one more child is started (never above MAX).",
    parse=parse_seconds,
    check=seconds_check("worker_autoscale_grow_after", positive=True),
)
