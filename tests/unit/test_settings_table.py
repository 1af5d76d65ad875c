"""Every Celery setting is honoured, accepted as a documented no-op, or refused with a reason."""

from __future__ import annotations

import pytest

from celeriac import App
from celeriac._celery_names import CELERY_VERSION
from celeriac._celery_settings_names import SETTINGS
from celeriac._conf import (
    PENDING,
    REGISTRY,
    UNSUPPORTED,
    Settings,
    UnsupportedSettingError,
    declare,
)
from celeriac._settings_table import ACCEPTED_NO_OP
from celeriac.exceptions import ImproperlyConfigured


def test_the_checked_in_list_is_celerys_207_settings() -> None:
    """The reference list is Celery 5.7.0's flattened settings."""
    assert CELERY_VERSION == "5.7.0"
    assert len(SETTINGS) == len(set(SETTINGS)) == 207


@pytest.mark.parametrize("name", SETTINGS)
def test_each_celery_setting_is_known_or_refused_with_a_reason(name: str) -> None:
    """A Celery setting is declared here, or setting it raises an error that says why."""
    assert [name in REGISTRY, name in UNSUPPORTED, name in PENDING].count(True) == 1, name
    conf = App("table", environ={}).conf
    if name in REGISTRY:
        conf[name] = conf[name]  # the effective default is accepted back
        return
    with pytest.raises(UnsupportedSettingError, match="does not support") as info:
        conf[name] = None
    assert (UNSUPPORTED.get(name) or PENDING[name]) in str(info.value)


def test_no_op_settings_document_themselves_and_refuse_what_they_cannot_do() -> None:
    """An accepted no-op says so in its doc; a value asking for other behaviour is refused."""
    assert ACCEPTED_NO_OP.issubset(SETTINGS)
    for name in ACCEPTED_NO_OP:
        assert REGISTRY[name].doc.startswith("Accepted for Celery compatibility, no effect:")
    conf = Settings()
    with pytest.raises(ImproperlyConfigured, match="always reconnect"):
        conf.broker_connection_retry_on_startup = False
    conf.broker_connection_retry_on_startup = True
    assert conf.changes() == {"broker_connection_retry_on_startup": True}


def test_issue_named_settings_are_known_or_explained() -> None:
    """The settings issue 10 names each get an answer (a value or an explained refusal)."""
    conf = Settings()
    with pytest.raises(UnsupportedSettingError, match=r"celeriac\.testing"):
        conf.task_always_eager = True
    with pytest.raises(UnsupportedSettingError, match="--log-format"):
        conf.worker_log_format = "%(message)s"
    conf.result_extended = True  # honoured (issue 10): the hub keeps the request
    with pytest.raises(ImproperlyConfigured, match="acknowledges a task after it finishes"):
        conf.task_acks_late = False  # refused as the task option is, with the same words
    conf.update(task_default_rate_limit="10/s", task_annotations={"*": {"rate_limit": "5/s"}})
    assert conf.task_default_rate_limit == "10/s"


def test_declaring_a_pending_setting_replaces_its_refusal() -> None:
    """A setting refused as not implemented yet becomes a plain setting once declared (none is
    pending today: the mechanism is kept for the next one, shown with a made-up name)."""
    assert PENDING == {}
    PENDING["chord_fancy_timeout"] = "fancy chords"
    try:
        with pytest.raises(UnsupportedSettingError, match="not implemented yet: fancy chords"):
            Settings().chord_fancy_timeout = 3.0
        declare("chord_fancy_timeout", 3.0, "Seconds a fancy chord waits.")
        assert Settings().chord_fancy_timeout == 3.0
        assert "chord_fancy_timeout" not in PENDING
    finally:
        REGISTRY.pop("chord_fancy_timeout", None)
        PENDING.pop("chord_fancy_timeout", None)


def test_chord_settings_are_honoured_or_accepted_for_one_reason() -> None:
    """The chord settings: the join timeout and header errbacks act; the retry interval and
    the counter expiry are accepted with the one reason (the hub counts chords)."""
    conf = Settings()
    conf.update(result_chord_join_timeout=5, task_allow_error_cb_on_chord_header=True)
    assert conf.result_chord_join_timeout == 5.0
    with pytest.raises(ImproperlyConfigured, match="greater than 0"):
        conf.result_chord_join_timeout = 0
    conf.update(result_chord_retry_interval=2.0, result_chord_expires=60)
    for name in ("result_chord_retry_interval", "result_chord_expires"):
        assert name in ACCEPTED_NO_OP
        assert "chords are counted at the hub" in REGISTRY[name].doc
