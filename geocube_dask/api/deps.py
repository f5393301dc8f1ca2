"""What route handlers depend on: the catalogue, the caller's token scope, the bounded pool, page limits.

``require(scope)`` is a FastAPI dependency that reads ``Authorization: Bearer <token>`` and checks the
token's scope against the catalogue's tokens (:mod:`geocube_dask.catalog.tokens`): no (valid) token →
401 ``AuthenticationError``, a scope too low → 403 ``PermissionDenied``. Scopes are ordered: admin
allows what write allows, write what read allows. Each route declares exactly one ``require``; the
scope it asks is readable from the route table with :func:`route_scope` (the tests' auth matrix).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.routing import compile_path

from ..entities import SCOPES, scope_allows
from ..errors import AuthenticationError, PermissionDenied, RequestTooLarge
from ..geocube import Geocube

T = TypeVar("T")

_bearer = HTTPBearer(auto_error=False, description="A token from `geocube token create --scope read|write|admin`.")


def get_geocube(request: Request) -> Geocube:
    """The catalogue the app serves (``app.state.gc``)."""
    return request.app.state.gc


GC = Annotated[Geocube, Depends(get_geocube)]


def require(scope: str) -> Any:
    """A dependency that lets a request through only with a valid token of ``scope`` or above."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    def check(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> str:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise AuthenticationError(
                "this request needs a token: send 'Authorization: Bearer <token>' (geocube token create --scope "
                f"{scope}; in Python gd.connect(url, token=…))"
            )
        held = request.app.state.gc.token_scope(credentials.credentials)
        if held is None:
            raise AuthenticationError("the token is unknown or revoked: ask an admin for a valid one")
        if not scope_allows(held, scope):
            raise PermissionDenied(f"this request needs a token of scope {scope} (or above), and yours is {held}: "
                                   f"use a {scope} token")
        return held

    check.geocube_scope = scope  # type: ignore[attr-defined]
    return Depends(check)


def _scope_of(dependencies: Any) -> str | None:
    for dep in dependencies:
        scope = getattr(getattr(dep, "call", None) or getattr(dep, "dependency", None), "geocube_scope", None)
        if scope is not None:
            return scope
    return None


def route_scope(route: APIRoute) -> str | None:
    """The scope a route requires (from its ``require`` dependency), or None for a public route."""
    return _scope_of(route.dependant.dependencies)


@dataclass(frozen=True)
class RouteInfo:
    """One route of the app as a client sees it: full path, methods and the scope it needs (None: public)."""

    path: str
    methods: frozenset[str]
    scope: str | None
    route: APIRoute


def route_table(app: FastAPI) -> list[RouteInfo]:
    """Every API route of ``app`` (included routers walked, their prefixes and dependencies applied)."""
    out: list[RouteInfo] = []

    def walk(routes: Any, prefix: str, scope: str | None) -> None:
        for route in routes:
            if isinstance(route, APIRoute):
                out.append(RouteInfo(prefix + route.path, frozenset(route.methods), route_scope(route) or scope, route))
            elif hasattr(route, "original_router"):  # FastAPI's included router (kept lazily, not flattened)
                ctx = route.include_context
                walk(route.original_router.routes, prefix + ctx.prefix, _scope_of(ctx.dependencies) or scope)

    walk(app.routes, "", None)
    return out


def allowed_methods(app: FastAPI, path: str) -> frozenset[str]:
    """The methods of every route of ``app`` whose path matches ``path`` (the ``Allow`` header of a 405:
    starlette lists only the first route that matched the path, not the others at the same path)."""
    table = getattr(app.state, "route_patterns", None)
    if table is None:
        table = app.state.route_patterns = [(compile_path(info.path)[0], info.methods) for info in route_table(app)]
    return frozenset(m for regex, methods in table if regex.match(path) for m in methods)


async def run_bounded(app: FastAPI, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn(*args, **kwargs)`` on the app's bounded pool (plans, tiles): at most ``pool_size`` run at
    once, the others wait their turn, and the event loop stays free."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(app.state.pool, functools.partial(fn, *args, **kwargs))


def page_limit(request: Request, limit: int | None, page: int = 0) -> int | None:
    """The page size to use: ``limit`` if within the server's maximum, the maximum if None (with
    ``page`` 0; a later page without a limit is left to the catalogue to refuse), else RequestTooLarge."""
    maximum = request.app.state.max_page_size
    if limit is None:
        return None if page else maximum
    if limit > maximum:
        raise RequestTooLarge(
            f"limit={limit} is above this server's maximum page size {maximum}: ask for pages of at most "
            f"{maximum} (page=0, 1, …)"
        )
    return limit
