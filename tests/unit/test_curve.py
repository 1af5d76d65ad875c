"""CURVE in one setting: a peer with an allowed key talks to the hub; others are refused."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq
from click.testing import CliRunner
from structlog.testing import capture_logs

from celeriac import App
from celeriac.exceptions import ImproperlyConfigured
from celeriac.runtime.cli import cli
from celeriac.transport import curve as curve_module
from celeriac.transport import protocol as p
from celeriac.transport.curve import CurveClient, CurveServer, generate_keys, warn_if_exposed
from celeriac.transport.hubserver import HubServer

#: How long a refused peer is given to (not) get an answer.
REFUSAL_WINDOW = 1.0


class Keys:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.allowed = root / "allowed"
        self.allowed.mkdir(parents=True)
        for name in ("hub", "alice", "mallory", "late"):
            generate_keys(root, name)
        (self.allowed / "alice.key").write_bytes((root / "alice.key").read_bytes())

    def client(self, name: str) -> CurveClient:
        conf = {
            "broker_curve_server_key_file": str(self.root / "hub.key"),
            "broker_curve_secret_key_file": str(self.root / f"{name}.key_secret"),
        }
        client = CurveClient.from_settings(conf)
        assert client is not None
        return client


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return Keys(tmp_path / "keys")


@pytest.fixture
def hub(tmp_path: Path, keys: Keys, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    monkeypatch.setattr(curve_module, "RELOAD_INTERVAL", 0.05)
    conf = {
        "hub_curve_secret_key_file": str(keys.root / "hub.key_secret"),
        "hub_curve_allowed_keys_dir": str(keys.allowed),
    }
    ctx: zmq.Context[Any] = zmq.Context()
    server = HubServer(
        "tcp://127.0.0.1:*",
        tmp_path / "data",
        context=ctx,
        curve=CurveServer.from_settings(conf),
        events="tcp://127.0.0.1:*",
    )
    server.start()
    yield server
    server.stop()
    ctx.destroy(linger=0)


def talk(ctx: zmq.Context[Any], url: str, curve: CurveClient | None, timeout: float) -> bool:
    """Whether a PING over a fresh DEALER gets an answer within ``timeout`` seconds."""
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    if curve is not None:
        curve.apply(sock)
    sock.connect(url)
    try:
        sock.send_multipart(p.encode(p.Ping()))
        return bool(sock.poll(int(timeout * 1000)))
    finally:
        sock.close(0)


def test_a_peer_with_an_allowed_key_talks_to_the_hub(hub: HubServer, keys: Keys) -> None:
    """alice's key is in the allowed directory: her PING is answered."""
    ctx: zmq.Context[Any] = zmq.Context()
    try:
        assert talk(ctx, hub.endpoint, keys.client("alice"), timeout=10.0)
    finally:
        ctx.destroy(linger=0)


def test_a_peer_without_an_allowed_key_is_refused_and_logged(hub: HubServer, keys: Keys) -> None:
    """mallory (a key not allowed) and a peer without CURVE get no answer; mallory is logged."""
    ctx: zmq.Context[Any] = zmq.Context()
    try:
        with capture_logs() as logs:
            assert not talk(ctx, hub.endpoint, keys.client("mallory"), REFUSAL_WINDOW)
            assert not talk(ctx, hub.endpoint, None, REFUSAL_WINDOW)
        assert any(e["event"] == "hub_peer_refused" for e in logs)
        assert talk(ctx, hub.endpoint, keys.client("alice"), timeout=10.0)  # still serving
    finally:
        ctx.destroy(linger=0)


def test_a_key_added_to_the_directory_is_allowed_without_a_restart(
    hub: HubServer, keys: Keys
) -> None:
    """The allowed directory is read again: a key copied in is let in shortly after."""
    ctx: zmq.Context[Any] = zmq.Context()
    try:
        assert not talk(ctx, hub.endpoint, keys.client("late"), REFUSAL_WINDOW)
        (keys.allowed / "late.key").write_bytes((keys.root / "late.key").read_bytes())
        deadline = time.monotonic() + 10.0
        while not talk(ctx, hub.endpoint, keys.client("late"), 0.5):
            assert time.monotonic() < deadline, "the new key was never allowed"
    finally:
        ctx.destroy(linger=0)


