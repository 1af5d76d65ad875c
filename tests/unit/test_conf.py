"""The settings registry: precedence, did-you-mean, old names, checks, freezing, config objects."""

from __future__ import annotations

import datetime
import pickle
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from celeriac import _conf, _conf_registry
from celeriac._conf import (
    REGISTRY,
    UNSUPPORTED,
    Settings,
    UnsupportedSettingError,
    declare,
    parse_bool,
    parse_list,
    parse_seconds,
)
from celeriac.exceptions import (
    ConfigurationFrozen,
    ImproperlyConfigured,
    UnknownSettingError,
    UnsupportedBrokerError,
)


@pytest.fixture
def registry() -> Iterator[dict[str, _conf.Setting]]:
    """Let a test declare settings; the registry is restored afterwards."""
    saved = dict(REGISTRY)
    yield REGISTRY
    REGISTRY.clear()
    REGISTRY.update(saved)


# -- declarations ------------------------------------------------------------------------------


def test_core_settings_are_declared_with_a_one_line_doc() -> None:
    """Every core setting exists, and every declared setting has a one-line doc."""
    for name in (
        "broker_url",
        "result_backend",
        "task_serializer",
        "accept_content",
        "worker_concurrency",
        "worker_pool",
        "hub_data_dir",
        "hub_sync",
        "imports",
    ):
        assert name in REGISTRY
    for setting in REGISTRY.values():
        assert setting.doc.strip()
        assert "\n" not in setting.doc


def test_core_defaults() -> None:
    """The documented defaults are what a fresh Settings reports."""
    conf = Settings()
    assert conf.broker_url == "tcp://127.0.0.1:5555"
    assert conf.result_backend is None
    assert conf.task_serializer == "json"
    assert conf.accept_content == ["json"]
    assert conf.result_accept_content is None
    assert conf.result_expires == 86400.0
    assert conf.worker_concurrency is None
    assert conf.worker_pool == "threads"
    assert conf.worker_prefetch_multiplier == 2
    assert conf.task_default_queue == "celery"
    assert conf.task_acks_late is True
    assert conf.broker_heartbeat == 2.0
    assert conf.hub_sync == "normal"
    assert conf.timezone == "UTC"
    assert conf.enable_utc is True


def test_declare_infers_parse_from_the_default(registry: dict[str, Any]) -> None:
    """bool, int, float, list and str defaults get the matching environment parser."""
    declare("x_flag", False, "A flag.")
    declare("x_count", 3, "A count.")
    declare("x_ratio", 0.5, "A ratio.")
    declare("x_names", ["a"], "Names.")
    declare("x_label", "l", "A label.")
    env = {
        "CELERIAC_X_FLAG": "on",
        "CELERIAC_X_COUNT": "7",
        "CELERIAC_X_RATIO": "2.5",
        "CELERIAC_X_NAMES": "b, c",
        "CELERIAC_X_LABEL": "m",
    }
    conf = Settings(environ=env)
    assert (conf.x_flag, conf.x_count, conf.x_ratio) == (True, 7, 2.5)
    assert (conf.x_names, conf.x_label) == (["b", "c"], "m")


def test_declare_again_with_another_default_is_an_error(registry: dict[str, Any]) -> None:
    """Re-declaring with an equal default is fine; with a different one it fails."""
    declare("x_once", 1, "Once.")
    declare("x_once", 1, "Once, reloaded.")
    with pytest.raises(ImproperlyConfigured, match="already declared"):
        declare("x_once", 2, "Twice.")


@pytest.mark.parametrize(
    "name",
    [
        "X_UPPER",
        "_private",
        "not-an-identifier",
        "get",
        "freeze",
        "broker_transport_options",
        "celeryd_concurrency",
    ],
)
def test_declare_refuses_bad_or_reserved_names(registry: dict[str, Any], name: str) -> None:
    """Names must be lower-case identifiers that hide no method and no Celery name."""
    with pytest.raises(ImproperlyConfigured):
        declare(name, None, "Bad.")


def test_declare_checks_its_default(registry: dict[str, Any]) -> None:
    """A default that its own check refuses is caught at declaration."""
    with pytest.raises(ImproperlyConfigured):
        declare("x_bad", 0, "Bad.", check=_conf.int_check("x_bad", minimum=1))


