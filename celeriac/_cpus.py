"""The value of ``worker_cpu_affinity``: ``"one"``, or a Linux CPU list such as ``"0,2-3"``.

Read here (pure: no system call), applied by the worker (``runtime/cpu_affinity.py``).
"""

from __future__ import annotations

import re
from typing import Any, Final

from celeriac.exceptions import ImproperlyConfigured

__all__ = ["ONE", "check_cpu_affinity", "parse_cpu_list"]

#: The worker's threads on one CPU, the least busy of those allowed when it starts.
ONE: Final = "one"
_RANGE: Final = re.compile(r"^(\d+)(?:-(\d+))?$")
#: Most CPUs a list may name (a typo such as 0-99999 is refused, not allocated).
_MAX_CPU: Final = 65_535


def parse_cpu_list(text: str) -> frozenset[int]:
    """CPU numbers of a Linux CPU list (``"3"``, ``"0,2"``, ``"0-3,8-11"``); ValueError if
    it is none."""
    cpus: set[int] = set()
    for part in text.split(","):
        match = _RANGE.match(part.strip())
        if match is None:
            raise ValueError(f"{part.strip()!r} is not a CPU number or a range such as 0-3")
        low = int(match.group(1))
        high = int(match.group(2) or low)
        if high < low or high > _MAX_CPU:
            raise ValueError(f"{part.strip()!r} is not a range of CPUs from low to high")
        cpus.update(range(low, high + 1))
    return frozenset(cpus)


def check_cpu_affinity(value: Any) -> str | None:
    """The setting's check: None (the kernel places the threads), ``"one"``, or a CPU list
    (kept as text, normalised)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    why = f"got {value!r}"
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("", "none"):
            return None
        if text == ONE:
            return ONE
        try:
            parse_cpu_list(text)
            return text
        except ValueError as exc:
            why = str(exc)
    raise ImproperlyConfigured(
        f"setting 'worker_cpu_affinity' must be None, {ONE!r} or a CPU list such as '0' or "
        f"'0,2-3': {why}"
    )
