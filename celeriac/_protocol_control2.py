"""The messages of long control replies (issue 9, second pass): frozen dataclasses.

How it works
------------
A control reply's body travels in one header, and a header is at most 64 KiB. A longer answer
(``revoked`` with thousands of ids, ``conf``, a big ``active`` list) is cut into pieces: every
piece but the last travels as :class:`ControlReplyPart`, the last as the usual
:class:`~celeriac._protocol_control.ControlReply`. The hub relays the parts in order, as it
relays replies (they come over the same connection, so they stay in order), and the requester
joins the parts of a node before it reads the final reply. A reply of one piece is just a
``ControlReply``: nothing changes for short answers. See
:func:`celeriac._wire_control2.reply_messages`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

__all__ = ["ControlReplyPart"]


@dataclass(frozen=True, slots=True)
class ControlReplyPart:
    """node -> hub -> client: a leading piece of ``node``'s answer to ``rid`` (the answer
    ends with a ``ControlReply`` whose body is the last piece)."""

    COMMAND: ClassVar[bytes] = b"CTLPART"
    rid: str
    node: str
    body: bytes = b""
