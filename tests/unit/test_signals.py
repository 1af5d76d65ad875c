"""Signals: Celery's names and arguments, connect styles, sender matching, receiver isolation."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from celeriac import signals
from celeriac.signals import Signal

CELERY_SIGNALS = {
    "before_task_publish": (
        "body",
        "exchange",
        "routing_key",
        "headers",
        "properties",
        "declare",
        "retry_policy",
    ),
    "after_task_publish": ("headers", "body", "exchange", "routing_key"),
    "task_received": ("request",),
    "task_prerun": ("task_id", "task", "args", "kwargs"),
    "task_postrun": ("task_id", "task", "args", "kwargs", "retval", "state"),
    "task_success": ("result",),
    "task_failure": ("task_id", "exception", "args", "kwargs", "traceback", "einfo"),
    "task_retry": ("request", "reason", "einfo"),
    "task_revoked": ("request", "terminated", "signum", "expired"),
    "task_rejected": ("message", "exc"),
    "task_unknown": ("message", "exc", "name", "id"),
    "task_internal_error": (
        "task_id",
        "args",
        "kwargs",
        "request",
        "exception",
        "traceback",
        "einfo",
    ),
    "celeryd_init": ("instance", "conf", "options"),
    "celeryd_after_setup": ("instance", "conf"),
    "worker_init": (),
    "worker_ready": (),
    "worker_before_create_process": (),
    "worker_process_init": (),
    "worker_process_shutdown": ("pid", "exitcode"),
    "heartbeat_sent": (),
    "worker_shutting_down": ("sig", "how", "exitcode"),
    "worker_shutdown": (),
    "beat_init": (),
    "beat_embedded_init": (),
    "eventlet_pool_started": (),
    "eventlet_pool_preshutdown": (),
    "eventlet_pool_postshutdown": (),
    "eventlet_pool_apply": ("target", "args", "kwargs"),
    "setup_logging": ("loglevel", "logfile", "format", "colorize"),
    "after_setup_logger": ("logger", "loglevel", "logfile", "format", "colorize"),
    "after_setup_task_logger": ("logger", "loglevel", "logfile", "format", "colorize"),
    "import_modules": (),
    "user_preload_options": ("app", "options"),
    "task_sent": ("task_id", "task", "args", "kwargs", "eta", "taskset"),
}


class FakeTask:
    """Stands in for a task object: signals match string senders against ``name``."""

    def __init__(self, name: str) -> None:
        self.name = name


# -- the catalogue -----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "args"), sorted(CELERY_SIGNALS.items()))
def test_every_celery_signal_exists_with_its_arguments(name: str, args: tuple[str, ...]) -> None:
    """Each Celery signal is a Signal with Celery's name, arguments and a docstring."""
    sig = getattr(signals, name)
    assert isinstance(sig, Signal)
    assert sig.name == name
    assert set(args) <= set(sig.providing_args)
    assert sig.__doc__
    assert name in signals.__all__


def test_all_lists_exactly_the_signals() -> None:
    """__all__ holds every signal plus Signal and ANY (and celeriac's keyed actor signals)."""
    own = {"actor_started", "actor_stopped", "actor_failed"}
    assert set(signals.__all__) == set(CELERY_SIGNALS) | {"Signal", "ANY"} | own


def test_task_sent_is_documented_as_deprecated() -> None:
    """task_sent says it is deprecated in favour of after_task_publish."""
    assert "Deprecated" in (signals.task_sent.__doc__ or "")
    assert "after_task_publish" in (signals.task_sent.__doc__ or "")


# -- connecting --------------------------------------------------------------------------------


def test_connect_plain_and_as_decorators() -> None:
    """connect(fn), @connect and @connect(sender=...) all connect and return the function."""
    sig = Signal("t")
    seen: list[str] = []

    def plain(sender: Any = None, **kwargs: Any) -> None:
        seen.append("plain")

    assert sig.connect(plain) is plain

    @sig.connect
    def decorated(sender: Any = None, **kwargs: Any) -> None:
        seen.append("decorated")

    @sig.connect(sender="tasks.add")
    def filtered(sender: Any = None, **kwargs: Any) -> None:
        seen.append("filtered")

    assert callable(decorated)
    assert callable(filtered)
    sig.send(sender=FakeTask("tasks.add"))
    assert seen == ["plain", "decorated", "filtered"]


