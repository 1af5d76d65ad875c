"""Count how much of Celery's public surface celeriac has (issue 10's measurement).

Usage: ``python scripts/celery_names.py`` prints, for each list of
``celeriac/_celery_names.py`` (derived once from Celery, version inside; the settings and the
command line in ``_celery_settings_names.py`` and ``_celery_cli_names.py``), how many names
celeriac has, how many it refuses with a reason, and which are missing. The lists are read
from this checkout's files, so the script also measures an older tree put first on
``PYTHONPATH`` (how the "before" counts in the issue note were taken).
"""

from __future__ import annotations

import importlib.util
import sys
import types
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

NAMES_DIR = Path(__file__).resolve().parent.parent / "celeriac"
NAMES_FILES = ("_celery_names.py", "_celery_settings_names.py", "_celery_cli_names.py")


def load_names() -> Any:
    """The lists of this checkout's ``_celery_*names`` modules, as one namespace (whatever
    celeriac is importable)."""
    names = types.SimpleNamespace()
    for filename in NAMES_FILES:
        spec = importlib.util.spec_from_file_location(f"{filename[:-3]}_list", NAMES_DIR / filename)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for name in module.__all__:
            setattr(names, name, getattr(module, name))
    return names


def _has(obj: object) -> Callable[[str], bool]:
    names = set(dir(obj))
    return lambda name: name in names


def _refused(module: str, table: str) -> set[str]:
    try:
        return set(getattr(importlib.import_module(module), table))
    except (ImportError, AttributeError):
        return set()


def _worker_options() -> set[str]:
    from celeriac.runtime.cli import cli  # noqa: PLC0415

    command = cli.commands["worker"]  # type: ignore[attr-defined]
    return {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}


def _refused_options() -> set[str]:
    table = _refused("celeriac.runtime.cli_compat", "REFUSED_WORKER_OPTIONS")
    return {name for names in table for name in names}


def _settings_counts(names: Iterable[str]) -> dict[str, list[str]]:
    from celeriac import _conf  # noqa: PLC0415

    noop = _refused("celeriac._settings_table", "ACCEPTED_NO_OP")
    groups: dict[str, list[str]] = {"honoured": [], "no-op": [], "refused": [], "missing": []}
    for name in names:
        if name in _conf.REGISTRY and name not in noop:
            groups["honoured"].append(name)
        elif name in noop:
            groups["no-op"].append(name)
        elif name in _conf.UNSUPPORTED or name in getattr(_conf, "PENDING", ()):
            groups["refused"].append(name)
        else:
            groups["missing"].append(name)
    return groups


def measure() -> dict[str, dict[str, list[str]]]:
    """``{list name: {"present": [...], "refused": [...], "missing": [...]}}``."""
    import celeriac  # noqa: PLC0415
    from celeriac.result import AsyncResult  # noqa: PLC0415
    from celeriac.runtime.cli import cli  # noqa: PLC0415

    names = load_names()
    app = celeriac.App("measure", environ={})
    task = app.task(name="measure.t")(lambda: None)
    checks: dict[str, tuple[Iterable[str], Callable[[str], bool], set[str]]] = {
        "top-level names": (names.TOP_LEVEL, _has(celeriac), set()),
        "App attributes": (
            names.APP_ATTRIBUTES,
            _has(app),
            _refused("celeriac._app_compat", "REFUSED_APP_ATTRIBUTES"),
        ),
        "Task attributes": (
            names.TASK_ATTRIBUTES,
            _has(task),
            _refused("celeriac._task_compat", "REFUSED_TASK_ATTRIBUTES"),
        ),
        "AsyncResult attributes": (
            names.ASYNC_RESULT_ATTRIBUTES,
            _has(AsyncResult("x", app)),
            _refused("celeriac._result_compat", "REFUSED_RESULT_ATTRIBUTES"),
        ),
        "Request fields": (
            names.REQUEST_FIELDS,
            _has(celeriac.Request(id="x", task="t")),
            set(),
        ),
        "CLI commands": (
            names.CLI_COMMANDS,
            _has_key(cli.commands),  # type: ignore[attr-defined]
            _refused("celeriac.runtime.cli_compat", "REFUSED_COMMANDS"),
        ),
        "worker options": (
            names.WORKER_OPTIONS,
            _worker_options().__contains__,
            _refused_options(),
        ),
    }
    report = {
        title: _split(items, present, refused)
        for title, (items, present, refused) in checks.items()
    }
    report["settings"] = _settings_counts(names.SETTINGS)
    return report


def _has_key(mapping: dict[str, Any]) -> Callable[[str], bool]:
    return mapping.__contains__


def _split(
    items: Iterable[str], present: Callable[[str], bool], refused: set[str]
) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {"present": [], "refused": [], "missing": []}
    for name in items:
        key = "refused" if name in refused else "present" if present(name) else "missing"
        groups[key].append(name)
    return groups


def main() -> int:
    """Print the counts and the missing names."""
    report = measure()
    out = [f"against Celery {load_names().CELERY_VERSION}"]
    for title, groups in report.items():
        total = sum(len(v) for v in groups.values())
        counts = ", ".join(f"{k} {len(v)}" for k, v in groups.items())
        out.append(f"{title}: {counts} (of {total})")
        if "-v" in sys.argv and groups.get("missing"):
            out.append("   missing: " + " ".join(groups["missing"]))
    sys.stdout.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
