"""Watch a worker: inspect it, send tasks, and count their events in an in-memory State.

Run `celeriac -A tasks worker -E -n mon@example` first (-E: the worker sends task events),
then `python monitor.py`.
"""

from __future__ import annotations

import threading
import time

from tasks import app, square

from celeriac.events import State

inspect = app.control.inspect(timeout=2)
print("ping:", inspect.ping())
stats = inspect.stats() or {}
for node, figures in sorted(stats.items()):
    pool = figures["pool"]
    print(f"{node}: pool {pool['implementation']}, {pool['max-concurrency']} slots")
print("custom:", inspect.task_count())

state = State()
receiver = app.events.Receiver(handlers={"*": state.event})
watcher = threading.Thread(target=receiver.capture, kwargs={"timeout": 30}, daemon=True)
watcher.start()
deadline = time.monotonic() + 30
while not state.workers and time.monotonic() < deadline:  # subscribed: a heartbeat came
    time.sleep(0.05)

results = [square.delay(i) for i in range(20)]
print("sum of squares:", sum(r.get(timeout=30) for r in results))
while state.tasks_by_state().get("SUCCESS", 0) < 20 and time.monotonic() < deadline:
    time.sleep(0.05)
print("tasks by state:", state.tasks_by_state())
print("workers:", sorted(w.hostname for w in state.alive_workers()))
receiver.should_stop = True
watcher.join(5)
receiver.close()
app.close()
