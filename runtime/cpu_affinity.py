"""Keeping a worker's threads on chosen CPUs (``worker_cpu_affinity``, Linux).

How it works
------------
The threads of a threads, solo or asyncio pool (the connection, the slots) share one GIL.
Each time one lets go of it (a receive, a write, a wait) with another waiting, the waiter is
woken; on another CPU that wake-up is an interrupt to that CPU (on a VM, a trip through the
hypervisor) and a cold cache, and the woken thread often finds the GIL taken again. On one CPU
the hand-off is a plain switch. Measured on the 2-core VM (issue 18, ``pipe_probe.py``, 3
alternated pairs): a worker of noops drained 18,900-24,300 tasks/s with its threads free and
22,100-32,700 on one CPU; producer, hub and worker together 15,900-16,700 -> 18,300-19,800.

``sched_setaffinity`` sets one thread (Linux schedules threads); a new thread takes the mask of
the thread that starts it, a child process that of the thread that forks it. :func:`pin` sets
every thread of the process (``/proc/self/task``) once the worker has started, so the threads
it starts later take the mask too. :func:`unpinned` gives the calling thread the process's
former CPUs for the time of a block: the embedded hub's process is started in one, so a hub
that a pinned worker restarts keeps every CPU. What the CPU is for ``"one"``: the least busy
of those allowed over a short look at ``/proc/stat`` (:func:`least_busy`).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from celeriac._cpus import ONE, parse_cpu_list
from celeriac._log import get_logger
from celeriac.exceptions import ImproperlyConfigured

__all__ = ["apply", "choose", "least_busy", "pick_least_busy", "pin", "unpinned"]

_log = get_logger("celeriac.worker")
#: Seconds between the two looks at ``/proc/stat`` that choose the least busy CPU.
SAMPLE_SECONDS = 0.1
#: Looks at the process's threads that :func:`pin` takes at most.
_PASSES = 10
#: The process's CPUs before :func:`pin` (None: not pinned).
_before: frozenset[int] | None = None
_pinned: frozenset[int] | None = None

CpuTimes = Mapping[int, tuple[int, int]]


def cpu_times(stat: str) -> dict[int, tuple[int, int]]:
    """Each CPU's ``(idle, total)`` clock ticks from the text of ``/proc/stat``."""
    times: dict[int, tuple[int, int]] = {}
    for line in stat.splitlines():
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or name == "cpu":
            continue
        ticks = [int(v) for v in rest.split()]
        idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
        times[int(name[3:])] = (idle, sum(ticks))
    return times


def pick_least_busy(cpus: frozenset[int], before: CpuTimes, after: CpuTimes) -> int:
    """The CPU of ``cpus`` idle for the largest share of the time between two readings (the
    lowest number among equals; one missing from a reading counts as busy)."""

    def idle_share(cpu: int) -> float:
        if cpu not in before or cpu not in after:
            return -1.0
        idle = after[cpu][0] - before[cpu][0]
        total = after[cpu][1] - before[cpu][1]
        return idle / total if total > 0 else 1.0

    return max(sorted(cpus), key=idle_share)


def least_busy(cpus: frozenset[int], read: Callable[[], str] | None = None) -> int:
    """The least busy of ``cpus`` now (two looks at ``/proc/stat``, :data:`SAMPLE_SECONDS`
    apart); the lowest if ``/proc/stat`` cannot be read."""
    read = read or Path("/proc/stat").read_text
    try:
        before = cpu_times(read())
        time.sleep(SAMPLE_SECONDS)
        after = cpu_times(read())
    except (OSError, ValueError, IndexError):
        return min(cpus)
    return pick_least_busy(cpus, before, after)


def pin(cpus: frozenset[int]) -> None:
    """Every thread of this process, and those it starts from now on, on ``cpus``."""
    global _before, _pinned
    if _before is None:
        _before = frozenset(os.sched_getaffinity(0))
    # Again until a look finds no thread it has not set: one started meanwhile by a thread not
    # yet set took the old CPUs (bounded: a process that keeps starting threads is left so).
    done: set[str] = set()
    for _ in range(_PASSES):
        tids = set(os.listdir("/proc/self/task")) - done
        if not tids:
            break
        for tid in tids:
            with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
                os.sched_setaffinity(int(tid), cpus)
        done |= tids
    _pinned = cpus


@contextlib.contextmanager
def unpinned() -> Iterator[None]:
    """The calling thread on the process's former CPUs for the block (a child process started
    in it keeps them)."""
    before, pinned = _before, _pinned
    if before is None or pinned is None:
        yield
        return
    os.sched_setaffinity(0, before)
    try:
        yield
    finally:
        os.sched_setaffinity(0, pinned)


def choose(setting: str | None, pool: str) -> frozenset[int] | None:
    """The CPUs ``worker_cpu_affinity`` (its value, already checked) gives this worker, or
    None (nothing to pin: not set, a prefork pool, no ``sched_setaffinity``). Called before
    the worker starts anything, so that a list with no allowed CPU stops it cleanly."""
    if setting is None:
        return None
    if pool == "prefork":  # its children are processes, one GIL each: nothing to gain
        _log.info("cpu_affinity_ignored", reason="the prefork pool's children are processes")
        return None
    if not hasattr(os, "sched_setaffinity"):
        _log.warning("cpu_affinity_unsupported", reason="no sched_setaffinity on this system")
        return None
    allowed = frozenset(os.sched_getaffinity(0))
    if setting == ONE:
        return frozenset({least_busy(allowed)})
    cpus = parse_cpu_list(setting) & allowed
    if not cpus:
        raise ImproperlyConfigured(
            f"worker_cpu_affinity={setting!r}: none of these CPUs is allowed to this "
            f"process (allowed: {','.join(map(str, sorted(allowed)))})"
        )
    return cpus


def apply(cpus: frozenset[int] | None, setting: str | None) -> None:
    """Pin this worker's threads on ``cpus`` (from :func:`choose`; None: nothing) and log it."""
    if cpus is None:
        return
    pin(cpus)
    _log.info("cpu_affinity", cpus=",".join(map(str, sorted(cpus))), setting=setting)
