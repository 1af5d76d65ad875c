"""Several hosts on one machine: network namespaces on a bridge, made (and removed) by a test.

:class:`Lan` makes a switch namespace holding a Linux bridge, and one namespace per host joined
to it by a veth pair, with an IPv4 address (``10.231.0.N/24``), an IPv6 address
(``fd00:231::N/64``) and a hosts file (``/etc/netns/<ns>/hosts``, which ``ip netns exec``
mounts over ``/etc/hosts``) so hosts find each other by name (``machine-a``...). Nothing is
touched outside the namespaces it makes, whose names are unique per run.

Needs root and ``ip`` (iproute2); :func:`lan_unavailable` says why when they are missing, for a
skip with a reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Host", "Lan", "lan_unavailable"]

NETNS_ETC = Path("/etc/netns")


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def lan_unavailable() -> str | None:
    """Why namespaces cannot be made here (None: they can)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "network namespaces need `ip` from iproute2"
    probe = f"clr-probe-{uuid.uuid4().hex[:8]}"
    try:
        _ip("netns", "add", probe)
    except (subprocess.CalledProcessError, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        return f"cannot create a network namespace: {detail.decode(errors='replace').strip()}"
    _ip("netns", "del", probe)
    return None


@dataclass
class Host:
    """One machine: a namespace with an address on the LAN and a name in the others' hosts."""

    name: str
    netns: str
    ipv4: str
    ipv6: str

    def argv(self, *command: str) -> list[str]:
        """``command`` run on this host."""
        return ["ip", "netns", "exec", self.netns, *command]


@dataclass
class Lan:
    """A switch and the hosts plugged into it; :meth:`close` removes all of it."""

    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    hosts: dict[str, Host] = field(default_factory=dict)
    _made: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.switch = f"clr-{self.tag}-sw"
        self._netns(self.switch)
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")

    def _netns(self, name: str) -> None:
        _ip("netns", "add", name)
        self._made.append(name)

    def add(self, name: str) -> Host:
        """Plug in a new host called ``name`` (e.g. ``machine-a``)."""
        n = len(self.hosts) + 1
        host = Host(name, f"clr-{self.tag}-{n}", f"10.231.0.{n}", f"fd00:231::{n}")
        self._netns(host.netns)
        nic, port = f"c{self.tag}{n}", f"c{self.tag}{n}p"
        _ip("link", "add", nic, "type", "veth", "peer", "name", port, "netns", self.switch)
        _ip("link", "set", nic, "netns", host.netns)
        _ip("-n", self.switch, "link", "set", port, "master", "br0", "up")
        _ip("-n", host.netns, "addr", "add", f"{host.ipv4}/24", "dev", nic)
        _ip("-n", host.netns, "addr", "add", f"{host.ipv6}/64", "dev", nic, "nodad")
        _ip("-n", host.netns, "link", "set", nic, "up")
        _ip("-n", host.netns, "link", "set", "lo", "up")
        self.hosts[name] = host
        self._write_hosts_files()
        return host

    def _write_hosts_files(self) -> None:
        lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost"]
        lines += [f"{h.ipv4} {h.name}" for h in self.hosts.values()]
        for host in self.hosts.values():
            folder = NETNS_ETC / host.netns
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "hosts").write_text("\n".join(lines) + "\n")

    def close(self) -> None:
        """Remove every namespace (their veths go with them) and hosts file made here."""
        for name in reversed(self._made):
            subprocess.run(
                ["ip", "netns", "del", name], capture_output=True, timeout=30, check=False
            )
            shutil.rmtree(NETNS_ETC / name, ignore_errors=True)
        self._made.clear()
