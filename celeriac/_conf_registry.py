"""The registry of declared settings, and the errors that explain a name that is not one.

Names are never guessed. A name nobody declared raises :class:`UnknownSettingError` whose
message names the closest declared one (``unknown setting 'task_serialiser'; did you mean
'task_serializer'?``, by :mod:`difflib`); an old upper-case Celery name (``CELERYD_CONCURRENCY``)
names its replacement; a Celery setting celeriac deliberately leaves out
(:data:`~celeriac._conf_refused.UNSUPPORTED`) says why. The same rules hold for ``CELERIAC_*``
environment variables (:func:`read_environ`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from celeriac._conf_refused import OLD_NAMES, PENDING, UNSUPPORTED
from celeriac.exceptions import ImproperlyConfigured, UnknownSettingError

__all__ = [
    "ENVIRON_EXEMPT",
    "ENV_PREFIX",
    "REGISTRY",
    "Setting",
    "UnsupportedSettingError",
    "lookup",
    "old_name_error",
    "read_environ",
]

ENV_PREFIX: Final = "CELERIAC_"
"""Environment variables ``CELERIAC_<SETTING NAME UPPER-CASE>`` set settings."""


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


def lookup(name: str) -> Setting:
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
    new = OLD_NAMES.get(name.upper())
    if new is not None and new != name:
        return old_name_error(name, new)
    if name.lower() in REGISTRY:
        return UnknownSettingError(
            f"unknown setting {name!r}; setting names are lower-case: use {name.lower()!r}"
        )
    return UnknownSettingError(f"unknown setting {name!r}{_suggestion(name)}")


def old_name_error(name: str, new: str, prefix: str | None = None) -> UnknownSettingError:
    """The error for ``name``, Celery's old name of ``new`` (``prefix``: a namespace)."""
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
    import difflib  # noqa: PLC0415 - only when a suggestion is made (start-up time)

    close = difflib.get_close_matches(candidate, list(REGISTRY), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _env_error(key: str) -> ImproperlyConfigured:
    name = key[len(ENV_PREFIX) :].lower()
    if name in REGISTRY:
        return UnknownSettingError(
            f"environment variable {key!r}: spell it {ENV_PREFIX + name.upper()!r}"
        )
    error = _name_error(name)
    if type(error) is UnknownSettingError and name not in OLD_NAMES.values():
        import difflib  # noqa: PLC0415 - only when a suggestion is made (start-up time)

        close = difflib.get_close_matches(name, list(REGISTRY), n=1, cutoff=0.6)
        hint = f"; did you mean {ENV_PREFIX + close[0].upper()!r}?" if close else ""
        return UnknownSettingError(
            f"environment variable {key!r} names no setting (unknown setting {name!r}){hint}"
        )
    return type(error)(f"environment variable {key!r}: {error}")


def read_environ(environ: Mapping[str, str] | None) -> dict[str, str]:
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
