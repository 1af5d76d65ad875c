"""Serializers and content negotiation: exact round trips, refusals, decoders that fail one way."""

from __future__ import annotations

import datetime
import decimal
import json
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from celeriac import _serializers as ser
from celeriac._serialization import (
    dumps,
    get_serializer,
    loads,
    normalize_accept,
    register,
    unregister,
)
from celeriac._serializers import (
    JSON_CONTENT_TYPE,
    MSGPACK_CONTENT_TYPE,
    PICKLE_CONTENT_TYPE,
    YAML_CONTENT_TYPE,
)
from celeriac.exceptions import (
    ContentDisallowed,
    DecodeError,
    EncodeError,
    ImproperlyConfigured,
    SerializationError,
)

ALL = frozenset({JSON_CONTENT_TYPE, MSGPACK_CONTENT_TYPE, PICKLE_CONTENT_TYPE, YAML_CONTENT_TYPE})

_offsets = st.integers(min_value=-1439, max_value=1439).map(
    lambda minutes: datetime.timezone(datetime.timedelta(minutes=minutes))
)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary()
    | st.datetimes()
    | st.datetimes(timezones=_offsets)
    | st.dates()
    | st.times()
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.uuids()
)
_values = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=25,
)


def assert_same(decoded: Any, original: Any) -> None:
    """Equal values of the same types, offsets and Decimal exponents included."""
    assert type(decoded) is type(original), (decoded, original)
    if isinstance(original, dict):
        assert list(decoded) == list(original)
        for key, value in original.items():
            assert_same(decoded[key], value)
    elif isinstance(original, list):
        assert len(decoded) == len(original)
        for got, want in zip(decoded, original, strict=True):
            assert_same(got, want)
    elif isinstance(original, decimal.Decimal):
        assert str(decoded) == str(original)
    elif isinstance(original, datetime.datetime | datetime.time):
        assert decoded == original
        assert decoded.utcoffset() == original.utcoffset()
        assert decoded.replace(tzinfo=None) == original.replace(tzinfo=None)
    else:
        assert decoded == original


# -- round trips -------------------------------------------------------------------------------


@pytest.mark.property
@settings(max_examples=300)
@given(value=_values)
def test_json_round_trips_exactly(value: Any) -> None:
    """json gives back every supported type exactly, in nested lists and dicts."""
    content_type, payload = dumps(value, "json")
    assert content_type == JSON_CONTENT_TYPE
    assert_same(loads(payload, content_type, ALL), value)


@pytest.mark.property
@settings(max_examples=300)
@given(value=_values)
def test_msgpack_round_trips_exactly(value: Any) -> None:
    """msgpack gives back every supported type exactly, big integers included."""
    content_type, payload = dumps(value, "msgpack")
    assert content_type == MSGPACK_CONTENT_TYPE
    assert_same(loads(payload, content_type, ALL), value)


@pytest.mark.parametrize("name", ["json", "msgpack", "pickle", "yaml"])
def test_every_serializer_round_trips_plain_data(name: str) -> None:
    """All four serializers round-trip nested plain data with non-ASCII text."""
    value = {"args": [1, 2.5, "héllo ✓", None, True], "kwargs": {"k": [{"deep": False}]}}
    content_type, payload = dumps(value, name)
    assert loads(payload, content_type, ALL) == value


def test_tuples_come_back_as_lists() -> None:
    """Tuples are encoded as arrays and decoded as lists (documented)."""
    for name in ("json", "msgpack", "yaml"):
        content_type, payload = dumps({"t": (1, (2, 3))}, name)
        assert loads(payload, content_type, ALL) == {"t": [1, [2, 3]]}


def test_json_is_compact_utf8_with_tagged_types() -> None:
    """json output is compact UTF-8 with kombu-style tagged objects."""
    when = datetime.datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=datetime.UTC)
    _, payload = dumps({"é": when, "b": b"\x00\xff"}, "json")
    assert payload.decode("utf-8") == (
        '{"é":{"__type__":"datetime","__value__":"2024-05-01T12:00:00.123456+00:00"},'
        '"b":{"__type__":"bytes","__value__":"AP8="}}'
    )


def test_json_leaves_unknown_tags_and_other_dicts_alone() -> None:
    """A dict that merely looks tagged, with an unknown type, stays a dict."""
    value = {"__type__": "mine", "__value__": 1}
    assert loads(json.dumps(value).encode(), JSON_CONTENT_TYPE, ALL) == value


