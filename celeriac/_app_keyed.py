"""The App's door to keyed actors and locks: ``app.actor``, ``app.proxy``, ``app.lock``.

A mixin of :class:`~celeriac.App`, so the App module stays about tasks and sending; the
machinery is in :mod:`celeriac._keyed` (actors, proxies) and :mod:`celeriac._lock` (locks).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast, overload

from ._keyed import Proxy, register_actor
from ._lock import Lock

if TYPE_CHECKING:
    from ._app import App

__all__ = ["AppKeyed"]

T = TypeVar("T")


class AppKeyed:
    """``@app.actor``, ``app.proxy(Cls, key=...)`` and ``app.lock(name, expire=...)``."""

    #: Keyed actor classes by name (``@app.actor``), set by the App's constructor.
    actors: dict[str, type]

    # -- keyed actors and locks (celeriac._keyed, celeriac._lock) ----------------------------------

    @overload
    def actor(self, cls: type[T], /) -> type[T]: ...

    @overload
    def actor(self, *, name: str | None = None) -> Callable[[type[T]], type[T]]: ...

    def actor(  # type: ignore[misc]  # as task(): mypy mis-matches this overload pair
        self, cls: type[Any] | None = None, /, *, name: str | None = None
    ) -> Any:
        """Register a keyed actor class (its constructor takes the key); see
        :mod:`celeriac._keyed`. ``@app.actor`` or ``@app.actor(name="counters")``."""
        if cls is not None:
            return register_actor(self.actors, cls, name)
        return lambda c: register_actor(self.actors, c, name)

    def proxy(self, cls: type[T], *, key: str) -> Proxy[T]:
        """The handle on the instance of actor class ``cls`` for ``key``:
        ``app.proxy(Counter, key="user-42").incr(5).get()``."""
        return Proxy(cast("App", self), cls, key)

    def lock(
        self,
        name: str,
        *,
        expire: float = 60.0,
        blocking: bool = False,
        timeout: float | None = None,
    ) -> Lock:
        """A lock held at the hub, with expiry (:class:`~celeriac._lock.Lock`):
        ``with app.lock("feed:" + url, expire=600) as acquired: ...``."""
        return Lock(cast("App", self), name, expire=expire, blocking=blocking, timeout=timeout)
