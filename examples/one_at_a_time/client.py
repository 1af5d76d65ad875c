"""Send four imports of one feed at once, three ways, and say what happened."""

from __future__ import annotations

from feeds import Feed, app, import_feed, import_feed_once

URL = "https://example.com/feed.xml"


def main() -> None:
    """Four concurrent imports per way; one import at a time in every case."""
    by_lock = [import_feed.delay(URL) for _ in range(4)]
    done = [r.get(timeout=30) for r in by_lock]
    imported = sum(1 for d in done if d == URL)
    print(f"app.lock: {imported} imported, {4 - imported} skipped")

    by_option = [import_feed_once.delay(URL) for _ in range(4)]
    done = [r.get(timeout=30) for r in by_option]
    imported = sum(1 for d in done if d == URL)
    print(f"lock option: {imported} imported, {4 - imported} skipped")

    feed = app.proxy(Feed, key=URL)
    calls = [feed.import_feed() for _ in range(4)]
    print(f"keyed actor: imports {[c.get(timeout=30) for c in calls]}")
    app.close()


if __name__ == "__main__":
    main()
