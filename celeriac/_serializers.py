"""The built-in serializers of message bodies and results, and what each round-trips.

Four serializers are built in, by name and content type:

========  ==================================  ==============================================
json      ``application/json`` (the default)  stdlib json, compact, UTF-8, non-ASCII kept
msgpack   ``application/x-msgpack``           binary, ``bytes`` native
pickle    ``application/x-python-serialize``  any picklable object; trusted peers only
yaml      ``application/x-yaml``              PyYAML ``safe_dump``/``safe_load`` (installed lazily)
========  ==================================  ==============================================

json and msgpack round-trip ``datetime`` (naive and aware, microseconds kept), ``date``,
``time``, ``Decimal``, ``UUID`` and ``bytes`` exactly. json writes them as tagged objects
``{"__type__": "datetime", "__value__": "2024-01-01T10:00:00+00:00"}`` (kombu's shape; bytes
are base64), so a dict of exactly those two keys with a known ``__type__`` is reserved.
msgpack uses the extension types ``EXT_*`` below; integers beyond 64 bits travel as an
extension too. What does not come back identical: tuples come back as lists (both), json
turns integer dict keys into strings, and ``bytearray``/``memoryview`` come back as
``bytes``. Sets and frozensets are refused with an :class:`EncodeError` (pass a list: a set has
no order to keep, and its items may not be hashable once decoded).

They are registered by name and content type in :mod:`celeriac._serialization`, which decides
what a reader accepts.
"""

from __future__ import annotations

import base64
import datetime
import json
import pickle
import threading
import uuid
from collections.abc import Callable
from decimal import Decimal
from types import ModuleType
from typing import Any, Final, Protocol, runtime_checkable

import msgpack

from celeriac.exceptions import DecodeError, EncodeError, ImproperlyConfigured

__all__ = [
    "DEFAULT_SERIALIZER",
    "EXT_BIGINT",
    "EXT_DATE",
    "EXT_DATETIME",
    "EXT_DECIMAL",
    "EXT_TIME",
    "EXT_UUID",
    "JSON_CONTENT_TYPE",
    "MSGPACK_CONTENT_TYPE",
    "PICKLE_CONTENT_TYPE",
    "YAML_CONTENT_TYPE",
    "JSONSerializer",
    "MsgpackSerializer",
    "PickleSerializer",
    "Serializer",
    "YAMLSerializer",
    "decode_failed",
    "encode_failed",
    "unencodable",
]

DEFAULT_SERIALIZER: Final = "json"
JSON_CONTENT_TYPE: Final = "application/json"
MSGPACK_CONTENT_TYPE: Final = "application/x-msgpack"
PICKLE_CONTENT_TYPE: Final = "application/x-python-serialize"
YAML_CONTENT_TYPE: Final = "application/x-yaml"

EXT_DATETIME: Final = 1
"""msgpack extension: ``datetime.isoformat()`` as UTF-8."""
EXT_DATE: Final = 2
"""msgpack extension: ``date.isoformat()`` as UTF-8."""
EXT_TIME: Final = 3
"""msgpack extension: ``time.isoformat()`` as UTF-8."""
EXT_DECIMAL: Final = 4
"""msgpack extension: ``str(Decimal)`` as UTF-8."""
EXT_UUID: Final = 5
"""msgpack extension: the 16 bytes of a UUID."""
EXT_BIGINT: Final = 6
"""msgpack extension: an integer outside 64 bits, in decimal, as UTF-8."""


@runtime_checkable
class Serializer(Protocol):
    """Turns values into bytes and back; ``content_type`` names the format on the wire."""

    name: str
    content_type: str

    def dumps(self, obj: Any) -> bytes:
        """Encode ``obj``; raise :class:`EncodeError` (or any error) when it cannot."""
        ...

    def loads(self, data: bytes) -> Any:
        """Decode ``data``; raise :class:`DecodeError` (or any error) when it cannot."""
        ...


def unencodable(obj: object, serializer: str) -> EncodeError:
    """The error for an object ``serializer`` has no encoding for (a set says: pass a list)."""
    kind = type(obj)
    if isinstance(obj, set | frozenset):
        return EncodeError(
            f"the {serializer} serializer does not encode {kind.__name__}s: pass a list "
            "(sorted(...) for a stable order)"
        )
    return EncodeError(
        f"the {serializer} serializer cannot encode objects of type "
        f"{kind.__module__}.{kind.__qualname__}"
    )


def encode_failed(obj: object, serializer: str, exc: Exception) -> EncodeError:
    """The error for an encoder that raised ``exc`` on ``obj``."""
    return EncodeError(
        f"the {serializer} serializer could not encode a {type(obj).__qualname__}: {exc}"
    )


def decode_failed(name: str, data: bytes, exc: BaseException) -> DecodeError:
    """The error for a decoder that raised ``exc`` on ``data`` (the bytes are kept)."""
    return DecodeError(
        f"the {name} serializer could not decode {len(data)} bytes: {type(exc).__name__}: {exc}",
        bytes(data),
    )


