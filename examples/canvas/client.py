"""Chains, groups, chords, retries and revoke against a running worker: ``python client.py``."""

import hashlib
import json
import time

from tasks import (
    STORE,
    add,
    add_later,
    boom,
    fetch_page,
    flaky,
    on_error,
    parse_page,
    spin,
    store_page_info,
    tsum,
)

from celeriac import chord, group
from celeriac.exceptions import TaskRevokedError

TIMEOUT = 30


def main() -> None:
    """Run each canvas shape once and print what comes back."""
    url = "https://example.com/"
    chain = fetch_page.s(url) | parse_page.s() | store_page_info.s(url)
    chain()  # the last step ignores its result: we look for what it stored
    stored = STORE / f"{hashlib.sha1(url.encode()).hexdigest()}.json"
    deadline = time.monotonic() + TIMEOUT
    while not stored.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    print("chain stored:", json.loads(stored.read_text()))

    print("chain:", (add.s(2, 2) | add.s(4) | add.s(8))().get(timeout=TIMEOUT))
    print("group:", group(add.s(i, i) for i in range(10))().get(timeout=TIMEOUT))
    print("chord:", chord(add.s(i, i) for i in range(100))(tsum.s()).get(timeout=TIMEOUT))
    print("retried:", flaky.delay(2).get(timeout=TIMEOUT), "times")

    failed = boom.apply_async(link_error=on_error.s())
    try:
        failed.get(timeout=TIMEOUT)
    except ValueError as exc:
        print("boom raised:", exc, "(on_error was called with its id)")

    later = add.apply_async((1, 1), countdown=3600)
    later.revoke()
    try:
        later.get(timeout=TIMEOUT)
    except TaskRevokedError:
        print("revoked:", later.state)

    print("replaced:", add_later.delay(20, 22).get(timeout=TIMEOUT))

    running = spin.delay(60)
    deadline = time.monotonic() + TIMEOUT
    while running.state != "STARTED" and time.monotonic() < deadline:
        time.sleep(0.05)
    running.revoke(terminate=True)  # stopped where it runs, not after 60 s
    try:
        running.get(timeout=TIMEOUT)
    except TaskRevokedError:
        print("terminated:", running.state)


if __name__ == "__main__":
    main()
