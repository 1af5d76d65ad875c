"""The errors celeriac raises, all under one root: :class:`CeleriacError`.

Two families are kept apart so callers can react differently:

* misuse on this side (:class:`ImproperlyConfigured`, :class:`NotRegistered`, ...): fix the code
  or the configuration;
* a bad or misbehaving peer (:class:`ProtocolError` and its children): the bytes that arrived
  are kept on the error, the peer is distrusted, nothing crashes.

Task-control exceptions (:class:`Retry`, :class:`Reject`, :class:`Ignore`) and the time-limit
errors keep Celery's names so migrating code reads the same.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from typing import Any

__all__ = [
    "AlreadyRegistered",
    "CeleriacError",
    "ChordError",
    "ConfigurationFrozen",
    "ContentDisallowed",
    "DecodeError",
    "EncodeError",
    "FrameError",
    "Ignore",
    "ImproperlyConfigured",
    "LockNotOwnedError",
    "MaxRetriesExceededError",
    "NotRegistered",
    "ProtocolError",
    "PublishError",
    "Reject",
    "RemoteTaskError",
    "Retry",
    "SerializationError",
    "SoftTimeLimitExceeded",
    "TaskRevokedError",
    "TimeLimitExceeded",
    "TimeoutError",
    "UnknownSettingError",
    "UnsupportedBrokerError",
    "WorkerLostError",
]


class CeleriacError(Exception):
    """The root of every error celeriac raises."""


# -- misuse (local errors) ---------------------------------------------------------------------


class ImproperlyConfigured(CeleriacError):
    """The configuration cannot work as given."""


class UnknownSettingError(ImproperlyConfigured, AttributeError, KeyError):
    """A setting name nobody declared; the message names the closest known one."""

    def __str__(self) -> str:
        # KeyError would otherwise wrap the message in quotes.
        return str(self.args[0]) if self.args else ""


class ConfigurationFrozen(ImproperlyConfigured):
    """A setting was changed after the app started using its configuration."""


class UnsupportedBrokerError(ImproperlyConfigured):
    """A broker URL whose scheme celeriac does not speak (amqp://, redis://, ...)."""


class NotRegistered(CeleriacError, KeyError):
    """No task of that name is registered with the app."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""

    @classmethod
    def for_task(cls, name: str, known: Iterable[str], where: str) -> NotRegistered:
        """The error for ``name`` missing ``where``: it names the closest known tasks and the
        usual fix."""
        names = sorted(known)
        import difflib  # noqa: PLC0415 - only when a suggestion is made (start-up time)

        close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        listing = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "") or "none"
        return cls(
            f"task {name!r} is not registered {where}{hint} (known: {listing}). Import the "
            "module that defines it in the worker (celeriac -A MODULE), "
            "or check the name given to @app.task(name=...)"
        )


class AlreadyRegistered(CeleriacError):
    """Two different tasks were registered under one name."""


class TimeoutError(CeleriacError, builtins.TimeoutError):
    """An operation (``AsyncResult.get``, ``app.flush``) did not finish in time."""


class PublishError(CeleriacError):
    """The hub refused a published message; the reason says why."""


# -- serialization -----------------------------------------------------------------------------


class SerializationError(CeleriacError):
    """A value could not be encoded or decoded."""


class EncodeError(SerializationError):
    """A value could not be encoded with the chosen serializer."""


class DecodeError(SerializationError):
    """Bytes could not be decoded; ``data`` keeps them for inspection."""

    def __init__(self, message: str, data: bytes = b"") -> None:
        super().__init__(message)
        self.data = data


class ContentDisallowed(SerializationError):
    """A message used a content type that ``accept_content`` does not allow."""


# -- bad peers (remote errors) -----------------------------------------------------------------


class ProtocolError(CeleriacError):
    """A peer sent something that breaks the wire protocol."""


class FrameError(ProtocolError):
    """A multipart message could not be parsed; ``frames`` keeps the raw bytes."""

    def __init__(self, message: str, frames: list[bytes] | None = None) -> None:
        super().__init__(message)
        self.frames = list(frames or [])


# -- task outcomes and control -----------------------------------------------------------------


class RemoteTaskError(CeleriacError):
    """A task failed with an exception type that could not be rebuilt here.

    ``exc_type`` and ``exc_module`` name the original type; ``traceback`` is the remote one.
    """

    def __init__(
        self, exc_type: str, exc_module: str, message: str, traceback: str | None = None
    ) -> None:
        super().__init__(f"{exc_module}.{exc_type}: {message}")
        self.exc_type = exc_type
        self.exc_module = exc_module
        self.message = message
        self.traceback = traceback


class TaskRevokedError(CeleriacError):
    """The task was revoked before it ran."""


class LockNotOwnedError(CeleriacError):
    """``Lock.release()`` by a holder that does not hold the lock (never acquired, released,
    or expired and taken by another holder): the other holder is left alone."""


class WorkerLostError(CeleriacError):
    """The process running the task died."""


class TimeLimitExceeded(CeleriacError):
    """The hard time limit was exceeded; the process running the task was replaced."""


class SoftTimeLimitExceeded(CeleriacError):
    """Raised inside a task when its soft time limit expires; the task may catch it."""


class ChordError(CeleriacError):
    """A chord's header task failed, so its body cannot run (names the failed task)."""


class MaxRetriesExceededError(CeleriacError):
    """``Task.retry`` was called more times than ``max_retries`` allows."""


class Retry(CeleriacError):
    """Raised by ``Task.retry`` to tell the worker the task will run again."""

    def __init__(
        self,
        message: str | None = None,
        exc: BaseException | None = None,
        when: float | None = None,
    ) -> None:
        super().__init__(message or "Retry in the future")
        self.exc = exc
        self.when = when
        #: The arguments of the next attempt (set by ``Task.retry``; None: the same ones).
        self.retry_args: tuple[Any, ...] | None = None
        self.retry_kwargs: dict[str, Any] | None = None


class Reject(CeleriacError):
    """Raised by a task to reject its message (``requeue=True`` puts it back)."""

    def __init__(self, reason: str | None = None, requeue: bool = False) -> None:
        super().__init__(reason or "rejected")
        self.reason = reason
        self.requeue = requeue


class Ignore(CeleriacError):
    """Raised by a task so that no state is stored for it."""
