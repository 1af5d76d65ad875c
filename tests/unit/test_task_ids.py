"""Task ids: random UUID4 strings, never handed out twice, not even across a fork."""

from __future__ import annotations

import os
import threading
import uuid

from celeriac._messages import new_task_id


def test_ids_are_uuid4_strings_in_canonical_form() -> None:
    for _ in range(1000):
        tid = new_task_id()
        parsed = uuid.UUID(tid)
        assert str(parsed) == tid
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_threads_never_get_the_same_id() -> None:
    got: list[list[str]] = [[] for _ in range(4)]

    def take(mine: list[str]) -> None:
        mine.extend(new_task_id() for _ in range(5000))

    threads = [threading.Thread(target=take, args=(mine,)) for mine in got]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [tid for mine in got for tid in mine]
    assert len(set(everything)) == len(everything) == 20_000


def test_a_forked_child_does_not_reuse_the_ids_made_ahead_in_its_parent() -> None:
    new_task_id()  # the parent now holds ids made ahead
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next ids and leave at once
        os.write(write, ",".join(new_task_id() for _ in range(3)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 4096).decode().split(",")
    os.close(read)
    parent = [new_task_id() for _ in range(3)]
    assert len(child) == 3
    assert not set(child) & set(parent)
