"""Exchange table, declarations, route resolution and worker queue selection."""

from __future__ import annotations

import re
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from celeriac._conf import Settings
from celeriac.exceptions import ImproperlyConfigured, ProtocolError
from celeriac.routing import (
    Broadcast,
    Exchange,
    MapRoute,
    Queue,
    Route,
    Routes,
    compile_routes,
    declarations,
    declare_queues,
    queue_for,
    resolve_route,
    worker_queues,
)
from celeriac.transport.declarations import DeclarationConflictError
from celeriac.transport.routing import ExchangeTable

# -- ExchangeTable -----------------------------------------------------------------------------


def make_table() -> ExchangeTable:
    """A table with one exchange of each type and a few bound queues."""
    table = ExchangeTable()
    table.apply_declarations(
        [
            {"name": "d", "type": "direct"},
            {"name": "t", "type": "topic"},
            {"name": "f", "type": "fanout"},
        ],
        [
            {
                "name": "q1",
                "max_priority": None,
                "bindings": [{"exchange": "d", "routing_key": "k"}],
            },
            {
                "name": "q2",
                "max_priority": 10,
                "bindings": [{"exchange": "t", "routing_key": "a.#"}],
            },
            {
                "name": "q3",
                "max_priority": None,
                "bindings": [
                    {"exchange": "d", "routing_key": "k"},
                    {"exchange": "f", "routing_key": ""},
                    {"exchange": "t", "routing_key": "*.b"},
                ],
            },
        ],
    )
    return table


def test_direct_exchange_routes_exact_keys() -> None:
    """A direct exchange routes an exact key to every queue bound with it, sorted."""
    table = make_table()
    assert table.route("d", "k") == ["q1", "q3"]
    assert table.route("d", "other") == []


def test_topic_exchange_routes_patterns() -> None:
    """A topic exchange routes by pattern, each queue once."""
    table = make_table()
    assert table.route("t", "a.b") == ["q2", "q3"]
    assert table.route("t", "a") == ["q2"]
    assert table.route("t", "x.y") == []


def test_fanout_ignores_the_key() -> None:
    """A fanout exchange routes to all its queues whatever the key."""
    table = make_table()
    assert table.route("f", "anything") == ["q3"]
    assert table.route("f", "") == ["q3"]


def test_default_exchange_routes_to_queue_by_name() -> None:
    """The default exchange '' routes a key to the declared queue of that name only."""
    table = make_table()
    assert table.route("", "q2") == ["q2"]
    assert table.route("", "nope") == []


def test_unknown_exchange_routes_nowhere() -> None:
    """An unknown exchange gives an empty list (the hub reports it unroutable)."""
    assert make_table().route("missing", "k") == []


def test_route_result_is_a_copy() -> None:
    """Mutating a route result does not change the table."""
    table = make_table()
    table.route("d", "k").append("evil")
    table.route("t", "a").append("evil")
    assert table.route("d", "k") == ["q1", "q3"]
    assert table.route("t", "a") == ["q2"]


def test_unbind_and_rebind() -> None:
    """Unbinding removes one binding (idempotently); the others stay."""
    table = make_table()
    table.unbind("d", "k", "q1")
    table.unbind("d", "k", "q1")
    assert table.route("d", "k") == ["q3"]
    table.unbind("t", "a.#", "q2")
    assert table.route("t", "a.b") == ["q3"]
    table.bind("t", "a.#", "q2")
    assert table.route("t", "a.b") == ["q2", "q3"]


def test_fanout_queue_bound_twice_survives_one_unbind() -> None:
    """A queue bound to a fanout with two keys keeps receiving until both are unbound."""
    table = make_table()
    table.bind("f", "other", "q3")
    table.unbind("f", "", "q3")
    assert table.route("f", "x") == ["q3"]
    table.unbind("f", "other", "q3")
    assert table.route("f", "x") == []


def test_delete_queue_removes_its_bindings() -> None:
    """Deleting a queue removes it from every exchange and from queues()."""
    table = make_table()
    table.delete_queue("q3")
    assert table.queues() == {"q1", "q2"}
    assert table.route("f", "x") == []
    assert table.route("d", "k") == ["q1"]
    assert table.route("t", "z.b") == []