def test_receivers_get_sender_signal_and_arguments_as_keywords() -> None:
    """Celery's receiver shapes all work: sender=None/**kw, (sender, task_id, **kw), (**kw)."""
    sig = Signal("t", ("task_id",))
    got: list[Any] = []
    sig.connect(lambda sender=None, **kw: got.append(("a", sender, kw["task_id"], kw["signal"])))
    sig.connect(lambda sender, task_id, **kw: got.append(("b", sender, task_id)))
    sig.connect(lambda **kw: got.append(("c", kw["sender"])))
    sig.send(sender="s", task_id="id-1")
    assert got == [("a", "s", "id-1", sig), ("b", "s", "id-1"), ("c", "s")]


def test_string_sender_matches_the_sender_name_or_the_string() -> None:
    """A string sender matches a sender whose name equals it, or that string itself."""
    sig = Signal("t")
    hits: list[Any] = []
    sig.connect(lambda sender, **kw: hits.append(sender), sender="tasks.add")
    add, mul = FakeTask("tasks.add"), FakeTask("tasks.mul")
    sig.send(sender=add)
    sig.send(sender=mul)
    sig.send(sender="tasks.add")
    sig.send(sender="tasks.mul")
    sig.send()
    assert hits == [add, "tasks.add"]


def test_object_sender_matches_by_identity() -> None:
    """A non-string sender matches only that very object."""
    sig = Signal("t")
    worker, other = object(), object()
    hits: list[Any] = []
    sig.connect(lambda sender, **kw: hits.append(sender), sender=worker)
    sig.send(sender=other)
    sig.send(sender=worker)
    assert hits == [worker]


def test_receivers_run_in_connection_order() -> None:
    """Receivers are called in the order they were connected."""
    sig = Signal("t")
    order: list[int] = []
    for i in range(10):
        sig.connect(lambda i=i, **kw: order.append(i), sender="x" if i % 2 else signals.ANY)
    sig.send(sender="x")
    assert order == list(range(10))


def test_dispatch_uid_prevents_double_registration() -> None:
    """A second connect with the same dispatch_uid is ignored, even for another function."""
    sig = Signal("t")
    calls: list[str] = []
    sig.connect(lambda **kw: calls.append("first"), dispatch_uid="setup")
    sig.connect(lambda **kw: calls.append("second"), dispatch_uid="setup")
    sig.send()
    assert calls == ["first"]
    assert sig.disconnect(dispatch_uid="setup")
    sig.connect(lambda **kw: calls.append("third"), dispatch_uid="setup")
    sig.send()
    assert calls == ["first", "third"]


def test_connecting_the_same_function_twice_calls_it_once() -> None:
    """The same receiver connected twice is one receiver."""
    sig = Signal("t")
    calls: list[int] = []

    def receiver(**kwargs: Any) -> None:
        calls.append(1)

    sig.connect(receiver)
    sig.connect(receiver)
    sig.send()
    assert calls == [1]


def test_receivers_are_strong_by_default() -> None:
    """A receiver defined in a function survives the function (unlike Celery's weak default)."""
    sig = Signal("t")
    calls: list[str] = []

    def install() -> None:
        def local(**kwargs: Any) -> None:
            calls.append("strong")

        def weak_local(**kwargs: Any) -> None:
            calls.append("weak")

        sig.connect(local)
        sig.connect(weak_local, weak=True)

    install()
    gc.collect()
    sig.send()
    assert calls == ["strong"]


def test_disconnect() -> None:
    """disconnect removes a receiver everywhere, or from one sender only."""
    sig = Signal("t")
    calls: list[Any] = []

    def receiver(sender: Any = None, **kwargs: Any) -> None:
        calls.append(sender)

    sig.connect(receiver, sender="a")
    sig.connect(receiver, sender="b")
    assert sig.disconnect(receiver, sender="a")
    sig.send(sender="a")
    sig.send(sender="b")
    assert calls == ["b"]
    assert sig.disconnect(receiver)
    assert not sig.disconnect(receiver)
    assert not sig.has_receivers
    assert sig.send(sender="b") == []


