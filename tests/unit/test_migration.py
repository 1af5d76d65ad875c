"""Migrating from Celery: Django's namespaced settings, imports/include, shared_task, app API."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import celeriac
from celeriac import App, _current, shared_task, signals
from celeriac import _app as app_module
from celeriac._conf import UnsupportedSettingError
from celeriac.exceptions import ImproperlyConfigured, UnknownSettingError


class _DjangoSettings:
    """What ``django.conf.settings`` of a typical Celery-on-Django project holds."""

    DEBUG = True
    INSTALLED_APPS = ["django.contrib.admin", "orders"]
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3"}}
    CELERY_BROKER_URL = "tcp://127.0.0.1:5999"
    CELERY_TASK_SERIALIZER = "json"
    CELERY_RESULT_SERIALIZER = "json"
    CELERY_ACCEPT_CONTENT = ["json"]
    CELERY_TIMEZONE = "Europe/Berlin"
    CELERY_TASK_TRACK_STARTED = True
    CELERY_TASK_TIME_LIMIT = 30 * 60
    CELERY_RESULT_BACKEND = "hub"


@pytest.fixture
def fake_django(monkeypatch: pytest.MonkeyPatch) -> type[_DjangoSettings]:
    """``django.conf:settings`` importable, without Django installed."""
    django = types.ModuleType("django")
    conf = types.ModuleType("django.conf")
    conf.settings = _DjangoSettings()  # type: ignore[attr-defined]
    django.conf = conf  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "django", django)
    monkeypatch.setitem(sys.modules, "django.conf", conf)
    return _DjangoSettings


@pytest.fixture
def no_apps() -> Iterator[None]:
    """A process where no App has been created yet (the registries emptied for the test)."""
    saved = [list(_current.apps_created), list(app_module._shared), list(_current._chosen)]
    for registry in (_current.apps_created, app_module._shared, _current._chosen):
        registry.clear()
    try:
        yield
    finally:
        _current.apps_created[:], app_module._shared[:], _current._chosen[:] = saved


def test_django_settings_with_celery_namespace_are_read(fake_django: type) -> None:
    """config_from_object('django.conf:settings', namespace='CELERY') takes CELERY_TASK_* names."""
    app = App("djproj", environ={})
    app.config_from_object("django.conf:settings", namespace="CELERY")
    assert app.conf.changes() == {
        "broker_url": "tcp://127.0.0.1:5999",
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "timezone": "Europe/Berlin",
        "task_track_started": True,
        "task_time_limit": 1800.0,
        "result_backend": "hub",
    }


def test_namespace_still_refuses_old_and_unsupported_names() -> None:
    """An old name outside the namespace and an unsupported one inside it are errors."""
    conf = App("djold", environ={}).conf
    with pytest.raises(UnknownSettingError, match=r"'CELERY_WORKER_CONCURRENCY' \(namespace"):
        conf.config_from_object({"CELERYD_CONCURRENCY": 4}, namespace="CELERY")
    with pytest.raises(UnsupportedSettingError, match=r"celeriac\.testing"):
        conf.config_from_object({"CELERY_TASK_ALWAYS_EAGER": True}, namespace="CELERY")
    with pytest.raises(UnknownSettingError, match="did you mean 'task_serializer'"):
        conf.config_from_object({"CELERY_TASK_SERIALISER": "json"}, namespace="CELERY")
    assert conf.changes() == {}


def test_shared_task_before_any_app_imports_and_binds_later(no_apps: None) -> None:
    """A shared_task declared with no App is a declaration: bound when the App appears."""

    @shared_task(name="early.mul")
    def mul(x: int, y: int) -> int:
        return x * y

    assert mul.name == "early.mul"
    with pytest.raises(ImproperlyConfigured, match="no celeriac App exists yet"):
        mul(2, 3)
    app = App("late", environ={})
    assert mul(2, 3) == 6
    assert app.get_task("early.mul") is mul.bound()
    assert mul.app is app


def test_shared_task_without_options_before_any_app(no_apps: None) -> None:
    """``@shared_task`` with no parentheses and no App yet is named module.function."""

    @shared_task
    def plain() -> str:
        return "ok"

    app = App("plainapp", environ={})
    app.finalize()
    assert plain.name.endswith("test_shared_task_without_options_before_any_app.<locals>.plain")
    assert app.tasks[plain.name]() == "ok"


def _package(root: Path, name: str, **modules: str) -> None:
    """Write a package ``name`` with ``modules`` (module name -> source) under ``root``."""
    (root / name).mkdir(parents=True)
    (root / name / "__init__.py").write_text("")
    for module, source in modules.items():
        (root / name / f"{module}.py").write_text(source)


_TASKS = "from celeriac import shared_task\n\n@shared_task(name={name!r})\ndef t():\n    return 1\n"


def test_imports_include_and_autodiscover_are_imported_by_import_default_modules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """imports, include and two autodiscovered packages are imported; a bare package is skipped."""
    monkeypatch.syspath_prepend(str(tmp_path))
    _package(tmp_path, "mig_imp", jobs=_TASKS.format(name="mig.imp"))
    _package(tmp_path, "mig_inc", jobs=_TASKS.format(name="mig.inc"))
    _package(tmp_path, "mig_orders", tasks=_TASKS.format(name="mig.orders"))
    _package(tmp_path, "mig_billing", tasks=_TASKS.format(name="mig.billing"))
    _package(tmp_path, "mig_empty")
    app = App("mig", environ={}, imports=["mig_imp.jobs"], include=["mig_inc.jobs"])
    app.autodiscover_tasks(["mig_orders", "mig_billing", "mig_empty"])
    seen: list[object] = []
    signals.import_modules.connect(lambda sender, **kw: seen.append(sender), weak=False)
    imported = app.import_default_modules()
    app.finalize()
    assert imported == [
        "mig_imp.jobs",
        "mig_inc.jobs",
        "mig_orders.tasks",
        "mig_billing.tasks",
    ]
    assert {"mig.imp", "mig.inc", "mig.orders", "mig.billing"} <= set(app.tasks)
    assert app in seen


def test_autodiscover_without_packages_reads_django_installed_apps(
    fake_django: type, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """autodiscover_tasks() with no packages imports <app>.tasks of Django's installed apps."""
    monkeypatch.syspath_prepend(str(tmp_path))
    _package(tmp_path, "orders", tasks=_TASKS.format(name="orders.t"))
    registry = types.ModuleType("django.apps")
    configs = [
        types.SimpleNamespace(name="django.contrib.admin"),
        types.SimpleNamespace(name="orders"),
    ]
    registry.apps = types.SimpleNamespace(ready=True, get_app_configs=lambda: configs)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "django.apps", registry)
    monkeypatch.delitem(sys.modules, "orders", raising=False)
    monkeypatch.delitem(sys.modules, "orders.tasks", raising=False)
    app = App("djdisc", environ={})
    app.autodiscover_tasks()
    assert app.import_default_modules() == ["orders.tasks"]