def test_redeclare_exchange_with_other_type_conflicts() -> None:
    """Re-declaring an exchange with another type raises DeclarationConflictError."""
    table = make_table()
    table.declare_exchange("d", "direct")
    with pytest.raises(DeclarationConflictError):
        table.declare_exchange("d", "topic")
    with pytest.raises(DeclarationConflictError):
        table.declare_exchange("", "fanout")


def test_declaration_conflict_is_both_families() -> None:
    """A conflict is a ProtocolError for the hub and ImproperlyConfigured for the client."""
    assert issubclass(DeclarationConflictError, ProtocolError)
    assert issubclass(DeclarationConflictError, ImproperlyConfigured)


def test_queue_priority_conflict_and_keep() -> None:
    """Another max_priority conflicts; None keeps the declared one."""
    table = make_table()
    table.declare_queue("q2", None)
    assert table.max_priority("q2") == 10
    with pytest.raises(DeclarationConflictError):
        table.declare_queue("q2", 5)


def test_bind_unknown_names_conflicts() -> None:
    """Binding an unknown queue or exchange, or the default exchange, is refused."""
    table = make_table()
    for exchange, queue in (("d", "nope"), ("nope", "q1"), ("", "q1")):
        with pytest.raises(DeclarationConflictError):
            table.bind(exchange, "k", queue)


def test_snapshot_round_trip_through_msgpack() -> None:
    """snapshot() survives msgpack and from_snapshot rebuilds an equal table."""
    table = make_table()
    data = msgpack.unpackb(msgpack.packb(table.snapshot()))
    again = ExchangeTable.from_snapshot(data)
    assert again.snapshot() == table.snapshot()
    assert again.route("t", "a.b") == ["q2", "q3"]
    assert again.max_priority("q2") == 10
    assert again.queues() == table.queues()


def test_bad_snapshot_is_protocol_error() -> None:
    """A snapshot of unknown version or shape raises ProtocolError."""
    with pytest.raises(ProtocolError):
        ExchangeTable.from_snapshot({"version": 99, "exchanges": [], "queues": []})
    with pytest.raises(ProtocolError):
        ExchangeTable.from_snapshot([1, 2])


def test_failed_batch_changes_nothing() -> None:
    """A batch with one bad entry leaves the table exactly as it was."""
    table = make_table()
    before = table.snapshot()
    with pytest.raises(ProtocolError):
        table.apply_declarations(
            [{"name": "new", "type": "topic"}, {"name": "d", "type": "fanout"}],
            [{"name": "q9", "max_priority": None, "bindings": []}],
        )
    with pytest.raises(ProtocolError):
        table.apply_declarations(
            [],
            [
                {"name": "q9", "max_priority": None, "bindings": []},
                {
                    "name": "q8",
                    "max_priority": None,
                    "bindings": [{"exchange": "?", "routing_key": ""}],
                },
            ],
        )
    assert table.snapshot() == before


@pytest.mark.parametrize(
    ("exchanges", "queues", "reason"),
    [
        ({}, [], "exchanges must be a list"),
        ([{"name": "x"}], [], "missing keys"),
        ([{"name": "x", "type": "headers"}], [], "type must be one of"),
        ([{"name": 3, "type": "direct"}], [], "must be a string"),
        ([{"name": "x" * 300, "type": "direct"}], [], "longer than"),
        ([], [{"name": "", "max_priority": None, "bindings": []}], "must not be empty"),
        ([], [{"name": "q", "max_priority": True, "bindings": []}], "integer"),
        ([], [{"name": "q", "max_priority": 0, "bindings": []}], "1..255"),
        ([], [{"name": "q", "max_priority": None, "bindings": {}}], "must be a list"),
        ([], [{"name": "q", "max_priority": None, "bindings": [], "x": 1}], "unexpected"),
        (
            [],
            [
                {
                    "name": "q",
                    "max_priority": None,
                    "bindings": [{"exchange": "", "routing_key": "q"}],
                }
            ],
            "cannot be bound",
        ),
    ],
)
def test_bad_declarations_give_clear_reasons(exchanges: Any, queues: Any, reason: str) -> None:
    """Each kind of malformed declaration raises ProtocolError naming the problem."""
    with pytest.raises(ProtocolError, match=re.escape(reason)):
        ExchangeTable().apply_declarations(exchanges, queues)


json_like = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 300)
    | st.sampled_from(["", "x", "direct", "topic", "fanout", "name", "type", "bindings"])
    | st.binary(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                ["name", "type", "max_priority", "bindings", "exchange", "routing_key", "z"]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)
