"""Error answers: one body shape, and the stable codes both sides name.

The coordinator raises with an `ErrorCode`; the client turns the code back into its own
exception. Being one StrEnum, a code can be neither misspelt on one side nor forgotten on the
other. Every answer is ``{"error": code, "message": sentence, "details": {...}}``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from ._base import WireModel


class ErrorCode(StrEnum):
    # 400 and 422: the request itself is wrong
    MALFORMED_JSON = "malformed_json"
    INVALID_REQUEST = "invalid_request"
    INVALID_PATH = "invalid_path"
    INVALID_HASH = "invalid_hash"
    HASH_MISMATCH = "hash_mismatch"
    CLIENT_GONE = "client_gone"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    # 401: who is asking
    UNAUTHORIZED = "unauthorized"
    AGENT_LEFT = "agent_left"
    REVOKED = "revoked"
    # 403
    FORBIDDEN = "forbidden"
    ROLE_REQUIRED = "role_required"
    INVITATION_REQUIRED = "invitation_required"
    INVALID_INVITATION = "invalid_invitation"
    ADMIN_SECRET_REQUIRED = "admin_secret_required"
    ZONE_BLOCKED = "zone_blocked"
    ZONE_CONFIRMATION_REQUIRED = "zone_confirmation_required"
    # 404
    NOT_FOUND = "not_found"
    UNKNOWN_WORKSPACE = "unknown_workspace"
    UNKNOWN_AGENT = "unknown_agent"
    UNKNOWN_BLOB = "unknown_blob"
    NO_VERSION = "no_version"
    UNKNOWN_WORK = "unknown_work"
    UNKNOWN_MEMORY = "unknown_memory"
    UNKNOWN_THREAD = "unknown_thread"
    UNKNOWN_ZONE = "unknown_zone"
    UNKNOWN_MEMBER = "unknown_member"
    # 409
    CONFLICT = "conflict"
    LEASE_HELD = "lease_held"
    STALE_TOKEN = "stale_token"
    WORKSPACE_EXISTS = "workspace_exists"
    CONTEXT_CONFLICT = "context_conflict"
    THREAD_CLOSED = "thread_closed"
    NOT_OWNER = "not_owner"
    WRONG_STATUS = "wrong_status"
    # 413
    BLOB_TOO_LARGE = "blob_too_large"
    BODY_TOO_LARGE = "body_too_large"
    # 429
    RATE_LIMITED = "rate_limited"
    TOO_MANY_LEASES = "too_many_leases"
    # 5xx
    INTERNAL_ERROR = "internal_error"
    STORE_UNAVAILABLE = "store_unavailable"


class ErrorBody(WireModel):
    """Every error answer: a stable code for programs and a sentence a person can act on.

    ``error`` stays a plain string on the wire, so a newer server's code still reaches an older
    client (which falls back on the HTTP status)."""

    error: str
    message: str
    details: dict[str, Any] | None = None
