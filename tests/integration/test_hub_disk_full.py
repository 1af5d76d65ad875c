"""A full disk: publishers get "hub storage full", reads and acks go on, and it recovers."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from celeriac.transport import protocol as p
from celeriac.transport.hubserver import HubServer

pytestmark = pytest.mark.integration

#: The size of the file system made for the test.
FS_SIZE = "3m"


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of a few MB mounted for this test (root only; skipped otherwise)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={FS_SIZE}", "tmpfs", str(mount)],
        check=False,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False, capture_output=True)


class Peer:
    """A DEALER that speaks the protocol, with polled receives."""

    def __init__(self, ctx: zmq.Context[Any], url: str, hello: p.Hello) -> None:
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(url)
        self.send(hello)
        assert isinstance(self.recv(p.Welcome), p.Welcome)

    def send(self, message: Any) -> None:
        self.sock.send_multipart(p.encode(message))

    def recv(self, kind: type, timeout: float = 10.0) -> Any:
        """The next message of ``kind`` (others are skipped) within ``timeout`` seconds."""
        deadline_ms = int(timeout * 1000)
        while self.sock.poll(deadline_ms):
            message = p.decode(self.sock.recv_multipart())
            if isinstance(message, kind):
                return message
        raise AssertionError(f"no {kind.__name__} within {timeout}s")


def publish(client: Peer, body: bytes) -> Any:
    """Publish one task; the hub's CONF or NACK for it."""
    tid = uuid.uuid4().hex
    client.send(p.Publish((p.TaskMessage(tid, "t", body, queue="q"),)))
    return client.recv(p.Confirm | p.Nack)  # type: ignore[arg-type]


def test_a_full_disk_refuses_publishes_keeps_serving_and_recovers(
    small_fs: Path, tmp_path: Path
) -> None:
    """Publishes get NACK 'hub storage full'; deliveries and STAT work; freed space heals."""
    ctx: zmq.Context[Any] = zmq.Context()
    hub = HubServer("tcp://127.0.0.1:*", small_fs / "data", context=ctx, events=None)
    hub.start()
    try:
        decl = p.Declare(queues=(p.QueueDecl("q"),))
        client = Peer(ctx, hub.endpoint, p.Hello("client", "c", declare=decl))
        assert isinstance(publish(client, b"x" * 1000), p.Confirm)
        filler = small_fs / "filler"
        with contextlib.suppress(OSError), filler.open("wb") as f:
            while True:  # fill the file system to the last byte (bounded by its size)
                f.write(b"\0" * 65536)
                f.flush()
                os.fsync(f.fileno())
        answers = [publish(client, os.urandom(200_000)) for _ in range(5)]
        nacks = [a for a in answers if isinstance(a, p.Nack)]
        assert nacks, "a full disk never refused a publish"
        assert nacks[-1].refusals[0].reason.startswith("hub storage full")
        # Reads and deliveries need no new space: a worker still gets the stored task.
        worker = Peer(ctx, hub.endpoint, p.Hello("worker", "w", queues=("q",), credit=1))
        delivered = worker.recv(p.Deliver)
        client.send(p.Stat(delivered.deliveries[0].task.id, 7))
        assert client.recv(p.Reply).rid == 7
        filler.unlink()
        deadline = time.monotonic() + 15.0
        while not isinstance(publish(client, b"y" * 1000), p.Confirm):
            assert time.monotonic() < deadline, "publishes were never accepted again"
    finally:
        hub.stop()
        ctx.destroy(linger=0)


def test_a_read_only_data_dir_at_start_is_one_line_and_exit_code_2(small_fs: Path) -> None:
    """`celeriac hub` on a read-only file system: exit 2, one 'Error:' line, no traceback."""
    (small_fs / "data").mkdir()
    remount = ["mount", "-o", "remount,ro", str(small_fs)]
    if subprocess.run(remount, check=False, capture_output=True).returncode != 0:
        pytest.skip("cannot remount the test file system read-only")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERIAC_")}
    argv = [sys.executable, "-m", "celeriac", "hub", "--bind", "tcp://127.0.0.1:*"]
    done = subprocess.run(
        [*argv, "--data-dir", str(small_fs / "data")],
        check=False,
        cwd=small_fs.parent,  # not the source tree: the installed package is run
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1
    assert "data directory" in errors[0]
