"""Workspaces and agents: making a workspace, joining it as an agent, leaving it.

`register` is where a client gets its token: every call after it acts as that agent.
"""

from __future__ import annotations

from ..wire import AgentInfo, AgentRegistration, Registered, Workspace, WorkspaceCreate
from ._exceptions import LeasefsError
from ._transport import Transport


class AgentCalls(Transport):
    """The calls about workspaces, and about who this client is in one."""

    async def create_workspace(self, name: str) -> Workspace:
        return await self._call(Workspace, "POST", "/workspaces", body=WorkspaceCreate(name=name))

    async def ensure_workspace(self, name: str) -> Workspace:
        """Create the workspace unless it exists; either way return it."""
        try:
            return await self.create_workspace(name)
        except LeasefsError as exc:
            if getattr(exc, "code", None) != "workspace_exists":
                raise
        return await self._call(Workspace, "GET", f"/workspaces/{name}")

    async def register(
        self, workspace: str, name: str, *, host: str = "", tool: str = ""
    ) -> Registered:
        """Join a workspace as an agent; this client then acts as that agent."""
        registration = AgentRegistration(workspace=workspace, name=name, host=host, tool=tool)
        registered = await self._call(Registered, "POST", "/agents", body=registration)
        self.token = registered.token
        self.agent = registered.agent
        self.workspace = registered.workspace
        return registered

    async def whoami(self) -> AgentInfo:
        return await self._call(AgentInfo, "GET", "/agents/me")

    async def leave(self) -> None:
        """Leave the workspace: every lease is released and the token retired."""
        await self._request("DELETE", "/agents/me")
