"""Per task type limits, pure: rate limits (Celery's syntax), a token bucket, annotations.

A task type may have a ``rate_limit`` (Celery's syntax, a per-worker limit: ``"10/s"``,
``"100/m"``, ``"1000/h"``, or a number meaning per second) and a ``max_concurrency`` (a
celeriac extension: at most that many of this type run at once on one worker node).
:func:`type_limits` resolves both for one task, from highest to lowest precedence:

1. ``task_annotations`` (Celery's forms: ``{"tasks.add": {"rate_limit": "10/s"}}``,
   ``{"*": {...}}`` for every task, an object with ``annotate(task)`` returning such a dict or
   None, or a list/tuple of these, first match wins). A task's own name wins over ``"*"`` (in
   Celery ``"*"`` wins; celeriac keeps the more specific one);
2. the task's option (``@app.task(rate_limit="10/s", max_concurrency=2)`` or the class
   attributes of a class-based task);
3. the ``task_default_rate_limit`` setting (rates only).

``worker_disable_rate_limits`` turns every rate limit off (caps stay).

:class:`TokenBucket` is the arithmetic of a rate limit on an injected clock reading: Celery's
bucket (kombu's ``TokenBucket`` with ``capacity=1``), so a burst is one task: in any window of
one second, at most ``rate + 1`` tasks of a type start.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from celeriac.exceptions import ImproperlyConfigured

__all__ = [
    "ANNOTATION_KEYS",
    "TokenBucket",
    "TypeLimits",
    "check_annotations",
    "check_max_concurrency",
    "check_rate",
    "parse_annotations",
    "parse_rate",
    "type_limits",
]

_PER: Final = {"s": 1.0, "m": 60.0, "h": 3600.0}

#: The task attributes ``task_annotations`` may set in celeriac (the worker-side limits).
ANNOTATION_KEYS: Final = frozenset({"rate_limit", "max_concurrency"})

#: Float slack when a token is exactly due (a timer fired at the computed instant).
_EPSILON: Final = 1e-9

#: Celery's bucket capacity for task rate limits: one token, so bursts are of one task.
BURST: Final = 1


def parse_rate(value: object) -> float | None:
    """Tasks per second of a rate limit (None: no limit); ImproperlyConfigured if malformed.

    Celery's syntax: ``"10/s"``, ``"100/m"``, ``"1000/h"``, ``"10"`` or ``10`` (per second).
    ``None``, ``0``, ``""`` and ``"0/s"`` mean no limit, as in Celery.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ImproperlyConfigured(f"a rate limit is like '10/s', '100/m' or 5, got {value!r}")
    if isinstance(value, str):
        count, _, unit = value.strip().partition("/")
        per = _PER.get(unit.strip() or "s")
        try:
            number = float(count)
        except ValueError:
            number = math.nan
        if per is None or math.isnan(number):
            raise ImproperlyConfigured(
                f"rate limit {value!r}: use N/s, N/m or N/h (a bare number is per second)"
            )
        rate = number / per
    else:
        rate = float(value)
    if not math.isfinite(rate) or rate < 0:
        raise ImproperlyConfigured(f"a rate limit must be 0 or more and finite, got {value!r}")
    return rate or None


def check_rate(value: Any) -> Any:
    """Setting/option check: ``value`` is a valid rate limit (kept as given)."""
    parse_rate(value)
    return value


