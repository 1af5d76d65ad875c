"""Who listens on a TCP port of this machine, for the "address in use" message (Linux only).

How it works: the listening socket's inode is found in ``/proc/net/tcp`` (and ``tcp6``) by its
port, then the process whose ``/proc/<pid>/fd`` holds that socket. Anything unreadable (another
user's process, no ``/proc``) means "cannot tell": the caller says less, never fails.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Final

from .endpoints import parse_tcp

__all__ = ["port_holder"]

_LISTEN: Final = "0A"
#: At most this many processes are looked at (a busy machine must not stall a failing start).
_MAX_PIDS: Final = 5000


def _listening_inodes(port: int, proc: Path) -> set[str]:
    found: set[str] = set()
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in (proc / "net" / table).read_text().splitlines()[1:]:
                fields = line.split()
                listening = len(fields) > 9 and fields[3] == _LISTEN
                if listening and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    found.add(fields[9])
    return found


def _describe(pid: str, proc: Path) -> str:
    try:
        argv = (proc / pid / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return f"pid {pid}"
    command = " ".join(a.decode(errors="replace") for a in argv if a)
    return f"pid {pid}: {command[:120]}" if command else f"pid {pid}"


def port_holder(url: str, proc: Path = Path("/proc")) -> str | None:
    """``"pid N: command"`` of the process listening on ``url``'s TCP port; None if unknown."""
    address = parse_tcp(url)
    if address is None or not str(address.port).isdigit():
        return None
    inodes = _listening_inodes(int(address.port), proc)
    if not inodes:
        return None
    wanted = {f"socket:[{inode}]" for inode in inodes}
    try:
        pids = [d for d in os.listdir(proc) if d.isdigit()][:_MAX_PIDS]
    except OSError:
        return None
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(proc / pid / "fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(proc / pid / "fd" / fd) in wanted:
                        return _describe(pid, proc)
    return None
