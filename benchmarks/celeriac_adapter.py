"""celeriac adapter for the shared queue benchmark harness.

The driver (``<bench>/harness/queue_bench.py``) imports this module by name, so run it
with this folder on ``PYTHONPATH``::

    PYTHONPATH=<repo>/benchmarks /tmp/venv-celeriac/bin/python \\
        <bench>/harness/queue_bench.py --adapter celeriac_adapter --config embedded-threads-c2

(``benchmarks/run.sh`` does that, interleaved with Celery).  The driver has already put
``harness/`` and ``harness/adapters/`` on ``sys.path`` when it imports us, hence the
plain ``base`` / ``common`` imports.

Per repetition the driver calls ``purge()`` (no worker running), resets the counter,
sends one probe ``noop()`` and only then spawns the worker.  For celeriac this means:

- the worker finds nothing at ``BENCH_BROKER`` and starts its embedded hub, storing in
  ``$ANCHORS_RUN/celeriac-data`` (``CELERIAC_HUB_DATA_DIR``); ``purge()`` deletes that
  directory, so every repetition starts from an empty hub;
- ``purge()`` also closes the producer's client and builds a fresh one (the previous
  hub died with the previous worker), and checks that the broker port is free, since a
  stray hub there would be used instead of the embedded one;
- the probe ``noop()`` is buffered by the fresh client until the worker's hub answers.
"""

from __future__ import annotations

import importlib
import os
import shutil
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pykka
import zmq
from base import Adapter
from common import RUN_DIR, log, pkg_version

BENCH_DIR = Path(__file__).resolve().parent
_VENV_BIN = Path(sys.executable).parent

BROKER = os.environ.get("BENCH_BROKER", "tcp://127.0.0.1:5599")
HUB_DATA_DIR = RUN_DIR / "celeriac-data"
TASKS_MODULE = "celeriac_tasks"

CONFIGS: dict[str, dict[str, Any]] = {
    "embedded-threads-c2": {
        "desc": "embedded hub where the default puts it (no broker server; a child process of "
        "the worker on 2+ CPUs), -P threads -c 2",
        "pool": "threads",
        "concurrency": 2,
    },
    "embedded-hubthread-threads-c2": {
        "desc": "embedded hub in a thread of the worker process (worker_embedded_hub_process "
        "false), -P threads -c 2",
        "pool": "threads",
        "concurrency": 2,
        "hub_process": False,
    },
    "embedded-hubproc-threads-c2": {
        "desc": "embedded hub in a child process of the worker (worker_embedded_hub_process), "
        "-P threads -c 2",
        "pool": "threads",
        "concurrency": 2,
        "hub_process": True,
    },
    "embedded-prefork-c2": {
        "desc": "embedded hub in the parent process, -P prefork -c 2 (two child processes)",
        "pool": "prefork",
        "concurrency": 2,
    },
    "standalone-threads-c2": {
        "desc": "standalone `celeriac hub` process, worker -P threads -c 2 --embedded-hub never",
        "pool": "threads",
        "concurrency": 2,
        "standalone": True,
    },
    # The worker's threads on one CPU (worker_cpu_affinity = "one"; issue 18).
    "embedded-threads-c2-onecpu": {
        "desc": "embedded hub where the default puts it, -P threads -c 2, the worker's "
        "threads on one CPU (worker_cpu_affinity one)",
        "pool": "threads",
        "concurrency": 2,
        "cpu_affinity": "one",
    },
    "standalone-threads-c2-onecpu": {
        "desc": "standalone `celeriac hub` process, worker -P threads -c 2 --embedded-hub never, "
        "its threads on one CPU (worker_cpu_affinity one)",
        "pool": "threads",
        "concurrency": 2,
        "standalone": True,
        "cpu_affinity": "one",
    },
    # Scaling (issue 18): 1, 2 and 4 worker processes (-P threads -c 2 each) on one hub.
    **{
        f"standalone-w{n}": {
            "desc": f"standalone `celeriac hub` process, {n} worker process(es) -P threads -c 2",
            "pool": "threads",
            "concurrency": 2,
            "standalone": True,
            "workers": n,
        }
        for n in (1, 2, 4)
    },
    "embedded-solo": {
        "desc": "embedded hub where the default puts it (no broker server), -P solo (1 slot)",
        "pool": "solo",
        "concurrency": None,
    },
}


def _celeriac_cmd() -> list[str]:
    script = _VENV_BIN / "celeriac"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "celeriac"]