# -- json ------------------------------------------------------------------------------------

_FROM_TAG: Final[dict[str, Callable[[Any], Any]]] = {
    "datetime": datetime.datetime.fromisoformat,
    "date": datetime.date.fromisoformat,
    "time": datetime.time.fromisoformat,
    "decimal": Decimal,
    "uuid": uuid.UUID,
    "bytes": lambda text: base64.b64decode(text, validate=True),
}


def _tag(kind: str, value: str) -> dict[str, str]:
    return {"__type__": kind, "__value__": value}


def _json_default(obj: Any) -> Any:
    """Tag the non-JSON types json round-trips (called by the encoder for those only)."""
    if isinstance(obj, datetime.datetime):
        return _tag("datetime", obj.isoformat())
    if isinstance(obj, datetime.date):
        return _tag("date", obj.isoformat())
    if isinstance(obj, datetime.time):
        return _tag("time", obj.isoformat())
    if isinstance(obj, Decimal):
        return _tag("decimal", str(obj))
    if isinstance(obj, uuid.UUID):
        return _tag("uuid", str(obj))
    if isinstance(obj, bytes | bytearray | memoryview):
        return _tag("bytes", base64.b64encode(obj).decode("ascii"))
    raise unencodable(obj, "json")


#: The key of every tagged object (see :func:`_tag`), as JSON text spells it.
_TAG_KEY: Final = '"__type__"'


def _json_object_hook(obj: dict[str, Any]) -> Any:
    """Turn a tagged object back into its value; any other dict is returned as is."""
    if "__type__" not in obj or len(obj) != 2 or "__value__" not in obj:
        return obj
    decode = _FROM_TAG.get(obj["__type__"])  # an unhashable tag raises: a decode error
    return obj if decode is None else decode(obj["__value__"])


class JSONSerializer:
    """stdlib json, compact separators, UTF-8, with tagged extra types."""

    name: str = "json"
    content_type: str = JSON_CONTENT_TYPE

    def __init__(self) -> None:
        self._encoder = json.JSONEncoder(
            ensure_ascii=False, separators=(",", ":"), default=_json_default
        )
        self._decoder = json.JSONDecoder(object_hook=_json_object_hook)
        #: The decoder's scanner (the C one when present); the stubs do not declare it.
        self._scan: Callable[[str, int], tuple[Any, int]] = self._decoder.scan_once  # type: ignore[attr-defined]
        #: The same scanner without the hook: for a text that cannot hold a tagged object.
        self._scan_plain: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
        enc = self._encoder
        #: c_make_encoder's arguments after ``markers``, as JSONEncoder.iterencode passes them.
        self._c_args = (
            enc.default,
            json.encoder.encode_basestring,  # ensure_ascii=False's (the C one when present)
            enc.indent,
            enc.key_separator,
            enc.item_separator,
            enc.sort_keys,
            enc.skipkeys,
            enc.allow_nan,
        )

    def dumps(self, obj: Any) -> bytes:
        """Encode ``obj`` as UTF-8 JSON."""
        try:
            if _c_make_encoder is not None:
                # JSONEncoder.encode's own one-shot path without its two Python frames and
                # closure (~1 µs on every send, issue 18); the same bytes. A fresh markers
                # dict per call: the circular check must not be shared between threads.
                return "".join(_c_make_encoder({}, *self._c_args)(obj, 0)).encode("utf-8")
            return self._encoder.encode(obj).encode("utf-8")
        except EncodeError:
            raise
        except (TypeError, ValueError, OverflowError, RecursionError) as exc:
            raise encode_failed(obj, self.name, exc) from exc

    def loads(self, data: bytes) -> Any:
        """Decode UTF-8 JSON bytes."""
        try:
            text = str(data, "utf-8")
            try:
                # JSONDecoder.decode without its two whitespace matches and Python frames
                # (~1 µs per argument or result decode, issue 18): the C scanner alone,
                # kept when it read the whole text; anything else (whitespace around the
                # value, an error) goes the documented way. A text without the tag's key
                # (spelled plainly: only a \u escape could spell it otherwise) has no tagged
                # object: no hook is called for each of its maps (a task's arguments have
                # two, issue 18).
                plain = _TAG_KEY not in text and "\\u" not in text
                value, end = (self._scan_plain if plain else self._scan)(text, 0)
            except StopIteration:
                end = -1
            return value if end == len(text) else self._decoder.decode(text)
        except Exception as exc:
            raise decode_failed(self.name, data, exc) from exc


#: The C encoder factory behind JSONEncoder's one-shot path (None on a Python without it).
_c_make_encoder: Final[Any] = getattr(json.encoder, "c_make_encoder", None)


# -- msgpack ---------------------------------------------------------------------------------


