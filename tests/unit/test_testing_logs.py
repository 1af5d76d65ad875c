"""The test kit's log routing: structlog lines to stdlib logging while it runs, then put back."""

from __future__ import annotations

import logging

import pytest
import structlog

from celeriac.testing._logs import logs_through_logging


def test_lines_go_to_stdlib_logging_with_one_traceback(caplog: pytest.LogCaptureFixture) -> None:
    """Inside the block an event is one stdlib record; an exception's traceback appears once."""
    caplog.set_level(logging.INFO, logger="celeriac")
    log = structlog.get_logger("celeriac.kit")
    with logs_through_logging():
        try:
            raise ZeroDivisionError("kaput")
        except ZeroDivisionError:
            log.exception("task_internal_error", task_id="t1")
        log.debug("not_shown")
    records = [r for r in caplog.records if r.name == "celeriac.kit"]
    assert [r.levelname for r in records] == ["ERROR"]
    message = records[0].getMessage()
    assert message.startswith("task_internal_error")
    assert "task_id=t1" in message
    assert caplog.text.count("ZeroDivisionError: kaput") == 1


def test_printing_configuration_is_put_back_after_nested_use() -> None:
    """Nested blocks route once; the last one out restores the configuration it replaced."""
    before = structlog.get_config()["logger_factory"]
    with logs_through_logging():
        with logs_through_logging():
            routed = structlog.get_config()["logger_factory"]
        assert structlog.get_config()["logger_factory"] is routed
    assert isinstance(routed, structlog.stdlib.LoggerFactory)
    assert type(structlog.get_config()["logger_factory"]) is type(before)


def test_a_users_own_configuration_is_left_alone() -> None:
    """A configuration that already goes to stdlib logging (the user's choice) is not replaced."""
    factory = structlog.stdlib.LoggerFactory()
    structlog.configure(logger_factory=factory)
    try:
        with logs_through_logging():
            assert structlog.get_config()["logger_factory"] is factory
    finally:
        structlog.reset_defaults()
