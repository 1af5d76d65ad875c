"""freeze() with a given id, a returned result's stored form, task objects in a canvas (pure)."""

from __future__ import annotations

import json

import pytest

from celeriac import App, GroupResult, Signature, chain, chord, group
from celeriac._signature import maybe_signature
from celeriac.result import AsyncResult, result_from_tuple, storable


@pytest.fixture
def app() -> App:
    """An App with one task (nothing is sent: freeze only fixes ids)."""
    a = App("canvas_freeze")

    @a.task(name="f.add")
    def add(x: int, y: int) -> int:
        return x + y

    return a


def test_signature_freeze_takes_the_given_id_unless_it_has_one(app: App) -> None:
    """sig.freeze(_id=...) uses that id; a signature frozen already keeps its own (Celery's)."""
    sig = app.signature("f.add", (1, 2))
    assert sig.freeze(_id="given").id == "given"
    assert sig.id == "given"
    assert sig.freeze(_id="other").id == "given"


def test_chain_freeze_gives_the_id_to_the_last_step(app: App) -> None:
    """chain.freeze(id): the last step gets it, chain.id is it, parents walk back."""
    add = app.tasks["f.add"]
    last = add.s(2).set(task_id="42")
    c = add.s(4) | last
    assert c.id is None
    result = c.freeze(last.id)
    assert c.id == result.id == "42"
    fresh = add.s(1) | add.s(2)
    assert fresh.freeze("7").id == "7"
    assert fresh.id == "7"
    assert fresh.freeze("7").parent is not None


def test_group_and_chord_freeze_take_the_given_id(app: App) -> None:
    """group.freeze(_id) is the GroupResult's id; chord.freeze(_id) is the body's."""
    add = app.tasks["f.add"]
    assert group(add.s(1, 1), add.s(2, 2)).freeze(_id="g").id == "g"
    c = chord([add.s(1, 1)], add.s(5))
    result = c.freeze(_id="body")
    assert result.id == "body"
    assert isinstance(result.parent, GroupResult)
    assert c.freeze().parent.id == result.parent.id  # the header's group id is kept


def test_a_returned_result_is_stored_as_its_id_tuple(app: App) -> None:
    """A task returning an AsyncResult/GroupResult stores Celery's as_tuple form, with the
    parents, in JSON; result_from_tuple rebuilds it."""
    add = app.tasks["f.add"]
    last = (add.s(1, 1) | group(add.s(1), add.s(2)) | add.s(3)).freeze()
    stored = json.loads(json.dumps(storable(last)))
    assert stored[0][0] == last.id
    assert isinstance(stored[0][1], list)  # the chord's header GroupResult
    rebuilt = result_from_tuple(stored, app)
    assert isinstance(rebuilt, AsyncResult)
    assert rebuilt.id == last.id
    assert isinstance(rebuilt.parent, GroupResult)
    assert [r.id for r in rebuilt.parent.results] == [r.id for r in last.parent.results]
    assert storable({"x": 1}) == {"x": 1}


def test_a_task_object_is_taken_as_its_signature(app: App) -> None:
    """chord(header)(task) and chord([task, task], body) take task objects (Celery's)."""
    add = app.tasks["f.add"]
    sig = maybe_signature(add, app=app)
    assert isinstance(sig, Signature)
    assert sig.task == "f.add"
    assert sig.args == ()
    c = chord([add, add], add.s(1))
    assert [t.task for t in c.tasks] == ["f.add", "f.add"]
    assert chain(add.s(1, 1), add).tasks[1].task == "f.add"
    with pytest.raises(TypeError, match="not a signature"):
        maybe_signature(42, app=app)


def test_stamping_is_refused_with_its_reason(app: App) -> None:
    """sig.stamp, stamp_links, StampingVisitor() and control.revoke_by_stamped_headers raise
    NotImplementedError saying why."""
    from celeriac.canvas import StampingVisitor  # noqa: PLC0415 - the import itself works

    class Visitor(StampingVisitor):
        """Subclassing works (Celery code declares visitors at import)."""

    sig = app.signature("f.add", (1, 2))
    for call in (sig.stamp, sig.stamp_links, Visitor, app.control.revoke_by_stamped_headers):
        with pytest.raises(NotImplementedError, match="no canvas stamping"):
            call()