def test_json_tags_are_read_however_the_key_is_spelled() -> None:
    """A text without the tag's key spelled plainly is read without the tag hook; a key
    spelled with escapes (another encoder's ``ensure_ascii``) is still a tag."""
    when = "2024-05-01T12:00:00+00:00"
    expected = [datetime.datetime(2024, 5, 1, 12, tzinfo=datetime.UTC), {"a": [1, {}]}]
    for key in ("__type__", "\\u005f\\u005ftype__", "__typ\\u0065__"):
        data = f'[{{"{key}":"datetime","__value__":"{when}"}},{{"a":[1,{{}}]}}]'.encode()
        assert loads(data, JSON_CONTENT_TYPE, ALL) == expected
    assert loads(b'[{"a":"__type__"}, {}]', JSON_CONTENT_TYPE, ALL) == [{"a": "__type__"}, {}]


def test_bytes_like_values_come_back_as_bytes() -> None:
    """bytearray and memoryview are encoded as bytes."""
    for name in ("json", "msgpack"):
        content_type, payload = dumps([bytearray(b"ab"), memoryview(b"cd")], name)
        assert loads(payload, content_type, ALL) == [b"ab", b"cd"]


# -- encoding failures -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["json", "msgpack"])
def test_sets_are_refused_with_a_clear_message(name: str) -> None:
    """Sets are an EncodeError that says to pass a list."""
    with pytest.raises(EncodeError, match=rf"the {name} serializer does not encode sets: pass a"):
        dumps({"s": {1, 2}}, name)


@pytest.mark.parametrize("name", ["json", "msgpack", "pickle", "yaml"])
def test_unencodable_values_name_the_type_and_serializer(name: str) -> None:
    """An object a serializer cannot encode is an EncodeError naming both."""

    def local_function() -> None:
        """Cannot be pickled, encoded or dumped."""

    with pytest.raises(EncodeError, match=name) as info:
        dumps({"f": local_function}, name)
    assert "function" in str(info.value)


def test_msgpack_packer_is_usable_after_a_failure() -> None:
    """A failed encode leaves nothing behind in the reused packer."""
    with pytest.raises(EncodeError):
        dumps([1, 2, object()], "msgpack")
    content_type, payload = dumps([3], "msgpack")
    assert loads(payload, content_type, ALL) == [3]


def test_json_refuses_lone_surrogates_and_bad_keys() -> None:
    """Encoding errors inside the json encoder become EncodeError."""
    with pytest.raises(EncodeError):
        dumps("\ud800", "json")
    with pytest.raises(EncodeError):
        dumps({(1, 2): 3}, "json")


# -- decoding and negotiation ------------------------------------------------------------------


#: Pickle is left out: random bytes can make ``pickle.loads`` allocate gigabytes (7 bytes did,
#: a huge memo index) or run code. That is why pickle is refused unless ``accept_content``
#: names it, which only makes sense between trusted peers.
SAFE_DECODERS = sorted(ALL - {PICKLE_CONTENT_TYPE})


@pytest.mark.property
@settings(max_examples=200)
@given(data=st.binary(max_size=200), content_type=st.sampled_from(SAFE_DECODERS))
def test_random_bytes_only_ever_raise_decode_error(data: bytes, content_type: str) -> None:
    """Any bytes into any safe decoder either decode or raise DecodeError keeping the bytes."""
    try:
        loads(data, content_type, ALL)
    except DecodeError as exc:
        error: DecodeError | None = exc
    else:
        error = None
    assert error is None or error.data == data


@pytest.mark.property
@given(data=st.binary(max_size=100), content_type=st.text(max_size=20))
def test_unaccepted_content_types_raise_content_disallowed(data: bytes, content_type: str) -> None:
    """A content type outside the accept set is refused before any decoder runs."""
    accept = frozenset({JSON_CONTENT_TYPE})
    if content_type == JSON_CONTENT_TYPE:
        return
    with pytest.raises(ContentDisallowed):
        loads(data, content_type, accept)