def test_inferred_type_check_refuses_wrong_types() -> None:
    """A bool setting refuses a string; an int one refuses a bool; a float takes an int."""
    conf = Settings()
    with pytest.raises(ImproperlyConfigured, match="task_acks_late"):
        conf.task_acks_late = "yes"
    conf.broker_heartbeat = 3
    assert conf.broker_heartbeat == 3.0
    assert isinstance(conf.broker_heartbeat, float)


# -- unknown, old and unsupported names --------------------------------------------------------


def test_unknown_name_suggests_the_closest() -> None:
    """A typo names the closest setting, for reads and writes, attributes and items."""
    conf = Settings()
    message = "unknown setting 'task_serialiser'; did you mean 'task_serializer'?"
    with pytest.raises(UnknownSettingError) as info:
        conf.task_serialiser  # noqa: B018 - the read is the test
    assert str(info.value) == message
    with pytest.raises(UnknownSettingError, match="did you mean 'task_serializer'"):
        conf["task_serialiser"]
    with pytest.raises(UnknownSettingError, match="did you mean 'task_serializer'"):
        conf.task_serialiser = "json"
    with pytest.raises(UnknownSettingError, match="did you mean 'task_serializer'"):
        conf.update(task_serialiser="json")


def test_unknown_name_behaves_as_a_missing_attribute_and_key() -> None:
    """hasattr, getattr with a default and ``in`` see an unknown name as absent."""
    conf = Settings()
    assert not hasattr(conf, "no_such_setting")
    assert getattr(conf, "no_such_setting", 42) == 42
    assert "no_such_setting" not in conf
    assert "broker_url" in conf


def test_get_refuses_unknown_names_even_with_a_default() -> None:
    """``get`` never turns a typo into a silent default."""
    conf = Settings()
    assert conf.get("task_serializer") == "json"
    with pytest.raises(UnknownSettingError):
        conf.get("task_serialiser", "json")


def test_upper_case_new_name_hints_lower_case() -> None:
    """An upper-cased new name says names are lower-case."""
    with pytest.raises(UnknownSettingError, match="use 'worker_concurrency'"):
        Settings()["WORKER_CONCURRENCY"]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("CELERYD_CONCURRENCY", "worker_concurrency"),
        ("BROKER_URL", "broker_url"),
        ("CELERY_TASK_SERIALIZER", "task_serializer"),
        ("CELERY_RESULT_BACKEND", "result_backend"),
        ("CELERY_ACCEPT_CONTENT", "accept_content"),
        ("CELERYBEAT_SCHEDULE", "beat_schedule"),
        ("CELERY_ROUTES", "task_routes"),
        ("CELERY_QUEUES", "task_queues"),
        ("CELERYD_PREFETCH_MULTIPLIER", "worker_prefetch_multiplier"),
        ("CELERY_RESULT_DBURI", "result_backend"),
    ],
)
def test_old_celery_names_name_the_new_one(old: str, new: str) -> None:
    """Celery's old upper-case names are refused with the name to use instead."""
    conf = Settings()
    expected = f"'{old}' is Celery's old name; use '{new}'"
    with pytest.raises(UnknownSettingError) as info:
        conf[old] = "x"
    assert str(info.value) == expected
    with pytest.raises(UnknownSettingError, match=new):
        getattr(conf, old)


def test_old_name_of_an_unsupported_setting_gives_the_reason() -> None:
    """An old name whose new name celeriac leaves out says why."""
    with pytest.raises(UnsupportedSettingError, match=r"celeriac\.testing"):
        Settings()["CELERY_ALWAYS_EAGER"] = True


def test_unsupported_settings_explain_why() -> None:
    """A Celery setting celeriac leaves out raises ImproperlyConfigured with the reason."""
    conf = Settings()
    with pytest.raises(ImproperlyConfigured, match="only its own ZeroMQ hub"):
        conf.broker_transport_options = {"visibility_timeout": 10}
    with pytest.raises(UnsupportedSettingError, match="not support"):
        conf.task_always_eager  # noqa: B018 - the read is the test


