"""Task.apply sets Celery's lineage: a root call is its own root; a nested apply is a child."""

from __future__ import annotations

from typing import Any

from celeriac import App


def test_apply_root_and_nested_ids() -> None:
    """apply() at top level: root_id is the task's id, no parent; apply() inside it: the
    outer call is the parent and the root."""
    app = App("apply-lineage", environ={})

    @app.task(bind=True)
    def inner(self: Any) -> list[str | None]:
        return [self.request.id, self.request.parent_id, self.request.root_id]

    @app.task(bind=True)
    def outer(self: Any) -> list[Any]:
        return [self.request.id, self.request.parent_id, self.request.root_id, inner.apply().get()]

    outer_id, outer_parent, outer_root, (inner_id, inner_parent, inner_root) = outer.apply().get()
    assert outer_parent is None
    assert outer_root == outer_id
    assert inner_parent == outer_id
    assert inner_root == outer_id
    assert inner_id != outer_id
    app.close()
