"""The typed client: the one way our code talks to the coordinator.

Built on ``httpx.AsyncClient``, which runs under trio (the mount) and asyncio (the MCP SDK)
alike. `Client` is the plumbing, `_transport.Transport`, where every error body becomes a
typed exception and every transport failure `CoordinatorUnavailable`, plus the calls, one
mixin per domain; each module builds its own URLs:

    _agents      workspaces, and the agent this client acts as
    _leases      acquire, renew, release, holders
    _snapshots   blobs and versions
    _events      the event stream, conflicts reported, the audit log
    _teamwork    work, memories, the context, threads, the briefing
    _zones       protected zones and their allowances
"""

from __future__ import annotations

from ._agents import AgentCalls
from ._events import EventCalls
from ._events import EventStream as EventStream  # importable from here, as before the split
from ._hashing import sha256_of_file as sha256_of_file  # likewise
from ._leases import LeaseCalls
from ._snapshots import SnapshotCalls
from ._teamwork import TeamworkCalls
from ._zones import ZoneCalls


class Client(AgentCalls, LeaseCalls, SnapshotCalls, EventCalls, TeamworkCalls, ZoneCalls):
    """A connection to one coordinator, acting as one agent once registered.

    Use as ``async with Client(url) as client:``; `register` (or a ``token``) makes it an agent.
    """
