"""Settings of the hub's limits and transport security, declared where they are documented.

Imported by :mod:`celeriac._app` (as :mod:`celeriac.routing` is), so an App knows them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Any

from celeriac._conf import (
    declare,
    int_check,
    parse_bool,
    parse_int,
    parse_optional,
    parse_seconds,
    seconds_check,
)
from celeriac.exceptions import ImproperlyConfigured

__all__ = ["DEFAULT_MAX_MESSAGE_SIZE", "DEFAULT_MAX_UNCONFIRMED", "DEFAULT_MAX_UNCONFIRMED_BYTES"]


def _optional_path(name: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, str | os.PathLike) and str(value).strip():
            return str(value)
        raise ImproperlyConfigured(f"setting {name!r} must be a file path or None, got {value!r}")

    return check


#: 64 MiB: far above any sane task argument, far below what stalls a hub.
DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024

declare(
    "broker_max_message_size",
    DEFAULT_MAX_MESSAGE_SIZE,
    "The largest task body (arguments) or result body in bytes. The client refuses a bigger "
    "publish before sending it (PublishError), the hub refuses one with a NACK that says so, "
    "and the hub's sockets drop a peer whose single frame is far larger "
    "(zmq.MAXMSGSIZE: this size plus room for headers). Pass big data by reference.",
    parse=parse_int,
    check=int_check("broker_max_message_size", minimum=1024),
)

# -- per-peer caps (see celeriac.transport.hub.limits) -------------------------------------------

declare(
    "hub_max_credit_per_peer",
    100_000,
    "Read by the hub: the most deliveries one peer may hold at once (sent and not yet "
    "acknowledged, plus those it may still be sent). Credit a worker asks for above it is "
    "dropped, counted (credit_capped in stats) and logged once: a peer cannot make the hub "
    "hand it the whole backlog. Keep it above worker_prefetch_multiplier x concurrency.",
    parse=parse_int,
    check=int_check("hub_max_credit_per_peer", minimum=1),
)
declare(
    "hub_max_waits_per_peer",
    100_000,
    "Read by the hub: how many results one peer may wait for at once (result.get() on ids "
    "with no result yet). A WAIT over it is refused with ERR waits (the client raises) and "
    "counted as refused: ids made up by the million cannot grow the hub's memory.",
    parse=parse_int,
    check=int_check("hub_max_waits_per_peer", minimum=1),
)
declare(
    "hub_max_beat_leases",
    1000,
    "Read by the hub: how many schedules' beat leases it keeps. Leases nobody holds any more "
    "are dropped to make room; a new schedule while every one is held is refused, with the "
    "reason in its beat's log (beat_lease_refused).",
    parse=parse_int,
    check=int_check("hub_max_beat_leases", minimum=1),
)
declare(
    "hub_body_window_size",
    32 * 1024 * 1024,
    "Read by the hub: bytes of recently published task bodies kept in RAM. A queued task's "
    "body is on disk from its publish; the hub keeps only headers in RAM for the rest, and "
    "reads a body back from its store when the task is delivered. 0 keeps none in RAM.",
    parse=parse_int,
    check=int_check("hub_body_window_size", minimum=0),
)

# -- a client's publishes the hub has not confirmed (see celeriac.runtime.client) -----------------

#: A client's cap on publishes held for confirmation, in number and in body bytes.
DEFAULT_MAX_UNCONFIRMED = 10_000
DEFAULT_MAX_UNCONFIRMED_BYTES = 256 * 1024 * 1024

declare(
    "broker_max_unconfirmed",
    DEFAULT_MAX_UNCONFIRMED,
    "Read by clients: the most publishes held waiting for the hub's confirmation (kept to be "
    "resent after a reconnect). A publish over it, or over broker_max_unconfirmed_bytes, blocks "
    "until the hub confirms enough, for at most broker_publish_timeout seconds, then raises "
    "PublishError: a client whose hub is away does not grow without bound.",
    parse=parse_int,
    check=int_check("broker_max_unconfirmed", minimum=1),
)
declare(
    "broker_max_unconfirmed_bytes",
    DEFAULT_MAX_UNCONFIRMED_BYTES,
    "Read by clients: the most bytes of task bodies held waiting for the hub's confirmation "
    "(see broker_max_unconfirmed). One publish alone may pass it (up to "
    "broker_max_message_size).",
    parse=parse_int,
    check=int_check("broker_max_unconfirmed_bytes", minimum=1),
)
declare(
    "broker_publish_timeout",
    30.0,
    "Read by clients: how long apply_async/send_task may block while broker_max_unconfirmed "
    "(or _bytes) publishes wait for the hub, before raising PublishError (the publish is then "
    "not sent). Celery retries a publish by task_publish_retry_policy, then raises; here it "
    "waits for room, then raises.",
    parse=parse_seconds,
    check=seconds_check("broker_publish_timeout"),
)

# -- CURVE (see celeriac.transport.curve) --------------------------------------------------------

declare(
    "hub_curve_secret_key_file",
    None,
    "Read by the hub: its CURVE key pair (the NAME.key_secret file made by `celeriac keys "
    "generate NAME`). Set, the hub accepts only encrypted, key-authenticated peers whose "
    "public key is in hub_curve_allowed_keys_dir, on its command and events sockets.",
    parse=parse_optional(str),
    check=_optional_path("hub_curve_secret_key_file"),
)
declare(
    "hub_curve_allowed_keys_dir",
    None,
    "Read by the hub with CURVE on: a directory of the public keys (*.key files) of the "
    "clients, workers and monitors allowed in; read again every few seconds.",
    parse=parse_optional(str),
    check=_optional_path("hub_curve_allowed_keys_dir"),
)
declare(
    "broker_curve_server_key_file",
    None,
    "Read by clients and workers: the hub's public key (its NAME.key file). Set with "
    "broker_curve_secret_key_file, this peer talks CURVE to the hub.",
    parse=parse_optional(str),
    check=_optional_path("broker_curve_server_key_file"),
)
declare(
    "broker_curve_secret_key_file",
    None,
    "Read by clients and workers: this peer's own CURVE key pair (a NAME.key_secret file whose "
    "NAME.key is in the hub's hub_curve_allowed_keys_dir).",
    parse=parse_optional(str),
    check=_optional_path("broker_curve_secret_key_file"),
)


declare(
    "broker_visibility_timeout",
    None,
    "Read by the hub: seconds a delivery may stay with one worker without an outcome before "
    "the hub takes it back and delivers it again (the worker's late outcome is then refused, "
    "the task runs twice: at-least-once). None (the default) never takes one back: set it "
    "above your longest task's run time. Celery's name for the Redis and SQS transports.",
    parse=parse_optional(parse_seconds),
    check=seconds_check("broker_visibility_timeout", positive=True, optional=True),
)

# -- where a worker's embedded hub runs (see celeriac.runtime.embedded) -------------------------


def _check_hub_process(value: Any) -> bool | str:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word == "auto":
            return "auto"
        with contextlib.suppress(ImproperlyConfigured):
            return parse_bool(word)
    raise ImproperlyConfigured(
        f"setting 'worker_embedded_hub_process' must be auto, True or False; got {value!r}"
    )


declare(
    "worker_embedded_hub_process",
    "auto",
    "Where a worker's embedded hub runs: True, in a child process of the worker (it dies with "
    "the worker; one that dies alone is started again), so the hub and the worker's tasks do "
    "not share one GIL and run on two cores; False, in a thread of the worker (one process, "
    "starts about 0.3 s sooner, about 35 MB less memory, a lone task's round trip about 90 us "
    "shorter, but the hub and the tasks then take turns on one core). auto (the default): a "
    "process for a worker whose tasks run in its own "
    "process (threads, solo, asyncio pools) when it may use 2 CPUs or more, else a thread "
    "(issue 18: the thread's GIL caps the worker and its hub at one core between them).",
    parse=str,
    check=_check_hub_process,
)
