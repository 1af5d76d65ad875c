"""A program that never configured logging hears nothing from celeriac below WARNING."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path


def _run(source: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source)],
        cwd=tmp_path,  # not the repository root: the source folders would shadow the package
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_unconfigured_program_sees_only_warnings_on_stderr(tmp_path: Path) -> None:
    """No logging configured: INFO is silent, a WARNING reaches stderr, stdout stays clean."""
    done = _run(
        """
        from celeriac._log import get_logger
        log = get_logger("celeriac.client")
        log.info("hub_changed", hub="h1")
        log.warning("hub_not_answering", held=3)
        """,
        tmp_path,
    )
    assert done.stdout == ""
    assert "hub_changed" not in done.stderr
    assert "hub_not_answering held=3" in done.stderr


def test_configured_stdlib_logging_receives_our_lines(tmp_path: Path) -> None:
    """A program that configures logging at INFO gets our INFO lines there, by logger name."""
    done = _run(
        """
        import logging, sys
        logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(name)s|%(message)s")
        from celeriac._log import get_logger
        get_logger("celeriac.client").info("hub_changed", hub="h1")
        """,
        tmp_path,
    )
    assert done.stdout.strip() == "celeriac.client|hub_changed hub='h1'"


def test_configured_structlog_takes_our_lines(tmp_path: Path) -> None:
    """Once structlog is configured (as a celeriac node does), lines go through it."""
    done = _run(
        """
        import sys, structlog
        structlog.configure(
            processors=[structlog.processors.JSONRenderer()],
            logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        )
        from celeriac._log import get_logger
        get_logger("celeriac.worker").info("task_succeeded", task="t")
        """,
        tmp_path,
    )
    assert done.stdout.strip() == '{"task": "t", "event": "task_succeeded"}'


def test_enabled_follows_the_level_a_node_set_up(tmp_path: Path) -> None:
    """``Logger.enabled`` (hot paths skip building a line with it) says False only for a level
    the configuration drops: a node at WARNING skips INFO, writes WARNING; at INFO, both; a
    program without logging set up, as stdlib decides."""
    done = _run(
        """
        import logging
        from celeriac._log import get_logger
        log = get_logger("celeriac.worker")
        print("plain", log.enabled("info"), log.enabled("warning"))
        logging.basicConfig(level=logging.INFO)
        print("stdlib", log.enabled("info"))
        from celeriac.runtime.logging import setup_logging
        setup_logging("WARNING")
        print("node", log.enabled("info"), log.enabled("warning"))
        log.info("task_received", task="t")
        log.warning("task_slow", task="t")
        other = get_logger("celeriac.other")
        setup_logging("INFO")
        print("node-info", other.enabled("info"))
        """,
        tmp_path,
    )
    lines = done.stdout.splitlines()
    assert lines[:4] == ["plain False True", "stdlib True", "node False True", "node-info True"]
    assert "task_slow" in done.stderr
    assert "task_received" not in done.stderr
