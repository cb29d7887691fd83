"""Routes for joining: health, workspaces, and agents registering, describing and leaving.

Creating a workspace and registering happen before the caller has a token, so they are
rate-limited by client address instead of by agent.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Response

from leasefs.wire import (
    ADMIN_SECRET_HEADER,
    LEASEFS_VERSION,
    AgentInfo,
    AgentRegistration,
    Health,
    Registered,
    ServerLimits,
    Workspace,
    WorkspaceCreate,
)

from ._deps import AgentDep, CoordinatorDep, LimitsDep, MaybeAgentDep, rate_by_address

router = APIRouter()


@router.get("/v1/health", response_model=Health)
async def health(limits: LimitsDep, c: CoordinatorDep) -> Health:
    return Health(
        status="ok",
        version=LEASEFS_VERSION,
        limits=ServerLimits(
            max_blob_bytes=limits.max_blob_bytes, max_json_bytes=limits.max_json_bytes
        ),
        failed_authentications=c.failed_authentications,
    )


@router.post(
    "/v1/workspaces",
    response_model=Workspace,
    status_code=201,
    dependencies=[Depends(rate_by_address)],
)
async def create_workspace(
    body: WorkspaceCreate,
    c: CoordinatorDep,
    admin_secret: Annotated[str | None, Header(alias=ADMIN_SECRET_HEADER)] = None,
) -> Workspace:
    """Where admission is by invitation, with the coordinator's admin secret only."""
    return await c.create_workspace(body.name, admin_secret, body.owner)


@router.get("/v1/workspaces/{name}", response_model=Workspace)
async def get_workspace(name: str, c: CoordinatorDep, agent: MaybeAgentDep) -> Workspace:
    """Where admission is by invitation, only to an agent of that workspace (404 otherwise,
    as for one that does not exist)."""
    return await c.get_workspace(name, agent)


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
