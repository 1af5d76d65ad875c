"""``import_feed`` one at a time per feed: Celery's memcache-lock recipe, done three ways.

Celery's docs ("Ensuring a task is only executed one at a time") write a lock by hand with
``cache.add`` and a ``memcache_lock`` context manager. In celeriac:

1. ``import_feed``: the same shape with ``app.lock``, a lock held at the hub with expiry;
2. ``import_feed_once``: the task option ``lock="feed:{feed_url}"`` does it for you (skip while
   another run of the same url holds the lock; ``lock_busy="defer"`` runs it later instead);
3. ``Feed``: a keyed actor, one instance per url: calls for one url run one after the other,
   in order, none skipped, with a count kept across workers by ``save_state``/``load_state``.

Run a worker here (``celeriac -A feeds worker``) and ``python client.py``.
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any

from celeriac import App, Task

app = App("feeds")

LOCK_EXPIRE = 60 * 10  # the lock expires in 10 minutes, as in Celery's recipe
STORE = os.environ.get("FEEDS_STORE", "feeds-store")


def _append(line: str) -> None:
    os.makedirs(STORE, exist_ok=True)
    fd = os.open(os.path.join(STORE, "imports.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def fetch_and_store(url: str) -> str:
    """Stands in for ``Feed.objects.import_feed(url)``: logs entering and leaving."""
    _append(f"enter {url}")
    time.sleep(0.2)
    _append(f"exit {url}")
    return url


# 1. The recipe with app.lock ------------------------------------------------------------------


@app.task(bind=True)
def import_feed(self: Task[..., Any], feed_url: str) -> str | None:
    """Import a feed unless another worker is importing it right now."""
    digest = hashlib.md5(feed_url.encode(), usedforsecurity=False).hexdigest()
    lock_id = f"{self.name}-lock-{digest}"
    with app.lock(lock_id, expire=LOCK_EXPIRE) as acquired:
        if acquired:
            return fetch_and_store(feed_url)
    self.log.info("feed_already_importing", url=feed_url)
    return None


# 2. The task option ---------------------------------------------------------------------------


@app.task(lock="feed:{feed_url}", lock_expire=LOCK_EXPIRE)
def import_feed_once(feed_url: str) -> str:
    """The same, declared: a run while another holds ``feed:<url>`` is skipped (None)."""
    return fetch_and_store(feed_url)


# 3. A keyed actor -----------------------------------------------------------------------------


@app.actor(name="feeds.Feed")
class Feed:
    """One instance per feed url: its imports run one at a time, in order, none skipped."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.imports = 0

    def import_feed(self) -> int:
        """Import the feed; how many times it was imported so far."""
        fetch_and_store(self.url)
        self.imports += 1
        return self.imports

    def save_state(self) -> dict[str, int]:
        """Stored by the hub after every message."""
        return {"imports": self.imports}

    def load_state(self, state: dict[str, int]) -> None:
        """Given to a new instance (after an idle stop, or on another worker)."""
        self.imports = state["imports"]