def test_current_app_and_set_current(no_apps: None) -> None:
    """current_app is the latest App, or the one made current; none at all is a clear error."""
    with pytest.raises(ImproperlyConfigured, match="no celeriac App exists yet"):
        _ = celeriac.current_app.conf
    first = App("first", environ={})
    second = App("second", environ={})
    assert celeriac.current_app.main == "second"
    first.set_current()
    assert celeriac.current_app.main == "first"
    assert celeriac.current_app == first
    assert second is not first
    assert not celeriac.current_task


def test_uuid_is_a_fresh_string() -> None:
    """celeriac.uuid() gives a new UUID string each call (Celery's celery.uuid)."""
    a, b = celeriac.uuid(), celeriac.uuid()
    assert isinstance(a, str)
    assert len(a) == 36
    assert a != b


def test_on_after_configure_and_add_periodic_task() -> None:
    """on_after_configure fires once at finalize; add_periodic_task adds a beat_schedule entry."""
    app = App("periodic", environ={})
    calls: list[object] = []

    @app.on_after_configure.connect
    def setup(sender: App, **kw: Any) -> None:
        calls.append(sender)
        sender.add_periodic_task(10.0, "periodic.ping", name="ping every 10s", args=(1,))

    app.finalize()
    app.finalize()
    assert calls == [app]
    entry = app.conf.beat_schedule["ping every 10s"]
    assert entry["task"] == "periodic.ping"
    assert entry["args"] == (1,)


def test_refused_app_attributes_say_what_to_use() -> None:
    """App attributes without a meaning here raise NotImplementedError naming an alternative."""
    app = App("refused", environ={})
    with pytest.raises(NotImplementedError, match="no AMQP layer"):
        _ = app.amqp
    with pytest.raises(AttributeError):
        _ = app.no_such_attribute  # type: ignore[attr-defined]


def test_now_and_timezone_follow_the_setting() -> None:
    """app.now() is aware and in the timezone setting."""
    app = App("tz", environ={}, timezone="Europe/Berlin")
    assert str(app.timezone) == "Europe/Berlin"
    assert app.now().utcoffset() is not None


def test_config_from_envvar(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """config_from_envvar loads the module the variable names; unset is an error unless silent."""
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "mig_envcfg.py").write_text("worker_concurrency = 3\n")
    app = App("envcfg", environ={})
    monkeypatch.delenv("MIG_CFG", raising=False)
    assert app.config_from_envvar("MIG_CFG", silent=True) is False
    with pytest.raises(ImproperlyConfigured, match="MIG_CFG"):
        app.config_from_envvar("MIG_CFG")
    monkeypatch.setenv("MIG_CFG", "mig_envcfg")
    assert app.config_from_envvar("MIG_CFG") is True
    assert app.conf.worker_concurrency == 3


