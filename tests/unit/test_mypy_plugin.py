"""The mypy plugin celeriac.mypy, run by mypy in this process on a small user file."""

from __future__ import annotations

import textwrap
from pathlib import Path

from mypy import api

USER_CODE = """
from celeriac import App

app = App("x")


@app.actor
class Counter:
    def __init__(self, key: str) -> None:
        self.n = 0

    def incr(self, by: int = 1) -> int:
        self.n += by
        return self.n

    def _hidden(self) -> None: ...


proxy = app.proxy(Counter, key="k")
reveal_type(proxy.incr)
reveal_type(proxy.incr(5))
proxy.incr("x")
proxy.incr.tell("x")
proxy._hidden()
proxy.nope()
"""


def test_the_plugin_types_a_proxy_from_its_class(tmp_path: Path) -> None:
    """Signatures kept (call and tell), return type wrapped, private and unknown names errors."""
    (tmp_path / "user.py").write_text(textwrap.dedent(USER_CODE))
    (tmp_path / "mypy.ini").write_text("[mypy]\nstrict = True\nplugins = celeriac.mypy\n")
    out, err, status = api.run(
        [
            "--config-file",
            str(tmp_path / "mypy.ini"),
            "--cache-dir",
            str(tmp_path / "cache"),
            str(tmp_path / "user.py"),
        ]
    )
    assert status == 1, err
    mine = str(tmp_path / "user.py")  # not the notes on the package's own imports
    lines = [line.split(": ", 1)[1] for line in out.splitlines() if line.startswith(mine)]
    assert 'note: Revealed type is "celeriac._keyed.ActorProxyMethod[[by: int =], int]"' in lines
    assert 'note: Revealed type is "celeriac.result.AsyncResult[int]"' in lines
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 4
    assert 'incompatible type "str"; expected "int"' in errors[0]
    assert '"tell" of "ActorProxyMethod"' in errors[1]
    assert "private names are not reachable" in errors[2]
    assert 'Actor "Counter" has no method "nope"' in errors[3]
