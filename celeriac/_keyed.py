"""Keyed actors, the client side: ``@app.actor`` and ``app.proxy(Cls, key=...)``.

A keyed actor is a class whose constructor takes the key. ``app.proxy(Counter, key="user-42")``
returns a :class:`Proxy`; ``proxy.incr(5)`` sends a message to the one live instance for that
key and returns an :class:`~celeriac.result.AsyncResult` (``get``, ``ready``, ``state``);
``proxy.incr.tell(5)`` sends it without a reply. The message is an ordinary task message whose
queue names the instance (:func:`celeriac._protocol_keyed.keyed_queue`), so it is durable,
confirmed and redelivered like a task; the hub places the key on one worker and hands it its
messages one at a time, in order (``transport/hub/actors.py``); the worker runs them on the
instance (``actors/keyed.py``).

Typing: with the plugin ``celeriac.mypy`` enabled (``plugins = ["celeriac.mypy"]``), mypy gives
``proxy.incr`` the class's signature: ``proxy.incr("x")`` is an error when ``incr`` takes an
int, ``proxy.incr(1).get()`` is an ``int``, and a private name is an error. Without it a proxy
method takes anything. Names starting with ``_`` are never reachable through a proxy, at run
time either.

State: an instance lives in one worker's memory. A class that defines ``save_state(self)``
(returning a msgpack-serializable value: dicts, lists, str, bytes, numbers, None; at most
60 KiB packed) and ``load_state(self, state)`` has ``save_state`` called after **every**
message, and the hub stores the value durably before it acknowledges the message; a new
instance (after an idle stop, or on another worker after its worker died) gets the last stored
value through ``load_state`` right after its constructor.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from ._compose import compose
from ._conf import declare, int_check, parse_int, seconds_check
from ._protocol_keyed import keyed_queue
from ._wire_checks import _Bad, _name
from .exceptions import ImproperlyConfigured
from .result import AsyncResult

if TYPE_CHECKING:
    from ._app import App

__all__ = ["ActorProxyMethod", "Proxy", "actor_name", "register_actor"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

declare(
    "actor_idle_timeout",
    300.0,
    "Seconds a keyed actor instance may stay idle on its worker before it is stopped (the "
    "next message activates it again, with its saved state if it has save_state/load_state).",
    check=seconds_check("actor_idle_timeout"),
)
#: ``actor_max_instances``'s default: keyed actor instances live on one worker at most.
MAX_INSTANCES = 1000

declare(
    "actor_max_instances",
    MAX_INSTANCES,
    "Keyed actor instances one worker keeps live at most. A call for a new key over it stops "
    "the least recently used idle instance (its state was saved after its last call); if "
    "every instance is running a call, the new key's call is refused (REJECTED, with the "
    "reason).",
    parse=parse_int,
    check=int_check("actor_max_instances", minimum=1),
)

#: The attribute ``@app.actor`` sets on a class: its registered name.
ACTOR_NAME_ATTR = "__celeriac_actor__"


def actor_name(cls: type) -> str:
    """The name an actor class is registered under (``module.QualName`` unless given)."""
    name = getattr(cls, ACTOR_NAME_ATTR, None)
    if not isinstance(name, str):
        raise ImproperlyConfigured(f"{cls!r} is not a keyed actor: decorate it with @app.actor")
    return name


def register_actor(actors: dict[str, type], cls: type[T], name: str | None) -> type[T]:
    """Register ``cls`` as a keyed actor in ``actors`` (an App's registry)."""
    if not isinstance(cls, type):
        raise ImproperlyConfigured("@app.actor decorates a class whose constructor takes the key")
    name = name or f"{cls.__module__}.{cls.__qualname__}"
    if "#" in name or len(name) > 120:
        raise ImproperlyConfigured(f"actor name {name!r}: no '#', at most 120 characters")
    has_save, has_load = hasattr(cls, "save_state"), hasattr(cls, "load_state")
    if has_save != has_load:
        raise ImproperlyConfigured(
            f"actor {name!r} defines only one of save_state/load_state: define both or neither"
        )
    setattr(cls, ACTOR_NAME_ATTR, name)
    actors[name] = cls
    return cls


class ActorProxyMethod(Generic[P, R]):
    """One method of a keyed actor, reached through a :class:`Proxy`."""

    __slots__ = ("_method", "_proxy")

    def __init__(self, proxy: Proxy[Any], method: str) -> None:
        self._proxy = proxy
        self._method = method

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> AsyncResult[R]:
        """Send the call; the handle's ``get()`` returns what the method returned (or raises
        what it raised, like a task failure: the instance lives on)."""
        task_id = self._proxy._send(self._method, args, kwargs, reply=True)
        return AsyncResult(task_id, self._proxy._app)

    def tell(self, *args: P.args, **kwargs: P.kwargs) -> None:
        """Send the call without asking for a reply (no result is stored)."""
        self._proxy._send(self._method, args, kwargs, reply=False)

    def __repr__(self) -> str:
        return f"<proxy method {self._method} of {self._proxy!r}>"


class Proxy(Generic[T]):
    """The client's handle on the instance of actor class ``T`` for one key.

    Any public method name of the class is an :class:`ActorProxyMethod`; names that start with
    ``_`` are not reachable (AttributeError).
    """

    __slots__ = ("_app", "_cls", "_key", "_name", "_queue")

    def __init__(self, app: App, cls: type[T], key: str) -> None:
        if not isinstance(key, str):
            raise TypeError(f"an actor key is a string, got {type(key).__name__}")
        self._app, self._cls, self._key = app, cls, key
        self._name = actor_name(cls)
        self._queue = keyed_queue(self._name, key)
        try:
            _name(self._queue)
        except _Bad:
            raise ImproperlyConfigured(
                f"actor key {key[:40]!r}...: class name and key together must fit in 255 characters"
            ) from None

    @property
    def key(self) -> str:
        """The key this proxy sends to."""
        return self._key

    def __getattr__(self, method: str) -> ActorProxyMethod[..., Any]:
        if method.startswith("_"):
            raise AttributeError(f"{method!r}: private names are not reachable through a proxy")
        if not callable(getattr(self._cls, method, None)):
            raise AttributeError(f"actor {self._name!r} has no method {method!r}")
        return ActorProxyMethod(self, method)

    def __repr__(self) -> str:
        return f"<Proxy {self._name}[{self._key!r}]>"

    def _send(self, method: str, args: Any, kwargs: Any, *, reply: bool) -> str:
        app = self._app
        name = f"{self._name}.{method}"
        now = app.clock.time()
        message = compose(app.conf, name, args, kwargs, {"queue": self._queue}, now)
        message = dataclasses.replace(
            message,
            queue=self._queue,
            exchange=None,
            routing_key=None,
            reply=reply,
            ignore_result=None if reply else True,
        )
        app._client().publish(message)
        return message.id


#: What ``app.actor`` returns when called with options.
ActorDecorator = Callable[[type[T]], type[T]]
