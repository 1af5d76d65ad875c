"""Serializers by name and content type, and content negotiation: :func:`dumps`, :func:`loads`.

The built-in serializers (json, msgpack, pickle, yaml) and what each round-trips are in
:mod:`celeriac._serializers`; :func:`register` adds one.

:func:`loads` is where trust is decided: the content type must be in the caller's ``accept``
set (:class:`ContentDisallowed` otherwise, so pickle is only reachable when the caller
accepts it), and any failure of a decoder is a :class:`DecodeError` that keeps the bytes;
nothing else escapes. Encoding failures are an :class:`EncodeError` naming the type and the
serializer.

Both functions are on the per-task hot path: lookups are plain dict reads, the json
encoder/decoder objects are built once, and each thread reuses one msgpack packer.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from celeriac._compression import PARAMETER, compress, decompress, split_content_type
from celeriac._serializers import (
    DEFAULT_SERIALIZER,
    JSONSerializer,
    MsgpackSerializer,
    PickleSerializer,
    Serializer,
    YAMLSerializer,
    decode_failed,
    encode_failed,
)
from celeriac.exceptions import (
    ContentDisallowed,
    DecodeError,
    EncodeError,
    ImproperlyConfigured,
    SerializationError,
)

__all__ = [
    "dumps",
    "get_serializer",
    "loads",
    "normalize_accept",
    "register",
    "serializer_names",
    "unregister",
]


# -- registry and negotiation ----------------------------------------------------------------

_BY_NAME: dict[str, Serializer] = {}
_BY_CONTENT_TYPE: dict[str, Serializer] = {}


def register(serializer: Serializer) -> None:
    """Make ``serializer`` available by its name and content type (replacing an older one)."""
    if not isinstance(serializer, Serializer):
        raise SerializationError(f"{serializer!r} lacks name, content_type, dumps or loads")
    old = _BY_NAME.get(serializer.name)
    if old is not None:
        _BY_CONTENT_TYPE.pop(old.content_type, None)
    _BY_NAME[serializer.name] = serializer
    _BY_CONTENT_TYPE[serializer.content_type] = serializer


def unregister(name: str) -> None:
    """Remove the serializer called ``name`` (a no-op when there is none)."""
    old = _BY_NAME.pop(name, None)
    if old is not None and _BY_CONTENT_TYPE.get(old.content_type) is old:
        del _BY_CONTENT_TYPE[old.content_type]


def serializer_names() -> list[str]:
    """The names of the registered serializers, sorted."""
    return sorted(_BY_NAME)


def get_serializer(name_or_content_type: str) -> Serializer:
    """The serializer with that name or content type; unknown ones list the known names."""
    serializer = _BY_NAME.get(name_or_content_type) or _BY_CONTENT_TYPE.get(name_or_content_type)
    if serializer is None:
        raise SerializationError(
            f"no serializer called {name_or_content_type!r}; known: {', '.join(serializer_names())}"
        )
    return serializer


def dumps(
    obj: Any, serializer: str = DEFAULT_SERIALIZER, compression: str | None = None
) -> tuple[str, bytes]:
    """Encode ``obj``: returns ``(content_type, payload)``; failures raise EncodeError.

    ``compression`` (gzip, zlib, bzip2, lzma) compresses the payload and says so in the
    content type (:mod:`celeriac._compression`); an unknown name is an EncodeError.
    """
    codec = get_serializer(serializer)
    try:
        content_type, payload = codec.content_type, codec.dumps(obj)
    except (SerializationError, ImproperlyConfigured):
        raise
    except Exception as exc:
        raise encode_failed(obj, codec.name, exc) from exc
    if not compression:
        return content_type, payload
    try:
        return compress(content_type, payload, compression)
    except ImproperlyConfigured as exc:
        raise EncodeError(str(exc)) from None


def loads(data: bytes, content_type: str, accept: frozenset[str]) -> Any:
    """Decode ``data`` of ``content_type`` if ``accept`` (a set of content types) allows it.

    Raises :class:`ContentDisallowed` for a content type not in ``accept`` and
    :class:`DecodeError` (keeping the bytes) for anything a decoder cannot read. A compressed
    body (``application/json;compression=gzip``) is decompressed first; ``accept`` is checked
    against the serializer part.
    """
    if PARAMETER in content_type:
        content_type, compression = split_content_type(content_type)
        if content_type in accept:
            data = decompress(data, compression or "")
    if content_type not in accept:
        raise ContentDisallowed(
            f"refusing to decode content of type {content_type!r}: "
            f"accept_content allows {', '.join(sorted(accept)) or 'nothing'}"
        )
    codec = _BY_CONTENT_TYPE.get(content_type)
    if codec is None:
        raise DecodeError(f"no serializer for content type {content_type!r}", bytes(data))
    try:
        return codec.loads(data)
    except (DecodeError, ImproperlyConfigured):
        raise
    except Exception as exc:
        raise decode_failed(codec.name, data, exc) from exc


def normalize_accept(names: Iterable[str]) -> frozenset[str]:
    """Serializer names or content types -> the set of content types; unknown ones raise."""
    if isinstance(names, str):
        names = [names]
    return frozenset(get_serializer(name).content_type for name in names)


for _builtin in (JSONSerializer(), MsgpackSerializer(), PickleSerializer(), YAMLSerializer()):
    register(_builtin)
del _builtin
