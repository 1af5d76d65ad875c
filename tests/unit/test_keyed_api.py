"""The keyed actor and lock API without a hub: declarations, proxies and their refusals."""

from __future__ import annotations

from typing import Any

import pytest

from celeriac import App, Lock, Proxy
from celeriac._keyed import actor_name
from celeriac._protocol_keyed import is_keyed_queue, keyed_queue, split_keyed_queue
from celeriac.exceptions import ImproperlyConfigured


class Plain:
    """Not decorated."""

    def __init__(self, key: str) -> None:
        self.key = key

    def go(self) -> None: ...


def test_declaring_an_actor_registers_it_under_its_name() -> None:
    """@app.actor and @app.actor(name=...) register the class; the name is module.QualName."""
    app = App("t", environ={})
    decorated = app.actor(Plain)
    assert decorated is Plain
    assert actor_name(Plain) == f"{__name__}.Plain"

    @app.actor(name="named.Box")
    class Box:
        def __init__(self, key: str) -> None: ...

    assert app.actors == {f"{__name__}.Plain": Plain, "named.Box": Box}


@pytest.mark.parametrize(
    ("target", "name", "message"),
    [
        (lambda key: None, None, "decorates a class"),
        (type("A", (), {}), "bad#name", "no '#'"),
        (type("B", (), {"save_state": lambda self: 1}), None, "only one of save_state"),
    ],
)
def test_bad_actor_declarations_are_refused(target: Any, name: str | None, message: str) -> None:
    """Not a class, a '#' in the name, or one state hook without the other."""
    app = App("t", environ={})
    with pytest.raises(ImproperlyConfigured, match=message):
        app.actor(name=name)(target)


def test_a_proxy_refuses_what_cannot_be_sent() -> None:
    """An undecorated class, a key that is not a string, a key too long, a private or unknown
    method name."""
    app = App("t", environ={})
    with pytest.raises(ImproperlyConfigured, match="not a keyed actor"):
        app.proxy(int, key="k")
    app.actor(name="t.Plain")(Plain)
    with pytest.raises(TypeError, match="string"):
        app.proxy(Plain, key=42)  # type: ignore[arg-type]
    with pytest.raises(ImproperlyConfigured, match="255"):
        app.proxy(Plain, key="k" * 300)
    proxy = app.proxy(Plain, key="user-1")
    assert isinstance(proxy, Proxy)
    assert proxy.key == "user-1"
    assert repr(proxy) == "<Proxy t.Plain['user-1']>"
    assert "go" in repr(proxy.go)
    with pytest.raises(AttributeError, match="private"):
        proxy._secret  # noqa: B018 - the access is the test
    with pytest.raises(AttributeError, match="no method 'gone'"):
        proxy.gone  # noqa: B018


def test_keyed_queue_names_round_trip() -> None:
    """A key may hold any character, '#' included; the class name may not."""
    queue = keyed_queue("m.C", "a#b:c")
    assert is_keyed_queue(queue)
    assert split_keyed_queue(queue) == ("m.C", "a#b:c")
    assert not is_keyed_queue("celeriac.actor:m.C")


def test_lock_arguments_are_checked() -> None:
    """A lock needs a name and a positive expiry; long names are hashed the same way."""
    app = App("t", environ={})
    with pytest.raises(ValueError, match="positive"):
        app.lock("x", expire=0)
    with pytest.raises(TypeError, match="non-empty"):
        Lock(app, "")
    long = "feed:" + "x" * 500
    assert app.lock(long).key == app.lock(long).key != long
    assert len(app.lock(long).key) < 255
    assert "expire=60s" in repr(app.lock("short"))
