"""What the routes share: the coordinator, the calling agent, rate limits, checked inputs.

A route names what it needs by type (`CoordinatorDep`, `AgentDep`, `RowId`) and FastAPI
supplies it; authentication and the per-agent rate limit happen once, here, for every route
that takes an `AgentDep`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi import Path as FastAPIPath

from leasefs.wire import ErrorCode, InvalidPath, check_lease_key, check_repo_path, check_sha256

from .._errors import TooMany, Unauthenticated, Unprocessable
from .._limits import Limits, RateLimiter
from .._service import Coordinator
from ..store import AgentRow

MAX_ROW_ID = 2**63 - 1  # SQLite's (and PostgreSQL's bigint) largest integer


async def current_coordinator(request: Request) -> Coordinator:
    # async: FastAPI runs a plain-def dependency in a worker thread, a round trip per request.
    coordinator: Coordinator = request.app.state.coordinator
    return coordinator


async def current_limits(request: Request) -> Limits:
    limits: Limits = request.app.state.limits
    return limits


def admit(request: Request, key: object) -> None:
    """Spend one of ``key``'s request tokens, or refuse with when to come back."""
    limiter: RateLimiter = request.app.state.rate_limiter
    if (retry_after := limiter.admit(key)) is not None:
        raise TooMany(
            f"too many requests: the limit is {limiter.rate_per_s:g} per second per agent "
            f"(leasefs serve --rate-limit); try again in {retry_after:.2f} s",
            details={"retry_after_s": round(retry_after, 3)},
        )


async def current_agent(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> AgentRow:
    """The agent named by the bearer token, after spending one of its request tokens."""
    token = None
    if authorization and authorization.lower().startswith("bearer "):
        token = authorization[7:].strip()
    agent = await (await current_coordinator(request)).authenticate(token)
    admit(request, agent.id)
    return agent


async def optional_agent(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> AgentRow | None:
    """The agent named by a bearer token if one is given and valid, else None (for the calls
    whose answer only depends on whether the caller belongs)."""
    if not authorization or not authorization.lower().startswith("bearer "):
        return None
    try:
        return await current_agent(request, authorization)
    except Unauthenticated:
        return None


async def rate_by_address(request: Request) -> None:
    """Calls made before an agent has a token are limited per client address."""
    admit(request, request.client.host if request.client else "")


CoordinatorDep = Annotated[Coordinator, Depends(current_coordinator)]
LimitsDep = Annotated[Limits, Depends(current_limits)]
AgentDep = Annotated[AgentRow, Depends(current_agent)]
MaybeAgentDep = Annotated[AgentRow | None, Depends(optional_agent)]
RowId = Annotated[int, FastAPIPath(ge=0, le=MAX_ROW_ID)]


def checked_path(value: str) -> str:
    """``value`` as a repository path, or a 422 ``invalid_path``."""
    try:
        return check_repo_path(value)
    except InvalidPath as exc:
        raise Unprocessable(str(exc), code=ErrorCode.INVALID_PATH) from exc


def checked_key(value: str) -> str:
    """``value`` as a lease key (a path, or a folder's path and '/'), or a 422."""
    try:
        return check_lease_key(value)
    except InvalidPath as exc:
        raise Unprocessable(str(exc), code=ErrorCode.INVALID_PATH) from exc


def checked_digest(value: str) -> str:
    """``value`` as a SHA-256 hex digest, or a 422 ``invalid_hash``."""
    try:
        return check_sha256(value)
    except ValueError as exc:
        raise Unprocessable(str(exc), code=ErrorCode.INVALID_HASH) from exc
