"""The exit guard (runtime/exit_guard.py), in child processes: it ends the process it runs in."""

from __future__ import annotations

import subprocess
import sys
import threading

from celeriac.runtime.exit_guard import EXIT_STUCK, StopGuard

HANGS = """
import threading, time
from celeriac.runtime.exit_guard import guard_exit
now = guard_exit(after={after})
if {cold}:
    threading.Timer(0.1, now.set).start()
threading.Event().wait(60)  # a stop that never ends
"""


def run(after: float, cold: bool) -> subprocess.CompletedProcess[str]:
    """Run a process that hangs after arming the guard; its exit code and stderr."""
    code = HANGS.format(after=repr(after).replace("inf", "float('inf')"), cold=cold)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
    )


def test_a_stop_that_hangs_ends_with_every_thread_s_stack() -> None:
    """Past its time the guard logs shutdown_stuck and each thread's stack, then exits 1."""
    done = run(after=0.3, cold=False)
    assert done.returncode == EXIT_STUCK == 1
    assert "shutdown_stuck" in done.stderr
    assert "Current thread" in done.stderr  # faulthandler's dump: the guard's own thread
    assert "Thread 0x" in done.stderr  # and the others: the main thread, hanging in wait()
    assert "in wait" in done.stderr


def test_the_event_ends_it_at_once_without_stacks() -> None:
    """A second signal (the event set) ends it at once, long before the guard's time."""
    done = run(after=25.0, cold=True)
    assert done.returncode == EXIT_STUCK
    assert "cold_shutdown_exit" in done.stderr
    assert "shutdown_stuck" not in done.stderr
    assert "Thread 0x" not in done.stderr


def test_an_infinite_time_waits_for_the_event_only() -> None:
    """worker_shutdown_timeout may be infinite: the guard then acts on the event alone."""
    done = run(after=float("inf"), cold=True)
    assert done.returncode == EXIT_STUCK
    assert "cold_shutdown_exit" in done.stderr
    assert "Traceback" not in done.stderr  # no OverflowError in the guard's thread


def test_a_stop_guard_not_enabled_does_nothing() -> None:
    """A node started inside another program (its guard not enabled) arms no guard: the
    program it runs in is never ended by it."""
    guard = StopGuard()
    before = {t.name for t in threading.enumerate()}
    guard.stopping(0.0)
    guard.tasks_done()
    guard.second_signal()
    assert "celeriac-exit-guard" not in {t.name for t in threading.enumerate()} - before
