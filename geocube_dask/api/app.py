"""The HTTP API façade over a catalogue (FastAPI): ``create_app`` and the uvicorn factory.

The app holds one :class:`~geocube_dask.geocube.Geocube` (``app.state.gc``; opened from ``db`` when none
is given, and then closed at shutdown) and a bounded thread pool (``app.state.pool``) for the work that
computes (plans, tiles: :func:`.deps.run_bounded`). Catalogue routes are plain ``def`` handlers, which
FastAPI runs on its own worker threads. Routers come from the modules of :mod:`.routes` listed in
:data:`ROUTE_MODULES`, each exporting ``router``.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..geocube import Geocube, connect
from . import errors

# the modules of geocube_dask.api.routes whose ``router`` the app includes, in this order
ROUTE_MODULES: tuple[str, ...] = (
    "meta", "variables", "palettes", "instances", "records", "aois", "datasets", "layouts", "jobs", "admin",
    "cubes",
    "tiles",
    "viewer",
)

DB_ENV = "GEOCUBE_API_DB"  # the catalogue of `create_app_from_env` (set by `geocube serve --workers N`)
MAX_BODY = 16 * 1024 * 1024
MAX_PAGE_SIZE = 1000
POOL_SIZE = 4


class BodyLimit:
    """ASGI middleware refusing request bodies above ``max_body`` bytes with 413 ``RequestTooLarge``,
    from the Content-Length header or, without one, as the body streams in."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope.get("headers", []):
            if key == b"content-length" and value.isdigit() and int(value) > self.max_body:
                await self._refuse(send)
                return
        seen = 0

        async def counting() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, counting, send)
        except _TooLarge:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        from fastapi.responses import JSONResponse

        response = JSONResponse(errors.error_body(
            "RequestTooLarge", f"the request body is larger than this server accepts ({self.max_body} bytes): "
            "send less per request (e.g. index files in several requests)"), status_code=413)
        await response({"type": "http"}, _no_receive, send)


class _TooLarge(Exception):
    pass


async def _no_receive() -> Message:  # pragma: no cover - a response never reads
    return {"type": "http.disconnect"}


def create_app(
    gc: Geocube | None = None,
    *,
    db: str | None = None,
    pool_size: int = POOL_SIZE,
    max_body: int = MAX_BODY,
    max_page_size: int = MAX_PAGE_SIZE,
) -> FastAPI:
    """The API over ``gc`` (kept open), or over the catalogue at ``db`` (opened now, closed at shutdown;
    default ``$GEOCUBE_DB`` or ``./geocube.db``)."""
    owned = gc is None
    catalogue = connect(db) if gc is None else gc

    def new_pool() -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="geocube-api")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # each serving has a pool of its own, shut down when it ends: an app served again (a test
        # client opened twice) gets a new one instead of a pool that refuses work
        app.state.pool.shutdown(wait=False)
        app.state.pool = new_pool()
        try:
            yield
        finally:
            app.state.pool.shutdown(wait=False, cancel_futures=True)
            if owned:
                catalogue.close()

    app = FastAPI(
        title="Geocube API",
        description="The catalogue of a Geocube over HTTP: entities, indexing, jobs, cube and timeseries plans. "
                    "Send `Authorization: Bearer <token>` (`geocube token create`).",
        version="1",
        lifespan=lifespan,
        responses=errors.error_responses(),  # every operation documents its {error, detail} answers
    )
    app.state.gc = catalogue
    app.state.pool = new_pool()  # until served (an app used without lifespan events keeps it)
    app.state.max_page_size = max_page_size
    errors.install(app)
    for name in ROUTE_MODULES:
        module = importlib.import_module(f"{__package__}.routes.{name}")
        app.include_router(module.router)
    app.add_middleware(BodyLimit, max_body=max_body)
    return app


def create_app_from_env() -> FastAPI:
    """The uvicorn factory of ``geocube serve --workers N``: the catalogue from ``$GEOCUBE_API_DB``."""
    return create_app(db=os.environ.get(DB_ENV) or None)
