"""The canvas example: ``celeriac -A tasks worker`` here, then ``python client.py``.

The chain is the one Celery's docs recommend instead of waiting on subtasks inside a task:
``fetch_page.s(url) | parse_page.s() | store_page_info.s(url)``; no task blocks, each step is
published by the worker that ran the one before.
"""

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

from celeriac import App

app = App("tasks")

#: Where store_page_info writes (a file per url): the client reads it back.
STORE = Path(os.environ.get("CANVAS_STORE", Path(tempfile.gettempdir()) / "celeriac-canvas"))


@app.task
def fetch_page(url: str) -> str:
    """Pretend to download ``url`` (no network in an example): a page naming it."""
    return f"<html><title>{url}</title><body>{'word ' * (len(url) % 7 + 3)}</body></html>"


@app.task
def parse_page(page: str) -> dict[str, object]:
    """Extract what we keep of a page."""
    title = page.split("<title>", 1)[1].split("</title>", 1)[0]
    return {"title": title, "words": page.count("word"), "size": len(page)}


@app.task(ignore_result=True)
def store_page_info(info: dict[str, object], url: str) -> None:
    """Store the page info (the end of the chain: its result is not kept)."""
    STORE.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha1(url.encode()).hexdigest()
    (STORE / f"{name}.json").write_text(json.dumps(info))


@app.task
def add(x: int, y: int) -> int:
    """Add two numbers."""
    return x + y


@app.task
def tsum(numbers: list[int]) -> int:
    """Sum a list (a chord body)."""
    return sum(numbers)


@app.task(bind=True, max_retries=5)
def flaky(self, fail_times: int) -> int:  # type: ignore[no-untyped-def]
    """Fail ``fail_times`` times, retrying at once each time, then report the retries."""
    if self.request.retries < fail_times:
        raise self.retry(countdown=0.1)
    return int(self.request.retries)


@app.task
def on_error(task_id: str) -> None:
    """An errback: called with the id of the task that failed."""
    STORE.mkdir(parents=True, exist_ok=True)
    with (STORE / "errors.log").open("a") as log:
        log.write(task_id + "\n")


@app.task
def boom() -> None:
    """Always fail."""
    raise ValueError("boom")


@app.task(bind=True)
def add_later(self, x: int, y: int) -> int:  # type: ignore[no-untyped-def]
    """Replaced by ``add``: the caller gets add's result under this task's id."""
    self.replace(add.s(x, y))


@app.task(track_started=True)
def spin(seconds: float) -> str:
    """A long task in short steps: ``revoke(terminate=True)`` stops it between two."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)
    return "finished"