exchange_decl = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["", "x", "y"]),
        "type": st.sampled_from(["direct", "topic", "fanout"]),
    }
)
binding_decl = st.fixed_dictionaries(
    {"exchange": st.sampled_from(["", "x", "y", "zz"]), "routing_key": st.sampled_from(["", "a.#"])}
)
queue_decl = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["q", "r", ""]),
        "max_priority": st.sampled_from([None, 1, 10, 0, 256]),
        "bindings": st.lists(binding_decl | json_like, max_size=3),
    }
)


@given(
    st.lists(exchange_decl | json_like, max_size=4) | json_like,
    st.lists(queue_decl | json_like, max_size=4) | json_like,
)
def test_random_declarations_raise_only_protocol_errors(exchanges: Any, queues: Any) -> None:
    """Whatever a peer sends, apply_declarations either applies it or raises ProtocolError."""
    table = make_table()
    before = table.snapshot()
    try:
        table.apply_declarations(exchanges, queues)
    except ProtocolError:
        assert table.snapshot() == before
    else:
        ExchangeTable.from_snapshot(table.snapshot())  # what was applied is itself valid


# -- Queue, Exchange, Broadcast ----------------------------------------------------------------


def test_exchange_declaration() -> None:
    """Exchange.as_declaration is the wire form; bad types are refused."""
    assert Exchange("tasks", "topic").as_declaration() == {"name": "tasks", "type": "topic"}
    with pytest.raises(ImproperlyConfigured):
        Exchange("x", "headers")


def test_queue_declaration_defaults() -> None:
    """Without configuration a bare queue binds to a direct exchange named like it, key = name."""
    assert Queue("video").as_declaration() == {
        "name": "video",
        "max_priority": None,
        "bindings": [{"exchange": "video", "routing_key": "video"}],
    }


def test_queue_max_priority_from_arguments() -> None:
    """x-max-priority in queue_arguments sets max_priority; a disagreement is an error."""
    assert Queue("p", queue_arguments={"x-max-priority": 10}).max_priority == 10
    assert Queue("p", max_priority=3).as_declaration()["max_priority"] == 3
    with pytest.raises(ImproperlyConfigured):
        Queue("p", queue_arguments={"x-max-priority": 10}, max_priority=5)
    with pytest.raises(ImproperlyConfigured):
        Queue("p", max_priority=0)


def test_queue_exchange_as_string() -> None:
    """A string exchange is a direct exchange of that name; '' means the default exchange."""
    assert Queue("q", exchange="ex").exchange == Exchange("ex", "direct")
    assert Queue("q", exchange="").exchange is None


def test_queue_without_exchange_uses_configured_default() -> None:
    """Resolved through a configuration, a queue without exchange gets the default exchange."""
    conf = {"task_default_exchange": "tasks", "task_default_exchange_type": "topic"}
    queue = queue_for(conf, Queue("feed", routing_key="feed.#"))
    assert queue.exchange == Exchange("tasks", "topic")
    assert queue.routing_key == "feed.#"


def test_broadcast_and_node_queue() -> None:
    """A Broadcast sits on a fanout exchange; node_queue gives each node its own bound queue."""
    bcast = Broadcast("bcast")
    assert bcast.exchange == Exchange("bcast", "fanout")
    node = bcast.node_queue("w1@host")
    assert node.as_declaration() == {
        "name": "bcast.w1@host",
        "max_priority": None,
        "bindings": [{"exchange": "bcast", "routing_key": "bcast"}],
    }
    with pytest.raises(ImproperlyConfigured):
        Broadcast("b", exchange=Exchange("b", "direct"))


def test_broadcast_reaches_every_node_once() -> None:
    """Two workers' node queues each get one copy of a broadcast; clients declare no queue."""
    conf = {"task_queues": (Queue("default"), Broadcast("bcast"))}
    table = ExchangeTable()
    table.apply_declarations(*declarations(conf))
    for node in ("w1", "w2"):
        table.apply_declarations(*declare_queues(conf, worker_queues(conf, None, None), node))
    route = resolve_route(conf, "t", (), {}, {"queue": "bcast"}, {})
    assert route == Route("bcast", "fanout", "bcast", None, None)
    assert table.route(route.exchange, route.routing_key) == ["bcast.w1", "bcast.w2"]
    assert "bcast" not in table.queues()