def test_the_events_socket_is_under_the_same_rules(hub: HubServer, keys: Keys) -> None:
    """An allowed subscriber sees worker-online; one without a key sees nothing."""
    ctx: zmq.Context[Any] = zmq.Context()
    subs = []
    try:
        for curve in (keys.client("alice"), None):
            sub = ctx.socket(zmq.SUB)
            sub.setsockopt(zmq.LINGER, 0)
            if curve is not None:
                curve.apply(sub)
            sub.setsockopt(zmq.SUBSCRIBE, b"")
            assert hub.events_endpoint is not None
            sub.connect(hub.events_endpoint)
            subs.append(sub)
        worker = ctx.socket(zmq.DEALER)
        worker.setsockopt(zmq.LINGER, 0)
        keys.client("alice").apply(worker)
        worker.connect(hub.endpoint)
        subs.append(worker)
        deadline = time.monotonic() + 10.0
        while not subs[0].poll(100):  # PUB drops for late joiners: say HELLO until heard
            assert time.monotonic() < deadline, "no event reached the allowed subscriber"
            worker.send_multipart(p.encode(p.Hello("worker", "w1", queues=("q",))))
        assert subs[0].recv_multipart()[0] == b"worker-online"
        assert not subs[1].poll(int(REFUSAL_WINDOW * 1000))
    finally:
        for sock in subs:
            sock.close(0)
        ctx.destroy(linger=0)


def test_half_configured_curve_is_an_error(keys: Keys, tmp_path: Path) -> None:
    """One key file without the other, or no allowed directory, fails with the setting's name."""
    with pytest.raises(ImproperlyConfigured, match="broker_curve_server_key_file"):
        CurveClient.from_settings(
            {
                "broker_curve_server_key_file": None,
                "broker_curve_secret_key_file": str(keys.root / "alice.key_secret"),
            }
        )
    with pytest.raises(ImproperlyConfigured, match="hub_curve_allowed_keys_dir"):
        CurveServer.from_settings(
            {
                "hub_curve_secret_key_file": str(keys.root / "hub.key_secret"),
                "hub_curve_allowed_keys_dir": str(tmp_path / "missing"),
            }
        )
    with pytest.raises(ImproperlyConfigured, match="holds no secret key"):
        CurveServer.from_settings(
            {
                "hub_curve_secret_key_file": str(keys.root / "hub.key"),
                "hub_curve_allowed_keys_dir": str(keys.allowed),
            }
        )


def test_the_settings_are_declared() -> None:
    """The four CURVE settings exist, default to None, and refuse a non-path."""
    app = App("curve", environ={})
    for name in (
        "hub_curve_secret_key_file",
        "hub_curve_allowed_keys_dir",
        "broker_curve_server_key_file",
        "broker_curve_secret_key_file",
    ):
        assert app.conf[name] is None
        with pytest.raises(ImproperlyConfigured, match=name):
            app.conf[name] = 5


def test_a_hub_beyond_loopback_without_curve_warns_loudly() -> None:
    """hub_unencrypted is logged for 0.0.0.0 without CURVE, not for loopback."""
    with capture_logs() as logs:
        warn_if_exposed("tcp://127.0.0.1:5555", None)
        warn_if_exposed("tcp://0.0.0.0:5555", None)
    assert [e["event"] for e in logs] == ["hub_unencrypted"]
    assert logs[0]["log_level"] == "warning"


def test_keys_generate_makes_a_pair_and_never_overwrites(tmp_path: Path) -> None:
    """`celeriac keys generate NAME --dir D` writes NAME.key and a private NAME.key_secret."""
    runner = CliRunner()
    result = runner.invoke(cli, ["keys", "generate", "w1", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "w1.key").exists()
    assert (tmp_path / "w1.key_secret").stat().st_mode & 0o077 == 0
    again = runner.invoke(cli, ["keys", "generate", "w1", "--dir", str(tmp_path)])
    assert again.exit_code != 0
    assert "not overwritten" in again.output


def _app(hub: HubServer, keys: Keys, name: str) -> App:
    app = App("curve", broker=hub.endpoint, environ={})
    app.conf.worker_embedded_hub = "never"
    app.conf.task_create_missing_queues = True
    app.conf.broker_curve_server_key_file = str(keys.root / "hub.key")
    app.conf.broker_curve_secret_key_file = str(keys.root / f"{name}.key_secret")
    return app


def test_an_app_with_an_allowed_key_publishes_and_one_without_cannot(
    hub: HubServer, keys: Keys
) -> None:
    """The settings reach the client: alice's publish is confirmed, mallory's never is."""
    alice, mallory = _app(hub, keys, "alice"), _app(hub, keys, "mallory")
    try:
        alice.send_task("t", [1])
        alice.flush(timeout=10.0)
        mallory.send_task("t", [1])
        with pytest.raises(Exception, match="not confirmed"):
            mallory.flush(timeout=REFUSAL_WINDOW)
        assert hub.statistics()["published"] == 1
        mallory._client().close(timeout=0.1)  # its publish will never be confirmed: no 5 s wait
    finally:
        alice.close()
        mallory.close()
