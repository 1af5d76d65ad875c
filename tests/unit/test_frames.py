"""The wire codec: round trips, and nothing but FrameError on any malformed input."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from celeriac.exceptions import FrameError
from celeriac.transport.frames import COMMANDS, TAG, decode, encode, split_identity

pytestmark = pytest.mark.property

header_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.text()
    | st.binary()
    | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
headers = st.dictionaries(st.text(max_size=20), header_values, max_size=8)


@given(st.sampled_from(sorted(COMMANDS)), headers, st.binary(), st.lists(st.binary(), max_size=2))
def test_round_trip(command: bytes, header: dict, body: bytes, extra: list[bytes]) -> None:
    """Any command, header map and body survive encode then decode unchanged."""
    msg = decode(encode(command, header, body, *extra))
    assert msg.command == command
    assert msg.header == header
    assert msg.body == body
    assert list(msg.extra) == extra


@given(st.lists(st.binary(max_size=64), max_size=6))
def test_random_frames_only_raise_frame_error(frames: list[bytes]) -> None:
    """Random frames either decode or raise FrameError, never anything else."""
    caught: list[FrameError] = []
    try:
        decode(frames)
    except FrameError as exc:
        caught.append(exc)
    if caught:
        assert caught[0].frames == frames


@given(st.sampled_from(sorted(COMMANDS)), st.binary(max_size=200), st.binary(max_size=20))
def test_random_header_bytes_only_raise_frame_error(
    command: bytes, raw: bytes, body: bytes
) -> None:
    """Garbage header bytes raise only FrameError; what decodes is exactly msgpack's reading."""
    try:
        msg = decode([TAG, command, raw, body])
    except FrameError:
        return
    assert msg.header == msgpack.unpackb(raw, strict_map_key=False)
    assert (msg.command, msg.body) == (command, body)


def test_rejects_wrong_tag_unknown_command_and_non_map() -> None:
    """Each kind of malformed message is refused with a reason."""
    with pytest.raises(FrameError, match="protocol tag"):
        decode([b"XXXX", b"PUB", msgpack.packb({}), b""])
    with pytest.raises(FrameError, match="unknown command"):
        decode([TAG, b"NOPE", msgpack.packb({}), b""])
    with pytest.raises(FrameError, match="not a map"):
        decode([TAG, b"PUB", msgpack.packb([1, 2]), b""])
    with pytest.raises(FrameError, match="at least 4 frames"):
        decode([TAG, b"PUB"])
    with pytest.raises(FrameError, match="exceeds"):
        decode([TAG, b"PUB", msgpack.packb({"x": "y" * 70_000}), b""])


def test_split_identity() -> None:
    """The ROUTER identity frame is taken off the front."""
    assert split_identity([b"peer", b"a", b"b"]) == (b"peer", [b"a", b"b"])
    with pytest.raises(FrameError):
        split_identity([])
