"""Hub addresses (sans-IO) and the embedded-hub decision that depends on them."""

from __future__ import annotations

import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from celeriac import App
from celeriac.exceptions import ImproperlyConfigured
from celeriac.runtime.embedded import embedded_hub_plan
from celeriac.transport.endpoints import (
    TcpAddress,
    events_url,
    is_loopback,
    needs_ipv6,
    parse_tcp,
)


@pytest.mark.parametrize(
    ("url", "host", "port"),
    [
        ("tcp://127.0.0.1:5555", "127.0.0.1", "5555"),
        ("tcp://machine-a:5555", "machine-a", "5555"),
        ("tcp://[::1]:5555", "::1", "5555"),
        ("tcp://[fd00:231::1]:7000", "fd00:231::1", "7000"),
        ("tcp://0.0.0.0:*", "0.0.0.0", "*"),
    ],
)
def test_parse_tcp_takes_host_and_port_apart(url: str, host: str, port: str) -> None:
    """Hostnames, IPv4 and bracketed IPv6 literals split into host and port; url() rebuilds."""
    address = parse_tcp(url)
    assert address == TcpAddress(host, port)
    assert address.url() == url


def test_parse_tcp_is_none_for_other_schemes() -> None:
    """ipc:// and inproc:// have no host."""
    assert parse_tcp("ipc:///tmp/hub") is None
    assert parse_tcp("inproc://hub") is None


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "localhost", "LOCALHOST", "::1"])
def test_loopback_hosts(host: str) -> None:
    """localhost, 127.0.0.0/8 and ::1 can only mean this machine."""
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["10.231.0.1", "0.0.0.0", "machine-a", "fd00:231::1", "::"])
def test_other_hosts_are_not_loopback(host: str) -> None:
    """Network addresses, wildcards and hostnames (even this machine's) are not loopback."""
    assert not is_loopback(host)


@given(st.ip_addresses())
def test_is_loopback_agrees_with_ipaddress(address: object) -> None:
    """For any IP literal the answer is the standard library's."""
    assert is_loopback(str(address)) == address.is_loopback  # type: ignore[attr-defined]


def test_events_url_keeps_ipv6_brackets() -> None:
    """The events port is the next one, for IPv6 literals too."""
    assert events_url("tcp://[::1]:5555") == "tcp://[::1]:5556"
    assert events_url("tcp://machine-a:5555") == "tcp://machine-a:5556"


@pytest.mark.parametrize(
    ("url", "mode", "plan"),
    [
        ("tcp://10.231.0.1:5555", "auto", "connect"),
        ("tcp://machine-a:5555", "auto", "connect"),
        ("tcp://[fd00::1]:5555", "auto", "connect"),
        ("ipc:///tmp/celeriac-hub", "auto", "connect"),
        ("tcp://127.0.0.1:5555", "never", "connect"),
        ("tcp://10.231.0.1:5555", "always", "embed"),
    ],
)
def test_embedded_hub_plan_without_probing(url: str, mode: str, plan: str) -> None:
    """Only a loopback tcp:// address in auto mode is ever probed; the rest is configuration."""
    decided, reason = embedded_hub_plan(url, mode)
    assert decided == plan
    assert reason


@pytest.mark.parametrize("url", ["tcp://127.0.0.1:5555", "tcp://localhost:1", "tcp://[::1]:9"])
def test_a_given_loopback_address_is_connected_to_in_auto(url: str) -> None:
    """Issue 16: an explicit broker address, even a loopback one nobody listens on, is the
    address of a hub that may only be restarting: auto never embeds there (no probe either)."""
    decided, reason = embedded_hub_plan(url, "auto", configured=True)
    assert decided == "connect"
    assert "--embedded-hub always" in reason
    assert embedded_hub_plan(url, "always", configured=True)[0] == "embed"


def test_auto_embeds_only_an_unconfigured_loopback_address_nobody_listens_on() -> None:
    """The one-command start: no broker configured and nothing at the default-like address."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: a connect is refused
        url = f"tcp://127.0.0.1:{port}"
        assert embedded_hub_plan(url, "auto")[0] == "embed"
        probe.listen()
        assert embedded_hub_plan(url, "auto")[0] == "connect"


def test_broker_url_is_set_by_argument_setting_or_environment() -> None:
    """``Settings.is_set`` tells a given broker_url from the default, whatever its value."""
    assert not App("t", environ={}).conf.is_set("broker_url")
    assert App("t", broker="tcp://127.0.0.1:5555", environ={}).conf.is_set("broker_url")
    env = {"CELERIAC_BROKER_URL": "tcp://127.0.0.1:5555"}
    assert App("t", environ=env).conf.is_set("broker_url")
    app = App("t", environ={})
    app.conf.broker_url = "tcp://127.0.0.1:5555"
    assert app.conf.freeze().is_set("broker_url")
    with pytest.raises(ImproperlyConfigured):
        app.conf.is_set("broker_uri")


@pytest.mark.parametrize(
    ("value", "stored"),
    [("auto", "auto"), ("Always", "always"), (True, "always"), (False, "never"), ("no", "never")],
)
def test_worker_embedded_hub_setting(value: object, stored: str) -> None:
    """worker_embedded_hub takes auto/always/never and booleans."""
    app = App("t", environ={})
    app.conf.worker_embedded_hub = value
    assert app.conf.worker_embedded_hub == stored


def test_worker_embedded_hub_refuses_other_values() -> None:
    """Anything else is an error that lists the choices."""
    app = App("t", environ={})
    with pytest.raises(ImproperlyConfigured, match="auto, always, never"):
        app.conf.worker_embedded_hub = "sometimes"


def test_worker_embedded_hub_from_the_environment() -> None:
    """CELERIAC_WORKER_EMBEDDED_HUB=false means never."""
    app = App("t", environ={"CELERIAC_WORKER_EMBEDDED_HUB": "false"})
    assert app.conf.worker_embedded_hub == "never"


@pytest.mark.parametrize(
    ("url", "needed"),
    [
        ("tcp://127.0.0.1:5555", False),
        ("tcp://0.0.0.0:5555", False),
        ("tcp://[::1]:5555", True),
        ("tcp://machine-a:5555", True),
        ("tcp://*:5555", True),
        ("ipc:///tmp/hub", False),
    ],
)
def test_needs_ipv6(url: str, needed: bool) -> None:
    """Only addresses that may be IPv6 get ZeroMQ's IPv6 option on a bound socket."""
    assert needs_ipv6(url) is needed
