"""Routes for zones: globs of files that warn, need a confirmation, or are blocked, and the
allowances that confirm one file for one agent.

``POST /v1/zones/allowances`` and ``DELETE /v1/zones/{zone_id}`` share a prefix; the literal
path is declared after the templated one, as it always was, and they differ by method.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from leasefs.wire import Zone, ZoneAllowance, ZoneCreate

from ._deps import AgentDep, CoordinatorDep, RowId

router = APIRouter()


@router.get("/v1/zones", response_model=list[Zone])
async def list_zones(agent: AgentDep, c: CoordinatorDep) -> list[Zone]:
    return await c.zones.all(agent)


@router.post("/v1/zones", response_model=Zone, status_code=201)
async def add_zone(body: ZoneCreate, agent: AgentDep, c: CoordinatorDep) -> Zone:
    return await c.zones.add(agent, body)


@router.delete("/v1/zones/{zone_id}", status_code=204)
async def remove_zone(zone_id: RowId, agent: AgentDep, c: CoordinatorDep) -> Response:
    await c.zones.remove(agent, zone_id)
    return Response(status_code=204)


@router.post("/v1/zones/allowances", status_code=204)
async def allow_zone(body: ZoneAllowance, agent: AgentDep, c: CoordinatorDep) -> Response:
    await c.zones.allow(agent, body)
    return Response(status_code=204)
