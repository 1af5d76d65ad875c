"""Send ``resize_all`` and draw its progress from another process than the worker's."""

import time

from tasks import app, import_feed, resize_all

from celeriac import AsyncResult

result = resize_all.delay([f"img{i}.png" for i in range(5)])
seen = []
deadline = time.monotonic() + 60
while not result.ready() and time.monotonic() < deadline:
    if result.state == "PROGRESS":
        info = result.info  # a second read: the task may have finished since (info: its result)
        if isinstance(info, dict) and info not in seen:
            seen.append(info)
            print(f"progress: {info['current']}/{info['total']}", flush=True)
    time.sleep(0.05)
print("result:", result.get(timeout=30))
done = AsyncResult(result.id, app)
print("extended:", done.name, done.args, "on a worker:", done.worker is not None)
skipped = import_feed.delay("https://example.com/feed")
print("custom final state:", skipped.get(timeout=30), skipped.state)
app.close()
