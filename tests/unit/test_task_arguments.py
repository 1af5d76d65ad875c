"""``typing``: a call with arguments the task cannot take fails in the caller, as Celery's does.

Positional-only calls are checked by counting (made once per function); the answer must be
``inspect.Signature.bind``'s for every kind of parameter list.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

from celeriac._task_compat import check_arguments


def _none() -> None: ...
def _two(a: int, b: int) -> None: ...
def _defaults(a: int, b: int = 1, *, c: int = 2) -> None: ...
def _star(a: int, *args: int) -> None: ...
def _keyword_only(a: int, *, c: int) -> None: ...
def _positional_only(a: int, /, b: int = 2, **kw: int) -> None: ...
def _anything(*args: int, **kwargs: int) -> None: ...


class _Task:
    typing = True
    name = "t"

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.__dict__["fn"] = fn


@pytest.mark.parametrize(
    "fn", [_none, _two, _defaults, _star, _keyword_only, _positional_only, _anything]
)
@pytest.mark.parametrize("count", range(5))
def test_positional_calls_get_binds_answer(fn: Callable[..., Any], count: int) -> None:
    args = tuple(range(count))
    try:
        inspect.signature(fn).bind(*args)
    except TypeError as exc:
        with pytest.raises(TypeError, match=f"^t\\(\\) {exc}$"):
            check_arguments(_Task(fn), args, None)
    else:
        check_arguments(_Task(fn), args, None)


def test_keyword_calls_are_still_bound() -> None:
    check_arguments(_Task(_keyword_only), (1,), {"c": 3})
    with pytest.raises(TypeError, match="unexpected keyword argument 'd'"):
        check_arguments(_Task(_two), (1, 2), {"d": 3})
