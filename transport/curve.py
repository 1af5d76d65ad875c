"""CURVE: encrypted links and key authentication between peers and the hub.

How it works
------------
ZeroMQ's CURVE mechanism encrypts every link and authenticates both ends by their Curve25519
keys. Keys live in ZeroMQ certificate files (``NAME.key`` holds the public key,
``NAME.key_secret`` the pair), made by ``celeriac keys generate NAME``.

* The hub (``hub_curve_secret_key_file``) makes its ROUTER and events PUB sockets CURVE
  servers. A ZAP handler (:class:`zmq.auth.thread.ThreadAuthenticator` asking
  :meth:`CurveServer.callback`) lets a peer in only if its public key is one of the ``*.key``
  files in ``hub_curve_allowed_keys_dir``; the
  directory is read again every :data:`RELOAD_INTERVAL` seconds, so adding or removing a file
  takes effect without a restart. A refused peer never reaches the hub's loop: the handshake
  fails, and the authenticator logs ``hub_peer_refused`` with its public key.
* A peer (client, worker, events monitor) with ``broker_curve_server_key_file`` (the hub's
  ``.key``) and ``broker_curve_secret_key_file`` (its own ``.key_secret``) connects as a
  CURVE client. A peer without keys cannot talk to a CURVE hub at all.

Without CURVE, nothing on the wire is encrypted or authenticated: a hub bound to anything but
loopback says so loudly at start (``hub_unencrypted``).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from celeriac._log import get_logger
from celeriac.exceptions import ImproperlyConfigured

from .endpoints import is_loopback, parse_tcp

__all__ = [
    "RELOAD_INTERVAL",
    "CurveClient",
    "CurveServer",
    "generate_keys",
    "read_public_key",
    "read_secret_key",
    "warn_if_exposed",
]

_log = get_logger("celeriac.hub")

#: Seconds between two readings of the allowed keys directory.
RELOAD_INTERVAL: Final = 5.0


def read_public_key(path: Path | str, setting: str) -> bytes:
    """The public key in a certificate file (``.key`` or ``.key_secret``)."""
    public, _ = _load(path, setting)
    return public


def read_secret_key(path: Path | str, setting: str) -> tuple[bytes, bytes]:
    """``(public, secret)`` from a ``.key_secret`` file; a clear error if it holds no secret."""
    public, secret = _load(path, setting)
    if not secret:
        raise ImproperlyConfigured(
            f"{setting}: {path} holds no secret key (give the .key_secret file made by "
            "`celeriac keys generate`)"
        )
    return public, secret


def _load(path: Path | str, setting: str) -> tuple[bytes, bytes | None]:
    try:
        public, secret = zmq.auth.load_certificate(str(path))
    except (OSError, ValueError) as exc:
        raise ImproperlyConfigured(
            f"{setting}: cannot read a CURVE key from {path}: {exc}"
        ) from None
    return public, secret


def generate_keys(directory: Path | str, name: str) -> tuple[Path, Path]:
    """Make a key pair in ``directory``: ``NAME.key`` (public) and ``NAME.key_secret``."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    public, secret = zmq.auth.create_certificates(str(folder), name)
    Path(secret).chmod(0o600)
    return Path(public), Path(secret)


@dataclass(frozen=True)
class CurveClient:
    """A peer's CURVE keys: its own pair and the hub's public key."""

    public: bytes
    secret: bytes
    server: bytes

    @classmethod
    def from_settings(cls, conf: Any) -> CurveClient | None:
        """From ``broker_curve_server_key_file`` and ``broker_curve_secret_key_file``; None
        when neither is set."""
        server_file = conf["broker_curve_server_key_file"]
        secret_file = conf["broker_curve_secret_key_file"]
        if server_file is None and secret_file is None:
            return None
        if server_file is None or secret_file is None:
            raise ImproperlyConfigured(
                "CURVE needs both broker_curve_server_key_file (the hub's .key) and "
                "broker_curve_secret_key_file (this peer's .key_secret)"
            )
        public, secret = read_secret_key(secret_file, "broker_curve_secret_key_file")
        server = read_public_key(server_file, "broker_curve_server_key_file")
        return cls(public, secret, server)

    def apply(self, sock: zmq.Socket[Any]) -> None:
        """Make ``sock`` a CURVE client of the hub (before it connects)."""
        sock.curve_publickey = self.public
        sock.curve_secretkey = self.secret
        sock.curve_serverkey = self.server


