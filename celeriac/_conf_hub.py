"""The settings of the hub's store and of the embedded hub: where a hub keeps its durable data
(a SQLite directory or a PostgreSQL URL, alone or shared with other hubs on a schema) and
whether a worker runs the hub in its own process.

Declared when :mod:`celeriac._conf` is imported, at their place among the core's settings (the
registry keeps the order of declaration); import the names from there.
"""

from __future__ import annotations

import os
from typing import Any, Final

from celeriac._conf_declare import declare
from celeriac._conf_parse import choice_check, parse_optional, seconds_check
from celeriac.exceptions import ImproperlyConfigured

__all__ = ["EMBEDDED_HUB_MODES", "HUB_SYNC_MODES"]

HUB_SYNC_MODES: Final = ("normal", "full")
EMBEDDED_HUB_MODES: Final = ("auto", "always", "never")


def _check_embedded_hub(value: Any) -> str:
    if value is True or value is False:
        return "always" if value else "never"
    if isinstance(value, str):
        word = value.strip().lower()
        word = {"true": "always", "yes": "always", "false": "never", "no": "never"}.get(word, word)
        if word in EMBEDDED_HUB_MODES:
            return word
    raise ImproperlyConfigured(
        "setting 'worker_embedded_hub' must be one of auto, always, never (or True/False); "
        f"got {value!r}"
    )


def _check_path(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str | os.PathLike):
        return os.fspath(value)
    raise ImproperlyConfigured(f"setting 'hub_data_dir' must be a path or None, got {value!r}")


def _check_store_url(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.partition("://")[0] in ("postgresql", "postgres"):
        return value
    raise ImproperlyConfigured(
        "setting 'hub_store_url' must be a PostgreSQL URL (postgresql://user@host/dbname) or "
        f"None, got {value!r}"
    )


declare(
    "hub_data_dir",
    None,
    "Directory of the hub's durable store (None: $XDG_STATE_HOME/celeriac/hub-<host>-<port>, "
    "i.e. ~/.local/state/celeriac/hub-127.0.0.1-5555 by default: one per hub address, the same "
    "whatever the current directory).",
    parse=parse_optional(str),
    check=_check_path,
)
declare(
    "hub_store_url",
    None,
    "Where a hub keeps its durable store instead of SQLite in hub_data_dir: a PostgreSQL URL, "
    "postgresql://user@host:5432/dbname (optionally ?schema=NAME, default celeriac: the "
    "PostgreSQL schema of the hub's tables; one hub per schema). Needs "
    "pip install 'celeriac[postgres]'. The hub creates its tables on first start; "
    "celeriac hub --migrate upgrades them. None: SQLite.",
    parse=parse_optional(str),
    check=_check_store_url,
)
declare(
    "hub_store_shared",
    False,
    "With hub_store_url: this hub shares the PostgreSQL schema with other hubs started the same "
    "way (celeriac hub --shared): the queues are the table, any hub's workers take any hub's "
    "tasks, and a dead hub's tasks are taken back by the others. False: one hub per schema.",
)
declare(
    "hub_shared_lease_ttl",
    10.0,
    "With hub_store_shared: seconds a shared hub may go unseen before the other hubs take back "
    "the tasks it claimed (they run again through them). Longer: fewer false takeovers on a "
    "stalled hub; shorter: a dead hub's tasks resume sooner. Give every hub of a schema the "
    "same value; it must be at least twice hub_shared_beat_interval.",
    check=seconds_check("hub_shared_lease_ttl", positive=True),
)
declare(
    "hub_shared_beat_interval",
    1.0,
    "With hub_store_shared: seconds between two beats of a shared hub (it says it lives, takes "
    "back dead hubs' tasks, makes due delayed tasks ready, checks its waiters' results). "
    "A delayed task becomes due within this long of its eta.",
    check=seconds_check("hub_shared_beat_interval", positive=True),
)
declare(
    "hub_sync",
    "normal",
    "SQLite synchronous mode: normal survives a process kill, full also survives power loss. "
    "With hub_store_url (PostgreSQL): normal commits with synchronous_commit=off, full with on.",
    check=choice_check("hub_sync", lambda: HUB_SYNC_MODES),
)
declare(
    "worker_embedded_hub",
    "auto",
    "Whether a worker runs the hub in its own process: auto (only when no broker_url is "
    "configured and nobody listens on the default loopback address: the one-machine start), "
    "always (this worker is the hub and binds broker_url), never (connect to broker_url and "
    "wait for the hub there).",
    check=_check_embedded_hub,
)
