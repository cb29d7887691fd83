"""Routes for joining: health, workspaces, and agents registering, describing and leaving.

Creating a workspace and registering happen before the caller has a token, so they are
rate-limited by client address instead of by agent.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from leasefs.wire import (
    LEASEFS_VERSION,
    AgentInfo,
    AgentRegistration,
    Health,
    Registered,
    ServerLimits,
    Workspace,
    WorkspaceCreate,
)

from ._deps import AgentDep, CoordinatorDep, LimitsDep, rate_by_address

router = APIRouter()


@router.get("/v1/health", response_model=Health)
async def health(limits: LimitsDep) -> Health:
    return Health(
        status="ok",
        version=LEASEFS_VERSION,
        limits=ServerLimits(
            max_blob_bytes=limits.max_blob_bytes, max_json_bytes=limits.max_json_bytes
        ),
    )


@router.post(
    "/v1/workspaces",
    response_model=Workspace,
    status_code=201,
    dependencies=[Depends(rate_by_address)],
)
async def create_workspace(body: WorkspaceCreate, c: CoordinatorDep) -> Workspace:
    return await c.create_workspace(body.name)


@router.get("/v1/workspaces/{name}", response_model=Workspace)
async def get_workspace(name: str, c: CoordinatorDep) -> Workspace:
    return await c.get_workspace(name)


@router.post(
    "/v1/agents",
    response_model=Registered,
    status_code=201,
    dependencies=[Depends(rate_by_address)],
)
async def register(body: AgentRegistration, c: CoordinatorDep) -> Registered:
    return await c.register(body)


@router.get("/v1/agents/me", response_model=AgentInfo)
async def whoami(agent: AgentDep, c: CoordinatorDep) -> AgentInfo:
    return await c.describe_agent(agent)


@router.delete("/v1/agents/me", status_code=204)
async def leave(agent: AgentDep, c: CoordinatorDep) -> Response:
    await c.leave(agent)
    return Response(status_code=204)
