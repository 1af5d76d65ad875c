"""Every Celery signal, with Celery's names and arguments, on blinker.

Connect a receiver the way Celery documents it::

    from celeriac.signals import task_prerun, after_task_publish

    @task_prerun.connect
    def on_prerun(sender=None, task_id=None, task=None, args=None, kwargs=None, **kw): ...

    @after_task_publish.connect(sender="tasks.add")     # only for that task
    def on_sent(sender=None, headers=None, body=None, **kw): ...

Receivers are called with keyword arguments only: ``sender``, ``signal`` and the signal's
arguments (``providing_args``); accept ``**kwargs`` so that new arguments never break them.
Task signals are sent with the task object as sender, publish signals with the task name,
worker signals with the node name (or the worker object). A ``sender`` given as a string
matches when ``getattr(sender, "name", sender)`` equals it; any other sender matches by
identity.

Differences from Celery, on purpose:

* receivers are held strongly by default (``weak=False``): a receiver defined inside a function
  must not vanish when the function returns. Pass ``weak=True`` for Celery's behaviour.
* an exception in a receiver is logged (structlog event ``signal_receiver_failed``) and the
  other receivers still run; :meth:`Signal.send` returns the exception in place of a result.

Receivers run in the order they were connected.
"""

from __future__ import annotations

from ._signal import ANY, Signal

__all__ = [
    "ANY",
    "Signal",
    "actor_failed",
    "actor_started",
    "actor_stopped",
    "after_setup_logger",
    "after_setup_task_logger",
    "after_task_publish",
    "beat_embedded_init",
    "beat_init",
    "before_task_publish",
    "celeryd_after_setup",
    "celeryd_init",
    "eventlet_pool_apply",
    "eventlet_pool_postshutdown",
    "eventlet_pool_preshutdown",
    "eventlet_pool_started",
    "heartbeat_sent",
    "import_modules",
    "setup_logging",
    "task_failure",
    "task_internal_error",
    "task_postrun",
    "task_prerun",
    "task_received",
    "task_rejected",
    "task_retry",
    "task_revoked",
    "task_sent",
    "task_success",
    "task_unknown",
    "user_preload_options",
    "worker_before_create_process",
    "worker_init",
    "worker_process_init",
    "worker_process_shutdown",
    "worker_ready",
    "worker_shutdown",
    "worker_shutting_down",
]


# -- task signals ----------------------------------------------------------------------------

before_task_publish = Signal(
    "before_task_publish",
    ("body", "exchange", "routing_key", "headers", "properties", "declare", "retry_policy"),
    "Sent before a task message is published, in the sending process; sender: the task name.",
)
after_task_publish = Signal(
    "after_task_publish",
    ("headers", "body", "exchange", "routing_key"),
    "Sent after the hub confirmed a task message, in the sending process; sender: the task name.",
)
task_received = Signal(
    "task_received",
    ("request",),
    "Sent when a worker receives a task, before it runs; sender: the worker's consumer.",
)
task_prerun = Signal(
    "task_prerun",
    ("task_id", "task", "args", "kwargs"),
    "Sent just before a task runs; sender: the task object.",
)
task_postrun = Signal(
    "task_postrun",
    ("task_id", "task", "args", "kwargs", "retval", "state"),
    "Sent after a task ran, whatever its outcome; sender: the task object.",
)
task_success = Signal(
    "task_success",
    ("result", "runtime"),
    "Sent when a task succeeded; sender: the task object.",
)
task_failure = Signal(
    "task_failure",
    ("task_id", "exception", "args", "kwargs", "traceback", "einfo"),
    "Sent when a task failed; sender: the task object.",
)
task_retry = Signal(
    "task_retry",
    ("request", "reason", "einfo"),
    "Sent when a task will be retried; sender: the task object.",
)
task_revoked = Signal(
    "task_revoked",
    ("request", "terminated", "signum", "expired"),
    "Sent when a task is revoked, terminated or expired; sender: the task object.",
)
task_rejected = Signal(
    "task_rejected",
    ("message", "exc"),
    "Sent when a worker receives a message it cannot handle; sender: the worker's consumer.",
)
task_unknown = Signal(
    "task_unknown",
    ("message", "exc", "name", "id"),
    "Sent when a worker receives a task that is not registered; sender: the worker's consumer.",
)
task_internal_error = Signal(
    "task_internal_error",
    ("task_id", "args", "kwargs", "request", "exception", "traceback", "einfo"),
    "Sent when celeriac itself failed while running a task; sender: the task object.",
)
task_sent = Signal(
    "task_sent",
    ("task_id", "task", "args", "kwargs", "eta", "taskset"),
    "Deprecated (as in Celery): use after_task_publish. Kept so old receivers still import.",
)

