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
    ) -> None:
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
        self._membership = Membership(store, signals, clock)
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

    async def create_workspace(self, name: str) -> Workspace:
        return await self._membership.create_workspace(name)

    async def get_workspace(self, name: str) -> Workspace:
        return await self._membership.get_workspace(name)

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
