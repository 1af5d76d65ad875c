"""Celery's "Routing Tasks" example, with only the import line changed.

Two workers: ``celeriac -A tasks worker -Q feed_tasks -n feeds`` takes the feed tasks, and
``celeriac -A tasks worker -Q default -n main`` everything else. The hub routes like an AMQP
broker: a topic exchange ``tasks`` with bindings ``feed.#`` and ``task.#``.
"""

from celeriac import App, Queue

app = App("tasks")
app.conf.task_queues = (
    Queue("default", routing_key="task.#"),
    Queue("feed_tasks", routing_key="feed.#"),
)
app.conf.task_default_queue = "default"
app.conf.task_default_exchange = "tasks"
app.conf.task_default_exchange_type = "topic"
app.conf.task_default_routing_key = "task.default"
app.conf.task_routes = {
    "feed.tasks.*": {
        "queue": "feed_tasks",
        "routing_key": "feed.import",
    },
}


@app.task(name="feed.tasks.import_feed", bind=True)
def import_feed(self, url: str) -> str:  # type: ignore[no-untyped-def]
    """A feed task: routed to feed_tasks by task_routes."""
    return f"{self.request.hostname} imported {url}"


@app.task(bind=True)
def add(self, x: int, y: int) -> str:  # type: ignore[no-untyped-def]
    """Any other task: the default queue."""
    return f"{self.request.hostname} added {x + y}"
