"""An App's connection to the hub is its process's: a forked child makes its own."""

from __future__ import annotations

import os

from celeriac import App


def test_a_forked_child_gets_a_client_of_its_own() -> None:
    app = App("forked", broker="tcp://127.0.0.1:1")  # nothing listens: no hub needed
    try:
        parent = app._client()
        assert app._client() is parent  # made once per process
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: is its client another object, made after the fork?
            try:
                ok = app._client() is not parent and app._client() is app._client()
                os.write(write, b"new" if ok else b"same")
            finally:
                os._exit(0)
        os.close(write)
        os.waitpid(pid, 0)
        answer = os.read(read, 16)
        os.close(read)
        assert answer == b"new"
        assert app._client() is parent  # the parent's is untouched
    finally:
        app.close()
