"""The progress example: ``celeriac -A tasks worker`` here, then ``python client.py``.

Celery's progress-bar pattern, unchanged: a bound task calls ``self.update_state`` with a
custom state and a meta; any client reads them with ``AsyncResult(id).state`` / ``.info``
while the task runs. With ``result_extended`` the hub also keeps the task's name, arguments
and worker beside its result.
"""

import time

from celeriac import App
from celeriac.exceptions import Ignore

app = App("tasks", result_extended=True)


@app.task(bind=True)
def resize_all(self, images: list[str], pause: float = 0.2) -> int:
    """Resize each image (pretend), reporting PROGRESS after each one."""
    for done, _name in enumerate(images, start=1):
        time.sleep(pause)  # the work
        self.update_state(state="PROGRESS", meta={"current": done, "total": len(images)})
    return len(images)


@app.task(bind=True)
def import_feed(self, url: str) -> None:
    """A custom final state (Celery's pattern): update_state, then raise Ignore."""
    self.update_state(state="SKIPPED", meta={"url": url, "why": "not modified since last run"})
    raise Ignore()
