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


def test_a_batch_is_the_uuid4_of_each_sixteen_bytes() -> None:
    from celeriac._messages import _IDS_AHEAD, _uuid4_strings  # noqa: PLC0415

    for raw in (os.urandom(16 * _IDS_AHEAD), b"\xff" * 16 * _IDS_AHEAD, bytes(16 * _IDS_AHEAD)):
        expected = [
            str(uuid.UUID(bytes=raw[i : i + 16], version=4)) for i in range(0, len(raw), 16)
        ]
        assert _uuid4_strings(raw) == expected
