"""Invitations and members: how a machine comes to belong to a workspace, and stops.

An admin invites (`invite`): a secret shown once, stored hashed, expiring, single-use by
default. Redeeming it (`redeem`) makes a member with the invitation's role and a credential,
also shown once, with which that machine registers its agents. Revoking a member (`revoke`)
marks it revoked; the service then retires every one of its agents (their leases go to the
next waiters). Every refusal of a secret is the same sentence, whatever was wrong with it.
"""

from __future__ import annotations

from leasefs.wire import (
    ErrorCode,
    Invitation,
    InvitationCreate,
    InvitationRedeem,
    Joined,
    MemberInfo,
)

from ._admission import hash_secret, new_secret, require_role
from ._component import StoreComponent
from ._errors import Forbidden, NotFoundError
from ._records import agent_info, record
from .store import AgentRow, MemberRow, Tx

_INVALID_INVITATION = (
    "this invitation is not valid: unknown, used up, expired or withdrawn; ask an admin of "
    "the workspace for a new one (`leasefs invite`)"
)


class _Refused(Exception):
    """A refused redemption whose audit entry must still be written: the transaction
    commits, then the refusal is raised."""


class Access(StoreComponent):
    failed_redemptions = 0

    async def invite(self, agent: AgentRow, request: InvitationCreate) -> Invitation:
        require_role(agent, "admin", "inviting")
        secret = new_secret("lfi_")

        def invite(tx: Tx) -> Invitation:
            now = self._clock()
            row = tx.insert_invitation(
                agent.workspace_id,
                hash_secret(secret),
                request.role,
                agent.member_id,
                now,
                now + request.expires_s,
                request.uses,
            )
            record(tx, agent.workspace_id, now, agent.id, "invitation.created", None,
                   {"invitation": row.id, "role": row.role, "uses": row.uses_left,
                    "expires_at": row.expires_at}, publish=False)  # fmt: skip
            workspace = tx.workspace_by_id(agent.workspace_id)
            return Invitation(
                workspace=workspace.name,
                role=row.role,
                expires_at=row.expires_at,
                uses=row.uses_left,
                secret=secret,
            )

        return await self._store.run(invite)

    async def redeem(self, request: InvitationRedeem) -> Joined:
        credential = new_secret("lfm_")

        def redeem(tx: Tx) -> Joined:
            now = self._clock()
            invitation = tx.invitation_by_secret_hash(hash_secret(request.secret))
            if (
                invitation is None
                or invitation.revoked_at is not None
                or invitation.expires_at <= now
                or invitation.uses_left <= 0
            ):
                if invitation is not None:  # counted where someone can see it
                    record(tx, invitation.workspace_id, now, None, "auth.failed", None,
                           {"invitation": invitation.id, "why": "invitation not valid now"},
                           publish=False)  # fmt: skip
                raise _Refused(_INVALID_INVITATION)
            tx.use_invitation(invitation.id)
            member = tx.insert_member(
                invitation.workspace_id,
                request.name,
                invitation.role,
                hash_secret(credential),
                invitation.created_by,
                now,
            )
            record(tx, invitation.workspace_id, now, None, "member.joined", None,
                   {"member": member.name, "role": member.role,
                    "invitation": invitation.id}, publish=False)  # fmt: skip
            workspace = tx.workspace_by_id(invitation.workspace_id)
            return Joined(
                workspace=workspace.name,
                member=member.name,
                role=member.role,
                credential=credential,
            )

        def redeem_or_refuse(tx: Tx) -> Joined | _Refused:
            try:
                return redeem(tx)
            except _Refused as refused:
                return refused

        outcome = await self._store.run(redeem_or_refuse)
        if isinstance(outcome, _Refused):
            self.failed_redemptions += 1
            raise Forbidden(str(outcome), code=ErrorCode.INVALID_INVITATION)
        return outcome

    async def members(self, agent: AgentRow) -> list[MemberInfo]:
        def members(tx: Tx) -> list[MemberInfo]:
            rows = tx.members_of(agent.workspace_id)
            names = {row.id: row.name for row in rows}
            agents = tx.agents_of_workspace(agent.workspace_id)
            return [_member_info(row, names, agents) for row in rows]

        return await self._store.read(members)

    async def revoke(self, agent: AgentRow, member_id: int) -> tuple[MemberInfo, list[AgentRow]]:
        """Mark ``member_id`` revoked; returns it and its agents still in the workspace,
        which the caller retires (their leases released, their tokens refused)."""
        require_role(agent, "admin", "revoking a member")

        def revoke(tx: Tx) -> tuple[MemberInfo, list[AgentRow]]:
            rows = tx.members_of(agent.workspace_id)
            target = next((row for row in rows if row.id == member_id), None)
            if target is None:
                raise NotFoundError(
                    f"there is no member {member_id} in this workspace",
                    code=ErrorCode.UNKNOWN_MEMBER,
                )
            if target.role == "owner" and agent.role != "owner":
                require_role(agent, "owner", "revoking the owner")
            now = self._clock()
            if target.revoked_at is None:
                tx.revoke_member(target.id, now)
                record(tx, agent.workspace_id, now, agent.id, "member.revoked", None,
                       {"member": target.name, "member_id": target.id}, publish=False)  # fmt: skip
            current = tx.member_by_id(target.id)
            assert current is not None
            agents = tx.agents_of_member(target.id)
            names = {row.id: row.name for row in rows}
            live = [a for a in agents if a.left_at is None]
            return _member_info(current, names, agents), live

        return await self._store.run(revoke)


def _member_info(row: MemberRow, names: dict[int, str], agents: list[AgentRow]) -> MemberInfo:
    mine = [a for a in agents if a.member_id == row.id]
    return MemberInfo(
        id=row.id,
        name=row.name,
        role=row.role,
        invited_by=names.get(row.invited_by) if row.invited_by is not None else None,
        joined_at=row.created_at,
        revoked_at=row.revoked_at,
        agents=[agent_info(a) for a in mine if a.left_at is None],
        last_seen=max((a.joined_at for a in mine), default=None),
    )
