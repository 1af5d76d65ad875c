"""Waiting in tests for what has no event to wait on (another process's log line, a file's
size, an actor's state): :func:`wait_until` polls with a deadline. One home for unit and
integration tests alike (the integration conftest re-exports it)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import Any, Protocol

import pytest

__all__ = ["POLL", "wait_until"]

#: Seconds between two looks.
POLL = 0.02


class Watched(Protocol):
    """A process a wait gives up on when it exits (the integration tests' ``Proc``)."""

    name: str
    popen: subprocess.Popen[bytes]


def wait_until(
    predicate: Callable[[], Any],
    timeout: float,
    what: str | Callable[[], str],
    proc: Watched | None = None,
    *,
    poll: float = POLL,
) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned); fail after ``timeout``
    seconds, or as soon as ``proc`` exits. ``what`` names the wait in the failure (a callable:
    read only then, e.g. a size at the time of the failure); ``poll`` is the pause between two
    looks (shorter to catch a short-lived state)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.popen.poll() is not None:
            code = proc.popen.returncode
            pytest.fail(f"{proc.name} exited ({code}) while waiting for {_said(what)}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {_said(what)}")
        time.sleep(poll)


def _said(what: str | Callable[[], str]) -> str:
    return what if isinstance(what, str) else what()
