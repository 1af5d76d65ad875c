"""Message and result compression: Celery's ``compression`` names, carried in the content type.

``task_compression`` / ``result_compression`` (and ``apply_async(compression=...)``) name a
codec: ``gzip``, ``zlib`` or ``bzip2`` (Celery's names; ``bzip`` is an alias), or ``lzma``
(``xz``). The serialized body is compressed and its content type says how, as a MIME parameter:
``application/json;compression=gzip``. The content type is in the message header, so any worker
(and any client reading a result) decompresses without knowing the sender's settings; the hub
forwards the bytes unchanged. :func:`celeriac._serialization.loads` reads the parameter: the
``accept_content`` check applies to the serializer part, and an unknown compression is a
:class:`~celeriac.exceptions.DecodeError` naming the known ones.

Decompression is bounded: a body that would grow beyond :data:`MAX_DECOMPRESSED` bytes is
refused (a small "zip bomb" must not take a worker's memory).
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Callable
from typing import Any, Final

from celeriac.exceptions import DecodeError, ImproperlyConfigured

__all__ = [
    "MAX_DECOMPRESSED",
    "PARAMETER",
    "check_compression",
    "compress",
    "compression_names",
    "decompress",
    "split_content_type",
]

PARAMETER: Final = ";compression="
"""What joins a content type and its compression on the wire."""

MAX_DECOMPRESSED: Final = 256 * 1024 * 1024
"""The largest body decompression produces (bytes); more is refused as a DecodeError."""

_CHUNK: Final = 1024 * 1024


def _zlib_compress(data: bytes) -> bytes:
    return zlib.compress(data)


def _gzip_compress(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=31)  # the gzip container, as the gzip module writes it
    return packer.compress(data) + packer.flush()


def _bounded(make: Callable[[], Any]) -> Callable[[bytes], bytes]:
    """A decompressor that refuses to produce more than :data:`MAX_DECOMPRESSED` bytes."""

    def run(data: bytes) -> bytes:
        unpacker = make()
        out = unpacker.decompress(data, MAX_DECOMPRESSED + 1)
        if len(out) > MAX_DECOMPRESSED:
            raise ValueError(f"the body decompresses to more than {MAX_DECOMPRESSED} bytes")
        if not getattr(unpacker, "eof", True):
            raise ValueError("truncated compressed body")
        return bytes(out)

    return run


_CODECS: Final[dict[str, tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]]] = {
    "zlib": (_zlib_compress, _bounded(zlib.decompressobj)),
    "gzip": (_gzip_compress, _bounded(lambda: zlib.decompressobj(wbits=31))),
    "bzip2": (bz2.compress, _bounded(bz2.BZ2Decompressor)),
    "lzma": (lzma.compress, _bounded(lzma.LZMADecompressor)),
}
_ALIASES: Final = {"bzip": "bzip2", "xz": "lzma", "application/x-gzip": "gzip"}


def compression_names() -> list[str]:
    """The compression names accepted (without aliases), sorted."""
    return sorted(_CODECS)


def _canonical(name: str) -> str | None:
    name = name.strip().lower()
    name = _ALIASES.get(name, name)
    return name if name in _CODECS else None


def _unknown(name: object) -> str:
    return f"unknown compression {name!r}; known: {', '.join(compression_names())}"


def check_compression(value: Any, setting: str = "compression") -> str | None:
    """A compression name made canonical (None: no compression); else ImproperlyConfigured."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and (name := _canonical(value)) is not None:
        return name
    raise ImproperlyConfigured(f"{setting}: {_unknown(value)}")


def compress(content_type: str, body: bytes, compression: str) -> tuple[str, bytes]:
    """``(content_type;compression=name, compressed body)``; an unknown name raises."""
    name = check_compression(compression)
    if name is None:
        return content_type, body
    return f"{content_type}{PARAMETER}{name}", _CODECS[name][0](body)


def split_content_type(content_type: str) -> tuple[str, str | None]:
    """``(serializer content type, compression name or None)`` of a wire content type."""
    base, sep, name = content_type.partition(PARAMETER)
    return (base, name) if sep else (content_type, None)


def decompress(data: bytes, compression: str) -> bytes:
    """The body ``data`` decompressed; an unknown or failing compression is a DecodeError."""
    name = _canonical(compression)
    if name is None:
        raise DecodeError(f"cannot decompress: {_unknown(compression)}", bytes(data))
    try:
        return _CODECS[name][1](data)
    except Exception as exc:
        raise DecodeError(
            f"could not decompress {len(data)} bytes of {name}: {type(exc).__name__}: {exc}",
            bytes(data),
        ) from exc
