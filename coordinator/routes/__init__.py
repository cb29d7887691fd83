"""The HTTP routes under /v1, one `APIRouter` per domain, and what they share (`_deps`).

`ROUTERS` is in the order the app includes them; FastAPI matches paths in that order.
"""

from fastapi import APIRouter

from . import _access, _agents, _events, _leases, _snapshots, _teamwork, _zones

ROUTERS: tuple[APIRouter, ...] = (
    _agents.router,  # health, workspaces, agents
    _access.router,  # invitations, members
    _leases.router,
    _snapshots.router,  # blobs, versions
    _events.router,  # event stream, conflicts, audit
    _teamwork.router,  # work, memories, context, threads, briefing
    _zones.router,
)

__all__ = ["ROUTERS"]
