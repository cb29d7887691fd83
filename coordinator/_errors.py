"""Errors the coordinator answers with.

    CoordinatorError                 carries an HTTP status and a stable error code
    ├── BadRequest          400      malformed_json, invalid_request
    ├── Unauthenticated     401      unauthorized, agent_left
    ├── Forbidden           403      zone_blocked, zone_confirmation_required
    ├── NotFoundError       404      unknown_workspace, unknown_blob, no_version, not_found
    ├── ConflictError       409      lease_held, stale_token, workspace_exists
    ├── TooLarge            413      blob_too_large
    ├── Unprocessable       422      invalid_request, hash_mismatch, unknown_blob
    ├── TooMany             429      rate_limited, too_many_leases
    └── StoreFailure        503      store_unavailable (disk full, database locked)

Every one is rendered by one handler in `coordinator._app` as
``{"error": code, "message": sentence, "details": {...}}``.
"""

from __future__ import annotations

from typing import Any

from leasefs.wire import ErrorCode


class CoordinatorError(Exception):
    status = 500
    default_code = ErrorCode.INTERNAL_ERROR

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details = details


class BadRequest(CoordinatorError):
    status = 400
    default_code = ErrorCode.INVALID_REQUEST


class Unauthenticated(CoordinatorError):
    status = 401
    default_code = ErrorCode.UNAUTHORIZED


class Forbidden(CoordinatorError):
    status = 403
    default_code = ErrorCode.FORBIDDEN


class NotFoundError(CoordinatorError):
    status = 404
    default_code = ErrorCode.NOT_FOUND


class ConflictError(CoordinatorError):
    status = 409
    default_code = ErrorCode.CONFLICT


class TooLarge(CoordinatorError):
    status = 413
    default_code = ErrorCode.BLOB_TOO_LARGE


class Unprocessable(CoordinatorError):
    status = 422
    default_code = ErrorCode.INVALID_REQUEST


class TooMany(CoordinatorError):
    """A per-agent limit: ``details["retry_after_s"]``, when present, says when to try again."""

    status = 429
    default_code = ErrorCode.RATE_LIMITED


class StoreFailure(CoordinatorError):
    status = 503
    default_code = ErrorCode.STORE_UNAVAILABLE
