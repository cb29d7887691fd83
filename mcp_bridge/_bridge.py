"""One MCP session's link to the team: who it is, its coordinator client, its current work.

Run inside a mounted repository, the bridge *is* that mount's agent (same token, same
leases), so finishing or parking work releases exactly what the mount holds, with real
snapshots uploaded by the mount. Elsewhere it registers as an agent of its own.
"""

from __future__ import annotations

import contextlib
import logging
from functools import partial

import anyio
from mcp.server.subscriptions import ResourceUpdated, SubscriptionBus

from leasefs import Client, ControlError, Identity, LeasefsError, mount_status, release_now
from leasefs.wire import DEFAULT_BRANCH, EventType, LeaseRef, LeaseScope

log = logging.getLogger("leasefs.mcp")

INBOX_URI = "leasefs://inbox"
_RETRY_S = 2.0


class Bridge:
    def __init__(self, identity: Identity) -> None:
        self.identity = identity
        self.client = Client(identity.coordinator, identity.token)
        self.work_id: int | None = None

    @property
    def agent_id(self) -> int:
        assert self.client.agent is not None
        return self.client.agent.id

    async def connect(self) -> None:
        if self.identity.token:
            self.client.agent = await self.client.whoami()
            self.client.workspace = self.identity.workspace
            return
        await self.client.join_workspace(self.identity.workspace, self.identity.agent, tool="mcp")

    async def switch_workspace(self, name: str) -> None:
        """Act for another workspace (another repository) from now on."""
        old = self.client
        fresh = Client(self.identity.coordinator)
        await fresh.join_workspace(name, self.identity.agent, tool="mcp")
        if self.identity.mount_socket is None:
            try:
                await old.leave()
            except LeasefsError as exc:
                log.warning("could not leave %s: %s", self.identity.workspace, exc)
        await old.aclose()
        self.client = fresh
        self.identity = Identity(
            coordinator=self.identity.coordinator, workspace=name, agent=self.identity.agent
        )
        self.work_id = None

    async def lease_place(self) -> tuple[str, LeaseScope]:
        """The branch and lease scope of the mount around this session: leases taken by hand
        exclude exactly whom the mount's own leases exclude (outside a mount: everyone)."""
        if (socket := self.identity.mount_socket) is not None:
            with contextlib.suppress(ControlError):  # the mount went away: the safe default
                status = await anyio.to_thread.run_sync(mount_status, socket)
                return status.branch, status.lease_scope
        return DEFAULT_BRANCH, "workspace"

    async def release_all(self) -> list[str]:
        """Give back every lease of this agent: the mount's with snapshots, then the rest."""
        released: list[str] = []
        if self.identity.mount_socket is not None:
            socket = self.identity.mount_socket
            try:
                released += await anyio.to_thread.run_sync(
                    partial(release_now, socket, agent=self.identity.agent)
                )
            except ControlError as exc:
                log.warning("the mount did not release: %s", exc)
        mine = [
            LeaseRef(path=s.lease.path, token=s.lease.token)
            for s in await self.client.holders()
            if s.lease is not None and s.lease.holder.id == self.agent_id
        ]
        if mine:
            released += (await self.client.release(mine)).released
        return sorted(set(released))

    async def watch_messages(self, bus: SubscriptionBus) -> None:
        """Publish an inbox update whenever a message for this agent is created."""
        while True:
            try:
                after = await self.client.events_head()
                async with self.client.open_events(after=after) as events:
                    async for event in events:
                        if event.type == EventType.MESSAGE_CREATED and self._concerns_me(
                            event.data, event.agent_id
                        ):
                            await bus.publish(ResourceUpdated(uri=INBOX_URI))
            except LeasefsError as exc:
                log.info("event stream interrupted (%s); following again shortly", exc)
            await anyio.sleep(_RETRY_S)

    def _concerns_me(self, data: dict[str, object], sender: int | None) -> bool:
        if sender == self.agent_id:
            return False
        kind, target = data.get("to_kind"), data.get("to_id")
        return (
            kind == "team"
            or (kind == "agent" and target == self.agent_id)
            or (kind == "work" and self.work_id is not None and target == self.work_id)
        )
