"""Errors as the HTTP API answers them: ``{"error": <GeocubeError class name>, "detail": <message>}``.

The status comes from :data:`STATUS` by the error's class (its nearest listed ancestor). Request
validation errors (a body or parameter of the wrong shape) are answered as ``InvalidArgument`` with
status 422, so that bad input never gives a 500. The remote client (:mod:`geocube_dask.client`) raises
the same class again from ``error``. Every operation of the OpenAPI schema documents these answers
(:func:`error_responses`, given to the app as a whole).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import errors as E
from .deps import allowed_methods

# class → HTTP status; a class not listed takes its nearest listed ancestor's
STATUS: dict[type[E.GeocubeError], int] = {
    E.GeocubeError: 400,
    E.InvalidArgument: 400,
    E.AuthenticationError: 401,
    E.PermissionDenied: 403,
    E.NotFound: 404,
    E.AlreadyExists: 409,
    E.DependencyError: 409,
    E.JobConflict: 409,
    E.RequestTooLarge: 413,
    E.UnreadableFile: 422,
    E.SourceReadError: 422,
    # the server's own troubles, not the request's
    E.ConsolidationWriteError: 502,
    E.CatalogConnectionError: 503,
    E.ClusterConnectionError: 503,
    E.SchemaVersionError: 503,
    E.MissingDependency: 501,
    E.RemoteError: 502,
}

# HTTP statuses starlette raises itself (unknown path, wrong method…) → the error class named
_HTTP_ERRORS = {401: "AuthenticationError", 403: "PermissionDenied", 404: "NotFound", 413: "RequestTooLarge"}


# the answers a request can get for its own fault, and why (the OpenAPI descriptions)
CLIENT_ERRORS: dict[int, str] = {
    400: "invalid arguments (InvalidArgument and the other GeocubeErrors not listed below)",
    401: "no token, or an unknown or revoked one (AuthenticationError)",
    403: "a token of too low a scope (PermissionDenied)",
    404: "an unknown entity (NotFound)",
    409: "a conflict with the catalogue's state: already exists, still used, a job's state (AlreadyExists, "
         "DependencyError, JobConflict)",
    413: "a request body or page larger than the server accepts (RequestTooLarge)",
    422: "a malformed request (InvalidArgument), or a source file that cannot be read (UnreadableFile, "
         "SourceReadError)",
}


class ErrorBody(BaseModel):
    """How the API answers an error: the GeocubeError class and its message."""

    error: str
    detail: str


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for error statuses (all of :data:`CLIENT_ERRORS` by default), each with the
    ``{"error", "detail"}`` body."""
    return {s: {"model": ErrorBody, "description": CLIENT_ERRORS[s]} for s in statuses or CLIENT_ERRORS}


def status_of(exc: E.GeocubeError) -> int:
    """The HTTP status of a GeocubeError (by its class, or the nearest listed ancestor)."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]  # type: ignore[index]
    return 400


def error_body(name: str, detail: str) -> dict[str, str]:
    return {"error": name, "detail": detail}


def error_response(exc: E.GeocubeError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(type(exc).__name__, str(exc)), status_code=status_of(exc), headers=headers)


def _validation_detail(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts) + " (see the API schema at /docs)"


def install(app: FastAPI) -> None:
    """Register the handlers that give every error the ``{"error", "detail"}`` shape."""

    @app.exception_handler(E.GeocubeError)
    async def geocube_error(request: Request, exc: E.GeocubeError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, E.AuthenticationError) else None
        return error_response(exc, headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_body("InvalidArgument", _validation_detail(exc)), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        name = _HTTP_ERRORS.get(exc.status_code, "InvalidArgument" if exc.status_code < 500 else "RemoteError")
        detail: Any = exc.detail
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 404 and detail == "Not Found":  # no route at all (an entity not found says so)
            detail = f"no route {request.method} {request.scope['path']}: see the API schema at /docs"
        if exc.status_code == 405:  # every method served at this path, not only the first route's
            allowed = allowed_methods(request.app, request.scope["path"])
            if allowed:
                headers["Allow"] = ", ".join(sorted(allowed))
                detail = f"{request.method} is not served at this path: use {', '.join(sorted(allowed))}"
        return JSONResponse(error_body(name, str(detail)), status_code=exc.status_code, headers=headers or None)
