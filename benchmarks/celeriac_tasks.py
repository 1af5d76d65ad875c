"""Task module for the celeriac benchmark (imported by the worker via ``-A celeriac_tasks``
and by the producer through ``celeriac_adapter``).

The two tasks follow the shared harness contract (``harness/adapters/base.py``):

- ``noop()`` calls ``common.tick()`` (appends one byte to the counter file); its result
  is ignored and never stored;
- ``add(a, b)`` returns ``a + b`` with the result stored, so the producer can ``get()`` it.

``common`` is the shared harness module: the adapter puts the harness folder on
``PYTHONPATH`` for the worker and the producer alike.
"""

from __future__ import annotations

import os

from common import tick

from celeriac import App

BROKER = os.environ.get("BENCH_BROKER", "tcp://127.0.0.1:5599")

app = App("bench", broker=BROKER)


@app.task(name="bench.noop", ignore_result=True)
def noop() -> None:
    tick()


@app.task(name="bench.add")
def add(a: int, b: int) -> int:
    return a + b
