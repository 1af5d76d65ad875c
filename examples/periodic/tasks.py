"""Periodic tasks: Celery's documented example, with only the import lines changed.

Run a worker and beat (``worker -B``), or beat on its own beside your workers::

    celeriac -A tasks worker -B
    celeriac -A tasks beat          # as many as you like: one fires at a time (a hub lease)
"""

from celeriac import Celery
from celeriac.schedules import crontab

app = Celery()


@app.on_after_configure.connect
def setup_periodic_tasks(sender: Celery, **kwargs: object) -> None:
    # Calls test('hello') every 10 seconds.
    sender.add_periodic_task(10.0, test.s("hello"), name="add every 10")

    # Calls test('hello') every 30 seconds.
    # It uses the same signature of previous task, an explicit name is
    # defined to avoid this task replacing the previous one defined.
    sender.add_periodic_task(30.0, test.s("hello"), name="add every 30")

    # Calls test('world') every 30 seconds
    sender.add_periodic_task(30.0, test.s("world"), expires=10)

    # Executes every Monday morning at 7:30 a.m.
    sender.add_periodic_task(
        crontab(hour=7, minute=30, day_of_week=1),
        test.s("Happy Mondays!"),
    )


app.conf.beat_schedule = {
    "add-every-30-seconds": {
        "task": "tasks.add",
        "schedule": 30.0,
        "args": (16, 16),
    },
}
app.conf.timezone = "UTC"


@app.task
def test(arg: str) -> None:
    print(arg)


@app.task
def add(x: int, y: int) -> None:
    z = x + y
    print(z)