@pytest.mark.parametrize(
    "name",
    [
        "task_routes",
        "task_queues",
        "beat_schedule",
        "task_time_limit",
        "task_soft_time_limit",
        "task_default_rate_limit",
        "worker_max_tasks_per_child",
        "task_annotations",
        "task_compression",
        "result_compression",
        "worker_send_task_events",
        "task_default_exchange",
    ],
)
def test_later_settings_are_not_marked_unsupported(name: str) -> None:
    """Settings that later components will declare are not in UNSUPPORTED."""
    assert name not in UNSUPPORTED


# -- checks ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "amqp://guest@localhost//",
        "pyamqp://localhost",
        "redis://localhost:6379/0",
        "rediss://h:6380",
        "sqs://",
        "memory://",
        "localhost:5555",
        "zmq://h:1",
    ],
)
def test_foreign_broker_urls_are_refused_with_the_way_out(url: str) -> None:
    """Broker URLs of other transports say how celeriac connects instead."""
    with pytest.raises(UnsupportedBrokerError) as info:
        Settings({"broker_url": url})
    message = str(info.value)
    assert "celeriac talks to its own hub over ZeroMQ: use tcp://host:port" in message
    assert "`celeriac hub`" in message


@pytest.mark.parametrize(
    "url",
    [
        "tcp://127.0.0.1:5555",
        "tcp://[::1]:5555",
        "tcp://hub.example:1",
        "ipc:///tmp/h",
        "inproc://hub",
    ],
)
def test_zeromq_broker_urls_are_accepted(url: str) -> None:
    """tcp://host:port, ipc:// and inproc:// addresses are accepted."""
    assert Settings({"broker_url": url}).broker_url == url


@pytest.mark.parametrize(
    "url", ["tcp://host", "tcp://host:port", "tcp://:5555", "tcp://a:1;tcp://b", "tcp://"]
)
def test_malformed_tcp_urls_are_refused(url: str) -> None:
    """A tcp URL needs a host and a numeric port (each one of a failover list too)."""
    with pytest.raises(UnsupportedBrokerError, match="malformed"):
        Settings({"broker_url": url})


def test_result_backend_accepts_only_the_hub() -> None:
    """None and 'hub' are accepted; any other backend explains that results live in the hub."""
    conf = Settings()
    conf.result_backend = "hub"
    conf.result_backend = None
    with pytest.raises(ImproperlyConfigured, match="keeps results in its hub"):
        conf.result_backend = "redis://localhost/1"


def test_result_expires_takes_seconds_timedelta_or_none() -> None:
    """result_expires stores float seconds; a timedelta converts; None means never; <0 fails."""
    conf = Settings()
    conf.result_expires = datetime.timedelta(hours=1)
    assert conf.result_expires == 3600.0
    conf.result_expires = 30
    assert conf.result_expires == 30.0
    conf.result_expires = None
    assert conf.result_expires is None
    with pytest.raises(ImproperlyConfigured):
        conf.result_expires = -1


def test_worker_pool_is_checked_against_worker_pools(monkeypatch: pytest.MonkeyPatch) -> None:
    """worker_pool accepts WORKER_POOLS, which a later pool can extend."""
    conf = Settings()
    with pytest.raises(ImproperlyConfigured, match="threads, solo"):
        conf.worker_pool = "gevent"
    monkeypatch.setattr(_conf, "WORKER_POOLS", (*_conf.WORKER_POOLS, "gevent"))
    conf.worker_pool = "gevent"
    assert conf.worker_pool == "gevent"


@pytest.mark.parametrize("value", [0, -1, True, 1.5, "2"])
def test_worker_prefetch_multiplier_must_be_an_int_of_1_or_more(value: Any) -> None:
    """worker_prefetch_multiplier refuses 0, negatives, bools, floats and strings."""
    with pytest.raises(ImproperlyConfigured, match="worker_prefetch_multiplier"):
        Settings({"worker_prefetch_multiplier": value})


def test_worker_concurrency_is_none_or_positive() -> None:
    """worker_concurrency takes None or an integer of 1 or more."""
    assert Settings({"worker_concurrency": 4}).worker_concurrency == 4
    assert Settings({"worker_concurrency": None}).worker_concurrency is None
    with pytest.raises(ImproperlyConfigured):
        Settings({"worker_concurrency": 0})


