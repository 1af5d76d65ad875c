"""pytest fixtures (registered as a plugin): ``celeriac_app``, ``celeriac_worker``.

Override ``celeriac_config`` in your conftest to pass settings to the app::

    @pytest.fixture
    def celeriac_config():
        return {"task_serializer": "msgpack", "accept_content": ["msgpack"]}
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from celeriac import App
    from celeriac.testing import TestWorker


@pytest.fixture
def celeriac_config() -> dict[str, Any]:
    """Settings for ``celeriac_app`` (override this fixture to change them)."""
    return {}


@pytest.fixture
def celeriac_app(celeriac_config: dict[str, Any]) -> Iterator[App]:
    """A fresh App named ``test`` with ``celeriac_config`` applied; closed afterwards."""
    from celeriac import App  # noqa: PLC0415 - imported late so `pytest` starts fast

    app = App("test", environ={}, **celeriac_config)
    yield app
    app.close()


@pytest.fixture
def celeriac_worker(celeriac_app: App, tmp_path: Path) -> Iterator[TestWorker]:
    """A hub and a worker for ``celeriac_app`` in this process (see celeriac.testing)."""
    from celeriac.testing import start_worker  # noqa: PLC0415

    with start_worker(celeriac_app, data_dir=tmp_path / "hub") as worker:
        yield worker
