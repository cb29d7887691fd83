"""The coordinator's front: `Coordinator` builds its services and is what the routes call.

Each job lives in a module of its own, all over one `Store`, one set of event signals and
one clock: who is in the team (`_membership`), leases and their line of waiters
(`_leasing`), snapshots, the journal (events, audit), work sessions, knowledge, messages,
the briefing and zones. Membership and leasing are reached through the methods below
(``c.acquire``); the others are attributes (``c.snapshots.put_blob``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import trio

from leasefs.wire import (
    AgentInfo,
    AgentRegistration,
    LeaseGrant,
    LeaseRequest,
    MemberInfo,
    NarrowRequest,
    NarrowResult,
    PathStatus,
    Registered,
    ReleaseRequest,
    ReleaseResult,
    RenewRequest,
    RenewResult,
    Workspace,
)

from ._access import Access
from ._admission import Admission
from ._blobs import BlobFiles
from ._briefing import Briefings
from ._journal import Journal
from ._knowledge import Knowledge
from ._leasing import Leasing
from ._limits import Limits
from ._membership import Membership
from ._messages import Messages
from ._signals import EventSignals
from ._snapshots import Snapshots
from ._work import WorkSessions
from ._zones import Zones
from .store import AgentRow, Store


class Coordinator:
    """The coordinator's state machine over a `Store` and the blob files."""

    def __init__(
        self,
        store: Store,
        blobs: BlobFiles,
        limits: Limits | None = None,
        clock: Callable[[], float] = time.time,
        admission: Admission | None = None,
    ) -> None:
        """``admission``: who may come in (default: open, as on a machine-local coordinator)."""
        self.limits = limits or Limits()
        signals = EventSignals()
        self.snapshots = Snapshots(
            store, blobs, signals, max_blob_bytes=self.limits.max_blob_bytes, clock=clock
        )
        self.journal = Journal(store, signals, clock)
        self.work = WorkSessions(store, signals, clock)
        self.knowledge = Knowledge(store, signals, clock)
        self.messages = Messages(store, signals, clock)
        self.briefings = Briefings(store, clock)
        self.zones = Zones(store, signals, clock)
        self._membership = Membership(store, signals, clock, admission)
        self.access = Access(store, signals, clock)
        self._leasing = Leasing(store, signals, self.limits, self.zones, clock)

    # -- background work --------------------------------------------------------------------

    async def run_reaper(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Expire leases when their TTL runs out, and hand their paths to the next waiters."""
        await self._leasing.reaper.run(task_status=task_status)

    async def expire_due(self) -> None:
        """Expire every lease that ran out by now (what the reaper does when it wakes)."""
        await self._leasing.expire_due()

    # -- workspaces and agents --------------------------------------------------------------

    @property
    def admission(self) -> Admission:
        return self._membership.admission

    @property
    def failed_authentications(self) -> int:
        """Refused tokens, credentials, admin secrets and invitations since start."""
        return self._membership.failed_authentications + self.access.failed_redemptions

    async def create_workspace(
        self, name: str, admin_secret: str | None = None, owner: str = "owner"
    ) -> Workspace:
        return await self._membership.create_workspace(name, admin_secret, owner)

    async def get_workspace(self, name: str, agent: AgentRow | None = None) -> Workspace:
        return await self._membership.get_workspace(name, agent)

    async def revoke(self, agent: AgentRow, member_id: int) -> MemberInfo:
        """Revoke a member and retire its agents at once: their next request and open event
        streams end with 401, their leases go to whoever waits."""
        member, agents = await self.access.revoke(agent, member_id)
        for retired in agents:
            await self._leasing.leave(retired, retire_token=self._membership.forget_token)
        return member.model_copy(update={"agents": []})

    async def register(self, registration: AgentRegistration) -> Registered:
        return await self._membership.register(registration)

    async def authenticate(self, token: str | None) -> AgentRow:
        return await self._membership.authenticate(token)

    async def describe_agent(self, agent: AgentRow) -> AgentInfo:
        return await self._membership.describe_agent(agent)

    async def leave(self, agent: AgentRow) -> None:
        """Release every lease of ``agent``, drop its waits, and retire its token."""
        await self._leasing.leave(agent, retire_token=self._membership.forget_token)

    # -- leases -----------------------------------------------------------------------------

    async def acquire(self, agent: AgentRow, request: LeaseRequest) -> LeaseGrant:
        return await self._leasing.acquire(agent, request)

    async def renew(self, agent: AgentRow, request: RenewRequest) -> RenewResult:
        return await self._leasing.renew(agent, request)

    async def release(self, agent: AgentRow, request: ReleaseRequest) -> ReleaseResult:
        return await self._leasing.release(agent, request)

    async def narrow(self, agent: AgentRow, request: NarrowRequest) -> NarrowResult:
        return await self._leasing.narrow(agent, request)

    async def path_status(self, agent: AgentRow, paths: Sequence[str] | None) -> list[PathStatus]:
        return await self._leasing.path_status(agent, paths)
