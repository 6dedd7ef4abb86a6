"""The one place where errors become HTTP responses, always in OpenAI's error shape:
{"error": {"message", "type", "param", "code"}}."""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from lorebase import errors
from lorebase.api.protocol import ErrorBody, ErrorResponse
from lorebase.api.security import Unauthorized

log = logging.getLogger(__name__)

# Most specific first; the first class the error is an instance of decides.
STATUS: list[tuple[type[errors.LorebaseError], int, str]] = [
    (Unauthorized, 401, "authentication_error"),
    (errors.UnknownModel, 404, "invalid_request_error"),
    (errors.NotFound, 404, "invalid_request_error"),
    (errors.PromptTooLong, 400, "invalid_request_error"),
    (errors.InvalidInput, 400, "invalid_request_error"),
    (errors.Conflict, 409, "invalid_request_error"),
    (errors.Overloaded, 429, "rate_limit_error"),
    (errors.EngineUnavailable, 503, "server_error"),
    (errors.ModelNotAvailable, 503, "server_error"),
    (errors.UpstreamError, 502, "server_error"),
    (errors.LorebaseError, 500, "server_error"),
]


def _encodable(text: str | None) -> str | None:
    # Messages may quote what the client sent; a lone surrogate in it would break the response itself.
    return None if text is None else text.encode("utf-8", "backslashreplace").decode("utf-8")


# What each error status means, for the OpenAPI document: every route lists the ones it can give.
_MEANING = {
    400: "Invalid request: a field is missing, out of range or not valid text; `param` names it.",
    401: "Missing or invalid API key (keys are required when the server is bound beyond loopback).",
    404: "Not found: no such run, feedback, job, source or model.",
    409: "Conflict with the current state: already running, already reviewed, a name in use.",
    413: "The request body is larger than server.max_request_bytes.",
    429: "Every generation slot and queue place is taken; try again shortly.",
    500: "Internal error; the server log has the details.",
    502: "A remote service (the model server, GitHub) failed the request.",
    503: "The generator is not running (starting, or its server is down).",
}
COMMON = (400, 401, 413, 500)  # any API route: bad fields, keys, body size, a bug


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` of these error statuses, each with OpenAI's error body."""
    return {s: {"model": ErrorResponse, "description": _MEANING[s]} for s in statuses}


def error_body(message: str, type_: str, code: str | None, param: str | None = None) -> dict[str, object]:
    """Every error body the server sends, in OpenAI's shape (protocol.ErrorResponse, which the OpenAPI
    document declares for each error status)."""
    body = ErrorResponse(error=ErrorBody(message=_encodable(message) or "", type=type_, param=_encodable(param), code=code))
    return body.model_dump()


def status_of(exc: errors.LorebaseError) -> tuple[int, str]:
    for cls, status, type_ in STATUS:
        if isinstance(exc, cls):
            return status, type_
    return 500, "server_error"


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.LorebaseError)
    async def _domain(_: Request, exc: errors.LorebaseError) -> JSONResponse:
        status, type_ = status_of(exc)
        if status >= 500:
            log.warning("%s: %s", type(exc).__name__, exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
        retry_after = getattr(exc, "retry_after_s", None)
        if retry_after is not None:  # a wait that ends by itself (start-up, a restart): say when to come back
            headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
        return JSONResponse(error_body(str(exc), type_, exc.code), status_code=status, headers=headers or None)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        loc = [str(p) for p in first.get("loc", ()) if p != "body"]
        param = ".".join(loc) or None
        msg = f"{param}: {first.get('msg')}" if param else str(first.get("msg"))
        return JSONResponse(error_body(msg, "invalid_request_error", "invalid_request", param), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_ = "invalid_request_error" if exc.status_code < 500 else "server_error"
        headers = dict(exc.headers or {})
        message = str(exc.detail)
        if exc.status_code == 405:
            # Starlette names only the first route that matched the path; the others count too.
            allowed = allowed_methods(request)
            headers["Allow"] = ", ".join(allowed)
            message = f"{request.method} is not allowed on {request.url.path}; allowed: {', '.join(allowed)}"
        code = getattr(exc, "code", None)
        return JSONResponse(error_body(message, type_, code), status_code=exc.status_code, headers=headers or None)

    _declare_only_our_errors(app)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        # Never the traceback or the exception text to the client: it may hold paths or secrets.
        log.exception("unhandled error")
        return JSONResponse(error_body("internal error; see the server log", "server_error", "internal_error"), status_code=500)


def allowed_methods(request: Request) -> list[str]:
    """The methods some route answers at this path: each asked of the router as the request's own."""
    routes = request.app.router.routes
    return [m for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
            if any(r.matches({**request.scope, "method": m})[0] is Match.FULL for r in routes)]


def _declare_only_our_errors(app: FastAPI) -> None:
    """FastAPI declares 422 on every route with parameters; this server answers 400 instead (above)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()  # FastAPI's, cached until the routes change; stripping again is idempotent
        for item in schema.get("paths", {}).values():
            for op in item.values():
                if isinstance(op, dict):
                    op.get("responses", {}).pop("422", None)
        for name in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(name, None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