class CurveServer:
    """The hub's CURVE keys and its allow-list; :meth:`start` runs the ZAP handler."""

    def __init__(self, public: bytes, secret: bytes, allowed_dir: Path) -> None:
        self.public, self.secret, self.allowed_dir = public, secret, allowed_dir
        self._auth: ThreadAuthenticator | None = None
        self._allowed: frozenset[bytes] = frozenset()
        self._stop = threading.Event()
        self._reloader: threading.Thread | None = None

    @classmethod
    def from_settings(cls, conf: Any) -> CurveServer | None:
        """From ``hub_curve_secret_key_file`` and ``hub_curve_allowed_keys_dir``; None when
        CURVE is off."""
        secret_file = conf["hub_curve_secret_key_file"]
        allowed = conf["hub_curve_allowed_keys_dir"]
        if secret_file is None:
            if allowed is not None:
                raise ImproperlyConfigured(
                    "hub_curve_allowed_keys_dir is set but hub_curve_secret_key_file is not: "
                    "the hub needs its own key pair to use CURVE"
                )
            return None
        if allowed is None or not Path(allowed).is_dir():
            raise ImproperlyConfigured(
                "hub_curve_secret_key_file needs hub_curve_allowed_keys_dir: a directory of "
                f"the public keys (*.key) of allowed clients and workers (got {allowed!r})"
            )
        public, secret = read_secret_key(secret_file, "hub_curve_secret_key_file")
        return cls(public, secret, Path(allowed))

    def apply(self, sock: zmq.Socket[Any]) -> None:
        """Make ``sock`` a CURVE server (before it binds)."""
        sock.curve_secretkey = self.secret
        sock.curve_publickey = self.public
        sock.curve_server = True

    def start(self, ctx: zmq.Context[Any]) -> None:
        """Start the ZAP handler for ``ctx`` and the allow-list reloader."""
        self._load()
        self._auth = ThreadAuthenticator(ctx, log=logging.getLogger("celeriac.hub.auth"))
        self._auth.start()
        self._auth.configure_curve_callback(domain="*", credentials_provider=self)
        self._reloader = threading.Thread(target=self._reload, name="celeriac-curve", daemon=True)
        self._reloader.start()

    def callback(self, domain: str, key: bytes) -> bool:
        """The ZAP decision for one handshake: is ``key`` (z85) on the allow-list?"""
        if key in self._allowed:
            return True
        _log.warning(
            "hub_peer_refused", key=key.decode("ascii", "replace"), reason="key not allowed"
        )
        return False

    def _load(self) -> None:
        self._allowed = frozenset(zmq.auth.load_certificates(str(self.allowed_dir)))

    def _reload(self) -> None:
        while not self._stop.wait(RELOAD_INTERVAL):
            try:
                self._load()
            except Exception as exc:  # a file half-written, a directory gone: keep the last list
                _log.warning("curve_keys_not_reloaded", error=str(exc)[:200])

    def stop(self) -> None:
        """Stop the reloader and the ZAP handler."""
        self._stop.set()
        if self._auth is not None:
            self._auth.stop()
            self._auth = None


def warn_if_exposed(bind: str, curve: CurveServer | None) -> None:
    """Log ``hub_unencrypted`` (a warning) when a hub binds beyond loopback without CURVE."""
    if curve is not None:
        return
    address = parse_tcp(bind)
    if address is None or is_loopback(address.host):
        return
    _log.warning(
        "hub_unencrypted",
        endpoint=bind,
        problem="this hub listens beyond loopback WITHOUT encryption or authentication: anyone "
        "who reaches the port can publish tasks and read results",
        fix="set hub_curve_secret_key_file and hub_curve_allowed_keys_dir "
        "(celeriac keys generate --help), or bind to 127.0.0.1 behind a firewall or VPN",
    )
