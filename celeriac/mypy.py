"""A mypy plugin that gives a keyed actor's proxy its class's signatures.

Enable it in the mypy configuration::

    [tool.mypy]
    plugins = ["celeriac.mypy"]

Then for ``proxy = app.proxy(Counter, key="k")`` mypy types ``proxy.incr`` as
``ActorProxyMethod[<incr's parameters without self>, <incr's return type>]``: ``proxy.incr("x")``
is an error when ``incr`` takes an int, ``proxy.incr(1)`` is an ``AsyncResult[int]``,
``proxy.incr.tell(1)`` is checked the same way, and ``proxy._private`` or a name the class does
not have is an error. (A proxy's attributes come from ``__getattr__`` at run time; without the
plugin mypy accepts any arguments.) This module imports mypy and is only loaded by mypy.
"""

from __future__ import annotations

from collections.abc import Callable

from mypy.nodes import MemberExpr
from mypy.plugin import AttributeContext, Plugin
from mypy.subtypes import find_member
from mypy.types import (
    AnyType,
    CallableType,
    Instance,
    Parameters,
    Type,
    TypeOfAny,
    get_proper_type,
)

__all__ = ["CeleriacPlugin", "plugin"]

_PROXY = "celeriac._keyed.Proxy"
_METHOD = "celeriac._keyed.ActorProxyMethod"


def _proxy_attribute(ctx: AttributeContext) -> Type:
    """``proxy.<name>``: the actor class's method ``name`` as an ActorProxyMethod."""
    proxy = get_proper_type(ctx.type)
    if not isinstance(ctx.context, MemberExpr) or not isinstance(proxy, Instance):
        return ctx.default_attr_type
    name = ctx.context.name
    target = get_proper_type(proxy.args[0]) if proxy.args else None
    if not isinstance(target, Instance):
        return ctx.default_attr_type
    if name.startswith("_"):
        ctx.api.fail(f'"{name}": private names are not reachable through a proxy', ctx.context)
        return AnyType(TypeOfAny.from_error)
    member = find_member(name, target, target)
    method = get_proper_type(member) if member is not None else None
    if not isinstance(method, CallableType):
        ctx.api.fail(
            f'Actor "{target.type.name}" has no method "{name}" reachable through a proxy',
            ctx.context,
        )
        return AnyType(TypeOfAny.from_error)
    default = get_proper_type(ctx.default_attr_type)  # ActorProxyMethod[..., Any]
    if not isinstance(default, Instance) or default.type.fullname != _METHOD:
        return ctx.default_attr_type
    params = Parameters(method.arg_types, method.arg_kinds, method.arg_names)
    return Instance(default.type, [params, method.ret_type])


class CeleriacPlugin(Plugin):
    """Types the attributes of :class:`celeriac.Proxy` from the actor class."""

    def get_attribute_hook(self, fullname: str) -> Callable[[AttributeContext], Type] | None:
        """Our hook for a proxy's attributes."""
        if fullname.startswith(_PROXY + "."):
            return _proxy_attribute
        return None


def plugin(version: str) -> type[Plugin]:
    """mypy's entry point."""
    return CeleriacPlugin
