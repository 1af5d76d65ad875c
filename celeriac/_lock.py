"""``app.lock(name, expire=...)``: a lock held at the hub, with expiry.

::

    with app.lock("feed:" + url, expire=600) as acquired:
        if acquired:
            ...  # only one holder at a time, cluster-wide

    lock = app.lock("report", expire=60)
    if lock.acquire(blocking=True, timeout=5):
        try: ...
        finally: lock.release()

The hub holds the table (``transport/hub/locks.py``): a lock is taken by one holder (this
object's random token) until it is released by that holder or ``expire`` seconds pass, so a
holder that crashed blocks the name for at most ``expire`` seconds. Releasing a lock you do not
hold (it expired and someone else took it) raises :class:`~celeriac.exceptions.LockNotOwnedError`
and leaves the other holder alone. A blocking acquire waits at the hub (first come, first
served) and gets the lock the moment it is freed, or gives up after ``timeout``. The context
manager acquires without blocking (``blocking=False``) unless told otherwise
(``app.lock(..., blocking=True, timeout=...)``), so ``acquired`` says whether this caller got
it, as in the memcache-lock recipe.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

from . import _protocol as p
from ._protocol_keyed import LockAcquire, LockQuery, LockRelease
from .exceptions import ImproperlyConfigured, LockNotOwnedError, TimeoutError

if TYPE_CHECKING:
    from ._app import App

__all__ = ["BUSY_CHOICES", "DEFAULT_EXPIRE", "Lock", "LockNotOwnedError", "check_lock_options"]

#: Longest wait for one answer of the hub before that request counts as unanswered.
REQUEST_TIMEOUT: Final = 10.0
#: Longest wait of one blocking acquire request at the hub (a longer timeout asks again).
WAIT_CHUNK: Final = 30.0

#: Longest lock name sent as it is (a wire name is at most 255 characters).
MAX_LOCK_NAME: Final = 200


def _hashed(name: str) -> str:
    digest = hashlib.sha256(name.encode()).hexdigest()
    return f"{name[:120]}...sha256:{digest}"


#: The task option lock_busy: what a run does while another holds its lock.
BUSY_CHOICES: Final = ("skip", "defer")
DEFAULT_EXPIRE: Final = 600.0


def check_lock_options(options: Mapping[str, Any]) -> None:
    """Refuse a bad ``lock``/``lock_expire``/``lock_busy`` at declaration."""
    lock = options.get("lock")
    if lock is not None and not isinstance(lock, str):
        raise ImproperlyConfigured(
            f"task option lock must be a string like 'feed:{{url}}', got {lock!r}"
        )
    busy = options.get("lock_busy", "skip")
    if busy not in BUSY_CHOICES:
        raise ImproperlyConfigured(
            f"task option lock_busy must be one of {BUSY_CHOICES}, got {busy!r}"
        )
    expire = options.get("lock_expire", DEFAULT_EXPIRE)
    if isinstance(expire, bool) or not isinstance(expire, int | float) or expire <= 0:
        raise ImproperlyConfigured(
            f"task option lock_expire must be positive seconds, got {expire!r}"
        )


class Lock:
    """A named lock at the hub; see the module docstring."""

    def __init__(
        self,
        app: App,
        name: str,
        *,
        expire: float = 60.0,
        blocking: bool = False,
        timeout: float | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"a lock name is a non-empty string, got {name!r}")
        if expire <= 0:
            raise ValueError(f"a lock's expire must be positive, got {expire!r}")
        self.app = app
        self.name = name
        #: The name at the hub: ``name``, or for one longer than a wire name may be, a prefix
        #: and its SHA-256 (the same for every holder, so long URLs work as lock names).
        self.key = name if len(name) <= MAX_LOCK_NAME else _hashed(name)
        self.expire = float(expire)
        self.blocking = blocking
        self.timeout = timeout
        #: This holder's token: the hub releases the lock only for it.
        self.owner = uuid.uuid4().hex
        self.held = False

    def _ask(self, message_of: type, *fields: object, wait: float = 0.0) -> str:
        client = self.app._client()
        extra = {"wait": wait} if wait else {}
        within = REQUEST_TIMEOUT + wait
        reply = client.request(lambda rid: message_of(*fields, rid=rid, **extra), within)
        if not isinstance(reply, p.Reply):
            raise TimeoutError(
                f"lock {self.name!r}: the hub at {client.endpoint} did not answer within "
                f"{within:g}s"
            )
        return reply.state

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take the lock; with ``blocking``, wait up to ``timeout`` seconds (None: forever).
        True if this holder has it now (asking again while holding it extends the expiry).

        A blocking acquire waits at the hub, first come first served, and gets the lock the
        moment it is released or expires (no polling)."""
        clock = self.app.clock
        deadline = None if timeout is None else clock.monotonic() + timeout
        while True:
            wait = 0.0
            if blocking:
                left = WAIT_CHUNK if deadline is None else deadline - clock.monotonic()
                wait = max(0.0, min(WAIT_CHUNK, left))
            if self._ask(LockAcquire, self.key, self.owner, self.expire, wait=wait) == "ACQUIRED":
                self.held = True
                return True
            if not blocking or (deadline is not None and clock.monotonic() >= deadline):
                return False

    def release(self) -> None:
        """Release the lock (only its holder may); :class:`LockNotOwnedError` otherwise."""
        state = self._ask(LockRelease, self.key, self.owner)
        self.held = False
        if state != "RELEASED":
            raise LockNotOwnedError(
                f"lock {self.name!r} is not held by this holder (never acquired, released, or "
                "expired and taken by another)"
            )

    def locked(self) -> bool:
        """Whether anyone holds the lock now (at the hub, expiry considered)."""
        return self._ask(LockQuery, self.key) == "LOCKED"

    def __enter__(self) -> bool:
        return self.acquire(self.blocking, self.timeout)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.held:
            # LockNotOwnedError: it expired while held (the block ran longer than expire).
            with contextlib.suppress(LockNotOwnedError):
                self.release()

    def __repr__(self) -> str:
        return f"<Lock {self.name!r} expire={self.expire:g}s held={self.held}>"
