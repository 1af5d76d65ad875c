"""Hub addresses in ``broker_url``, pure: one address or several (failover), and their order.

``broker_url`` names one hub (``tcp://host:port``, ``ipc:///path``, ``inproc://name``) or
several, in Celery's failover syntax: ``"tcp://h1:5555;tcp://h2:5555"`` or a list of
addresses. A peer (client or worker) talks to one hub at a time and moves to the next when the
one it talks to is lost; ``broker_failover_strategy`` decides the order, as in Celery:
``"round-robin"`` (the default: the first address, then the next...), ``"shuffle"`` (a random
order each round, which spreads peers over the hubs) or a callable that is given the list of
addresses and returns an iterator of them.

This is the one home of splitting and checking those addresses: the settings check
(``celeriac/_conf.py``) and the transport (``celeriac.transport.endpoints``) both use it.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Final

from celeriac.exceptions import ImproperlyConfigured, UnsupportedBrokerError

__all__ = [
    "BROKER_HINT",
    "FAILOVER_STRATEGIES",
    "FailoverStrategy",
    "check_broker_url",
    "check_failover_strategy",
    "failover_order",
    "hub_addresses",
]

#: A callable strategy: given the addresses, an iterator over them (Celery's shape).
FailoverStrategy = Callable[[list[str]], Iterator[str]]

#: The named strategies (Celery's names).
FAILOVER_STRATEGIES: Final = ("round-robin", "shuffle")

_SCHEMES: Final = ("tcp", "ipc", "inproc")
BROKER_HINT: Final = (
    "celeriac talks to its own hub over ZeroMQ: use tcp://host:port (or ipc:///path); "
    "the hub is embedded in the worker by default, or run `celeriac hub`"
)
_LIST_HINT: Final = (
    "several hubs are listed as 'tcp://h1:5555;tcp://h2:5555' or as a list of such addresses"
)


def hub_addresses(url: str) -> tuple[str, ...]:
    """The hub addresses of a checked ``broker_url`` (one, or several in failover order)."""
    return tuple(part.strip() for part in url.split(";") if part.strip())


def check_broker_url(value: Any) -> str:
    """``broker_url`` checked: one address, or several joined with ``;`` (from a string in
    Celery's failover syntax or a list); UnsupportedBrokerError says what is wrong."""
    if isinstance(value, list | tuple):
        parts = [_one(item, value) for item in value]
    elif isinstance(value, str):
        parts = [_one(item, value) for item in value.strip().split(";")]
    else:
        raise ImproperlyConfigured(
            f"setting 'broker_url' must be a string or a list of strings, got {value!r}"
        )
    if not parts:
        raise UnsupportedBrokerError(f"broker_url lists no hub address ({value!r}): {_LIST_HINT}")
    repeated = sorted({p for p in parts if parts.count(p) > 1})
    if repeated:
        raise UnsupportedBrokerError(
            f"broker_url lists {', '.join(repeated)} more than once ({value!r}): each hub once"
        )
    return ";".join(parts)


def _one(item: Any, whole: Any) -> str:
    """One address of ``broker_url`` checked (``whole`` is the value, for the message)."""
    if not isinstance(item, str):
        raise ImproperlyConfigured(
            f"setting 'broker_url': each hub address must be a string, got {item!r} in {whole!r}"
        )
    address = item.strip()
    where = "" if address == whole else f" (in broker_url {whole!r})"
    if not address:
        raise UnsupportedBrokerError(
            f"malformed broker URL {whole!r}: an empty hub address; {_LIST_HINT}"
        )
    scheme, sep, rest = address.partition("://")
    if not sep or scheme.lower() not in _SCHEMES:
        raise UnsupportedBrokerError(f"unsupported broker URL {address!r}{where}: {BROKER_HINT}")
    if not rest or any(c in rest for c in " \t,") or not _valid_address(scheme.lower(), rest):
        raise UnsupportedBrokerError(f"malformed broker URL {address!r}{where}: {BROKER_HINT}")
    return address


def _valid_address(scheme: str, rest: str) -> bool:
    if scheme != "tcp":
        return True
    host, _, port = rest.rpartition(":")
    return bool(host) and port.isdigit() and 0 < int(port) < 65536


def check_failover_strategy(value: Any) -> str | FailoverStrategy:
    """``broker_failover_strategy`` checked: a name of :data:`FAILOVER_STRATEGIES` or a
    callable (given the list of addresses, it returns an iterator of them)."""
    if isinstance(value, str) and value.strip().lower() in FAILOVER_STRATEGIES:
        return value.strip().lower()
    if callable(value):
        return value  # type: ignore[no-any-return]
    raise ImproperlyConfigured(
        "setting 'broker_failover_strategy' must be 'round-robin', 'shuffle' or a callable "
        f"that takes the list of hub addresses and returns an iterator of them; got {value!r}"
    )


def failover_order(
    addresses: Sequence[str],
    strategy: str | FailoverStrategy = "round-robin",
    rng: random.Random | None = None,
) -> Iterator[str]:
    """The endless order in which a peer tries ``addresses``: the first one it yields is where
    the peer starts. A callable strategy's iterator is started again when it ends; an
    address it yields that is not in ``addresses`` is an ImproperlyConfigured error."""
    listed = list(addresses)
    if strategy == "round-robin":
        return itertools.cycle(listed)
    if strategy == "shuffle":
        return _shuffled(listed, rng or random.Random())
    if isinstance(strategy, str):
        check_failover_strategy(strategy)  # raises: an unknown name
    assert callable(strategy)
    return _checked(listed, strategy)


def _shuffled(addresses: list[str], rng: random.Random) -> Iterator[str]:
    """Every address once per round, in a new random order each round."""
    while True:
        rng.shuffle(addresses)
        yield from addresses


def _checked(addresses: list[str], strategy: FailoverStrategy) -> Iterator[str]:
    """A callable strategy's addresses, restarted when it ends, refused when not listed."""
    known = set(addresses)
    while True:
        produced = False
        for address in _iterate(strategy(list(addresses))):
            if address not in known:
                raise ImproperlyConfigured(
                    f"broker_failover_strategy yielded {address!r}, which broker_url does not "
                    f"list ({';'.join(addresses)})"
                )
            produced = True
            yield address
        if not produced:
            raise ImproperlyConfigured(
                "broker_failover_strategy returned an iterator with no address in it"
            )


def _iterate(value: Any) -> Iterable[Any]:
    if isinstance(value, Iterable):
        return value
    raise ImproperlyConfigured(
        f"broker_failover_strategy must return an iterator of hub addresses, got {value!r}"
    )
