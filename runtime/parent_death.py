"""Asking the kernel to signal a child process when its parent dies (Linux ``PR_SET_PDEATHSIG``).

One home for the prefork children (:mod:`.prefork_child`) and the embedded hub's child process
(:mod:`.embedded_process`). The signal comes when the *thread* that started the child ends,
which is the parent's death only if it is the thread that lives as long as the child (the
main thread, or a thread that outlives it): callers start their children from such a thread.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import signal
import sys

__all__ = ["signal_on_parent_death"]

_PR_SET_PDEATHSIG = 1


def signal_on_parent_death(signum: signal.Signals) -> None:
    """Ask the kernel for ``signum`` when the parent dies (Linux only; elsewhere a no-op, and
    the caller relies on its own pid and pipe checks)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