def test_connected_to_is_temporary() -> None:
    """connected_to connects for a with block only."""
    calls: list[Any] = []

    def receiver(**kwargs: Any) -> None:
        calls.append(kwargs["retval"])

    with signals.task_postrun.connected_to(receiver):
        signals.task_postrun.send(sender=None, retval=1)
    signals.task_postrun.send(sender=None, retval=2)
    assert calls == [1]


# -- sending -----------------------------------------------------------------------------------


def test_send_returns_receiver_results() -> None:
    """send returns (receiver, result) pairs."""
    sig = Signal("t")

    def answer(**kwargs: Any) -> int:
        return 42

    sig.connect(answer)
    assert sig.send(sender=None) == [(answer, 42)]


def test_a_failing_receiver_is_logged_and_the_others_still_run() -> None:
    """An exception in a receiver is logged; later receivers run; the result holds it."""
    sig = Signal("t")
    boom = ValueError("boom")
    ran: list[str] = []

    def failing(**kwargs: Any) -> None:
        raise boom

    def after(**kwargs: Any) -> str:
        ran.append("after")
        return "ok"

    sig.connect(failing)
    sig.connect(after)
    with capture_logs() as logs:
        results = sig.send(sender=None)
    assert results == [(failing, boom), (after, "ok")]
    assert ran == ["after"]
    [entry] = logs
    assert entry["event"] == "signal_receiver_failed"
    assert entry["signal"] == "t"
    assert entry["receiver"].endswith("failing")
    assert entry["exc_info"] is True
    assert entry["log_level"] == "error"


def test_keyboard_interrupt_is_not_swallowed() -> None:
    """Only Exception subclasses are isolated; KeyboardInterrupt still propagates."""
    sig = Signal("t")

    def interrupt(**kwargs: Any) -> None:
        raise KeyboardInterrupt

    sig.connect(interrupt)
    with pytest.raises(KeyboardInterrupt):
        sig.send()


def test_cheap_checks_for_receivers() -> None:
    """receivers, has_receivers and has_receivers_for let hot paths skip the send."""
    sig = Signal("t")
    before = (bool(sig.receivers), sig.has_receivers, sig.receivers_for(FakeTask("a")))
    assert before == (False, False, [])

    def receiver(**kwargs: Any) -> None:
        """Connected for task a only."""

    sig.connect(receiver, sender="a")
    assert sig.receivers
    assert sig.has_receivers
    assert sig.has_receivers_for(FakeTask("a"))
    assert not sig.has_receivers_for(FakeTask("b"))
    assert sig.receivers_for(FakeTask("a")) == [receiver]


def test_connect_refuses_non_callables() -> None:
    """A receiver must be callable."""
    with pytest.raises(TypeError):
        Signal("t").connect(42)  # type: ignore[call-overload]


def test_repr_names_the_signal() -> None:
    """repr shows the name and arguments."""
    assert "task_prerun" in repr(signals.task_prerun)
    assert "task_id" in repr(signals.task_prerun)


LOGGING_SIGNALS = """
import json
from celeriac import signals
from celeriac.runtime.logging import setup_logging

seen = []

@signals.after_setup_logger.connect
def _global(sender=None, logger=None, **kw):
    seen.append(["after_setup_logger", kw["loglevel"], kw["format"], logger is not None])

@signals.after_setup_task_logger.connect
def _task(sender=None, logger=None, **kw):
    seen.append(["after_setup_task_logger", kw["loglevel"], kw["format"], logger is not None])

setup_logging("WARNING", "json")
print(json.dumps(seen))
"""


def test_logging_setup_sends_after_setup_logger_and_after_setup_task_logger(
    tmp_path: Path,
) -> None:
    """A node's logging setup sends both after_setup signals with its level and format."""
    # In a child process: setup_logging configures the process's logging for good.
    done = subprocess.run(
        [sys.executable, "-c", LOGGING_SIGNALS],
        cwd=tmp_path,  # (not the source tree, whose celeriac/ folder lacks the subpackages)
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [
        ["after_setup_logger", "WARNING", "json", True],
        ["after_setup_task_logger", "WARNING", "json", True],
    ]