def test_declarations_default_queue() -> None:
    """With task_queues None a client declares the default queue on its default exchange."""
    exchanges, queues = declarations({})
    assert exchanges == [{"name": "celery", "type": "direct"}]
    assert queues == [
        {
            "name": "celery",
            "max_priority": None,
            "bindings": [{"exchange": "celery", "routing_key": "celery"}],
        }
    ]


def test_declarations_apply_max_priority_setting() -> None:
    """task_queue_max_priority applies to queues that set none."""
    conf = {"task_queues": [Queue("a"), Queue("b", max_priority=3)], "task_queue_max_priority": 9}
    _, queues = declarations(conf)
    assert [q["max_priority"] for q in queues] == [9, 3]


def test_declarations_conflicting_exchange_types() -> None:
    """Two queues that need one exchange with two types fail on the client, clearly."""
    conf = {"task_queues": [Queue("a", Exchange("x", "topic")), Queue("b", Exchange("x"))]}
    with pytest.raises(ImproperlyConfigured, match="defined twice"):
        declarations(conf)


def test_seed_example_routes_end_to_end() -> None:
    """DESIGN.md's task_queues: feed tasks reach feed_tasks, the rest reach default."""
    conf = {
        "task_default_queue": "default",
        "task_queues": (
            Queue("default", routing_key="task.#"),
            Queue("feed_tasks", routing_key="feed.#"),
        ),
    }
    table = ExchangeTable()
    table.apply_declarations(*declarations(conf))
    feed = resolve_route(conf, "tasks.fetch", (), {}, {}, {"queue": "feed_tasks"})
    other = resolve_route(conf, "tasks.add", (), {}, {}, {})
    assert table.route(feed.exchange, feed.routing_key) == ["feed_tasks"]
    assert table.route(other.exchange, other.routing_key) == ["default"]


def test_celery_topic_guide_example() -> None:
    """Celery's routing guide (topic default exchange) routes by routing key as documented."""
    conf = {
        "task_default_queue": "default",
        "task_default_exchange": "tasks",
        "task_default_exchange_type": "topic",
        "task_default_routing_key": "task.default",
        "task_queues": (
            Queue("default", routing_key="task.#"),
            Queue("feed_tasks", routing_key="feed.#"),
        ),
        "task_routes": {"feeds.tasks.*": {"queue": "feed_tasks", "routing_key": "feed.import"}},
    }
    table = ExchangeTable()
    table.apply_declarations(*declarations(conf))
    feed = resolve_route(conf, "feeds.tasks.import_feed", (), {}, {}, {})
    assert feed == Route("tasks", "topic", "feed.import", "feed_tasks", None)
    assert table.route(feed.exchange, feed.routing_key) == ["feed_tasks"]
    other = resolve_route(conf, "tasks.add", (), {}, {"routing_key": "task.add"}, {})
    assert table.route(other.exchange, other.routing_key) == ["default"]


# -- resolve_route -----------------------------------------------------------------------------

QUEUES = ("qa", "qb", "qc", "qd")


@given(
    call=st.sampled_from([None, *QUEUES]),
    routed=st.sampled_from([None, *QUEUES]),
    task=st.sampled_from([None, *QUEUES]),
    priorities=st.tuples(*[st.sampled_from([None, 0, 5, 9])] * 4),
)
def test_route_precedence(
    call: str | None,
    routed: str | None,
    task: str | None,
    priorities: tuple[int | None, ...],
) -> None:
    """call options > task_routes > task options > defaults, for queue and for priority."""
    p_call, p_route, p_task, p_default = priorities
    conf = {
        "task_routes": [lambda name, *a, **kw: None, {"t": {"queue": routed, "priority": p_route}}],
        "task_default_priority": p_default,
    }
    route = resolve_route(
        conf, "t", (), {}, {"queue": call, "priority": p_call}, {"queue": task, "priority": p_task}
    )
    want_queue = next(q for q in (call, routed, task, "celery") if q is not None)
    want_priority = next((p for p in priorities if p is not None), None)
    assert route.queue == want_queue
    assert route.priority == want_priority
    assert (route.exchange, route.routing_key) == (want_queue, want_queue)


def test_queue_resolves_through_task_queues() -> None:
    """A queue named by a route takes its exchange and key from task_queues."""
    conf = {"task_queues": [Queue("img", Exchange("media", "topic"), "media.img")]}
    route = resolve_route(conf, "t", (), {}, {"queue": "img"}, {})
    assert route == Route("media", "topic", "media.img", "img", None)


