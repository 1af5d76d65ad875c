"""Compression of serialized bodies: round trips, the content type, refusals and the size cap."""

from __future__ import annotations

import zlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from celeriac import _compression
from celeriac._compose import compose
from celeriac._conf import Settings
from celeriac._serialization import dumps, loads, normalize_accept
from celeriac.exceptions import ContentDisallowed, DecodeError, EncodeError

JSON = normalize_accept(["json", "msgpack"])
values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


# 40 examples: each lzma/xz compression sets up its large dictionary (~20 ms under coverage),
# and the property holds per codec, not per value shape (the suite's 10 minutes).
@settings(max_examples=40)
@given(values, st.sampled_from(["gzip", "zlib", "bzip2", "lzma", "bzip", "xz"]), st.booleans())
def test_every_compression_round_trips(value: Any, name: str, packed: bool) -> None:
    """Whatever is compressed decodes to the same value; the content type names the codec."""
    ct, body = dumps(value, "msgpack" if packed else "json", name)
    assert ct.endswith(";compression=" + _compression.check_compression(name))  # type: ignore[operator]
    assert loads(body, ct, JSON) == value


def test_a_compressed_body_is_smaller_and_plain_stays_plain() -> None:
    """Compression shrinks a repetitive body; no compression leaves the content type alone."""
    plain_ct, plain = dumps(["a" * 10_000], "json")
    ct, body = dumps(["a" * 10_000], "json", "gzip")
    assert plain_ct == "application/json"
    assert ct == "application/json;compression=gzip"
    assert len(body) < len(plain) // 10
    assert body[:2] == b"\x1f\x8b"  # a real gzip stream


def test_accept_content_applies_to_the_serializer_not_the_codec() -> None:
    """A pickle body is refused even compressed; accept_content names serializers only."""
    ct, body = dumps([1], "pickle", "zlib")
    with pytest.raises(ContentDisallowed, match="application/x-python-serialize"):
        loads(body, ct, JSON)


def test_unknown_or_corrupt_compression_is_a_decode_error() -> None:
    """A body from a sender with a codec this side lacks, or a damaged one, says why."""
    with pytest.raises(DecodeError, match="unknown compression 'snappy'; known: bzip2, gzip"):
        loads(b"...", "application/json;compression=snappy", JSON)
    with pytest.raises(DecodeError, match="could not decompress 5 bytes of gzip"):
        loads(b"12345", "application/json;compression=gzip", JSON)
    with pytest.raises(EncodeError, match="unknown compression 'rar'"):
        dumps([1], "json", "rar")


def test_decompression_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A body that would decompress beyond the cap is refused, not inflated into memory."""
    monkeypatch.setattr(_compression, "MAX_DECOMPRESSED", 1000)
    bomb = zlib.compress(b"[" + b"0," * 5000 + b"0]")
    with pytest.raises(DecodeError, match="decompresses to more than 1000 bytes"):
        _compression.decompress(bomb, "zlib")


def test_compose_uses_the_setting_and_the_call_option() -> None:
    """task_compression compresses every message; compression= on the call wins."""
    conf = Settings({"task_compression": "bzip2"}, environ={})
    message = compose(conf, "t", (1,), None, {}, 0.0)
    assert message.content_type == "application/json;compression=bzip2"
    assert loads(message.body, message.content_type, JSON) == [[1], {}, {}]
    other = compose(conf, "t", (1,), None, {"compression": "gzip"}, 0.0)
    assert other.content_type == "application/json;compression=gzip"
    plain = compose(Settings(environ={}), "t", (1,), None, {}, 0.0)
    assert plain.content_type == "application/json"


def test_a_task_option_compresses_its_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """@app.task(compression=...) compresses that task's messages (the call option wins);
    an unknown codec is refused when the task is declared."""
    from celeriac import App  # noqa: PLC0415
    from celeriac.exceptions import ImproperlyConfigured  # noqa: PLC0415

    app = App("t", environ={})
    seen: list[Any] = []
    monkeypatch.setattr(app, "send_task", lambda name, args, kwargs, **o: seen.append(o))

    @app.task(compression="bzip2")
    def packed(x: int) -> int:
        return x

    packed.delay(1)
    packed.apply_async((1,), compression="gzip")
    assert [o["compression"] for o in seen] == ["bzip2", "gzip"]
    with pytest.raises(ImproperlyConfigured, match="unknown compression 'rar'"):
        app.task(compression="rar")(lambda: None)
    app.close()
