"""The HTTP front of the coordinator: the /v1 routers over `Coordinator`, errors in one place.

FastAPI (a Starlette app) validates every body and query against the wire models and
derives the OpenAPI document from them, served at /v1/openapi.json. The routes themselves
live in `coordinator.routes`, one module per domain; this module assembles them with the
middleware and renders every error as an `ErrorBody`.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from leasefs.wire import LEASEFS_VERSION, ErrorBody, ErrorCode, InvalidPath

from ._body_limit import LimitJsonBodies
from ._connection import AnnounceEarlyClose
from ._errors import CoordinatorError
from ._limits import Limits, RateLimiter
from ._service import Coordinator
from .routes import ROUTERS

log = logging.getLogger("leasefs.coordinator")

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (400, 401, 403, 404, 409, 413, 422, 429, 503)
}


def create_app(coordinator: Coordinator) -> FastAPI:
    app = FastAPI(
        title="leasefs coordinator",
        version=LEASEFS_VERSION,
        openapi_url="/v1/openapi.json",
        docs_url=None,
        redoc_url=None,
        responses=_ERRORS,
    )
    limits = coordinator.limits if coordinator is not None else Limits()
    app.state.coordinator = coordinator
    app.state.limits = limits
    app.state.rate_limiter = RateLimiter(limits.rate_per_s, limits.rate_burst)
    app.add_middleware(LimitJsonBodies, max_bytes=limits.max_json_bytes)
    app.add_middleware(AnnounceEarlyClose)  # added last, so outermost: sees every answer
    _add_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    return app


def _error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> JSONResponse:
    body = ErrorBody(error=code, message=message, details=details)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status)


def _validation_message(errors: list[Any]) -> tuple[ErrorCode, str]:
    parts = []
    code = ErrorCode.INVALID_REQUEST
    for error in errors:
        if error.get("type") == "json_invalid":
            return ErrorCode.MALFORMED_JSON, "the request body is not valid JSON"
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, InvalidPath):
            code = ErrorCode.INVALID_PATH
        where = ".".join(str(x) for x in error.get("loc", ()) if x != "body")
        parts.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
    return code, "; ".join(parts)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CoordinatorError)
    async def coordinator_error(request: Request, exc: CoordinatorError) -> JSONResponse:
        if exc.status >= 500:
            log.error("%s %s failed: %s", request.method, request.url.path, exc.message)
        response = _error_response(exc.status, exc.code, exc.message, exc.details)
        if exc.details and "retry_after_s" in exc.details:
            response.headers["Retry-After"] = str(max(1, math.ceil(exc.details["retry_after_s"])))
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        code, message = _validation_message(list(exc.errors()))
        status = 400 if code == ErrorCode.MALFORMED_JSON else 422
        return _error_response(status, code, message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED}
        code: str = codes.get(exc.status_code, f"http_{exc.status_code}")
        message = {
            404: f"no such endpoint: {request.method} {request.url.path}",
            405: f"{request.method} is not allowed on {request.url.path}",
        }.get(exc.status_code, str(exc.detail))
        return _error_response(exc.status_code, code, message)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s crashed", request.method, request.url.path)
        return _error_response(
            500, ErrorCode.INTERNAL_ERROR, "the coordinator hit an unexpected error; see its log"
        )