def test_higher_layer_refines_routing_key() -> None:
    """A call-time routing_key alone keeps the queue chosen by a lower layer."""
    conf = {"task_queues": [Queue("img", Exchange("media", "topic"), "media.img")]}
    route = resolve_route(conf, "t", (), {}, {"routing_key": "media.png"}, {"queue": "img"})
    assert route == Route("media", "topic", "media.png", "img", None)


def test_higher_queue_resets_lower_exchange() -> None:
    """A queue named at a higher layer discards the exchange/key given lower down."""
    conf = {"task_queues": [Queue("img", Exchange("media", "topic"), "media.img")]}
    route = resolve_route(
        conf, "t", (), {}, {"queue": "img"}, {"exchange": "other", "routing_key": "zzz"}
    )
    assert route == Route("media", "topic", "media.img", "img", None)


def test_explicit_exchange_name_takes_known_type() -> None:
    """An exchange given by name takes its type from the configured queues."""
    conf = {"task_queues": [Queue("img", Exchange("media", "topic"), "media.img")]}
    route = resolve_route(conf, "t", (), {}, {"exchange": "media", "routing_key": "media.x"}, {})
    assert (route.exchange, route.exchange_type, route.routing_key) == ("media", "topic", "media.x")


def test_missing_queue_created_or_refused() -> None:
    """An unknown queue is a direct exchange of its name, or an error without create_missing."""
    route = resolve_route({}, "t", (), {}, {"queue": "new"}, {})
    assert route == Route("new", "direct", "new", "new", None)
    with pytest.raises(ImproperlyConfigured, match="task_create_missing_queues"):
        resolve_route({"task_create_missing_queues": False}, "t", (), {}, {"queue": "new"}, {})


def test_default_queue_settings() -> None:
    """The default route uses task_default_exchange/_type/_routing_key."""
    conf = {
        "task_default_queue": "main",
        "task_default_exchange": "ex",
        "task_default_exchange_type": "topic",
        "task_default_routing_key": "main.key",
    }
    assert resolve_route(conf, "t", (), {}, {}, {}) == Route(
        "ex", "topic", "main.key", "main", None
    )


def test_router_functions_get_celery_arguments() -> None:
    """A router is called as router(name, args, kwargs, options, task=...) and may return a str."""
    seen: list[tuple[Any, ...]] = []

    def router(name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **kw: Any) -> Any:
        seen.append((name, args, kwargs, options, task))
        return "routed" if args == (1,) else None

    marker = object()
    conf = {"task_routes": (router,)}
    route = resolve_route(conf, "t", (1,), {"k": 2}, {"countdown": 3}, {"queue": "q"}, task=marker)
    assert route.queue == "routed"
    assert seen == [("t", (1,), {"k": 2}, {"queue": "q", "countdown": 3}, marker)]
    assert resolve_route(conf, "t", (2,), {}, {}, {}).queue == "celery"


def test_glob_and_regex_routes() -> None:
    """task_routes dicts match exact names first, then globs and regexes in order."""
    conf = {
        "task_routes": {
            re.compile(r"video\.(encode|decode)"): {"queue": "video"},
            "feed.*": "feeds",
            "feed.special": {"queue": "special"},
            "img.?": "images",
        }
    }

    def queue(name: str) -> str | None:
        return resolve_route(conf, name, (), {}, {}, {}).queue

    assert queue("feed.special") == "special"
    assert queue("feed.fetch") == "feeds"
    assert queue("video.encode") == "video"
    assert queue("img.a") == "images"
    assert queue("img.ab") == "celery"
    assert queue("other") == "celery"


def test_list_of_route_dicts_first_match_wins() -> None:
    """With a list of routers, the first non-None answer is used."""
    conf = {"task_routes": [{"a.*": "first"}, {"a.b": "second"}]}
    assert resolve_route(conf, "a.b", (), {}, {}, {}).queue == "first"


def test_compile_routes_validates() -> None:
    """compile_routes turns dicts into MapRoute and refuses strings and bad values."""
    compiled = compile_routes({"x": "q"})
    assert isinstance(compiled, Routes)
    assert isinstance(compiled[0], MapRoute)
    assert compile_routes(compiled) is compiled
    assert compile_routes(None) == ()
    for bad in ("pkg.router", {"x": 3}, [3], {3: "q"}):
        with pytest.raises(ImproperlyConfigured):
            compile_routes(bad)