def test_pickle_is_refused_unless_accepted() -> None:
    """Pickle payloads raise ContentDisallowed naming the type and what is accepted."""
    content_type, payload = dumps({"x": 1}, "pickle")
    accept = normalize_accept(["json", "msgpack"])
    with pytest.raises(ContentDisallowed) as info:
        loads(payload, content_type, accept)
    message = str(info.value)
    assert PICKLE_CONTENT_TYPE in message
    assert JSON_CONTENT_TYPE in message
    assert MSGPACK_CONTENT_TYPE in message
    assert loads(payload, content_type, normalize_accept(["pickle"])) == {"x": 1}


def test_bad_tagged_json_is_a_decode_error() -> None:
    """A known tag with an unreadable value is a DecodeError, not a ValueError."""
    data = b'{"__type__":"datetime","__value__":"not a date"}'
    with pytest.raises(DecodeError) as info:
        loads(data, JSON_CONTENT_TYPE, ALL)
    assert info.value.data == data


def test_unknown_content_type_inside_accept_is_a_decode_error() -> None:
    """An accepted content type with no serializer is a DecodeError."""
    with pytest.raises(DecodeError, match="no serializer"):
        loads(b"x", "application/x-nothing", frozenset({"application/x-nothing"}))


def test_decoders_take_any_bytes_like_buffer() -> None:
    """memoryview payloads (as ZeroMQ frames give) decode like bytes."""
    for name in ("json", "msgpack", "pickle", "yaml"):
        content_type, payload = dumps([1, "a"], name)
        assert loads(memoryview(payload), content_type, ALL) == [1, "a"]  # type: ignore[arg-type]


# -- registry ----------------------------------------------------------------------------------


def test_normalize_accept_maps_names_and_content_types() -> None:
    """Names and content types both normalize to content types."""
    assert normalize_accept(["json", MSGPACK_CONTENT_TYPE, "yaml"]) == frozenset(
        {JSON_CONTENT_TYPE, MSGPACK_CONTENT_TYPE, YAML_CONTENT_TYPE}
    )
    with pytest.raises(SerializationError, match="json, msgpack, pickle, yaml"):
        normalize_accept(["json", "bson"])


def test_get_serializer_lists_known_names() -> None:
    """An unknown serializer name is a SerializationError listing the known ones."""
    assert get_serializer("json").content_type == JSON_CONTENT_TYPE
    assert get_serializer(MSGPACK_CONTENT_TYPE).name == "msgpack"
    with pytest.raises(SerializationError, match="known: json, msgpack, pickle, yaml"):
        get_serializer("bson")
    with pytest.raises(SerializationError):
        dumps(1, "bson")


class _Upper:
    """A custom serializer for the registry tests."""

    name = "upper"
    content_type = "text/x-upper"

    def dumps(self, obj: Any) -> bytes:
        """Upper-case text."""
        return str(obj).upper().encode()

    def loads(self, data: bytes) -> Any:
        """Bytes back to text; refuses lower-case."""
        text = bytes(data).decode()
        if text != text.upper():
            raise ValueError("lower-case")
        return text


def test_custom_serializers_register_and_their_errors_are_wrapped() -> None:
    """register() adds a serializer; its decode failures still come out as DecodeError."""
    register(_Upper())
    try:
        assert dumps("abc", "upper") == ("text/x-upper", b"ABC")
        accept = normalize_accept(["upper"])
        assert loads(b"ABC", "text/x-upper", accept) == "ABC"
        with pytest.raises(DecodeError, match="lower-case"):
            loads(b"abc", "text/x-upper", accept)
    finally:
        unregister("upper")
    with pytest.raises(SerializationError):
        get_serializer("upper")


def test_register_refuses_non_serializers() -> None:
    """Objects without the Serializer attributes are refused."""
    with pytest.raises(SerializationError):
        register(object())  # type: ignore[arg-type]


def test_yaml_without_pyyaml_is_improperly_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing PyYAML is a clear ImproperlyConfigured, not an ImportError."""
    monkeypatch.setitem(sys.modules, "yaml", None)
    codec = ser.YAMLSerializer()
    with pytest.raises(ImproperlyConfigured, match="PyYAML"):
        codec.dumps({"a": 1})
    with pytest.raises(ImproperlyConfigured, match="PyYAML"):
        codec.loads(b"a: 1")


def test_yaml_uses_safe_load_only() -> None:
    """yaml refuses python-object tags instead of building objects."""
    data = b"!!python/object/apply:os.getcwd []"
    with pytest.raises(DecodeError):
        loads(data, YAML_CONTENT_TYPE, ALL)
