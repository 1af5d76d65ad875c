"""An untyped view of the frames: multipart messages to and from ``(command, header, body)``.

Peers speak through :mod:`celeriac.transport.protocol` (typed messages, every field checked).
This view stays for tools and tests that craft arbitrary or deliberately malformed headers, or
look at raw maps; it shares the protocol's tag and commands.

How it works
------------
Every celeriac message is a list of frames::

    [TAG] [command] [header] [body] [extra ...]

* ``TAG`` is ``b"CLR3"``: the protocol name and version; anything else is rejected.
* ``command`` is a short ASCII word from :data:`COMMANDS` (``PUB``, ``TASK``, ``DONE``...).
* ``header`` is always a msgpack map with string keys: routing and control fields.
* ``body`` is opaque bytes in the message's content type (the task's args and kwargs, a
  result...). The hub never decodes a body; it stores and forwards the bytes it was given.
* ``extra`` frames are command-specific (a delivery's metadata on ``TASK``).

On a ROUTER socket the peer's identity comes first; :func:`split_identity` takes it off.

:func:`decode` raises :class:`~celeriac.exceptions.FrameError` (which keeps the raw frames) for
every malformed input and nothing else: that is the property the fuzz tests hold it to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import msgpack

from celeriac import _protocol, _wire
from celeriac.exceptions import FrameError

__all__ = [
    "COMMANDS",
    "MAX_HEADER_BYTES",
    "TAG",
    "Message",
    "decode",
    "decode_header",
    "encode",
    "encode_header",
    "split_identity",
]

TAG: Final = _protocol.TAG
#: A header larger than this is refused: headers carry ids and routing, never payloads.
MAX_HEADER_BYTES: Final = _wire.MAX_HEADER_BYTES

#: Every command of the protocol (see :mod:`celeriac.transport.protocol`).
COMMANDS: Final[frozenset[bytes]] = _wire.COMMANDS

_packer = msgpack.Packer(use_bin_type=True)


@dataclass(frozen=True, slots=True)
class Message:
    """One decoded message: a command, its header map, its opaque body and any extra frames."""

    command: bytes
    header: dict[str, Any]
    body: bytes
    extra: tuple[bytes, ...] = ()
    raw_header: bytes = b""


def encode_header(header: dict[str, Any]) -> bytes:
    """Pack a header map with msgpack."""
    return _packer.pack(header)  # type: ignore[no-any-return]


def decode_header(data: bytes, frames: list[bytes] | None = None) -> dict[str, Any]:
    """Unpack a header map; anything but a map with string keys is a :class:`FrameError`."""
    if len(data) > MAX_HEADER_BYTES:
        raise FrameError(f"header of {len(data)} bytes exceeds {MAX_HEADER_BYTES}", frames)
    try:
        header = msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True)
    except Exception as exc:  # msgpack raises many types for bad input
        raise FrameError(f"header is not valid msgpack: {exc}", frames) from None
    if not isinstance(header, dict):
        raise FrameError(f"header is a {type(header).__name__}, not a map", frames)
    return header


def encode(command: bytes, header: dict[str, Any], body: bytes = b"", *extra: bytes) -> list[bytes]:
    """Build the frames of one message (without a ROUTER identity)."""
    return [TAG, command, _packer.pack(header), body, *extra]


def decode(frames: list[bytes]) -> Message:
    """Parse the frames of one message; malformed input raises :class:`FrameError` only."""
    if len(frames) < 4:
        raise FrameError(f"expected at least 4 frames, got {len(frames)}", frames)
    tag, command, raw_header, body, *extra = frames
    if tag != TAG:
        raise FrameError(f"bad protocol tag {bytes(tag[:16])!r}, expected {TAG!r}", frames)
    if command not in COMMANDS:
        raise FrameError(f"unknown command {bytes(command[:16])!r}", frames)
    header = decode_header(raw_header, frames)
    return Message(command, header, body, tuple(extra), raw_header)


def split_identity(frames: list[bytes]) -> tuple[bytes, list[bytes]]:
    """Take a ROUTER socket's identity frame off a received message."""
    if not frames:
        raise FrameError("empty message", frames)
    return frames[0], frames[1:]
