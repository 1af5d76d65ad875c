"""SettingsReader: several settings at once, always what ``conf[name]`` gives (issue 18)."""

from __future__ import annotations

import pytest

from celeriac._conf_settings import Settings, SettingsReader

NAMES = ("task_serializer", "task_default_queue")


def test_reads_defaults_writes_and_deletes_like_items() -> None:
    conf = Settings(environ={})
    read = SettingsReader(*NAMES)
    assert read(conf) == (conf["task_serializer"], conf["task_default_queue"])
    conf["task_default_queue"] = "other"
    assert read(conf) == (conf["task_serializer"], "other")
    del conf["task_default_queue"]
    assert read(conf) == (conf["task_serializer"], "celery")
    assert read(conf.freeze()) == read(conf)


def test_environment_values_and_plain_mappings() -> None:
    conf = Settings(environ={"CELERIAC_TASK_DEFAULT_QUEUE": "env"})
    assert SettingsReader(*NAMES)(conf)[1] == "env"
    assert SettingsReader(*NAMES)({"task_serializer": "a", "task_default_queue": "b"}) == (
        "a",
        "b",
    )


def test_needs_two_names() -> None:
    with pytest.raises(ValueError, match="two settings"):
        SettingsReader("task_serializer")