def test_accept_content_takes_lists_tuples_sets_and_strings() -> None:
    """accept_content is stored as a list whatever sequence or string it was given as."""
    assert Settings({"accept_content": ("json", "msgpack")}).accept_content == ["json", "msgpack"]
    assert Settings({"accept_content": "json,msgpack"}).accept_content == ["json", "msgpack"]
    assert Settings({"accept_content": {"json"}}).accept_content == ["json"]
    with pytest.raises(ImproperlyConfigured):
        Settings({"accept_content": [1]})


def test_hub_settings() -> None:
    """hub_sync takes normal or full; hub_data_dir takes a path or None."""
    conf = Settings({"hub_sync": "FULL", "hub_data_dir": __import__("pathlib").Path("/tmp/x")})
    assert conf.hub_sync == "full"
    assert conf.hub_data_dir == "/tmp/x"
    with pytest.raises(ImproperlyConfigured, match="normal, full"):
        conf.hub_sync = "off"


# -- parsers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", True),
        ("TRUE", True),
        ("yes", True),
        (" on ", True),
        ("0", False),
        ("False", False),
        ("no", False),
        ("off", False),
    ],
)
def test_parse_bool(text: str, value: bool) -> None:
    """parse_bool reads the usual words in any case."""
    assert parse_bool(text) is value


@pytest.mark.parametrize("text", ["", "2", "y", "enabled"])
def test_parse_bool_refuses_other_words(text: str) -> None:
    """parse_bool refuses anything but the eight words."""
    with pytest.raises(ImproperlyConfigured):
        parse_bool(text)


def test_parse_list_and_seconds() -> None:
    """parse_list splits on commas; parse_seconds reads numbers and unit suffixes."""
    assert parse_list(" a, b ,,c ") == ["a", "b", "c"]
    assert parse_list("") == []
    assert parse_seconds("30") == 30.0
    assert parse_seconds("1.5") == 1.5
    assert parse_seconds("5m") == 300.0
    assert parse_seconds("2h") == 7200.0
    with pytest.raises(ImproperlyConfigured):
        parse_seconds("soon")


# -- environment and precedence ----------------------------------------------------------------


def test_precedence_default_then_environment_then_explicit() -> None:
    """The environment beats the default; an explicit value beats the environment."""
    env = {"CELERIAC_TASK_DEFAULT_QUEUE": "from-env", "PATH": "/bin"}
    conf = Settings(environ=env)
    assert conf.task_default_queue == "from-env"
    conf.task_default_queue = "explicit"
    assert conf.task_default_queue == "explicit"
    del conf.task_default_queue
    assert conf.task_default_queue == "from-env"
    assert Settings({"task_default_queue": "over"}, environ=env).task_default_queue == "over"


def test_environment_values_are_parsed_and_checked() -> None:
    """Environment strings become typed values through parse, then check."""
    env = {
        "CELERIAC_WORKER_CONCURRENCY": "8",
        "CELERIAC_TASK_TRACK_STARTED": "on",
        "CELERIAC_ACCEPT_CONTENT": "json, msgpack",
        "CELERIAC_RESULT_EXPIRES": "1h",
        "CELERIAC_BROKER_HEARTBEAT": "0.5",
        "CELERIAC_RESULT_ACCEPT_CONTENT": "",
    }
    conf = Settings(environ=env)
    assert conf.worker_concurrency == 8
    assert conf.task_track_started is True
    assert conf.accept_content == ["json", "msgpack"]
    assert conf.result_expires == 3600.0
    assert conf.broker_heartbeat == 0.5
    assert conf.result_accept_content is None


def test_bad_environment_value_names_the_variable() -> None:
    """A value the parser or check refuses names the environment variable."""
    conf = Settings(environ={"CELERIAC_TASK_ACKS_LATE": "maybe"})
    with pytest.raises(ImproperlyConfigured, match="CELERIAC_TASK_ACKS_LATE='maybe'"):
        conf.task_acks_late  # noqa: B018 - the read is the test
    conf = Settings(environ={"CELERIAC_BROKER_URL": "redis://h"})
    with pytest.raises(ImproperlyConfigured, match="CELERIAC_BROKER_URL"):
        conf.broker_url  # noqa: B018 - the read is the test