def test_get_task_logger_binds_the_running_task(monkeypatch: pytest.MonkeyPatch) -> None:
    """get_task_logger formats %-args and binds the task id while a task runs."""
    from celeriac._request import Request, _current  # noqa: PLC0415
    from celeriac.utils.log import get_task_logger  # noqa: PLC0415

    records: list[dict[str, Any]] = []

    class Capture:
        def __init__(self, name: str) -> None:
            self.name = name

        def info(self, event: str, **kw: Any) -> None:
            records.append({"event": event, "logger": self.name, **kw})

    monkeypatch.setattr("celeriac.utils.log.get_celeriac_logger", Capture)
    token = _current.set(Request(id="tid-1", task="proj.add"))
    try:
        get_task_logger("proj.tasks").info("Adding %s + %s", 2, 3, extra=1)
    finally:
        _current.reset(token)
    assert records == [
        {
            "event": "Adding 2 + 3",
            "logger": "proj.tasks",
            "task_name": "proj.add",
            "task_id": "tid-1",
            "extra": 1,
        }
    ]


def test_app_start_runs_the_command_line_for_this_app(capsys: pytest.CaptureFixture[str]) -> None:
    """app.start(argv) and app.worker_main(argv) run celeriac's command line (here: --help)."""
    app = App("startapp", environ={})
    with pytest.raises(SystemExit) as done:
        app.worker_main(["--help"])
    assert done.value.code == 0
    assert "Start a worker node" in capsys.readouterr().out


def test_refused_task_attributes_say_what_to_use() -> None:
    """Celery task attributes celeriac cannot honour raise NotImplementedError with why (apply
    and update_state are implemented: outside a worker update_state has nothing to update)."""
    app = App("taskrefused", environ={})

    @app.task
    def noop() -> None: ...

    noop.update_state(state="PROGRESS", meta={"done": 1})
    assert noop.apply().get() is None
    with pytest.raises(NotImplementedError, match="task_annotations"):
        _ = noop.annotate  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        _ = noop.no_such_thing  # type: ignore[attr-defined]


def test_base_must_be_a_task_class() -> None:
    """@app.task(base=...) takes a subclass of app.Task, and one class serves every function."""
    app = App("baseapp", environ={})

    class Base(app.Task):  # type: ignore[misc,name-defined]
        abstract = True

    @app.task(base=Base)
    def one() -> int:
        return 1

    @app.task(base=Base)
    def two() -> int:
        return 2

    assert isinstance(one, Base)
    assert type(one) is type(two)
    assert one() == 1
    with pytest.raises(TypeError, match=r"subclass of app\.Task"):
        app.task(base=dict)(lambda: None)


def test_delay_on_commit_sends_when_the_transaction_commits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """delay_on_commit hands apply_async(args, kwargs) to Django's transaction.on_commit."""
    app = App("oncommit", environ={})

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    callbacks: list[Any] = []
    transaction = types.ModuleType("django.db.transaction")
    transaction.on_commit = callbacks.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "django.db.transaction", transaction)
    sent: list[tuple[Any, ...]] = []
    monkeypatch.setattr(add, "apply_async", lambda *a, **kw: sent.append((a, kw)))
    assert add.delay_on_commit(2, y=3) is None
    assert sent == []
    callbacks[0]()
    assert sent == [(((2,), {"y": 3}), {})]


def test_app_helpers_either_task_cls_and_utc() -> None:
    """either() prefers a given value over the setting; task_cls is app.Task; UTC is detected."""
    app = App("helpers", environ={}, task_default_queue="jobs")
    assert app.either("task_default_queue", None, "other") == "other"
    assert app.either("task_default_queue", None) == "jobs"
    assert app.either("worker_prefetch_multiplier", 0) == 0
    assert app.task_cls is app.Task
    assert app.uses_utc_timezone()
    assert not App("berlin", environ={}, timezone="Europe/Berlin").uses_utc_timezone()
    assert app.current_task is None
    assert app.SYSTEM
    with pytest.raises(NotImplementedError, match="bootsteps"):
        _ = app.steps


def test_acks_late_false_is_refused_not_ignored() -> None:
    """acks_late=False would be ignored (celeriac always acks late), so it is refused."""
    app = App("ackslate", environ={})
    with pytest.raises(ImproperlyConfigured, match="acknowledges a task after it finishes"):

        @app.task(acks_late=False)
        def early() -> None: ...

    @app.task(acks_late=True)
    def late() -> None: ...

    assert late.name.endswith("late")
    with pytest.raises(NotImplementedError, match="task_reject_on_worker_lost"):
        _ = late.reject_on_worker_lost  # type: ignore[attr-defined]


def test_bugreport_names_versions_and_changed_settings() -> None:
    """celeriac.bugreport(app) gives the versions and the app's changed settings."""
    report = celeriac.bugreport(App("bug", environ={}, worker_concurrency=5))
    assert report.startswith(f"celeriac {celeriac.__version__} python ")
    assert "worker_concurrency = 5" in report.splitlines()
