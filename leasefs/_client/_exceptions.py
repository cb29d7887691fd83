"""Exceptions raised by the leasefs client.

    LeasefsError
    ├── CoordinatorUnavailable       the coordinator could not be reached or did not answer
    └── RequestRejected              the coordinator answered with an error body
        ├── InvalidRequest           400/422: malformed JSON, bad path, bad field
        ├── Unauthorized             401: missing, wrong or retired token
        ├── Forbidden                403: a protected zone refuses the change
        ├── NotFound                 404: unknown workspace, blob, version
        ├── Conflict                 409: the request clashes with current state
        │   ├── LeaseHeld            someone else holds (or waits first for) a path
        │   └── StaleToken           a fencing token that is no longer current
        ├── PayloadTooLarge          413: a blob or request body over the configured limit
        └── TooManyRequests          429: a per-agent limit
            ├── RateLimited          requests per second (the client waits and retries first)
            └── TooManyLeases        leases held at once

httpx's own exceptions never escape the client: they are converted in one place, the
table `_HTTPX_ERRORS` of `leasefs._client._transport`, with ``raise ... from exc``.
"""

from __future__ import annotations

from typing import Any

from ..wire import ErrorCode, Lease


class LeasefsError(Exception):
    """Base class of every error the client raises."""


class CoordinatorUnavailable(LeasefsError):
    """The coordinator did not answer: not running, unreachable, or too slow."""

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class InsecureTransport(LeasefsError):
    """Refused before sending: plain http to a coordinator on another machine would carry
    the agent's token and the team's code in the clear."""


class RequestRejected(LeasefsError):
    """The coordinator refused the request; ``code`` is its stable error code."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.details = details or {}


class InvalidRequest(RequestRejected):
    pass


class Unauthorized(RequestRejected):
    pass


class Forbidden(RequestRejected):
    """A protected zone refuses the change (blocked, or not confirmed for this agent)."""


class NotFound(RequestRejected):
    pass


class Conflict(RequestRejected):
    pass


class LeaseHeld(Conflict):
    """A path is held by another agent (or another waiter is ahead in line)."""

    @property
    def holders(self) -> list[Lease]:
        return [Lease.model_validate(item) for item in self.details.get("holders", [])]


class StaleToken(Conflict):
    """The fencing token is not the current one: the lease was lost, expired or never held."""


class PayloadTooLarge(RequestRejected):
    pass


class TooManyRequests(RequestRejected):
    @property
    def retry_after_s(self) -> float | None:
        value = self.details.get("retry_after_s")
        return float(value) if isinstance(value, int | float) else None


class RateLimited(TooManyRequests):
    """Over the coordinator's request rate for one agent, even after waiting as told."""


class TooManyLeases(TooManyRequests):
    """The agent holds as many leases as the coordinator allows one agent."""


_BY_CODE: dict[str, type[RequestRejected]] = {
    ErrorCode.LEASE_HELD: LeaseHeld,
    ErrorCode.STALE_TOKEN: StaleToken,
    ErrorCode.RATE_LIMITED: RateLimited,
    ErrorCode.TOO_MANY_LEASES: TooManyLeases,
}
_BY_STATUS: dict[int, type[RequestRejected]] = {
    400: InvalidRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: InvalidRequest,
    429: TooManyRequests,
}


def rejection_for(
    status: int, code: str, message: str, details: dict[str, Any] | None
) -> RequestRejected:
    """The most specific exception for an error answer."""
    cls = _BY_CODE.get(code) or _BY_STATUS.get(status, RequestRejected)
    return cls(message, status=status, code=code, details=details)
