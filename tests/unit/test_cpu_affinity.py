"""``worker_cpu_affinity`` (issue 18): the setting's value, the choice of the least busy CPU,
and the pinning of every thread of a process (in a child process: never this test's own)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from celeriac import App
from celeriac._cpus import check_cpu_affinity, parse_cpu_list
from celeriac.exceptions import ImproperlyConfigured
from celeriac.runtime import cpu_affinity

linux_only = pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity"), reason="sched_setaffinity is Linux's"
)


@pytest.mark.parametrize(
    ("text", "cpus"),
    [("3", {3}), ("0,2", {0, 2}), ("0-3,8-9", {0, 1, 2, 3, 8, 9}), (" 1 , 1-2 ", {1, 2})],
)
def test_a_cpu_list_reads_as_linux_writes_it(text: str, cpus: set[int]) -> None:
    assert parse_cpu_list(text) == cpus


@pytest.mark.parametrize("text", ["", "a", "3-1", "1-", "-1", "0,,1", "0-99999999"])
def test_anything_else_is_no_cpu_list(text: str) -> None:
    with pytest.raises(ValueError, match="CPU"):
        parse_cpu_list(text)


@pytest.mark.parametrize(
    ("value", "kept"),
    [(None, None), ("", None), ("None", None), (" ONE ", "one"), ("0,2-3", "0,2-3"), (2, "2")],
)
def test_the_setting_takes_none_one_or_a_cpu_list(value: object, kept: str | None) -> None:
    assert check_cpu_affinity(value) == kept
    assert App("t", worker_cpu_affinity=value).conf.worker_cpu_affinity == kept


@pytest.mark.parametrize("value", [True, [0, 1], "all", "2-1", 1.5])
def test_a_wrong_value_names_the_setting_and_what_it_takes(value: object) -> None:
    with pytest.raises(ImproperlyConfigured, match=r"worker_cpu_affinity.*'one' or a CPU list"):
        App("t", worker_cpu_affinity=value)


def test_the_environment_sets_it_and_a_bad_one_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CELERIAC_WORKER_CPU_AFFINITY", "one")
    assert App("t").conf.worker_cpu_affinity == "one"
    monkeypatch.setenv("CELERIAC_WORKER_CPU_AFFINITY", "first")
    with pytest.raises(ImproperlyConfigured, match="CELERIAC_WORKER_CPU_AFFINITY='first'"):
        App("t").conf.worker_cpu_affinity  # noqa: B018 - read when asked for


STAT_BEFORE = """cpu  100 0 100 800 0 0 0 0 0 0
cpu0 50 0 50 400 0 0 0 0 0 0
cpu1 50 0 50 400 0 0 0 0 0 0
cpu2 0 0 0 0 0 0 0 0 0 0
intr 12345
"""
# Over the interval: cpu0 idle 90 of 100 ticks, cpu1 idle 20 of 100 (its iowait counts as
# idle: 10 of them), cpu2 idle 90 of 100.
STAT_AFTER = """cpu  ...
cpu0 55 0 55 490 0 0 0 0 0 0
cpu1 100 0 30 410 10 0 0 0 0 0
cpu2 5 0 5 90 0 0 0 0 0 0
"""


def test_the_least_busy_cpu_is_the_most_idle_and_the_lowest_of_equals() -> None:
    before, after = cpu_affinity.cpu_times(STAT_BEFORE), cpu_affinity.cpu_times(STAT_AFTER)
    assert before[1] == (400, 500)
    assert after[1] == (420, 550)
    assert cpu_affinity.pick_least_busy(frozenset({0, 1, 2}), before, after) == 0
    assert cpu_affinity.pick_least_busy(frozenset({1, 2}), before, after) == 2
    assert cpu_affinity.pick_least_busy(frozenset({1}), before, after) == 1
    # A CPU the readings do not show counts as busy.
    assert cpu_affinity.pick_least_busy(frozenset({1, 7}), before, after) == 1


def test_least_busy_reads_proc_stat_twice_and_falls_back_to_the_lowest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cpu_affinity, "SAMPLE_SECONDS", 0.0)
    readings = iter([STAT_BEFORE, STAT_AFTER])
    assert cpu_affinity.least_busy(frozenset({1, 2}), lambda: next(readings)) == 2

    def unreadable() -> str:
        raise OSError("no /proc here")

    assert cpu_affinity.least_busy(frozenset({5, 3}), unreadable) == 3


def test_nothing_is_pinned_without_the_setting_nor_for_prefork() -> None:
    assert cpu_affinity.choose(None, "threads") is None
    assert cpu_affinity.choose("one", "prefork") is None


@linux_only
def test_a_cpu_list_with_no_allowed_cpu_is_refused_naming_the_allowed_ones() -> None:
    outside = str(max(os.sched_getaffinity(0)) + 1000)
    with pytest.raises(ImproperlyConfigured, match="none of these CPUs is allowed"):
        cpu_affinity.choose(outside, "threads")


CHILD = textwrap.dedent(
    """
    import os, subprocess, sys, threading
    from celeriac.runtime import cpu_affinity

    def allowed(tid="self"):
        path = f"/proc/self/task/{tid}/status" if tid != "self" else "/proc/self/status"
        for line in open(path):
            if line.startswith("Cpus_allowed_list"):
                return line.split()[1]

    everything = allowed()
    stop = threading.Event()
    before = threading.Thread(target=stop.wait)
    before.start()
    cpus = cpu_affinity.choose(sys.argv[1], "threads")
    cpu_affinity.apply(cpus, sys.argv[1])
    pinned = {allowed(tid) for tid in os.listdir("/proc/self/task")}
    seen = []
    after = threading.Thread(target=lambda: seen.append(allowed(threading.get_native_id())))
    after.start(); after.join()
    code = "print(open('/proc/self/status').read().split('Cpus_allowed_list:')[1].split()[0])"
    with cpu_affinity.unpinned():
        child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    plain = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    stop.set(); before.join()
    print(repr((sorted(cpus), sorted(pinned), seen, everything, child.stdout.strip(),
               plain.stdout.strip(), allowed())))
    """
)


@linux_only
@pytest.mark.parametrize("setting", ["first allowed", "one"])
def test_every_thread_is_pinned_later_ones_too_and_unpinned_children_keep_every_cpu(
    setting: str,
) -> None:
    """In a child process: a thread started before and one after take the CPU; a process
    started inside ``unpinned`` keeps the former CPUs, one started outside it does not."""
    cpu = min(os.sched_getaffinity(0))
    arg = str(cpu) if setting == "first allowed" else "one"
    out = subprocess.run(
        [sys.executable, "-c", CHILD, arg], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    cpus, pinned, seen, everything, child, plain, main = eval(out.stdout)  # the child's repr
    assert len(cpus) == 1
    assert cpus[0] in os.sched_getaffinity(0)
    if setting == "first allowed":
        assert cpus == [cpu]
    assert pinned == [str(cpus[0])]
    assert seen == [str(cpus[0])]
    assert main == str(cpus[0])
    assert child == everything
    assert plain == str(cpus[0])


def test_pin_looks_again_for_threads_started_while_it_pinned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A thread started by one not yet pinned takes the old CPUs: pin lists the threads again
    until it finds none it has not set (the kernel calls recorded, this process untouched)."""
    listings = iter([["11", "12"], ["11", "12", "13"], ["11", "12", "13"]])
    calls: list[tuple[int, frozenset[int]]] = []
    monkeypatch.setattr(cpu_affinity.os, "listdir", lambda _path: next(listings))
    monkeypatch.setattr(cpu_affinity.os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)
    monkeypatch.setattr(
        cpu_affinity.os,
        "sched_setaffinity",
        lambda tid, cpus: calls.append((tid, cpus)),
        raising=False,
    )
    monkeypatch.setattr(cpu_affinity, "_before", None)
    monkeypatch.setattr(cpu_affinity, "_pinned", None)
    cpu_affinity.pin(frozenset({1}))
    assert sorted(calls) == [(11, {1}), (12, {1}), (13, {1})]
    assert cpu_affinity._before == {0, 1}
