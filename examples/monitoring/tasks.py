"""Tasks for the monitoring example: `celeriac -A tasks worker -E -n mon@example`."""

from __future__ import annotations

from celeriac import App, inspect_command

app = App("tasks")


@app.task
def square(x: int) -> int:
    """x * x."""
    return x * x


@inspect_command()
def task_count(state: object) -> dict[str, int]:
    """A custom inspect command: how many tasks this worker knows."""
    return {"ok": len(app.tasks)}