def test_unknown_environment_variable_is_an_error() -> None:
    """A CELERIAC_* variable that names no setting fails with the closest variable."""
    with pytest.raises(UnknownSettingError, match="did you mean 'CELERIAC_TASK_SERIALIZER'"):
        Settings(environ={"CELERIAC_TASK_SERIALISER": "json"})
    with pytest.raises(UnknownSettingError, match="spell it 'CELERIAC_BROKER_URL'"):
        Settings(environ={"CELERIAC_broker_url": "tcp://h:1"})
    with pytest.raises(UnsupportedSettingError):
        Settings(environ={"CELERIAC_BROKER_TRANSPORT_OPTIONS": "{}"})


def test_exempt_environment_variables_are_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    """Variables listed in ENVIRON_EXEMPT (the command line's own) are not settings."""
    monkeypatch.setattr(_conf_registry, "ENVIRON_EXEMPT", {"CELERIAC_APP"})
    assert Settings(environ={"CELERIAC_APP": "proj"}).changes() == {}


def test_without_environ_nothing_is_read_from_the_process() -> None:
    """Settings() without environ uses defaults only."""
    assert Settings().as_dict() == {name: s.default for name, s in REGISTRY.items()}


# -- mapping behaviour -------------------------------------------------------------------------


def test_changes_and_as_dict() -> None:
    """changes() has the explicit values only; as_dict() has every effective value."""
    conf = Settings({"worker_concurrency": 2}, environ={"CELERIAC_TIMEZONE": "Europe/Paris"})
    conf["task_track_started"] = True
    assert conf.changes() == {"worker_concurrency": 2, "task_track_started": True}
    everything = conf.as_dict()
    assert set(everything) == set(REGISTRY)
    assert everything["timezone"] == "Europe/Paris"
    assert dict(conf) == everything
    assert len(conf) == len(REGISTRY)


def test_update_is_all_or_nothing() -> None:
    """update() checks every value before storing any."""
    conf = Settings()
    with pytest.raises(ImproperlyConfigured):
        conf.update({"worker_concurrency": 3}, worker_prefetch_multiplier=0)
    assert conf.changes() == {}
    conf.update([("worker_concurrency", 3)], task_track_started=True)
    assert conf.changes() == {"worker_concurrency": 3, "task_track_started": True}


def test_clear_and_pop_forget_explicit_values() -> None:
    """clear() and pop() drop explicit values so defaults show again."""
    conf = Settings({"worker_concurrency": 3, "task_track_started": True})
    assert conf.pop("worker_concurrency") == 3
    assert conf.worker_concurrency is None
    conf.clear()
    assert conf.changes() == {}


def test_mutable_defaults_are_not_shared() -> None:
    """Mutating a default list in one Settings leaves the registry and other Settings alone."""
    Settings().imports.append("leak")
    assert Settings().imports == []
    assert REGISTRY["imports"].default == []


# -- freezing ----------------------------------------------------------------------------------


def test_freeze_returns_a_read_only_copy() -> None:
    """Reads work on the frozen copy; every kind of write raises ConfigurationFrozen."""
    conf = Settings({"worker_concurrency": 2})
    frozen = conf.freeze()
    assert frozen.frozen
    assert not conf.frozen
    assert frozen.worker_concurrency == 2
    assert frozen.freeze() is frozen
    message = (
        "configuration is frozen once the app has started; "
        "set it before the first send or worker start"
    )
    with pytest.raises(ConfigurationFrozen) as info:
        frozen.worker_concurrency = 3
    assert str(info.value) == message
    writes: list[Callable[[], object]] = [
        lambda: frozen.__setitem__("worker_concurrency", 3),
        lambda: frozen.update(worker_concurrency=3),
        lambda: frozen.__delitem__("worker_concurrency"),
        frozen.clear,
        lambda: frozen.config_from_object({"worker_concurrency": 3}),
    ]
    for write in writes:
        with pytest.raises(ConfigurationFrozen):
            write()
    conf.worker_concurrency = 5
    assert frozen.worker_concurrency == 2


