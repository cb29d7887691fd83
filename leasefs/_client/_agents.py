"""Workspaces and agents: making a workspace, joining it as an agent, leaving it.

`register` is where a client gets its token: every call after it acts as that agent.
"""

from __future__ import annotations

from .._config import _credentials
from ..wire import (
    ADMIN_SECRET_HEADER,
    AgentInfo,
    AgentRegistration,
    Invitation,
    InvitationCreate,
    InvitationRedeem,
    Joined,
    MemberInfo,
    Registered,
    Workspace,
    WorkspaceCreate,
)
from ._exceptions import LeasefsError
from ._transport import Transport


class AgentCalls(Transport):
    """The calls about workspaces, and about who this client is in one."""

    async def create_workspace(
        self, name: str, *, admin_secret: str | None = None, owner: str = "owner"
    ) -> Workspace:
        """Where the coordinator admits by invitation, only with its ``admin_secret``; the
        answer then carries the owner member's credential (shown once)."""
        headers = {ADMIN_SECRET_HEADER: admin_secret} if admin_secret else None
        body = WorkspaceCreate(name=name, owner=owner)
        return await self._call(Workspace, "POST", "/workspaces", body=body, headers=headers)

    async def ensure_workspace(self, name: str) -> Workspace:
        """Create the workspace unless it exists; either way return it."""
        try:
            return await self.create_workspace(name)
        except LeasefsError as exc:
            if getattr(exc, "code", None) != "workspace_exists":
                raise
        return await self.get_workspace(name)

    async def get_workspace(self, name: str) -> Workspace:
        """Where the coordinator admits by invitation, only an agent of it may ask."""
        return await self._call(Workspace, "GET", f"/workspaces/{name}")

    async def register(
        self,
        workspace: str,
        name: str,
        *,
        host: str = "",
        tool: str = "",
        credential: str | None = None,
    ) -> Registered:
        """Join a workspace as an agent; this client then acts as that agent. ``credential``:
        a member's (`redeem`), where the coordinator admits by invitation."""
        registration = AgentRegistration(
            workspace=workspace, name=name, host=host, tool=tool, credential=credential
        )
        registered = await self._call(Registered, "POST", "/agents", body=registration)
        self.token = registered.token
        self.agent = registered.agent
        self.workspace = registered.workspace
        return registered

    async def join_workspace(
        self, workspace: str, name: str, *, host: str = "", tool: str = ""
    ) -> Registered:
        """Register into ``workspace``: as the member this user joined it as (`leasefs join`
        stored its credential), or else creating the workspace first if it is missing (a
        coordinator that admits openly)."""
        credential = _credentials.lookup(self.base_url, workspace)
        if credential is None:
            await self.ensure_workspace(workspace)
        return await self.register(workspace, name, host=host, tool=tool, credential=credential)

    async def invite(
        self, role: str = "member", *, expires_s: float = 86400.0, uses: int = 1
    ) -> Invitation:
        """An invitation into this agent's workspace (admins only); its secret is shown once."""
        body = InvitationCreate.model_validate({"role": role, "expires_s": expires_s, "uses": uses})
        return await self._call(Invitation, "POST", "/invitations", body=body)

    async def redeem(self, secret: str, name: str) -> Joined:
        """Become a member with an invitation's secret (no token needed)."""
        body = InvitationRedeem(secret=secret, name=name)
        return await self._call(Joined, "POST", "/invitations/redeem", body=body)

    async def members(self) -> list[MemberInfo]:
        return await self._call_list(MemberInfo, "GET", "/members")

    async def revoke(self, member_id: int) -> MemberInfo:
        """Retire a member and all its agents at once (admins only)."""
        return await self._call(MemberInfo, "POST", f"/members/{member_id}/revoke")

    async def whoami(self) -> AgentInfo:
        return await self._call(AgentInfo, "GET", "/agents/me")

    async def leave(self) -> None:
        """Leave the workspace: every lease is released and the token retired."""
        await self._request("DELETE", "/agents/me")
