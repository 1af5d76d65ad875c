"""The wire protocol: one frozen dataclass per command, and the codec (sans-IO).

How it works
------------
Every celeriac message is a list of ZeroMQ frames::

    [TAG] [command] [header] [body] ([header] [body] ...)
    [TAG] [command] [packed]      (an item command's groups, merged: one msgpack array)

* ``TAG`` (``b"CLR3"``) names the protocol and its version; anything else is refused.
* ``command`` is a short ASCII word (``PUB``, ``TASK``, ``DONE``...); each has its dataclass
  here (:class:`Publish`, :class:`Deliver`, :class:`Done`...), with a ``COMMAND`` class attribute.
* ``header`` is a msgpack map with string keys: ids, routing, credit, delivery and failure
  info, declarations. ``body`` is opaque bytes in the message's content type (a task's args, a
  result); the hub never decodes a body, it stores and forwards the bytes it was given.
* Control commands (``HELLO``, ``DECLARE``, ``CRED``, ``CONF``, ``WAIT``, ``PING``...) are one
  group: a header and an empty body. Item commands (``PUB``, ``TASK``, ``DONE``, ``RES``,
  ``NACK``, ``START``, ``REJ``) are one group per item, so one message may carry many
  publishes, deliveries, outcomes or refusals. A ``TASK`` group has a third frame, the delivery
  info (queue, delivery count, tag). Messages merged for one send (``next_batch``) leave with
  their groups' frames packed into one frame, a msgpack array of binaries: a frame sent and
  received costs a GIL hand-off in pyzmq, a packed array one encode and decode in C.
* A decoded :class:`TaskMessage` or :class:`ResultMessage` keeps its header bytes (``raw``):
  encoding it again reuses them, so the hub stores and forwards a task without re-encoding.

:func:`decode` checks every field (ids and names are strings of at most :data:`MAX_NAME`
characters, counts integers in ``0..MAX_COUNT``, times finite numbers, priorities in
``0..255``, lists where lists belong) and raises :class:`~celeriac.exceptions.FrameError` (with
the raw frames) for anything malformed, and nothing else: the property tests hold it to that.
Unknown header keys are ignored, so a newer peer may add optional fields.

A task's path, client to worker and back
-----------------------------------------
``App.send_task`` / ``Task.apply_async`` (one :class:`~celeriac._call_options.SendOptions`) ->
:func:`celeriac._compose.compose` makes a :class:`TaskMessage` -> ``runtime/client.py``
``Client.publish`` asks its sans-IO session (``transport/session/client.py``
``ClientSession.publish``) and sends the ``Publish`` it returns -> the hub's loop
(``transport/hubserver.py``) hands the frames to ``HubState.handle``
(``transport/hub/state.py``), which decodes and dispatches: ``hub/queues.py`` routes, stores
and later sends ``Deliver`` within the worker's credit, after the commit the hub sends
``Confirm`` -> the worker's connection (``runtime/worker.py``) decodes the delivery, a task
type's actor may hold it (rate limit, cap), a slot runs it with
``actors/execution.py`` ``TaskExecutor.execute(delivery) -> TaskOutcome`` ->
``runtime/outcomes.py`` makes the ``Done`` (or ``Reject`` to requeue) -> ``hub/lifecycle.py``
acknowledges it and ``hub/results.py`` stores the result and pushes a ``Result`` to the waiting
client -> ``Client`` hands it to ``AsyncResult.get()``.

The message types live in the core (:mod:`celeriac._protocol`) and the codec in
:mod:`celeriac._wire`, the one module that spells wire field names: the core composes and reads
these messages but must not import the transport at import time (DESIGN.md section 6). This
module is their home in the transport.
"""

from __future__ import annotations

from celeriac._protocol import *  # noqa: F403 - the facade re-exports the message types
from celeriac._protocol import __all__ as _types
from celeriac._wire import *  # noqa: F403 - and the codec
from celeriac._wire import __all__ as _codec

__all__ = [*_types, *_codec]  # noqa: PLE0604 - the names come from the core modules
