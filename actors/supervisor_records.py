"""What a :class:`~celeriac.actors.supervisor.Supervisor` keeps of each child, and the check
of its arguments (strategy, restart types, policy, intervals) before it starts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pykka

from celeriac.exceptions import ImproperlyConfigured

from .restart import RestartPolicy
from .supervised import RESTART_TYPES, ChildSpec

__all__ = ["STRATEGIES", "UNREPORTED", "ChildRecord", "Strategy", "check_arguments"]

#: How a child's death affects its siblings (Erlang/OTP's strategies).
Strategy = Literal["one_for_one", "one_for_all", "rest_for_one"]

STRATEGIES = ("one_for_one", "one_for_all", "rest_for_one")
UNREPORTED = "died without reporting (found dead by the liveness check)"

_State = Literal["new", "starting", "running", "restarting", "stopped"]


@dataclass(eq=False)
class ChildRecord:
    """The supervisor's record of one child."""

    spec: ChildSpec
    ref: pykka.ActorRef[Any] | None = None
    incarnation: int = 0
    state: _State = "new"
    restarts: int = 0
    last_failure: str | None = None
    due: float | None = None
    start_deadline: float = 0.0
    suspect: bool = False


def check_arguments(
    children: Sequence[ChildSpec],
    *,
    strategy: str,
    policy: RestartPolicy,
    intervals: tuple[float, float],
) -> None:
    """Refuse duplicate child ids, unknown restart types or strategy, a bad policy or
    non-positive intervals, all named in one ImproperlyConfigured."""
    problems = []
    ids = [spec.id for spec in children]
    if len(set(ids)) != len(ids):
        problems.append(f"child ids must be unique, got {ids}")
    problems += [
        f"child {spec.id!r}: restart must be one of {RESTART_TYPES}, got {spec.restart!r}"
        for spec in children
        if spec.restart not in RESTART_TYPES
    ]
    if strategy not in STRATEGIES:
        problems.append(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    problems += policy.problems()
    if min(intervals) <= 0:
        problems.append("tick_interval and check_interval must be positive")
    if problems:
        raise ImproperlyConfigured("; ".join(problems))
