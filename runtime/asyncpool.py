"""The asyncio pool (``-P asyncio``): ``async def`` tasks run natively on one event loop.

How it works
------------
One thread runs an asyncio event loop. Concurrency N gives N *virtual slots*: the connection
thread calls :meth:`AsyncPool.submit` with a free slot index exactly as for the threads pool,
the pool starts an asyncio task for the delivery on the loop (``call_soon_threadsafe``), and
the outcome goes back through the same ``reply(index, outcome)`` callable, from the loop
thread. So up to N tasks are in flight at once, whatever they await.

* An ``async def`` task runs on the loop. It must not block: a coroutine that calls blocking
  code stalls every other task of the pool (use ``await asyncio.to_thread(...)``).
* A sync task never runs on the loop: it runs in a bounded thread pool
  (``loop.run_in_executor``; ``threads`` threads, by default ``min(N, 32)``) and the loop
  awaits it, so async tasks keep going meanwhile.
* Nothing here waits on a pykka future: the loop only awaits asyncio objects.
* Each slot index has its own :class:`~celeriac.actors.execution.TaskExecutor` (class-based tasks
  keep one instance per slot, as on the threads pool); the request of the running task is a
  context variable, so ``current_request()`` and ``self.request`` are right in every asyncio
  task and worker thread.

Time limits: at the soft limit the coroutine is cancelled (it sees ``asyncio.CancelledError``
at its current ``await`` and may catch it to clean up; if the cancellation propagates, the
outcome is FAILURE with SoftTimeLimitExceeded); at the hard limit it is cancelled and the
outcome, FAILURE with TimeLimitExceeded, is reported at once. A sync task in a thread gets the
threads pool's treatment (an asynchronous exception raised in its thread by a watchdog, which
cannot interrupt a blocking C call). See :mod:`celeriac.actors.watchdog`.

Signals: this is celeriac's green pool, so it sends Celery's eventlet pool signals:
``eventlet_pool_started`` (sender: the pool) once the loop runs, ``eventlet_pool_apply``
(sender: the pool; ``target``: the task, ``args``, ``kwargs``: its decoded arguments) on the
loop just before each task runs, ``eventlet_pool_preshutdown`` when :meth:`AsyncPool.stop`
begins, before it waits for running tasks, and ``eventlet_pool_postshutdown`` once the loop and
its threads are gone.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Sequence
from typing import Any

from celeriac import signals
from celeriac._log import get_logger
from celeriac._task import Task
from celeriac.actors.execution import TaskExecutor
from celeriac.actors.pool import PoolWiring
from celeriac.actors.task_actor import Delivery
from celeriac.actors.watchdog import Watchdog

__all__ = ["AsyncPool"]

_log = get_logger("celeriac.worker")

#: Seconds a cold stop waits for cancelled tasks to unwind before closing the loop.
_CANCEL_GRACE = 2.0


class AsyncPool:
    """``size`` virtual slots on one event loop; see the module docstring.

    Same construction and interface as :class:`~celeriac.actors.pool.ThreadPool`. ``lost`` is
    accepted for that interface; a slot here cannot die (the executor never raises).
    """

    #: A virtual slot is a coroutine spawned per delivery: nothing waits in it.
    run_ahead = 0

    def __init__(self, size: int, wiring: PoolWiring, *, threads: int | None = None) -> None:
        self.size = size
        self.threads = max(1, threads or min(size, 32))
        self._wiring = wiring
        self._watchdog = Watchdog(wiring.clock)
        self._executors: list[TaskExecutor] = []
        self._running: dict[int, asyncio.Task[None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._sync_threads: concurrent.futures.ThreadPoolExecutor | None = None
        self._applied = 0
        self._completed = 0

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the loop thread; ``eventlet_pool_started`` once the loop runs."""
        self._executors = []
        for _ in range(self.size):
            executor = self._wiring.make_executor()
            executor.watchdog = self._watchdog
            self._executors.append(executor)
        self._sync_threads = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.threads, thread_name_prefix="celeriac-async-sync"
        )
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, args=(ready,), name="celeriac-asyncio", daemon=True
        )
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the asyncio pool's event loop did not start within 10s")
        signals.eventlet_pool_started.send(sender=self)

    def wait_ready(self, timeout: float | None = None) -> bool:
        """The loop is running once :meth:`start` returned."""
        return self._loop is not None

    def worked(self) -> None:
        """Async tasks are not timed (their time is mostly awaiting): the window keeps its floor
        (worker_prefetch_multiplier x the virtual slots, already many)."""

    def submit(self, index: int, delivery: Delivery) -> None:
        """Run a delivery in virtual slot ``index`` (which the caller knows is free)."""
        loop = self._loop
        if loop is None:
            self._wiring.lost(index)
            return
        try:
            loop.call_soon_threadsafe(self._spawn, index, delivery)
        except RuntimeError:  # the loop is closed: we are stopping
            self._wiring.lost(index)

    def hand(self, index: int, deliveries: Sequence[Delivery], *, wake: bool = True) -> None:
        """A virtual slot runs one delivery (``run_ahead`` 0): each is submitted (the loop
        is woken at once, whatever ``wake`` says)."""
        for delivery in deliveries:
            self.submit(index, delivery)

    def wake_handed(self) -> None:
        """Nothing to wake: :meth:`hand` woke the loop."""

    def recall(self, index: int, tag: str) -> bool:
        """Nothing waits in a virtual slot (``run_ahead`` 0): nothing to withdraw."""
        return False

    def replaced(self, index: int) -> bool:
        """A virtual slot is never replaced: any ``lost`` here came from :meth:`submit`."""
        return True

    def stop(self, *, wait: bool = True) -> None:
        """Stop: with ``wait``, running tasks finish first; without, they are cancelled."""
        signals.eventlet_pool_preshutdown.send(sender=self)
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            settle = self._drain() if wait else self._cancel_all()
            future = asyncio.run_coroutine_threadsafe(settle, loop)
            try:
                future.result(None if wait else _CANCEL_GRACE + 1)
            except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
                _log.warning("asyncio_pool_tasks_left", running=len(self._running))
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
        if self._sync_threads is not None:
            self._sync_threads.shutdown(wait=wait, cancel_futures=True)
            self._sync_threads = None
        self._watchdog.stop()
        self._thread = None
        signals.eventlet_pool_postshutdown.send(sender=self)

    def statistics(self) -> dict[str, Any]:
        """Slots, tasks running now, sync-task threads, tasks applied and completed."""
        return {
            "pool": "asyncio",
            "size": self.size,
            "running": len(self._running),
            "threads": self.threads,
            "applied": self._applied,
            "completed": self._completed,
        }

    # -- the loop thread -------------------------------------------------------------------------

    def _serve(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        loop.call_soon(ready.set)
        try:
            loop.run_forever()
        finally:
            try:
                left = asyncio.all_tasks(loop)
                for task in left:
                    task.cancel()
                if left:
                    loop.run_until_complete(asyncio.wait(left, timeout=_CANCEL_GRACE))
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                self._loop = None
                loop.close()
                if self._wiring.on_thread_exit is not None:
                    self._wiring.on_thread_exit()

    def _spawn(self, index: int, delivery: Delivery) -> None:
        self._running[index] = asyncio.get_running_loop().create_task(
            self._run(index, delivery), name=f"celeriac-slot-{index}"
        )

    async def _run(self, index: int, delivery: Delivery) -> None:
        try:
            outcome = await self._executors[index].execute_async(
                delivery,
                threads=self._sync_threads,
                on_apply=self._on_apply,
            )
            self._completed += 1
            self._wiring.reply(index, outcome)
        except Exception:
            _log.exception("asyncio_pool_reply_failed", slot=index)
        finally:
            if self._running.get(index) is asyncio.current_task():
                del self._running[index]

    def _on_apply(self, task: Task[Any, Any], args: list[Any], kwargs: dict[str, Any]) -> None:
        self._applied += 1
        if signals.eventlet_pool_apply.receivers:
            signals.eventlet_pool_apply.send(sender=self, target=task, args=args, kwargs=kwargs)

    async def _drain(self) -> None:
        while self._running:
            await asyncio.wait(list(self._running.values()))

    async def _cancel_all(self) -> None:
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=_CANCEL_GRACE)
