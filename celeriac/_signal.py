"""The :class:`Signal` type behind :mod:`celeriac.signals`: Celery's signal API on blinker.

Receivers are held strongly unless ``weak=True``, matched by sender (a string sender matches a
sender's ``name``), called in the order they were connected, and one that raises is logged
(``signal_receiver_failed``) while the others still run. See :mod:`celeriac.signals`.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Final, TypeVar, overload

import blinker
import structlog
from blinker._utilities import make_id
from blinker.base import ANY_ID

__all__ = ["ANY", "Signal"]

ANY: Final = blinker.ANY
"""The "any sender" symbol: a receiver connected with it gets every send."""

F = TypeVar("F", bound=Callable[..., Any])

_NO_IDS: Final[frozenset[Hashable]] = frozenset()


class _Dispatcher(blinker.Signal):
    """blinker's bookkeeping (weak references, per-sender buckets), matched our way."""

    def matching(self, sender: Any) -> list[Callable[..., Any]]:
        """Live receivers for ``sender``, ``ANY`` or the sender's ``name``, in connect order."""
        ids = self._ids_for(sender)
        found: list[Callable[..., Any]] = []
        for receiver_id, held in list(self.receivers.items()):
            if receiver_id not in ids:
                continue
            receiver = held() if isinstance(held, weakref.ref) else held
            if receiver is not None:
                found.append(receiver)
        return found

    def _ids_for(self, sender: Any) -> set[Hashable] | frozenset[Hashable]:
        buckets = self._by_sender
        ids: set[Hashable] | frozenset[Hashable] = buckets.get(ANY_ID, _NO_IDS)
        if sender is ANY:
            return ids
        for key in _sender_keys(sender):
            extra = buckets.get(key)
            if extra:
                ids = ids | extra
        return ids

    def forget_if_unused(self, receiver_id: Hashable) -> None:
        """Drop a receiver that no sender bucket refers to any more."""
        if not self._by_receiver.get(receiver_id):
            self._disconnect(receiver_id, ANY_ID)


def _sender_keys(sender: Any) -> tuple[Hashable, ...]:
    """The bucket keys a sender matches: itself and, when it has a str ``name``, that name."""
    name = getattr(sender, "name", None)
    if isinstance(name, str) and name is not sender:
        return (make_id(sender), name)
    return (make_id(sender),)


def _describe(receiver: Callable[..., Any]) -> str:
    module = getattr(receiver, "__module__", None)
    qualname = getattr(receiver, "__qualname__", None)
    return f"{module}.{qualname}" if module and qualname else repr(receiver)