def _msgpack_default(obj: Any) -> Any:
    """Extension types for the values msgpack round-trips beyond its own."""
    if isinstance(obj, datetime.datetime):
        return msgpack.ExtType(EXT_DATETIME, obj.isoformat().encode())
    if isinstance(obj, datetime.date):
        return msgpack.ExtType(EXT_DATE, obj.isoformat().encode())
    if isinstance(obj, datetime.time):
        return msgpack.ExtType(EXT_TIME, obj.isoformat().encode())
    if isinstance(obj, Decimal):
        return msgpack.ExtType(EXT_DECIMAL, str(obj).encode())
    if isinstance(obj, uuid.UUID):
        return msgpack.ExtType(EXT_UUID, obj.bytes)
    if isinstance(obj, int):  # only called for integers outside 64 bits
        return msgpack.ExtType(EXT_BIGINT, str(obj).encode())
    raise unencodable(obj, "msgpack")


_FROM_EXT: Final[dict[int, Callable[[bytes], Any]]] = {
    EXT_DATETIME: lambda b: datetime.datetime.fromisoformat(b.decode()),
    EXT_DATE: lambda b: datetime.date.fromisoformat(b.decode()),
    EXT_TIME: lambda b: datetime.time.fromisoformat(b.decode()),
    EXT_DECIMAL: lambda b: Decimal(b.decode()),
    EXT_UUID: lambda b: uuid.UUID(bytes=b),
    EXT_BIGINT: lambda b: int(b.decode()),
}


def _msgpack_ext_hook(code: int, payload: bytes) -> Any:
    """Decode one of our extension types (called only for extension values)."""
    decode = _FROM_EXT.get(code)
    if decode is None:
        raise ValueError(f"unknown msgpack extension type {code}")
    return decode(payload)


class MsgpackSerializer:
    """msgpack with ``use_bin_type=True``; one packer per thread."""

    name: str = "msgpack"
    content_type: str = MSGPACK_CONTENT_TYPE

    def __init__(self) -> None:
        self._local = threading.local()

    def _packer(self) -> Any:
        packer = getattr(self._local, "packer", None)
        if packer is None:
            packer = msgpack.Packer(default=_msgpack_default, use_bin_type=True)
            self._local.packer = packer
        return packer

    def dumps(self, obj: Any) -> bytes:
        """Encode ``obj`` as msgpack."""
        packer = self._packer()
        try:
            return packer.pack(obj)  # type: ignore[no-any-return]
        except EncodeError:
            packer.reset()
            raise
        except (TypeError, ValueError, OverflowError, RecursionError) as exc:
            packer.reset()
            raise encode_failed(obj, self.name, exc) from exc

    def loads(self, data: bytes) -> Any:
        """Decode msgpack bytes (str keys and values as str, any hashable map key)."""
        try:
            return msgpack.unpackb(
                data, raw=False, strict_map_key=False, ext_hook=_msgpack_ext_hook
            )
        except Exception as exc:
            raise decode_failed(self.name, data, exc) from exc


# -- pickle ----------------------------------------------------------------------------------


class PickleSerializer:
    """pickle, protocol 5. Decoding runs arbitrary code: accept it only from trusted peers."""

    name: str = "pickle"
    content_type: str = PICKLE_CONTENT_TYPE

    def dumps(self, obj: Any) -> bytes:
        """Pickle ``obj``."""
        try:
            return pickle.dumps(obj, protocol=5)
        except Exception as exc:
            raise encode_failed(obj, self.name, exc) from exc

    def loads(self, data: bytes) -> Any:
        """Unpickle ``data``."""
        try:
            return pickle.loads(data)
        except Exception as exc:
            raise decode_failed(self.name, data, exc) from exc


# -- yaml ------------------------------------------------------------------------------------


def _import_yaml() -> ModuleType:
    try:
        import yaml  # noqa: PLC0415 - optional dependency, imported on first use
    except ImportError:
        raise ImproperlyConfigured(
            "the yaml serializer needs PyYAML: pip install 'celeriac[yaml]'"
        ) from None
    return yaml


class YAMLSerializer:
    """PyYAML ``safe_dump``/``safe_load`` only (tuples are written as lists)."""

    name: str = "yaml"
    content_type: str = YAML_CONTENT_TYPE

    def __init__(self) -> None:
        self._dumper: Any = None

    def _safe_dumper(self) -> Any:
        if self._dumper is None:
            yaml = _import_yaml()

            class _Dumper(yaml.SafeDumper):  # type: ignore[misc, name-defined]
                """SafeDumper that writes tuples as sequences."""

            _Dumper.add_representer(tuple, yaml.SafeDumper.represent_list)
            self._dumper = _Dumper
        return self._dumper

    def dumps(self, obj: Any) -> bytes:
        """Encode ``obj`` as UTF-8 YAML."""
        dumper = self._safe_dumper()
        yaml = _import_yaml()
        try:
            text: str = yaml.dump(obj, Dumper=dumper, allow_unicode=True, sort_keys=False)
        except Exception as exc:
            raise encode_failed(obj, self.name, exc) from exc
        return text.encode("utf-8")

    def loads(self, data: bytes) -> Any:
        """Decode YAML with ``safe_load``."""
        yaml = _import_yaml()
        try:
            return yaml.safe_load(bytes(data))
        except Exception as exc:
            raise decode_failed(self.name, data, exc) from exc