def test_frozen_settings_survive_pickling() -> None:
    """A frozen Settings pickles (prefork children receive it) and stays frozen."""
    frozen = Settings({"worker_concurrency": 2}, environ={"CELERIAC_HUB_SYNC": "full"}).freeze()
    copy = pickle.loads(pickle.dumps(frozen))
    assert copy.frozen
    assert copy.worker_concurrency == 2
    assert copy.hub_sync == "full"


# -- config_from_object ------------------------------------------------------------------------


def _config_module(name: str, **attrs: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    module.os = types  # type: ignore[attr-defined]  # a module: skipped
    module.helper = lambda: None  # type: ignore[attr-defined]  # a function: skipped
    module.Klass = type("Klass", (), {})  # type: ignore[attr-defined]  # a class: skipped
    module._private = 1  # type: ignore[attr-defined]
    for key, value in attrs.items():
        setattr(module, key, value)
    return module


def test_config_from_module_takes_lowercase_data_attributes() -> None:
    """A module's lower-case data attributes are read; modules, callables, _names skipped."""
    conf = Settings()
    conf.config_from_object(_config_module("cfg", worker_concurrency=3, DEBUG=True))
    assert conf.changes() == {"worker_concurrency": 3}


def test_config_from_class_and_instance() -> None:
    """A class (inherited attributes too) and an instance work as config objects."""

    class Base:
        task_default_queue = "base"

    class Config(Base):
        worker_concurrency = 2

        def method(self) -> None:
            """Skipped: callable."""

    conf = Settings()
    conf.config_from_object(Config)
    assert conf.changes() == {"task_default_queue": "base", "worker_concurrency": 2}
    other = Settings()
    other.config_from_object(Config())
    assert other.changes() == conf.changes()


def test_config_from_dotted_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """'pkg.mod' imports the module; 'pkg.mod:attr' takes one of its attributes."""
    monkeypatch.setitem(sys.modules, "celeriac_test_cfg", _config_module("c", hub_sync="full"))
    conf = Settings()
    conf.config_from_object("celeriac_test_cfg")
    assert conf.hub_sync == "full"

    class Inner:
        timezone = "Europe/Oslo"

    module = _config_module("celeriac_test_cfg2", Inner=Inner)
    monkeypatch.setitem(sys.modules, "celeriac_test_cfg2", module)
    conf.config_from_object("celeriac_test_cfg2:Inner")
    assert conf.timezone == "Europe/Oslo"
    with pytest.raises(ImproperlyConfigured, match="no attribute 'Missing'"):
        conf.config_from_object("celeriac_test_cfg2:Missing")


def test_config_from_missing_module_silent_only_when_asked() -> None:
    """An ImportError propagates unless silent=True."""
    conf = Settings()
    with pytest.raises(ImportError):
        conf.config_from_object("celeriac_no_such_module_xyz")
    conf.config_from_object("celeriac_no_such_module_xyz", silent=True)
    assert conf.changes() == {}


def test_config_from_object_with_namespace() -> None:
    """namespace='CELERIAC' reads CELERIAC_* upper-case attributes and ignores the rest."""
    source = _config_module(
        "django_settings", CELERIAC_BROKER_URL="tcp://hub:5555", DEBUG=True, other="x"
    )
    conf = Settings()
    conf.config_from_object(source, namespace="CELERIAC")
    assert conf.changes() == {"broker_url": "tcp://hub:5555"}
    with pytest.raises(UnknownSettingError, match="did you mean 'broker_url'"):
        conf.config_from_object({"CELERIAC_BROKER_URI": "tcp://h:1"}, namespace="CELERIAC")


def test_config_from_object_refuses_old_names_and_unknown_attributes() -> None:
    """Upper-case old Celery names and unknown lower-case attributes are errors; nothing applies."""
    conf = Settings()
    with pytest.raises(UnknownSettingError, match="use 'worker_concurrency'"):
        conf.config_from_object(_config_module("c", CELERYD_CONCURRENCY=4, hub_sync="full"))
    with pytest.raises(UnknownSettingError, match="did you mean 'worker_concurrency'"):
        conf.config_from_object({"worker_concurency": 4, "hub_sync": "full"})
    assert conf.changes() == {}