# -- worker signals --------------------------------------------------------------------------

celeryd_init = Signal(
    "celeryd_init",
    ("instance", "conf", "options"),
    "The first signal a starting worker sends; sender: the node name.",
)
celeryd_after_setup = Signal(
    "celeryd_after_setup",
    ("instance", "conf"),
    "Sent once the worker is set up (queues, logging), before it runs; sender: the node name.",
)
worker_init = Signal("worker_init", (), "Sent before the worker starts.")
worker_before_create_process = Signal(
    "worker_before_create_process",
    (),
    "Sent in the parent just before a pool child process is created.",
)
worker_ready = Signal("worker_ready", (), "Sent when the worker is ready to accept work.")
heartbeat_sent = Signal("heartbeat_sent", (), "Sent when the worker sends a heartbeat.")
worker_shutting_down = Signal(
    "worker_shutting_down",
    ("sig", "how", "exitcode"),
    "Sent when the worker begins to shut down (how: warm or cold).",
)
worker_process_init = Signal(
    "worker_process_init", (), "Sent in each pool child process when it starts."
)
worker_process_shutdown = Signal(
    "worker_process_shutdown",
    ("pid", "exitcode"),
    "Sent in each pool child process just before it exits (not guaranteed).",
)
worker_shutdown = Signal("worker_shutdown", (), "Sent when the worker is about to shut down.")

# -- keyed actor signals (celeriac's own: Celery has no keyed actors) ----------------------------

actor_started = Signal(
    "actor_started",
    ("key", "instance"),
    "Sent in the worker when a keyed actor instance was built (and its state loaded); "
    "sender: the actor class.",
)
actor_stopped = Signal(
    "actor_stopped",
    ("key", "instance", "reason"),
    "Sent in the worker when a keyed actor instance stops (reason: idle, replaced, shutdown, "
    "restart); sender: the actor class.",
)
actor_failed = Signal(
    "actor_failed",
    ("key", "exception", "hook", "restarts"),
    "Sent in the worker when a keyed actor's constructor or state hook raised (hook: "
    "__init__, load_state or save_state); its supervisor restarts it; sender: the actor class.",
)

# -- beat signals ----------------------------------------------------------------------------

beat_init = Signal("beat_init", (), "Sent when beat starts, standalone or embedded.")
beat_embedded_init = Signal(
    "beat_embedded_init", (), "Sent as well as beat_init when beat runs inside a worker."
)

# -- pool signals (Celery's eventlet names, sent by the green/async pool) --------------------
# celeriac's green pool is the asyncio pool (``-P asyncio``, celeriac.runtime.asyncpool): these
# four fire for it, with the pool as sender; the threads, solo and prefork pools never send them.

eventlet_pool_started = Signal(
    "eventlet_pool_started",
    (),
    "Sent by the asyncio pool (-P asyncio) once its event loop runs; sender: the pool.",
)
eventlet_pool_preshutdown = Signal(
    "eventlet_pool_preshutdown",
    (),
    "Sent by the asyncio pool at shutdown, before it waits for (or, on a cold shutdown, "
    "cancels) its remaining tasks; sender: the pool.",
)
eventlet_pool_postshutdown = Signal(
    "eventlet_pool_postshutdown",
    (),
    "Sent when the asyncio pool's loop and threads are gone and the worker is ready to shut "
    "down; sender: the pool.",
)
eventlet_pool_apply = Signal(
    "eventlet_pool_apply",
    ("target", "args", "kwargs"),
    "Sent on the asyncio pool's loop just before each task runs; sender: the pool, target: "
    "the Task, args/kwargs: its decoded arguments (not sent for an unknown or undecodable "
    "message).",
)

# -- logging signals -------------------------------------------------------------------------

setup_logging = Signal(
    "setup_logging",
    ("loglevel", "logfile", "format", "colorize"),
    "If anything is connected, celeriac leaves logging configuration to the receivers.",
)
after_setup_logger = Signal(
    "after_setup_logger",
    ("logger", "loglevel", "logfile", "format", "colorize"),
    "Sent after the global logger is set up, to augment its configuration.",
)
after_setup_task_logger = Signal(
    "after_setup_task_logger",
    ("logger", "loglevel", "logfile", "format", "colorize"),
    "Sent after the task logger is set up, to augment its configuration.",
)

# -- app and command signals -----------------------------------------------------------------

import_modules = Signal(
    "import_modules",
    (),
    "Sent when a program imports the modules of the imports and include settings.",
)
user_preload_options = Signal(
    "user_preload_options",
    ("app", "options"),
    "Sent after the command line parsed the user's preload options.",
)
