"""Routes for leases: acquire (optionally waiting in line), renew, release, narrow a folder
lease, and who holds what.

A waiting acquire watches its connection: if the client hangs up, the wait is cancelled so
the waiter leaves the line instead of being granted a lease nobody will use.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated, TypeVar

import trio
from fastapi import APIRouter, Query, Request

from leasefs.wire import (
    ErrorCode,
    LeaseGrant,
    LeaseRequest,
    NarrowRequest,
    NarrowResult,
    PathStatus,
    ReleaseRequest,
    ReleaseResult,
    RenewRequest,
    RenewResult,
)

from .._errors import BadRequest
from ._deps import AgentDep, CoordinatorDep, checked_key

T = TypeVar("T")

router = APIRouter()


@router.post("/v1/leases/acquire", response_model=LeaseGrant)
async def acquire(
    body: LeaseRequest, request: Request, agent: AgentDep, c: CoordinatorDep
) -> LeaseGrant:
    if body.wait_s <= 0:
        return await c.acquire(agent, body)
    return await _unless_disconnected(request, c.acquire(agent, body))


@router.post("/v1/leases/renew", response_model=RenewResult)
async def renew(body: RenewRequest, agent: AgentDep, c: CoordinatorDep) -> RenewResult:
    return await c.renew(agent, body)


@router.post("/v1/leases/release", response_model=ReleaseResult)
async def release(body: ReleaseRequest, agent: AgentDep, c: CoordinatorDep) -> ReleaseResult:
    return await c.release(agent, body)


@router.post("/v1/leases/narrow", response_model=NarrowResult)
async def narrow(body: NarrowRequest, agent: AgentDep, c: CoordinatorDep) -> NarrowResult:
    """Replace a folder lease by leases on the files under it still held (someone waits)."""
    return await c.narrow(agent, body)


@router.get("/v1/leases", response_model=list[PathStatus])
async def holders(
    agent: AgentDep, c: CoordinatorDep, path: Annotated[list[str] | None, Query()] = None
) -> list[PathStatus]:
    paths = [checked_key(p) for p in path] if path else None
    return await c.path_status(agent, paths)


async def _unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Run ``work``; if the client hangs up first, cancel it (a waiter must leave the line)."""
    outcome: list[T] = []
    failure: list[Exception] = []

    async def run(cancel_scope: trio.CancelScope) -> None:
        try:
            outcome.append(await work)
        except Exception as exc:  # re-raised below, outside the nursery's exception group
            failure.append(exc)
        cancel_scope.cancel()

    async def watch(cancel_scope: trio.CancelScope) -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass
        cancel_scope.cancel()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run, nursery.cancel_scope)
        nursery.start_soon(watch, nursery.cancel_scope)
    if failure:
        raise failure[0]
    if not outcome:
        raise BadRequest("the client went away while waiting", code=ErrorCode.CLIENT_GONE)
    return outcome[0]
