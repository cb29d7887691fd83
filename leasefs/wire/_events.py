"""The workspace event stream: one ordered stream per workspace, resumed by id."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from ._base import WireModel


class EventType(StrEnum):
    AGENT_JOINED = "agent.joined"
    AGENT_LEFT = "agent.left"
    LEASE_GRANTED = "lease.granted"
    LEASE_RELEASED = "lease.released"
    LEASE_EXPIRED = "lease.expired"
    LEASE_RECALLED = "lease.recalled"
    VERSION_CREATED = "version.created"
    CONFLICT_DETECTED = "conflict.detected"
    WORK_CHANGED = "work.changed"
    MESSAGE_CREATED = "message.created"
    CONTEXT_UPDATED = "context.updated"
    ZONES_CHANGED = "zones.changed"


class Event(WireModel):
    """One entry of a workspace's ordered event stream; ids only grow."""

    id: int
    type: EventType
    at: float
    agent_id: int | None
    path: str | None
    data: dict[str, Any]


class EventsHead(WireModel):
    """The id of the newest event, to follow the stream from now on."""

    last_id: int
