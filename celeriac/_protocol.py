"""The messages of the wire protocol as typed values: one frozen dataclass per command.

These are pure values (no sockets, no msgpack): the core composes a :class:`TaskMessage`, the
transport encodes and decodes them (:mod:`celeriac._wire`, facade
:mod:`celeriac.transport.protocol`, which explains the frame layout). They live in the core
because the core makes and reads them (a publish, a result, declarations) and must not import
the transport at import time (DESIGN.md section 6); the wire spelling of every field lives in
:mod:`celeriac._wire` only.

This module is their face: the commands live in sibling modules by job and are re-exported
here, with :data:`Message`, the union of them all:

- :mod:`celeriac._protocol_session`: hello, welcome, declarations, heartbeats, bye, errors;
- :mod:`celeriac._protocol_tasks`: the commands that carry tasks and outcomes (and batching);
- :mod:`celeriac._protocol_parts`: the parts they carry (tasks, deliveries, results...);
- :mod:`celeriac._protocol_limits`: the bounds of names, lists and counts;
- :mod:`celeriac._protocol_beat`, ``_protocol_compat``, ``_protocol_control`` (and
  ``_protocol_control2``), ``_protocol_canvas``, ``_protocol_keyed``: beat, Celery's
  introspection, control and events, the canvas lane, keyed actors and locks.
"""

from __future__ import annotations

from celeriac._protocol_beat import BeatGrant, BeatLease, BeatSave
from celeriac._protocol_canvas import RevokeHeld  # the canvas lane's messages
from celeriac._protocol_compat import MAX_ARGS, MAX_META, InfoQuery, TaskInfo, TaskState
from celeriac._protocol_control import (  # control and events (issue 9)
    ControlCommand,
    ControlJoin,
    ControlReply,
    ControlRequest,
    ControlSent,
    EventBatch,
)
from celeriac._protocol_control2 import ControlReplyPart
from celeriac._protocol_keyed import (  # keyed actors and locks (issue 12)
    KEYED_PREFIX,
    KeyedActivate,
    KeyedIdle,
    KeyedSave,
    KeyedStop,
    LockAcquire,
    LockQuery,
    LockRelease,
    host_queue,
    is_keyed_queue,
    keyed_queue,
    split_keyed_queue,
)
from celeriac._protocol_limits import (
    LIST_BYTES,
    MAX_COUNT,
    MAX_ITEMS,
    MAX_NAME,
    MAX_PRIORITY,
    MAX_TEXT,
    TAG,
    id_chunks,
)
from celeriac._protocol_parts import (
    Binding,
    DeadLetter,
    Delivery,
    ExchangeDecl,
    FailureInfo,
    QueueDecl,
    Refusal,
    Rejection,
    ResultMessage,
    TaskMessage,
    TaskRef,
    WorkerEvent,
)
from celeriac._protocol_session import (
    Bye,
    Declare,
    Error,
    Hello,
    OnLost,
    Ping,
    Pong,
    Role,
    Welcome,
)
from celeriac._protocol_tasks import (
    Confirm,
    Consume,
    Credit,
    Deliver,
    Done,
    Forget,
    Nack,
    Publish,
    Reject,
    Reply,
    Result,
    Revoke,
    Start,
    Stat,
    Wait,
)

__all__ = [
    "KEYED_PREFIX",
    "LIST_BYTES",
    "MAX_ARGS",
    "MAX_COUNT",
    "MAX_ITEMS",
    "MAX_META",
    "MAX_NAME",
    "MAX_PRIORITY",
    "MAX_TEXT",
    "TAG",
    "BeatGrant",
    "BeatLease",
    "BeatSave",
    "Binding",
    "Bye",
    "Confirm",
    "Consume",
    "ControlCommand",
    "ControlJoin",
    "ControlReply",
    "ControlReplyPart",
    "ControlRequest",
    "ControlSent",
    "Credit",
    "DeadLetter",
    "Declare",
    "Deliver",
    "Delivery",
    "Done",
    "Error",
    "EventBatch",
    "ExchangeDecl",
    "FailureInfo",
    "Forget",
    "Hello",
    "InfoQuery",
    "KeyedActivate",
    "KeyedIdle",
    "KeyedSave",
    "KeyedStop",
    "LockAcquire",
    "LockQuery",
    "LockRelease",
    "Message",
    "Nack",
    "OnLost",
    "Ping",
    "Pong",
    "Publish",
    "QueueDecl",
    "Refusal",
    "Reject",
    "Rejection",
    "Reply",
    "Result",
    "ResultMessage",
    "Revoke",
    "RevokeHeld",
    "Role",
    "Start",
    "Stat",
    "TaskInfo",
    "TaskMessage",
    "TaskRef",
    "TaskState",
    "Wait",
    "Welcome",
    "WorkerEvent",
    "host_queue",
    "id_chunks",
    "is_keyed_queue",
    "keyed_queue",
    "split_keyed_queue",
]

Message = (
    Hello
    | Declare
    | Welcome
    | Publish
    | Confirm
    | Nack
    | Deliver
    | Done
    | Credit
    | Start
    | Reject
    | Consume
    | Wait
    | Result
    | Stat
    | Reply
    | Forget
    | Revoke
    | RevokeHeld
    | Ping
    | Pong
    | Bye
    | Error
    | BeatLease
    | BeatSave
    | BeatGrant
    | TaskState
    | InfoQuery
    | TaskInfo
    | ControlJoin
    | ControlRequest
    | ControlSent
    | ControlCommand
    | ControlReply
    | ControlReplyPart
    | EventBatch
    | KeyedActivate
    | KeyedSave
    | KeyedIdle
    | KeyedStop
    | LockAcquire
    | LockRelease
    | LockQuery
)
