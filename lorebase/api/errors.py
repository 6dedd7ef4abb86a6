"""The one place where errors become HTTP responses, always in OpenAI's error shape:
{"error": {"message", "type", "param", "code"}}."""

from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from lorebase import errors
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


def error_body(message: str, type_: str, code: str | None, param: str | None = None) -> dict[str, object]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


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
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_ = "invalid_request_error" if exc.status_code < 500 else "server_error"
        return JSONResponse(error_body(str(exc.detail), type_, None), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        # Never the traceback or the exception text to the client: it may hold paths or secrets.
        log.exception("unhandled error")
        return JSONResponse(error_body("internal error; see the server log", "server_error", "internal_error"), status_code=500)