class Signal:
    """A Celery-style signal: ``connect`` (also as a decorator), ``send``, ``disconnect``.

    ``providing_args`` lists the keyword arguments the signal is sent with (documentation;
    not enforced). Receivers are held strongly unless connected with ``weak=True``, unlike
    Celery, so that a receiver defined in a function does not silently vanish.
    """

    def __init__(self, name: str, providing_args: Sequence[str] = (), doc: str = "") -> None:
        self.name = name
        self.providing_args: tuple[str, ...] = tuple(providing_args)
        self.__doc__ = doc or f"The {name} signal."
        self._dispatcher = _Dispatcher(doc or None)
        self._uids: dict[tuple[Hashable, Hashable], Hashable] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Signal: {self.name} providing_args={list(self.providing_args)}>"

    # -- connecting

    @overload
    def connect(
        self,
        receiver: F,
        *,
        sender: Any = ...,
        weak: bool = ...,
        dispatch_uid: Hashable | None = ...,
    ) -> F: ...

    @overload
    def connect(
        self,
        receiver: None = None,
        *,
        sender: Any = ...,
        weak: bool = ...,
        dispatch_uid: Hashable | None = ...,
    ) -> Callable[[F], F]: ...

    def connect(
        self,
        receiver: F | None = None,
        *,
        sender: Any = ANY,
        weak: bool = False,
        dispatch_uid: Hashable | None = None,
    ) -> F | Callable[[F], F]:
        """Connect ``receiver``; without one, return a decorator that connects.

        ``sender`` limits the receiver to sends from that sender (a string matches a sender's
        ``name``). A second connect with the same ``dispatch_uid`` (and sender) is ignored.
        Returns the receiver, so ``@signal.connect`` leaves the function usable.
        """
        if receiver is None:

            def decorator(fn: F) -> F:
                return self.connect(fn, sender=sender, weak=weak, dispatch_uid=dispatch_uid)

            return decorator
        if not callable(receiver):
            raise TypeError(f"signal receivers must be callable, got {receiver!r}")
        with self._lock:
            if dispatch_uid is None or self._claim_uid(dispatch_uid, sender, receiver):
                self._dispatcher.connect(receiver, sender=sender, weak=weak)
        return receiver

    def _claim_uid(self, uid: Hashable, sender: Any, receiver: Callable[..., Any]) -> bool:
        key = (uid, ANY_ID if sender is ANY else make_id(sender))
        holder = self._uids.get(key)
        if holder is not None and holder in self._dispatcher.receivers:
            return False
        self._uids[key] = make_id(receiver)
        return True

    def disconnect(
        self,
        receiver: Callable[..., Any] | None = None,
        sender: Any = ANY,
        *,
        dispatch_uid: Hashable | None = None,
    ) -> bool:
        """Disconnect ``receiver`` (or the one connected with ``dispatch_uid``).

        With a ``sender``, only that connection goes. Returns whether anything was connected.
        """
        with self._lock:
            receiver_id = self._receiver_id(receiver, sender, dispatch_uid)
            if receiver_id is None or receiver_id not in self._dispatcher.receivers:
                return False
            sender_id = ANY_ID if sender is ANY else make_id(sender)
            self._dispatcher._disconnect(receiver_id, sender_id)
            self._dispatcher.forget_if_unused(receiver_id)
            self._uids = {k: v for k, v in self._uids.items() if v in self._dispatcher.receivers}
            return True

    def _receiver_id(
        self, receiver: Callable[..., Any] | None, sender: Any, uid: Hashable | None
    ) -> Hashable | None:
        if uid is not None:
            return self._uids.get((uid, ANY_ID if sender is ANY else make_id(sender)))
        return None if receiver is None else make_id(receiver)

    @contextmanager
    def connected_to(self, receiver: F, *, sender: Any = ANY) -> Iterator[F]:
        """Connect ``receiver`` for the duration of a ``with`` block (handy in tests)."""
        self.connect(receiver, sender=sender)
        try:
            yield receiver
        finally:
            self.disconnect(receiver, sender)

    # -- sending

    @property
    def receivers(self) -> Mapping[Hashable, Any]:
        """The connected receivers (read only); ``if signal.receivers:`` is the cheapest test."""
        return self._dispatcher.receivers

    @property
    def has_receivers(self) -> bool:
        """Whether anything is connected: hot paths test this before building arguments."""
        return bool(self._dispatcher.receivers)

    def has_receivers_for(self, sender: Any) -> bool:
        """Whether a send from ``sender`` would reach at least one receiver."""
        return bool(self._dispatcher.receivers) and bool(self._dispatcher.matching(sender))

    def receivers_for(self, sender: Any = ANY) -> list[Callable[..., Any]]:
        """The receivers a send from ``sender`` would call, in call order."""
        if not self._dispatcher.receivers:
            return []
        return self._dispatcher.matching(sender)

    def send(self, sender: Any = None, **named: Any) -> list[tuple[Callable[..., Any], Any]]:
        """Call each matching receiver as ``receiver(sender=sender, signal=self, **named)``.

        Returns ``(receiver, result)`` pairs; a receiver that raised is logged and paired with
        its exception, and the others still run.
        """
        if not self._dispatcher.receivers:
            return []
        results: list[tuple[Callable[..., Any], Any]] = []
        for receiver in self._dispatcher.matching(sender):
            try:
                result = receiver(sender=sender, signal=self, **named)
            except Exception as exc:
                structlog.get_logger("celeriac.signals").exception(
                    "signal_receiver_failed", signal=self.name, receiver=_describe(receiver)
                )
                result = exc
            results.append((receiver, result))
        return results
