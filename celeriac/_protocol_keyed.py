"""Wire messages of keyed actors and hub locks (issue 12), and how an actor key is named.

Keyed actors travel as ordinary task messages (``PUB``/``TASK``/``DONE``: durable, confirmed,
redelivered when a worker is lost, results pushed to the caller) whose queue names the actor:
``celeriac.actor:<class name>#<key>`` (:func:`keyed_queue`). The hub never routes such a queue
through exchanges: it keeps one FIFO per key and sends its messages, one at a time, to the
worker it placed the key on (``transport/hub/actors.py``). A worker announces the actor classes
it hosts by consuming ``celeriac.actor:<class name>`` (:func:`host_queue`), a queue nobody
publishes to. The messages below are the few that tasks cannot carry: activation with the
stored state, the state saved after a call, and the idle handshake; and the lock commands.
Their wire spelling is in :mod:`celeriac._wire_keyed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Final

__all__ = [
    "KEYED_PREFIX",
    "KeyedActivate",
    "KeyedIdle",
    "KeyedSave",
    "KeyedStop",
    "LockAcquire",
    "LockQuery",
    "LockRelease",
    "host_queue",
    "is_keyed_queue",
    "keyed_queue",
    "split_keyed_queue",
]

#: The queue-name prefix of every keyed actor queue.
KEYED_PREFIX: Final = "celeriac.actor:"
#: Longest state a worker may save for one key (it travels in a header: see _wire).
MAX_STATE: Final = 60 * 1024


def host_queue(cls_name: str) -> str:
    """The queue a worker consumes to say it hosts the actor class ``cls_name``."""
    return f"{KEYED_PREFIX}{cls_name}"


def keyed_queue(cls_name: str, key: str) -> str:
    """The queue of one actor instance: class and key."""
    return f"{KEYED_PREFIX}{cls_name}#{key}"


def is_keyed_queue(queue: str) -> bool:
    """Whether ``queue`` is one actor instance's queue (not a host announcement)."""
    return queue.startswith(KEYED_PREFIX) and "#" in queue


def split_keyed_queue(queue: str) -> tuple[str, str]:
    """``(class name, key)`` of a keyed queue."""
    cls_name, _, key = queue[len(KEYED_PREFIX) :].partition("#")
    return cls_name, key


@dataclass(frozen=True, slots=True)
class KeyedActivate:
    """Hub -> worker: the key ``queue`` is placed here; build the instance with ``state`` (the
    last state the hub stored for it, None if never saved). Sent before its first delivery."""

    COMMAND: ClassVar[bytes] = b"KEYED_ACTIVATE"
    queue: str
    state: bytes | None = None


@dataclass(frozen=True, slots=True)
class KeyedSave:
    """Worker -> hub: the state ``save_state`` returned after a call, to store durably."""

    COMMAND: ClassVar[bytes] = b"KEYED_SAVE"
    queue: str
    state: bytes


@dataclass(frozen=True, slots=True)
class KeyedIdle:
    """Worker -> hub: the instance of ``queue`` has been idle for ``actor_idle_timeout``."""

    COMMAND: ClassVar[bytes] = b"KEYED_IDLE"
    queue: str


@dataclass(frozen=True, slots=True)
class KeyedStop:
    """Hub -> worker: nothing is queued for ``queue`` and it is no longer placed here: stop it."""

    COMMAND: ClassVar[bytes] = b"KEYED_STOP"
    queue: str


@dataclass(frozen=True, slots=True)
class LockAcquire:
    """Client -> hub: take lock ``name`` for ``owner`` for ``expire`` seconds (again by the same
    owner: extend it). Answered by ``REPLY`` with ``rid``, state ``ACQUIRED`` or ``LOCKED``; with
    ``wait``, a held lock is waited for at the hub (first come, first served) up to that many
    seconds before ``LOCKED`` is answered."""

    COMMAND: ClassVar[bytes] = b"LOCK_ACQUIRE"
    name: str
    owner: str
    expire: float
    rid: int | str | None = None
    wait: float | None = None


@dataclass(frozen=True, slots=True)
class LockRelease:
    """Client -> hub: release ``name`` if ``owner`` holds it. ``REPLY``: ``RELEASED`` or
    ``NOT_HELD``."""

    COMMAND: ClassVar[bytes] = b"LOCK_RELEASE"
    name: str
    owner: str
    rid: int | str | None = None


@dataclass(frozen=True, slots=True)
class LockQuery:
    """Client -> hub: is ``name`` held? ``REPLY``: ``LOCKED`` or ``UNLOCKED``."""

    COMMAND: ClassVar[bytes] = b"LOCK_QUERY"
    name: str
    rid: int | str | None = None
