"""Celery's last missing names (issue 10): aliases that work, and refusals that say why."""

from __future__ import annotations

import pytest

import celeriac
from celeriac import App


def test_subtask_is_celerys_older_name_of_signature() -> None:
    app = App("aliases", broker="tcp://127.0.0.1:1")

    @app.task(name="aliases.add")
    def add(x: int, y: int) -> int:
        return x + y

    assert celeriac.subtask is celeriac.signature
    assert add.subtask((1, 2), countdown=3) == add.signature((1, 2), countdown=3)


@pytest.mark.parametrize("name", ["graph", "build_graph", "get_leaf", "revoke_by_stamped_headers"])
def test_result_names_without_a_meaning_here_say_what_to_use(name: str) -> None:
    app = App("aliases", broker="tcp://127.0.0.1:1")
    with pytest.raises(NotImplementedError, match=f"AsyncResult.{name}: .*(collect|revoke)"):
        getattr(app.AsyncResult("some-id"), name)


def test_add_to_chord_says_why_a_chord_size_is_fixed() -> None:
    app = App("aliases", broker="tcp://127.0.0.1:1")

    @app.task(name="aliases.noop")
    def noop() -> None:
        return None

    with pytest.raises(NotImplementedError, match="chord's size is fixed when it is sent"):
        getattr(noop, "add_to_chord")  # noqa: B009 - the attribute is what is tested
