"""Routes for access: invitations made and redeemed, members listed and revoked.

Redeeming happens before the caller has a token, so it is rate-limited by client address.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from leasefs.wire import Invitation, InvitationCreate, InvitationRedeem, Joined, MemberInfo

from ._deps import AgentDep, CoordinatorDep, RowId, rate_by_address

router = APIRouter()


@router.post("/v1/invitations", response_model=Invitation, status_code=201)
async def invite(body: InvitationCreate, agent: AgentDep, c: CoordinatorDep) -> Invitation:
    """An admin's invitation into its workspace; the secret is shown only here."""
    return await c.access.invite(agent, body)


@router.post(
    "/v1/invitations/redeem",
    response_model=Joined,
    status_code=201,
    dependencies=[Depends(rate_by_address)],
)
async def redeem(body: InvitationRedeem, c: CoordinatorDep) -> Joined:
    """Become a member with an invitation's secret; the credential is shown only here."""
    return await c.access.redeem(body)


@router.get("/v1/members", response_model=list[MemberInfo])
async def members(agent: AgentDep, c: CoordinatorDep) -> list[MemberInfo]:
    return await c.access.members(agent)


@router.post("/v1/members/{member_id}/revoke", response_model=MemberInfo)
async def revoke(member_id: RowId, agent: AgentDep, c: CoordinatorDep) -> MemberInfo:
    """An admin retires a member and every agent of it at once."""
    return await c.revoke(agent, member_id)
