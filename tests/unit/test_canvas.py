"""Signatures as plain dicts, chain/group building, and what a worker sends after a step."""

from __future__ import annotations

import json

import pytest

from celeriac import App, Signature, chain, group, signature
from celeriac._canvas_flow import FAIL_TASK, after_failure, after_success, embed_of
from celeriac._request import Request
from celeriac._serialization import loads
from celeriac.exceptions import ImproperlyConfigured

CELERY_FIELDS = {"task", "args", "kwargs", "options", "subtask_type", "immutable", "chord_size"}


@pytest.fixture
def app() -> App:
    """An app with an add task (nothing is sent)."""
    a = App("canvas_unit")

    @a.task(name="t.add")
    def add(x: int, y: int) -> int:
        return x + y

    return a


def test_signature_is_a_dict_with_celerys_fields(app: App) -> None:
    """add.s(2, y=3).set(queue='q') is a dict with Celery's keys and values."""
    sig = app.tasks["t.add"].s(2, y=3).set(queue="q")
    assert set(sig) == CELERY_FIELDS
    assert sig["task"] == "t.add"
    assert sig["args"] == (2,)
    assert sig["kwargs"] == {"y": 3}
    assert sig["options"] == {"queue": "q"}
    assert sig["immutable"] is False


def test_signature_survives_json_and_rebuilds(app: App) -> None:
    """json round trip + signature(d, app=...) gives back an equal, sendable signature."""
    sig = app.tasks["t.add"].si(1, 2)
    back = signature(json.loads(json.dumps(sig)), app=app)
    assert isinstance(back, Signature)
    assert back.task == "t.add"
    assert back.args == (1, 2)
    assert back.immutable
    assert back.app is app


def test_chain_and_group_rebuild_as_their_own_types(app: App) -> None:
    """A chain's or group's dict rebuilds as a chain or group with the same steps."""
    add = app.tasks["t.add"]
    c = signature(json.loads(json.dumps(add.s(1, 1) | add.s(2))), app=app)
    g = signature(json.loads(json.dumps(group(add.s(i, i) for i in range(3)))), app=app)
    assert isinstance(c, chain)
    assert [s.args for s in c.tasks] == [(1, 1), (2,)]
    assert isinstance(g, group)
    assert len(g) == 3


def test_clone_prepends_args_unless_immutable(app: App) -> None:
    """clone((1,)) puts the parent's value first; an .si() signature ignores it."""
    add = app.tasks["t.add"]
    assert add.s(2).clone((1,)).args == (1, 2)
    assert add.si(2, 3).clone((1,)).args == (2, 3)
    assert add.s(2).clone((1,))["options"] == {}


def test_pipe_flattens_into_one_chain(app: App) -> None:
    """a | b | c is one chain of three steps."""
    add = app.tasks["t.add"]
    c = add.s(1, 1) | add.s(2) | add.s(3)
    assert isinstance(c, chain)
    assert len(c.tasks) == 3


def test_freeze_fixes_the_id(app: App) -> None:
    """freeze() sets options['task_id'] once; a second freeze keeps it."""
    sig = app.tasks["t.add"].s(1, 1)
    first = sig.freeze()
    assert sig.id == first.id
    assert sig.freeze().id == first.id


def test_a_signature_without_app_refuses_to_send() -> None:
    """signature('name') has no App: sending it says how to give one."""
    with pytest.raises(ImproperlyConfigured, match="app="):
        signature("t.add", (1, 2)).delay()


def test_embed_holds_celery_protocol_v2_keys(app: App) -> None:
    """The body's third element carries callbacks, errbacks, chain and chord."""
    add = app.tasks["t.add"]
    embed = embed_of({"link": add.s(1), "link_error": [add.s(2)], "chain": None})
    assert set(embed) == {"callbacks", "errbacks", "chain", "chord"}
    assert embed["callbacks"] == [dict(add.s(1))]
    assert embed["chain"] is None


def test_after_success_sends_the_next_step_with_the_rest(app: App) -> None:
    """The last chain entry is the next step; it gets the result and the remaining steps."""
    add = app.tasks["t.add"]
    steps = [dict(add.s(3)), dict(add.s(2))]
    request = Request(id="a", task="t.add", root_id="r")
    sends = after_success({"chain": steps, "callbacks": [dict(add.s(9))]}, request, 5, app)
    assert [(s.sig.args, s.args) for s in sends] == [((9,), (5,)), ((2,), (5,))]
    assert sends[1].options == {"parent_id": "a", "root_id": "r", "chain": [steps[0]]}


def test_after_failure_calls_errbacks_and_fails_later_steps(app: App) -> None:
    """Errbacks get the failed id; every frozen later step gets a chain_failed with its id."""
    add = app.tasks["t.add"]
    later = add.s(1)
    later.freeze()
    request = Request(id="a", task="t.add")
    sends = after_failure(
        {"errbacks": [dict(add.s())], "chain": [dict(later)]},
        request,
        ValueError("x"),
        None,
        app,
    )
    assert sends[0].args == ("a",)
    assert sends[1].sig.task == FAIL_TASK
    assert sends[1].options["task_id"] == later.id


def test_compose_puts_the_chain_in_the_body(app: App) -> None:
    """A publish made with chain=... carries it in the body's embed map."""
    from celeriac._compose import compose  # noqa: PLC0415 - the unit under test

    add = app.tasks["t.add"]
    msg = compose(app.conf, "t.add", (1, 2), {}, {"chain": [dict(add.s(3))]}, 0.0)
    args, kwargs, embed = loads(msg.body, msg.content_type, frozenset({"application/json"}))
    assert (args, kwargs) == ([1, 2], {})
    assert embed["chain"][0]["task"] == "t.add"


def test_apply_runs_here_and_returns_an_eager_result(app: App) -> None:
    """Task.apply runs now in this process: SUCCESS with the value, or FAILURE re-raised."""
    add = app.tasks["t.add"]
    ok = add.apply((2, 3))
    assert (ok.state, ok.get(), ok.ready()) == ("SUCCESS", 5, True)
    bad = add.apply((2, "x"))
    assert bad.failed()
    assert isinstance(bad.result, TypeError)
    with pytest.raises(TypeError):
        bad.get()