def test_bad_router_answers_are_config_errors() -> None:
    """A router returning something odd, or a bad priority, raises ImproperlyConfigured."""
    for answer in (3, {"queue": 5}, {"priority": 300}, {"routing_key": 1}):
        conf = {"task_routes": [lambda *a, answer=answer, **kw: answer]}
        with pytest.raises(ImproperlyConfigured):
            resolve_route(conf, "t", (), {}, {}, {})


# -- worker_queues ----------------------------------------------------------------------------


def test_worker_queues_include_exclude() -> None:
    """-Q selects (creating unknown names), -X removes, excluding all is an error."""
    conf = {"task_queues": [Queue("a"), Queue("b"), Queue("c")]}
    assert [q.name for q in worker_queues(conf, None, None)] == ["a", "b", "c"]
    assert [q.name for q in worker_queues(conf, ["c", "new", "c"], None)] == ["c", "new"]
    assert [q.name for q in worker_queues(conf, None, ["b"])] == ["a", "c"]
    with pytest.raises(ImproperlyConfigured, match="no queue left"):
        worker_queues(conf, ["a"], ["a"])
    with pytest.raises(ImproperlyConfigured, match="unknown queues"):
        worker_queues(conf, None, ["typo"])


def test_worker_queues_without_create_missing() -> None:
    """-Q with an unknown name fails when task_create_missing_queues is False."""
    conf = {"task_queues": [Queue("a")], "task_create_missing_queues": False}
    with pytest.raises(ImproperlyConfigured):
        worker_queues(conf, ["zzz"], None)


def test_worker_queues_are_resolved() -> None:
    """The queues a worker gets carry their exchange and routing key, ready to declare."""
    (queue,) = worker_queues({"task_default_exchange": "tasks"}, ["x"], None)
    assert queue.exchange == Exchange("x", "direct")
    (default,) = worker_queues({"task_default_exchange": "tasks"}, None, None)
    assert default.exchange == Exchange("tasks", "direct")
    assert default.routing_key == "celery"


# -- settings ----------------------------------------------------------------------------------


def test_settings_coerce_queues_and_routes() -> None:
    """task_queues becomes a tuple, task_routes compiled Routes; resolve_route reads Settings."""
    conf = Settings(
        {"task_queues": [Queue("a"), Queue("b")], "task_routes": {"x.*": "b"}}, environ={}
    )
    assert conf["task_queues"] == (Queue("a"), Queue("b"))
    assert isinstance(conf["task_routes"], Routes)
    assert resolve_route(conf, "x.y", (), {}, {}, {}).queue == "b"
    assert conf["task_unroutable"] == "error"
    assert conf["task_create_missing_queues"] is True


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("task_queues", ["a"]),
        ("task_queues", [Queue("a"), Queue("a")]),
        ("task_routes", "pkg.router"),
        ("task_default_exchange_type", "headers"),
        ("task_default_exchange", ""),
        ("task_default_priority", 256),
        ("task_queue_max_priority", 0),
        ("task_unroutable", "drop"),
        ("task_create_missing_queues", "yes"),
    ],
)
def test_settings_refuse_bad_values(name: str, value: Any) -> None:
    """Each routing setting refuses a bad value with ImproperlyConfigured."""
    conf = Settings(environ={})
    with pytest.raises(ImproperlyConfigured):
        conf[name] = value


def test_settings_from_environment() -> None:
    """CELERIAC_* variables parse into routing settings."""
    conf = Settings(
        environ={
            "CELERIAC_TASK_QUEUES": "a, b",
            "CELERIAC_TASK_ROUTES": '{"feed.*": "b"}',
            "CELERIAC_TASK_CREATE_MISSING_QUEUES": "false",
            "CELERIAC_TASK_QUEUE_MAX_PRIORITY": "10",
            "CELERIAC_TASK_UNROUTABLE": "dead_letter",
        }
    )
    assert conf["task_queues"] == (Queue("a"), Queue("b"))
    assert resolve_route(conf, "feed.x", (), {}, {}, {}).queue == "b"
    assert conf["task_create_missing_queues"] is False
    assert conf["task_queue_max_priority"] == 10
    assert conf["task_unroutable"] == "dead_letter"