def _port_free(host: str, port: int) -> bool:
    """True if nothing listens on host:port (bind with SO_REUSEADDR, as libzmq does)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def _run_bounded(fn: Any, timeout: float, what: str) -> None:
    """Run fn() in a daemon thread; log (do not hang) if it takes longer than timeout."""
    err: list[BaseException] = []

    def target() -> None:
        try:
            fn()
        except BaseException as e:  # reported below
            err.append(e)

    t = threading.Thread(target=target, name=f"bench-{what}", daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        log(f"  celeriac: {what} still running after {timeout:.0f}s (left behind)")
    elif err:
        log(f"  celeriac: {what} raised {err[0]!r}")


class CeleriacAdapter(Adapter):
    system = "celeriac"
    CONFIGS = CONFIGS

    def __init__(self, config: str):
        super().__init__(config)
        self.mod: Any = None

    # ---- description -----------------------------------------------------
    def versions(self) -> dict:
        v = {k: pkg_version(k) for k in ("celeriac", "pyzmq", "pykka", "msgpack")}
        v["libzmq"] = zmq.zmq_version()
        return v

    # ---- worker process --------------------------------------------------
    def worker_env(self) -> dict:
        env = super().worker_env()  # harness/ and harness/adapters/ on PYTHONPATH
        env["PYTHONPATH"] = os.pathsep.join([str(BENCH_DIR), env["PYTHONPATH"]])
        env["BENCH_BROKER"] = BROKER
        env["CELERIAC_HUB_DATA_DIR"] = str(HUB_DATA_DIR)
        if "cpu_affinity" in self.config:
            env["CELERIAC_WORKER_CPU_AFFINITY"] = self.config["cpu_affinity"]
        if "hub_process" in self.config:
            env["CELERIAC_WORKER_EMBEDDED_HUB_PROCESS"] = str(self.config["hub_process"]).lower()
        return env

    def worker_argv(self) -> list[str]:
        argv = [*_celeriac_cmd(), "-A", TASKS_MODULE, "worker", "-P", self.config["pool"]]
        if self.config.get("concurrency"):
            argv += ["-c", str(self.config["concurrency"])]
        argv = [*argv, "-l", "WARNING", "-n", "bench", "--broker", BROKER]
        if self.config.get("standalone"):
            launcher = str(BENCH_DIR / "standalone_node.py")
            workers = ["--workers", str(self.config.get("workers", 1))]
            return [sys.executable, launcher, *workers, BROKER, str(HUB_DATA_DIR), "--", *argv]
        return [*argv, "--embedded-hub", "always"]  # given --broker, auto would wait for a hub

    def worker_cwd(self) -> str:
        # Not the repo root: `python -m celeriac` run there would import the source tree's
        # celeriac/ (without the runtime/transport/actors package-dir mapping).
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        return str(RUN_DIR)

    # ---- producer side ---------------------------------------------------
    def connect(self) -> None:
        # The client itself is created by purge(), which the driver calls first in
        # every repetition: a fresh client per fresh hub.
        os.environ.update(self.worker_env())
        if str(BENCH_DIR) not in sys.path:
            sys.path.insert(0, str(BENCH_DIR))

    def _close_client(self) -> None:
        if self.mod is not None:
            app = self.mod.app
            _run_bounded(app.close, 15.0, "app.close()")

    def _fresh_client(self) -> None:
        if self.mod is None:
            self.mod = importlib.import_module(TASKS_MODULE)
        else:
            self.mod = importlib.reload(self.mod)

    def purge(self) -> None:
        self._close_client()
        if HUB_DATA_DIR.name == "celeriac-data" and HUB_DATA_DIR.exists():
            shutil.rmtree(HUB_DATA_DIR)
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        u = urlsplit(BROKER)
        if u.scheme == "tcp" and u.hostname and u.port:
            deadline = time.monotonic() + 15.0
            while not _port_free(u.hostname, u.port):
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{BROKER} is in use: a hub from elsewhere would serve the worker "
                        "instead of its embedded one; stop it first"
                    )
                time.sleep(0.2)
        self._fresh_client()

    def send_noop(self) -> None:
        self.mod.noop.delay()

    def send_add(self, a: int, b: int) -> Any:
        return self.mod.add.delay(a, b)

    def get(self, handle: Any, timeout: float) -> Any:
        return handle.get(timeout=timeout)

    def close(self) -> None:
        self._close_client()
        self.mod = None
        # pykka actor threads are non-daemon: one left running keeps the driver alive.
        left = pykka.ActorRegistry.get_all()
        if left:
            log(
                f"  celeriac: {len(left)} actor(s) still running after app.close(): "
                f"{sorted({r.actor_class.__name__ for r in left})}; stopping them"
            )
            _run_bounded(
                lambda: pykka.ActorRegistry.stop_all(block=True, timeout=5),
                10.0,
                "ActorRegistry.stop_all()",
            )


ADAPTER = CeleriacAdapter
