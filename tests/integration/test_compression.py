"""Compressed task messages and results between a client and a real worker subprocess.

The client compresses (task_compression, or compression= per call), the worker (whose own
settings say nothing of it) decompresses from the content type; the worker compresses its
results (result_compression) and the client, whose settings say nothing of that, reads them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from celeriac import App
from celeriac.exceptions import EncodeError, ImproperlyConfigured

from .conftest import RESULT_TIMEOUT, Spawner, TaskModule, clean_env, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def worker_compressing(procs: Spawner, tasks_module: TaskModule, broker_url: str) -> None:
    """A worker (embedded hub) storing its results bzip2-compressed."""
    env = clean_env(
        CELERIAC_HUB_DATA_DIR=str(procs.tmp_path / "embedded-hub"),
        CELERIAC_RESULT_COMPRESSION="bzip2",
    )
    procs.worker(broker_url, cwd=tasks_module.dir, env=env)


@pytest.fixture
def gzip_client(broker_url: str) -> Iterator[App]:
    """A client that compresses every task message with gzip."""
    app = App("client", broker=broker_url, environ={}, task_compression="gzip")
    yield app
    app.close()


def test_compressed_tasks_and_results_round_trip(
    worker_compressing: None, gzip_client: App, tmp_path: Path
) -> None:
    """gzip messages (the setting), zlib and lzma ones (the call option) and bzip2 results."""
    big = "x" * 100_000
    sent = [
        gzip_client.send_task("itasks.add", args=(big, "y")),
        gzip_client.send_task("itasks.add", args=(2, 3), compression="zlib"),
        gzip_client.send_task("itasks.add", args=([1], [2]), compression="lzma"),
    ]
    assert [r.get(timeout=RESULT_TIMEOUT) for r in sent] == [big + "y", 5, [1, 2]]
    failed = gzip_client.send_task("itasks.fail", args=("kaput",), compression="bzip2")
    with pytest.raises(ValueError, match="kaput"):
        failed.get(timeout=RESULT_TIMEOUT)
    ids = {r.id for r in [*sent, failed]}

    # A result reaches the client before its commit (at most 5 ms: see transport/lazycommit).
    def all_stored() -> dict[str, bytes] | None:
        stored = _stored(tmp_path / "embedded-hub")
        return stored if ids <= stored.keys() else None

    stored = wait_until(all_stored, RESULT_TIMEOUT, "the results committed")
    for result in [*sent, failed]:  # the worker compressed every result, failures too
        assert b"compression=bzip2" in stored[result.id]


def _stored(data_dir: Path) -> dict[str, bytes]:
    """Each stored result's id -> its header (the content type is in it), from the hub's db."""
    (path,) = [p for p in data_dir.rglob("*") if p.is_file() and _is_sqlite(p)]
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT id, header FROM results").fetchall()
    finally:
        db.close()
    return {rid: bytes(header) for rid, header in rows}


def _is_sqlite(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(16) == b"SQLite format 3\x00"


def test_unknown_compression_is_refused_in_the_caller(gzip_client: App) -> None:
    """An unknown compression never leaves the caller: the call and the setting say why."""
    with pytest.raises(EncodeError, match="unknown compression 'snappy'; known: bzip2, gzip"):
        gzip_client.send_task("itasks.add", args=(1, 2), compression="snappy")
    with pytest.raises(ImproperlyConfigured, match="task_compression: unknown compression"):
        App("bad", broker=gzip_client.conf.broker_url, environ={}, task_compression="rar")