def check_max_concurrency(value: Any) -> int | None:
    """Option check: ``max_concurrency`` is None or an integer of at least 1."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ImproperlyConfigured(f"max_concurrency must be an integer >= 1, got {value!r}")
    return value


def check_annotations(value: Any) -> Any:
    """Setting check for ``task_annotations``: None, a dict, an object, or a list of these."""
    for item in _annotation_list(value):
        if isinstance(item, Mapping):
            for name, attrs in item.items():
                _check_annotation(str(name), attrs)
        elif not callable(getattr(item, "annotate", None)):
            raise ImproperlyConfigured(
                "task_annotations entries are dicts {task name or '*': {option: value}} or "
                f"objects with an annotate(task) method, got {item!r}"
            )
    return value


def parse_annotations(text: str) -> Any:
    """``CELERIAC_TASK_ANNOTATIONS`` holds JSON: a dict or a list of dicts."""
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"task_annotations from the environment is not JSON: {exc}"
        ) from None


def _annotation_list(value: Any) -> Sequence[Any]:
    if value is None:
        return ()
    return list(value) if isinstance(value, list | tuple) else [value]


def _check_annotation(where: str, attrs: Any) -> dict[str, Any]:
    if not isinstance(attrs, Mapping):
        raise ImproperlyConfigured(f"task_annotations[{where!r}] must be a dict, got {attrs!r}")
    unknown = set(attrs) - ANNOTATION_KEYS
    if unknown:
        raise ImproperlyConfigured(
            f"task_annotations[{where!r}]: celeriac annotates {sorted(ANNOTATION_KEYS)} only, "
            f"not {sorted(unknown)} (set other options on the task)"
        )
    check_rate(attrs.get("rate_limit"))
    check_max_concurrency(attrs.get("max_concurrency"))
    return dict(attrs)


def _annotation_for(annotations: Any, task: Any) -> dict[str, Any]:
    """What ``task_annotations`` says about ``task``: its own entry, else ``"*"``'s."""
    items = _annotation_list(annotations)
    for key in (task.name, "*"):
        for item in items:
            if isinstance(item, Mapping):
                found = item.get(key)
            elif key == "*":
                found = getattr(item, "annotate_any", lambda: None)()
            else:
                found = item.annotate(task)
            if found is not None:
                return _check_annotation(key, found)
    return {}


@dataclass(frozen=True, slots=True)
class TypeLimits:
    """The limits of one task type on one worker: tasks per second and concurrent runs."""

    rate: float | None = None
    max_concurrency: int | None = None

    @property
    def limited(self) -> bool:
        """True if anything limits this type (else its deliveries need no gate)."""
        return self.rate is not None or self.max_concurrency is not None


def type_limits(task: Any, conf: Any) -> TypeLimits:
    """The effective limits of ``task`` under settings ``conf`` (see the module docstring)."""
    annotated = _annotation_for(conf.task_annotations, task)
    rate_value = annotated.get("rate_limit", getattr(task, "rate_limit", None))
    if rate_value is None:
        rate_value = conf.task_default_rate_limit
    cap = annotated.get("max_concurrency", getattr(task, "max_concurrency", None))
    rate = None if conf.worker_disable_rate_limits else parse_rate(rate_value)
    return TypeLimits(rate, check_max_concurrency(cap))


class TokenBucket:
    """A token bucket on readings of an injected monotonic clock; no clock is read here.

    It starts full (``capacity`` tokens) and fills at ``rate`` tokens per second up to
    ``capacity``. :meth:`take` spends one token if there is one; :meth:`wait` says how long
    until there will be.
    """

    def __init__(self, rate: float, now: float, capacity: int = BURST) -> None:
        if rate <= 0 or capacity < 1:
            raise ValueError("a token bucket needs rate > 0 and capacity >= 1")
        self.rate = rate
        self.capacity = float(capacity)
        self._tokens = float(capacity)
        self._at = now

    def _fill(self, now: float) -> None:
        if now > self._at:
            self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
            self._at = now

    def take(self, now: float) -> bool:
        """Spend one token at ``now`` if one is there; False (nothing spent) otherwise."""
        self._fill(now)
        if self._tokens >= 1.0 - _EPSILON:
            self._tokens -= 1.0
            return True
        return False

    def wait(self, now: float) -> float:
        """Seconds from ``now`` until a token is there (0.0: one is there now)."""
        self._fill(now)
        return max(0.0, (1.0 - self._tokens) / self.rate)
